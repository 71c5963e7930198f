# ruff: noqa: RUF001  (Greek, Cyrillic and CJK names are the point of this data)
"""Deterministic, lazily generated data of a mid-sized distributor.

Nothing is generated up front except the sorted key lists: every row is computed from
``(seed, key)`` by cheap arithmetic when a query reaches it, so ``--customers 100000`` starts in well
under a second and a full scan never holds the table in memory. Edits made through the control API
are kept as overrides beside the generated data (see ``store``).

The data carries the mess real JDE data has: accented and non-Latin names (Greek, Cyrillic, Japanese,
Chinese), contacts without an e-mail, invalid e-mails, one e-mail on two contacts, values cut at the
column length, blank-padded codes, right-justified business units, two effective-dated addresses,
inactive customers and contacts, foreign-currency customers (JPY has no decimals), and a few rows whose
batch program did not stamp UPMT. The ledgers hang off the address numbers: invoices (some billed from
a sales order, with F42119 lines), receipts (some leaving unapplied cash as an RU document), supplier
vouchers; prices hang off the items (F4106, some expired, some per currency or branch).
"""

from __future__ import annotations

import itertools
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from functools import lru_cache
from typing import Any

from airflow_provider_mlconn.sandbox.jde.calendar import ordinal_to_julian, to_julian
from airflow_provider_mlconn.sandbox.jde.chart import BUSINESS_UNITS, accounts_of
from airflow_provider_mlconn.sandbox.jde.schema import TABLES

Row = dict[str, Any]

ANCHOR = date(2025, 12, 31)  # every generated UPMJ is on or before this day; edits stamp "now"
FIRST_AN8 = 10_000
BLOCK = 20  # each block of 20 address numbers: 17 customers, 2 suppliers, 1 employee
CUSTOMERS_PER_BLOCK = 17
FIRST_ITEM = 60_000
NEW_DOCUMENT_START = 90_000_000  # next numbers for documents created through orchestrations
SALES_ORDER_BASE = 50_000_000  # seeded sales orders: 50,000,000 + AN8 * 10 + n (F42119.DOCO)
NEW_SALES_ORDER_START = 70_000_000  # next numbers for sales orders entered through /_sandbox/
OPEN_ENDED = date(2040, 12, 31)  # the expiry date JDE proposes for a price without one
_MASK = (1 << 64) - 1


def mix(*parts: int) -> int:
    """A 64-bit hash of integers (splitmix64 steps): cheap, stable across runs and platforms."""
    x = 0x9E3779B97F4A7C15
    for part in parts:
        x = ((x ^ (part & _MASK)) * 0xBF58476D1CE4E5B9) & _MASK
        x ^= x >> 31
        x = (x * 0x94D049BB133111EB) & _MASK
        x ^= x >> 29
    return x


class Draw:
    """A tiny deterministic generator (64-bit LCG seeded by ``mix``): about ten times cheaper to
    create and use than ``random.Random``, which matters when every row is generated on demand."""

    __slots__ = ("state",)

    def __init__(self, *parts: int) -> None:
        self.state = mix(*parts)

    def bits(self) -> int:
        self.state = (self.state * 6364136223846793005 + 1442695040888963407) & _MASK
        return self.state >> 33

    def random(self) -> float:
        return self.bits() / 2147483648.0

    def randrange(self, start: int, stop: int | None = None) -> int:
        if stop is None:
            start, stop = 0, start
        span = stop - start
        value = self.bits() if span <= 1 << 31 else (self.bits() << 31) | self.bits()
        return start + value % span

    def choice(self, options: Sequence[Any]) -> Any:
        return options[self.bits() % len(options)]

    def weighted(self, options: Sequence[Any], weights: Sequence[int]) -> Any:
        roll = self.bits() % sum(weights)
        for option, weight in zip(options, weights, strict=True):
            if roll < weight:
                return option
            roll -= weight
        return options[-1]


def pad(code: str, size: int) -> str:
    """JDE character codes come back blank-padded to the column length."""
    return code.ljust(size)[:size]


def right_justify(business_unit: str) -> str:
    """Business units (MCU) are stored right-justified in 12 characters."""
    return business_unit.rjust(12)[:12]


def fold_ascii(text: str) -> str:
    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().lower()


@dataclass(frozen=True)
class Culture:
    code: str
    country: str
    currency: str
    company: str
    language: str
    firms: tuple[str, ...]
    trades: tuple[str, ...]
    legal_forms: tuple[str, ...]
    given_names: tuple[str, ...]
    surnames: tuple[str, ...]
    romanized: tuple[str, ...]  # e-mail local parts when the names are not Latin
    streets: tuple[str, ...]
    cities: tuple[tuple[str, str, str], ...]  # city, state/region, postal code
    phone_prefix: str
    weight: int


CULTURES: tuple[Culture, ...] = (
    Culture(
        "us",
        "US",
        "USD",
        "00001",
        " ",
        (
            "Acme",
            "Summit",
            "Rocky Mountain",
            "Great Lakes",
            "Pioneer",
            "Liberty",
            "Cascade",
            "Frontier",
            "Blue Ridge",
            "Harbor",
            "Keystone",
            "Prairie",
            "Redwood",
            "Sunbelt",
            "Granite",
            "Evergreen",
        ),
        (
            "Supply",
            "Industrial Supply",
            "Hardware",
            "Distribution",
            "Tool & Die",
            "Electric",
            "Plumbing",
            "Building Products",
            "Fasteners",
            "Packaging",
            "Office Solutions",
        ),
        ("Inc.", "LLC", "Co.", "Corp.", "& Sons", "Ltd."),
        (
            "James",
            "Mary",
            "Robert",
            "Patricia",
            "John",
            "Jennifer",
            "Michael",
            "Linda",
            "David",
            "Elizabeth",
            "Chloé",
            "Zoë",
            "D'Andre",
            "Mary-Kate",
        ),
        (
            "Smith",
            "Johnson",
            "Williams",
            "Brown",
            "Jones",
            "Garcia",
            "Miller",
            "Davis",
            "O'Brien",
            "McAllister",
            "Nguyen",
            "Van der Berg",
        ),
        (),
        ("Main St", "Industrial Pkwy", "Commerce Dr", "Market Street", "Airport Rd", "5th Avenue"),
        (
            ("Denver", "CO", "80202"),
            ("Chicago", "IL", "60607"),
            ("Dallas", "TX", "75201"),
            ("Columbus", "OH", "43215"),
            ("Seattle", "WA", "98101"),
            ("Atlanta", "GA", "30303"),
        ),
        "+1",
        48,
    ),
    Culture(
        "ca",
        "CA",
        "CAD",
        "00001",
        " ",
        ("Maple Leaf", "Northern", "Laurentian", "Pacific Rim", "Québec"),
        ("Supply", "Distribution", "Industrial", "Fournitures"),
        ("Ltd.", "Inc.", "Ltée"),
        ("Émile", "Geneviève", "Liam", "Olivia", "Étienne"),
        ("Tremblay", "Gagnon", "Roy", "Côté", "Bouchard", "MacDonald"),
        (),
        ("Rue Sainte-Catherine", "Yonge St", "Boulevard René-Lévesque"),
        (("Montréal", "QC", "H3B 2Y5"), ("Toronto", "ON", "M5H 2N2"), ("Vancouver", "BC", "V6B 1A1")),
        "+1",
        5,
    ),
    Culture(
        "de",
        "DE",
        "EUR",
        "00200",
        "G",
        ("Müller", "Schröder", "Weiß", "Groß", "Bäcker", "Köhler", "Jäger", "Hoffmann", "Schäfer"),
        ("Großhandel", "Werkzeugbau", "Elektrotechnik", "Baustoffe", "Metallwaren", "Logistik"),
        ("GmbH", "AG", "GmbH & Co. KG", "e.K."),
        ("Jürgen", "Björn", "Käthe", "Günther", "Sören", "Renée", "Lukas", "Anna"),
        ("Müller", "Schmidt", "Schröder", "Weiß", "Groß", "Köhler", "Fischer", "Meyer-Lüdenscheid"),
        (),
        ("Hauptstraße", "Industriestraße", "Am Güterbahnhof", "Königsallee"),
        (
            ("München", "BY", "80331"),
            ("Köln", "NW", "50667"),
            ("Düsseldorf", "NW", "40213"),
            ("Nürnberg", "BY", "90402"),
        ),
        "+49",
        10,
    ),
    Culture(
        "fr",
        "FR",
        "EUR",
        "00200",
        "F",
        ("Société Générale", "Établissements Lefèvre", "Compagnie Moreau", "Ateliers Dubois"),
        ("de Câbles", "des Matériaux", "d'Électricité", "Frères", "Outillage"),
        ("SARL", "S.A.", "SAS"),
        ("Éloïse", "François", "Hélène", "Jérôme", "Amélie", "Benoît", "Cécile", "Noël"),
        ("Lefèvre", "Dubois", "Moreau", "Girard", "Bérubé", "Lemaître"),
        (),
        ("Rue de la Paix", "Avenue des Champs-Élysées", "Boulevard Haussmann"),
        (("Paris", "IDF", "75008"), ("Lyon", "ARA", "69002"), ("Orléans", "CVL", "45000")),
        "+33",
        8,
    ),
    Culture(
        "es",
        "ES",
        "EUR",
        "00200",
        "S",
        ("José García", "Muñoz", "Peña", "Núñez", "Ibáñez", "Castaño"),
        ("e Hijos", "Suministros", "Ferretería", "Distribuciones"),
        ("S.A.", "S.L."),
        ("José", "María", "Iñigo", "Begoña", "Raúl", "Ángela", "Nuño"),
        ("García", "Núñez", "Muñoz", "Peña", "Ibáñez", "Fernández de la Cruz"),
        (),
        ("Calle Mayor", "Avenida de Andalucía", "Paseo de Gràcia"),
        (("Madrid", "M", "28013"), ("Barcelona", "B", "08007"), ("Málaga", "MA", "29015")),
        "+34",
        6,
    ),
    Culture(
        "pl",
        "PL",
        "PLN",
        "00200",
        "P",
        ("Łódź", "Kraków", "Gdańsk", "Wrocław", "Poznań"),
        ("Dystrybucja", "Hurtownia", "Narzędzia", "Elektro"),
        ("Sp. z o.o.", "S.A."),
        ("Łukasz", "Małgorzata", "Wojciech", "Żaneta", "Grzegorz"),
        ("Wiśniewski", "Łęcki", "Wójcik", "Kołodziej", "Żółkiewska"),
        (),
        ("ul. Piotrkowska", "ul. Długa", "al. Jerozolimskie"),
        (("Łódź", "LD", "90-001"), ("Kraków", "MA", "31-001"), ("Gdańsk", "PM", "80-001")),
        "+48",
        4,
    ),
    Culture(
        "no",
        "NO",
        "NOK",
        "00200",
        "N",
        ("Ørsted", "Bjørn", "Søndre", "Åsgard", "Fjordlys"),
        ("Handel", "Verktøy", "Bygg"),
        ("AS", "ASA"),
        ("Bjørn", "Åse", "Øystein", "Sigrún", "Håkon"),
        ("Sørensen", "Ødegård", "Åberg", "Løvås"),
        (),
        ("Storgata", "Kongens gate", "Strandveien"),
        (("Tromsø", "54", "9008"), ("Bergen", "46", "5003"), ("Oslo", "03", "0150")),
        "+47",
        3,
    ),
    Culture(
        "gr",
        "GR",
        "EUR",
        "00200",
        "R",
        ("Παπαδόπουλος", "Αθηναϊκή", "Ελληνικά", "Μακεδονική"),
        ("Εργαλεία", "Εμπορική", "Διανομές"),
        ("Α.Ε.", "Ε.Π.Ε."),
        ("Γιώργος", "Μαρία", "Νίκος", "Ελένη"),
        ("Παπαδόπουλος", "Νικολάου", "Γεωργίου"),
        ("papadopoulos", "nikolaou", "georgiou"),
        ("Οδός Ερμού", "Λεωφόρος Συγγρού"),
        (("Αθήνα", "I", "105 63"), ("Θεσσαλονίκη", "B", "546 24")),
        "+30",
        3,
    ),
    Culture(
        "bg",
        "BG",
        "BGN",
        "00200",
        "B",
        ("Балкан", "Тракия", "Родопи", "София"),
        ("Трейд", "Инструменти", "Дистрибуция"),
        ("ООД", "ЕАД"),
        ("Иван", "Мария", "Георги", "Елена"),
        ("Петров", "Иванова", "Димитров", "Георгиева"),
        ("petrov", "ivanova", "dimitrov"),
        ("бул. Витоша", "ул. Граф Игнатиев"),
        (("София", "22", "1000"), ("Пловдив", "16", "4000")),
        "+359",
        3,
    ),
    Culture(
        "jp",
        "JP",
        "JPY",
        "00001",
        "J",
        ("山田", "佐藤", "鈴木", "高橋", "東京", "大阪"),
        ("商事", "工業", "電機", "物産"),
        ("株式会社",),
        ("太郎", "花子", "健", "美咲"),
        ("山田", "佐藤", "鈴木", "高橋"),
        ("yamada", "sato", "suzuki", "takahashi"),
        ("千代田1-1", "梅田2-4-9"),
        (("東京都千代田区", "13", "100-0005"), ("大阪市北区", "27", "530-0001")),
        "+81",
        5,
    ),
    Culture(
        "cn",
        "CN",
        "CNY",
        "00001",
        "C",
        ("上海", "北京", "深圳", "广州"),
        ("贸易", "五金", "电子", "物流"),
        ("有限公司",),
        ("伟", "芳", "娜", "强"),
        ("王", "李", "张", "刘"),
        ("wang", "li", "zhang", "liu"),
        ("南京东路100号", "深南大道6008号"),
        (("上海市", "SH", "200001"), ("深圳市", "GD", "518000")),
        "+86",
        3,
    ),
)
_CULTURE_WHEEL: tuple[Culture, ...] = tuple(c for c in CULTURES for _ in range(c.weight))

COMPANIES = {"00001": ("USD", "M30"), "00200": ("EUR", "200")}
# F03B11 columns that tie a document to another (void, original invoice, receipt, sales order)
_NO_LINKS: Row = {
    "VOD": " ", "VDGJ": 0, "ODOC": 0, "ODCT": "  ", "OKCO": "     ", "OSFX": "   ", "PYID": 0, "SDOC": 0,
    "SDCT": "  ", "SKCO": "     ",
}  # fmt: skip
PAYMENT_TERMS = {"N30": 30, "N15": 15, "N45": 45, "2/10": 30, "CIA": 0}
FREE_MAIL = ("gmail.com", "yahoo.com", "outlook.com", "web.de", "orange.fr")
INVALID_EMAILS = (
    "{local}@",
    "{local} at {domain}",
    "{local}@{bare}",
    "{local}@@{domain}",
    "mailto:{local}@{domain}",
    "{local}@{domain}; {local}2@{domain}",
    "n/a",
)


def culture_of(seed: int, an8: int) -> Culture:
    return _CULTURE_WHEEL[mix(seed, an8, 11) % len(_CULTURE_WHEEL)]


def julian_between(rng: Draw, first: date, last: date) -> int:
    start = first.toordinal()
    return ordinal_to_julian(start + rng.randrange(last.toordinal() - start + 1))


def audit_time(rng: Draw) -> int:
    if rng.random() < 0.01:
        return 0  # some batch programs do not stamp UPMT
    return rng.randrange(6, 20) * 10000 + rng.randrange(60) * 100 + rng.randrange(60)


def audit(rng: Draw, created: date, program: str) -> Row:
    return {
        "USER": rng.choice(("JDE", "MKOWALSKI", "APCLERK", "SBAKER", "INTEGR8")),
        "PID": program,
        "UPMJ": julian_between(rng, created, ANCHOR),
        "JOBN": rng.choice(("DENW1234", "CHIW0042", "MUCW0007", "JDEWEB01")),
        "UPMT": audit_time(rng),
    }


def audit_time_of_day(rng: Draw, created: date, program: str) -> Row:
    """The audit columns of tables that keep the time in TDAY (F4106, F42119)."""
    stamp = audit(rng, created, program)
    stamp["TDAY"] = stamp.pop("UPMT")
    return stamp


def split_amount(rng: Draw, total: int, parts: int, unit: int) -> list[int]:
    """``total`` cut into ``parts`` positive amounts, each a multiple of ``unit`` (100 for JPY)."""
    steps = total // unit
    parts = max(1, min(parts, steps))
    cuts = sorted({rng.randrange(1, steps) for _ in range(parts - 1)} if steps > 1 else set())
    bounds = [0, *cuts, steps]
    return [(high - low) * unit for low, high in itertools.pairwise(bounds)]


def cut(text: str, size: int) -> str:
    return text[:size]


@dataclass(frozen=True)
class Contact:
    line: int
    given: str
    surname: str
    title: str
    active: bool
    emails: tuple[str, ...]
    phones: tuple[tuple[str, str, str], ...]  # phone type, prefix, number


@dataclass(frozen=True)
class Party:
    """Everything generated about one address number, shared by the tables that describe it."""

    an8: int
    kind: str  # C customer, V supplier, E employee, O company
    culture: Culture
    name: str
    compressed: str  # DC: the name folded to upper-case ASCII without blanks, for "search by name"
    domain: str
    created: date
    inactive: bool
    companies: tuple[str, ...]
    invoices: int


Address = tuple[date, tuple[str, ...], str, str, str]  # effective date, lines, city, state, postal code


@dataclass(frozen=True)
class Reachability:
    """How to reach a party: its contacts, the company's own e-mails and phones, its addresses."""

    contacts: tuple[Contact, ...]
    company_emails: tuple[str, ...]
    company_phones: tuple[tuple[str, str, str], ...]
    addresses: tuple[Address, ...]


class Dataset:
    """The seeded key space and the row generators of every table."""

    def __init__(self, *, customers: int, seed: int, open_items: int | None = None) -> None:
        if customers < 0:
            raise ValueError("customers must be >= 0")
        if open_items is not None and not 0 <= open_items <= 9:
            raise ValueError("open_items must be between 0 and 9")
        self.customers = customers
        self.seed = seed
        # every customer has exactly this many open invoices instead of the mixed ledger (benchmarks)
        self.open_items = open_items
        blocks = -(-customers // CUSTOMERS_PER_BLOCK)
        numbers: list[int] = [1, 200]
        for k in range(blocks * BLOCK):
            slot = k % BLOCK
            if slot < CUSTOMERS_PER_BLOCK and (k // BLOCK) * CUSTOMERS_PER_BLOCK + slot >= customers:
                continue
            numbers.append(FIRST_AN8 + k)
        self.address_numbers = numbers
        self.items = max(50, min(customers // 25, 20_000))
        self.item_numbers = [FIRST_ITEM + 3 * k for k in range(self.items)]
        self.accounts = self._accounts()
        self.business_units = self._business_units()
        self._party = lru_cache(maxsize=8192)(self._make_party)
        self._reach = lru_cache(maxsize=4096)(self._make_reachability)
        self._invoices = lru_cache(maxsize=4096)(self._make_invoices)
        self._accounts_by_number = {
            (row["CO"], row["MCU"].strip(), row["OBJ"].strip(), row["SUB"].strip()): row
            for row in self.accounts
        }

    # -- who is who ------------------------------------------------------------------------------

    def kind_of(self, an8: int) -> str:
        if an8 < FIRST_AN8:
            return "O"
        slot = (an8 - FIRST_AN8) % BLOCK
        return "C" if slot < CUSTOMERS_PER_BLOCK else ("V" if slot < BLOCK - 1 else "E")

    def customer_company(self, an8: int) -> str:
        return culture_of(self.seed, an8).company

    def party(self, an8: int) -> Party:
        return self._party(an8)

    def reach(self, an8: int) -> Reachability:
        return self._reach(an8)

    def _make_party(self, an8: int) -> Party:
        rng = Draw(self.seed, an8)
        kind = self.kind_of(an8)
        culture = culture_of(self.seed, an8) if kind == "C" else CULTURES[0]
        created = date(2012, 1, 1) + timedelta(days=rng.randrange(4900))
        if kind == "O":
            name = {1: "Mile High Distribution Inc.", 200: "Mile High Distribution Europe GmbH"}.get(
                an8, f"Company {an8}"
            )
        elif kind == "E":
            name = f"{rng.choice(culture.surnames)}, {rng.choice(culture.given_names)}"
        elif kind == "V":
            name = f"{rng.choice(culture.firms)} Manufacturing {rng.choice(culture.legal_forms)}"
        else:
            name = self._company_name(rng, culture)
        slug = "".join(ch for ch in fold_ascii(name.split(" ")[0]) if ch.isalnum()) or rng.choice(
            culture.romanized or ("firm",)
        )
        domain = f"{slug}{an8 % 97}.example.{culture.country.lower()}"
        invoices = 0
        companies: tuple[str, ...] = ()
        if kind == "C":
            companies = (culture.company,)
            if rng.random() < 0.05:  # also buys from the other company: a second F03012 row
                companies = (culture.company, "00200" if culture.company == "00001" else "00001")
            invoices = rng.weighted((0, 1, 2, 3), (40, 30, 20, 10))
            if self.open_items is not None:
                invoices = self.open_items
        return Party(
            an8=an8,
            kind=kind,
            culture=culture,
            name=name,
            compressed=cut(fold_ascii(name).upper().replace(" ", ""), 40),
            domain=domain,
            created=created,
            inactive=kind == "C" and rng.random() < 0.04,
            companies=companies,
            invoices=invoices,
        )

    def _make_reachability(self, an8: int) -> Reachability:
        party = self.party(an8)
        kind, culture, domain, created = party.kind, party.culture, party.domain, party.created
        rng = Draw(self.seed, an8, 7)
        contacts: tuple[Contact, ...] = ()
        if kind == "C":
            count = rng.weighted((0, 1, 2, 3, 4), (10, 30, 30, 20, 10))
            contacts = tuple(self._contact(rng, culture, domain, line, an8) for line in range(1, count + 1))
            if len(contacts) >= 2 and contacts[0].emails and rng.random() < 0.08:
                # the same mailbox on two contacts ("orders@" shared by a buyer and an assistant)
                second = contacts[1]
                contacts = (
                    contacts[0],
                    Contact(
                        second.line,
                        second.given,
                        second.surname,
                        second.title,
                        second.active,
                        (contacts[0].emails[0],),
                        second.phones,
                    ),
                    *contacts[2:],
                )
        company_emails: tuple[str, ...] = ()
        if kind in ("C", "V") and rng.random() < 0.4:
            company_emails = (f"info@{domain}",)
        company_phones = (("BUS ", "", self._phone(rng, culture)),) if kind != "E" else ()
        if kind in ("C", "V") and rng.random() < 0.3:
            company_phones = (*company_phones, ("FAX ", "", self._phone(rng, culture)))
        addresses = [self._address(rng, culture, created)]
        if rng.random() < 0.15:
            moved = created + timedelta(days=rng.randrange(200, 3000))
            if moved < ANCHOR:
                addresses.append(self._address(rng, culture, moved))
        return Reachability(contacts, company_emails, company_phones, tuple(addresses))

    def _company_name(self, rng: Draw, culture: Culture) -> str:
        firm, trade, form = (
            rng.choice(culture.firms),
            rng.choice(culture.trades),
            rng.choice(culture.legal_forms),
        )
        if culture.code == "jp":
            name = f"{form} {firm}{trade}" if rng.random() < 0.5 else f"{firm}{trade} {form}"
        elif culture.code == "cn":
            name = f"{firm}{trade}{form}"
        else:
            name = f"{firm} {trade} {form}"
        roll = rng.random()
        if roll < 0.03:
            # longer than the 40 characters of ALPH: the database keeps the first 40
            name = f"{firm} {trade} and International Trading Services {form}"
        elif roll < 0.08:
            name = name + "   "  # typed with trailing blanks
        elif roll < 0.10:
            name = name.upper()
        return name

    def _phone(self, rng: Draw, culture: Culture) -> str:
        digits = f"{rng.randrange(200, 999)}{rng.randrange(1000000):07d}"
        style = rng.randrange(4)
        if style == 0:
            return f"({digits[:3]}) {digits[3:6]}-{digits[6:]}"
        if style == 1:
            return f"{culture.phone_prefix} {digits[:3]} {digits[3:]}"
        if style == 2:
            return f"{digits[:3]}.{digits[3:6]}.{digits[6:]}"
        return digits

    def _contact(self, rng: Draw, culture: Culture, domain: str, line: int, an8: int) -> Contact:
        given, surname = rng.choice(culture.given_names), rng.choice(culture.surnames)
        local = f"{fold_ascii(given)}.{fold_ascii(surname)}".replace(" ", "").replace("'", "")
        if local.strip(".") == "" or not local.replace(".", "").replace("-", "").isalnum():
            local = f"{rng.choice(culture.romanized or ('contact',))}.{line}"
        domain_used = domain if rng.random() < 0.8 else rng.choice(FREE_MAIL)
        roll = rng.random()
        emails: tuple[str, ...]
        if roll < 0.12:
            emails = ()
        elif roll < 0.17:
            pattern = rng.choice(INVALID_EMAILS)
            emails = (pattern.format(local=local, domain=domain_used, bare=domain_used.split(".")[0]),)
        elif roll < 0.19:
            emails = (f"{local}@{domain_used}".upper(),)
        elif roll < 0.22:
            emails = (f"{local}@{domain_used}   ",)
        elif roll < 0.23:
            emails = (f"{local}.{'procurement-and-accounts-payable-department' * 2}@{domain_used}",)
        elif roll < 0.24:
            emails = ("purchasing@gmail.com",)  # one shared mailbox on contacts of different customers
        else:
            emails = (f"{local}@{domain_used}",)
        if emails and rng.random() < 0.1:
            emails = (*emails, f"{local.split('.')[0]}@{rng.choice(FREE_MAIL)}")
        phones = tuple(
            (phone_type, "", self._phone(rng, culture))
            for phone_type in ("BUS ", "CAR ")
            if rng.random() < (0.7 if phone_type == "BUS " else 0.3)
        )
        title = rng.choice(("Purchasing Manager", "Accounts Payable", "Owner", "Buyer", "", "Einkäufer"))
        return Contact(line, given, surname, title, rng.random() > 0.05, emails, phones)

    def _address(self, rng: Draw, culture: Culture, effective: date) -> Address:
        city, state, postal = rng.choice(culture.cities)
        line1 = f"{rng.randrange(1, 9999)} {rng.choice(culture.streets)}"
        lines: tuple[str, ...] = (line1,)
        if rng.random() < 0.3:
            lines = (*lines, rng.choice(("Suite 200", "Bldg 4", "Dock 7", "c/o Receiving", "2. OG")))
        return (effective, lines, city, state, postal)

    # -- rows per table --------------------------------------------------------------------------

    def f0101(self, an8: int) -> list[Row]:
        party = self.party(an8)
        rng = Draw(self.seed, an8, 101)
        company = party.companies[0] if party.companies else "00001"
        business_unit = COMPANIES[company][1]
        tax = ""
        if rng.random() < 0.8:
            tax = f"{party.culture.country}{rng.randrange(10**8, 10**9)}" if party.kind == "C" else ""
        return [
            {
                "AN8": an8,
                "ALKY": "" if rng.random() < 0.5 else f"{party.kind}{an8}",
                "TAX": tax,
                "ALPH": cut(party.name, 40),
                "DC": party.compressed,
                "MCU": right_justify(business_unit),
                "SIC": "5085" if party.kind == "C" else "",
                "LNGP": party.culture.language.ljust(2),
                "AT1": pad(party.kind, 3),
                "CM": pad(" " if rng.random() < 0.9 else "H", 2),
                "TAXC": "C" if party.kind != "E" else "P",
                "ATR": "Y" if party.kind == "C" else "N",
                "ATP": "Y" if party.kind == "V" else "N",
                "ATE": "Y" if party.kind == "E" else "N",
                "AC01": pad(rng.choice(("NE", "SE", "MW", "W", "EU", "AP")), 3),
                "AC02": pad(f"R{rng.randrange(10, 40)}", 3),
                "AC03": pad(rng.choice(("DIS", "RET", "OEM", "CON")), 3),
                "AC30": pad("INA" if party.inactive else "", 3),
                **audit(rng, party.created, "P01012"),
            }
        ]

    def f03012(self, an8: int) -> list[Row]:
        party = self.party(an8)
        if party.kind != "C":
            return []
        rows = []
        for company in sorted(party.companies):
            rng = Draw(self.seed, an8, 3012, int(company))
            currency = party.culture.currency if company == party.culture.company else COMPANIES[company][0]
            rows.append(
                {
                    "AN8": an8,
                    "CO": company,
                    "ARC": pad("RC", 4),
                    "MCUR": right_justify(COMPANIES[company][1]),
                    "CRCD": currency,
                    "TXA1": pad(f"{party.culture.country}STD", 10),
                    "EXR1": pad("V" if company == "00200" else "S", 2),
                    "ACL": rng.randrange(0, 500) * 100_000,
                    "HDAR": "Y" if party.inactive else "N",
                    "TRAR": pad(rng.choice(tuple(PAYMENT_TERMS)), 3),
                    "STTO": "C",
                    "RYIN": rng.choice(("C", "T", "?")),
                    "CMGR": pad(rng.choice(("JSMITH", "AKOWALSKI", "")), 10),
                    "CLMG": pad(rng.choice(("MBROWN", "")), 10),
                    "HOLD": pad("IN" if party.inactive else "", 2),
                    "AC01": pad(rng.choice(("A", "B", "C")), 3),
                    **audit(rng, party.created, "P03013"),
                }
            )
        return rows

    def f0111(self, an8: int) -> list[Row]:
        party = self.party(an8)
        rng = Draw(self.seed, an8, 111)
        rows = [
            {
                "AN8": an8,
                "IDLN": 0,
                "DSS7": 0,
                "MLNM": cut(party.name, 40),
                "ATTL": "",
                "SLNM": "",
                "ALPH": cut(party.name, 40),
                "DC": party.compressed,
                "GNNM": "",
                "MDNM": "",
                "SRNM": "",
                "TYC": " ",
                "NICK": "",
                "GEND": " ",
                "ACTIN": "Y",
                "REM1": "",
                **audit(rng, party.created, "P01012"),
            }
        ]
        for contact in self.reach(an8).contacts:
            full = f"{contact.surname}, {contact.given}"
            mailing = f"{contact.given} {contact.surname}"
            rows.append(
                {
                    "AN8": an8,
                    "IDLN": contact.line,
                    "DSS7": contact.line,
                    "MLNM": cut(mailing, 40),
                    "ATTL": cut(contact.title, 40),
                    "SLNM": "",
                    "ALPH": cut(full, 40),
                    "DC": cut(fold_ascii(full).upper().replace(" ", ""), 40),
                    "GNNM": cut(contact.given, 25),
                    "MDNM": "",
                    "SRNM": cut(contact.surname, 25),
                    "TYC": "C",
                    "NICK": "",
                    "GEND": rng.choice((" ", "M", "F")),
                    "ACTIN": "Y" if contact.active else "N",
                    "REM1": "",
                    **audit(rng, party.created, "P0111"),
                }
            )
        return rows

    def f0116(self, an8: int) -> list[Row]:
        party = self.party(an8)
        rng = Draw(self.seed, an8, 116)
        rows = []
        for effective, lines, city, state, postal in self.reach(an8).addresses:
            padded = (*lines, "", "", "", "")[:4]
            rows.append(
                {
                    "AN8": an8,
                    "EFTB": to_julian(effective),
                    "ADD1": cut(padded[0], 40),
                    "ADD2": cut(padded[1], 40),
                    "ADD3": cut(padded[2], 40),
                    "ADD4": cut(padded[3], 40),
                    "ADDZ": postal,
                    "CTY1": cut(city, 25),
                    "COUN": "",
                    "ADDS": pad(state, 3),
                    "CTR": pad(party.culture.country, 3),
                    **audit(rng, effective, "P01012"),
                }
            )
        return rows

    def f0115(self, an8: int) -> list[Row]:
        party = self.party(an8)
        rng = Draw(self.seed, an8, 115)
        rows = []
        reach = self.reach(an8)
        lines: list[tuple[int, tuple[tuple[str, str, str], ...]]] = [(0, reach.company_phones)]
        lines += [(c.line, c.phones) for c in reach.contacts]
        for idln, phones in lines:
            for index, (phone_type, prefix, number) in enumerate(phones, start=1):
                rows.append(
                    {
                        "AN8": an8,
                        "IDLN": idln,
                        "RCK7": index,
                        "CNLN": 0,
                        "PHTP": phone_type,
                        "AR1": pad(prefix, 6),
                        "PH1": number,
                        **audit(rng, party.created, "P0115"),
                    }
                )
        return rows

    def f01151(self, an8: int) -> list[Row]:
        party = self.party(an8)
        rng = Draw(self.seed, an8, 1151)
        rows = []
        reach = self.reach(an8)
        lines: list[tuple[int, tuple[str, ...]]] = [(0, reach.company_emails)]
        lines += [(c.line, c.emails) for c in reach.contacts]
        for idln, emails in lines:
            for index, email in enumerate(emails, start=1):
                rows.append(
                    {
                        "AN8": an8,
                        "IDLN": idln,
                        "RCK7": index,
                        "ETP": pad("E", 4),
                        "EMAL": email,
                        "EHIER": 1 if index == 1 else 0,
                        "ECLASS": pad("WRK" if idln else "", 3),
                        **audit(rng, party.created, "P01111"),
                    }
                )
        if party.kind == "C" and rng.random() < 0.2:
            rows.insert(
                len(reach.company_emails),
                {
                    "AN8": an8,
                    "IDLN": 0,
                    "RCK7": len(reach.company_emails) + 1,
                    "ETP": pad("I", 4),
                    "EMAL": f"www.{party.domain}",
                    "EHIER": 0,
                    "ECLASS": pad("", 3),
                    **audit(rng, party.created, "P01111"),
                },
            )
        return sorted(rows, key=lambda r: (r["IDLN"], r["RCK7"]))

    def f4101(self, itm: int) -> list[Row]:
        rng = Draw(self.seed, itm, 4101)
        family = rng.choice(
            (
                ("BOLT", "Hex bolt", "Sechskantschraube"),
                ("VALVE", "Ball valve", "Válvula de bola"),
                ("CABLE", "Copper cable", "Câble cuivre"),
                ("GLOVE", "Nitrile gloves", "Gants nitrile"),
                ("PUMP", "Centrifugal pump", "Kreiselpumpe"),
                ("TAPE", "Packing tape", "Ruban adhésif"),
                ("LAMP", "LED panel", "Panneau LED"),
            )
        )
        size = rng.choice(("M6", "M8", "M10", "1/2in", "3/4in", "10m", "50m", "XL", "L", "60W"))
        description = f"{family[1]} {size}"
        if rng.random() < 0.05:
            description = f"{family[1]} {size} stainless, heavy duty, extra long"[:30]
        created = date(2014, 1, 1) + timedelta(days=rng.randrange(4000))
        stocking = rng.weighted(("S", "N", "O"), (85, 10, 5))
        return [
            {
                "ITM": itm,
                "LITM": f"{family[0]}-{size.replace('/', '').upper()}-{itm % 1000:03d}",
                "AITM": "" if rng.random() < 0.6 else f"{rng.randrange(10**11, 10**12)}",
                "DSC1": cut(description, 30),
                "DSC2": cut(family[2], 30),
                "SRTX": cut(fold_ascii(description).upper(), 30),
                "STKT": stocking,
                "GLPT": pad(rng.choice(("IN30", "IN40", "IN50")), 4),
                "UOM1": rng.choice(("EA", "BX", "CS", "PL", "KG", "FT")),
                "SRP1": pad(rng.choice(("HDW", "ELC", "SAF", "PKG")), 3),
                "PRP1": pad(rng.choice(("100", "200", "300")), 3),
                "LNTY": pad("S" if stocking != "N" else "N", 2),
                **audit(rng, created, "P4101"),
            }
        ]

    def _accounts(self) -> list[Row]:
        rng = Draw(self.seed, 901)
        rows: list[Row] = []
        aid = 100
        for unit in BUSINESS_UNITS:
            for account in accounts_of(unit):
                aid += 1 + rng.randrange(3)
                rows.append(
                    {
                        "AID": f"{aid:08d}",
                        "CO": unit.company,
                        "MCU": right_justify(unit.mcu),
                        "OBJ": account.obj.ljust(6),
                        "SUB": account.sub.ljust(8),
                        "DL01": account.description,
                        "PEC": account.posting_edit,
                        "LDA": account.level,
                        **audit(rng, date(2012, 1, 1), "P0901"),
                    }
                )
        return rows

    def _business_units(self) -> list[Row]:
        rng = Draw(self.seed, 6)
        return sorted(
            (
                {
                    "MCU": right_justify(unit.mcu),
                    "STYL": pad(unit.style, 2),
                    "LDM": "3",
                    "CO": unit.company,
                    "AN8": unit.address_number,
                    "DL01": unit.description,
                    **audit(rng, date(2012, 1, 1), "P0006"),
                }
                for unit in BUSINESS_UNITS
            ),
            key=lambda r: r["MCU"],
        )

    def account_for(self, company: str, business_unit: str, obj: str, sub: str = "") -> Row | None:
        return self._accounts_by_number.get((company, business_unit.strip(), obj.strip(), sub.strip()))

    # -- ledgers ---------------------------------------------------------------------------------

    def invoices_of(self, an8: int) -> list[tuple[Row, ...]]:
        """Each seeded invoice as its pay items (F03B11 rows), sorted by document number."""
        return self._invoices(an8)

    def _make_invoices(self, an8: int) -> list[tuple[Row, ...]]:
        party = self.party(an8)
        if party.kind != "C" or not party.invoices:
            return []
        company = party.companies[0]
        currency = party.culture.currency if company == party.culture.company else COMPANIES[company][0]
        unit = COMPANIES[company][1]
        ar_account = self.account_for(company, unit, "1210")
        invoices = []
        for j in range(party.invoices):
            rng = Draw(self.seed, an8, 311, j)
            invoice_date = date(2024, 1, 2) + timedelta(
                days=rng.randrange(650)
            )  # receipts stay before ANCHOR
            terms = rng.choice(tuple(PAYMENT_TERMS))
            due = invoice_date + timedelta(days=PAYMENT_TERMS[terms])
            status = rng.weighted(("P", "A", "partial"), (45, 45, 10))
            credit_memo = rng.random() < 0.03
            if self.open_items is not None:
                status, credit_memo = "A", False
            items = []
            for sfx in range(1, rng.choice((1, 1, 1, 2, 3)) + 1):
                gross = rng.randrange(5_000, 2_500_000)
                if currency == "JPY":
                    gross = gross // 100 * 100 * 100
                if credit_memo:
                    gross = -gross
                open_amount = 0 if status == "P" else gross if status == "A" else gross // 2
                items.append(
                    {
                        "DOC": an8 * 10 + j,
                        "DCT": "RM" if credit_memo else "RI",
                        "KCO": company,
                        "SFX": f"{sfx:03d}",
                        "AN8": an8,
                        "PYR": an8,
                        "DIVJ": to_julian(invoice_date),
                        "DGJ": to_julian(invoice_date),
                        "DDJ": to_julian(due),
                        "FY": invoice_date.year % 100,
                        "PN": invoice_date.month,
                        "CO": company,
                        "ICU": 100_000 + an8 % 50_000,
                        "ICUT": "IB",
                        "DICJ": to_julian(invoice_date),
                        "POST": "D",
                        "PST": "P" if open_amount == 0 else "A",
                        "AG": gross,
                        "AAP": open_amount,
                        "ATXA": 0,
                        "STAM": 0,
                        "CRRM": "D" if currency == COMPANIES[company][0] else "F",
                        "CRCD": currency,
                        "CRR": 0 if currency == COMPANIES[company][0] else 10_000_000,
                        "ACR": 0 if currency == COMPANIES[company][0] else gross,
                        "FAP": 0 if currency == COMPANIES[company][0] else open_amount,
                        "TXA1": pad(f"{party.culture.country}STD", 10),
                        "EXR1": pad("S", 2),
                        "RMK": "",
                        "VR01": "" if rng.random() < 0.5 else f"SO-{rng.randrange(10**6):06d}",
                        "PO": "" if rng.random() < 0.4 else f"{rng.randrange(10**7):07d}",
                        "MCU": right_justify(unit),
                        "PTC": pad(terms, 3),
                        "AID": ar_account["AID"] if ar_account else "",
                        **_NO_LINKS,
                        **audit(rng, invoice_date, "P03B11"),
                    }
                )
            if not credit_memo and self.billed_from_sales_order(an8, j):
                for item in items:  # raised by Sales Update from sales order DOCO SO
                    item.update(SDOC=SALES_ORDER_BASE + an8 * 10 + j, SDCT="SO", SKCO=company, PID="R42800")
            invoices.append(tuple(items))
        return invoices

    def billed_from_sales_order(self, an8: int, j: int) -> bool:
        return Draw(self.seed, an8, 42119, j).random() < 0.4

    def f03b11(self, group: int) -> list[Row]:
        rows = [dict(item) for invoice in self.invoices_of(group) for item in invoice]
        rows += [dict(document) for _, _, document in self.receipts_with_unapplied_cash(group)]
        return sorted(rows, key=lambda r: (r["DOC"], r["DCT"], r["KCO"], r["SFX"]))

    def f42119(self, an8: int) -> list[Row]:
        """Sales order history: the billed lines behind the invoices Sales Update raised."""
        rows: list[Row] = []
        for j, invoice in enumerate(self.invoices_of(an8)):
            first = invoice[0]
            if not first["SDOC"]:
                continue
            rng = Draw(self.seed, an8, 42119, j, 1)
            total = sum(item["AG"] for item in invoice)
            unit = 100 if first["CRCD"] == "JPY" else 1
            ordered = date(1900 + first["DIVJ"] // 1000, 1, 1) + timedelta(
                days=first["DIVJ"] % 1000 - 1 - rng.randrange(0, 12)
            )
            for line, amount in enumerate(split_amount(rng, total, rng.choice((1, 1, 2, 3, 4)), unit), 1):
                itm = self.item_numbers[rng.randrange(len(self.item_numbers))]
                item = self.f4101(itm)[0]
                quantity = rng.choice((1, 1, 2, 4, 5, 10, 20, 25, 50))  # all divide amount * 100
                rows.append(
                    {
                        "DOCO": first["SDOC"],
                        "DCTO": "SO",
                        "KCOO": first["KCO"],
                        "LNID": line * 1000,
                        "MCU": first["MCU"],
                        "CO": first["CO"],
                        "AN8": an8,
                        "SHAN": an8,
                        "TRDJ": to_julian(ordered),
                        "IVD": first["DIVJ"],
                        "DGL": first["DGJ"],
                        "ITM": itm,
                        "LITM": item["LITM"],
                        "DSC1": item["DSC1"],
                        "LNTY": item["LNTY"],
                        "UOM": item["UOM1"],
                        "UORG": quantity,
                        "UPRC": amount * 100 // quantity,
                        "AEXP": amount,
                        "CRCD": first["CRCD"],
                        "LTTR": "620",
                        "NXTR": "999",
                        "DOC": first["DOC"],
                        "DCT": first["DCT"],
                        "KCO": first["KCO"],
                        "VR01": first["VR01"],
                        "USER": first["USER"],
                        "PID": "R42800",
                        "JOBN": first["JOBN"],
                        "UPMJ": first["UPMJ"],
                        "TDAY": first["UPMT"],
                    }
                )
        return rows

    def receipts_of(self, an8: int) -> list[tuple[Row, list[Row]]]:
        """Seeded receipts (F03B13 header, F03B14 lines): one per invoice that is (partly) paid."""
        receipts = []
        for invoice in self.invoices_of(an8):
            paid = [item for item in invoice if item["AAP"] != item["AG"] and item["DCT"] == "RI"]
            if not paid:
                continue
            first = invoice[0]
            rng = Draw(self.seed, first["DOC"], 313)
            pyid = first["DOC"]
            receipt_date = to_julian(
                date(1900 + first["DIVJ"] // 1000, 1, 1)
                + timedelta(days=first["DIVJ"] % 1000 - 1 + rng.randrange(3, 40))
            )
            amount = sum(item["AG"] - item["AAP"] for item in paid)
            company = first["KCO"]
            bank = self.account_for(company, COMPANIES[company][1], "1110")
            header = {
                "PYID": pyid,
                "CKNU": f"CHK{rng.randrange(10**6):06d}",
                "AN8": an8,
                "PYR": an8,
                "DMTJ": receipt_date,
                "DGJ": receipt_date,
                "ICU": 200_000 + an8 % 50_000,
                "ICUT": "RB",
                "CKAM": amount,
                "AAP": 0,
                "CRRM": first["CRRM"],
                "CRCD": first["CRCD"],
                "FCAM": amount if first["CRRM"] == "F" else 0,
                "FAP": 0,
                "GLBA": bank["AID"] if bank else "",
                "CO": company,
                "TYIN": "A",
                "RMK": "",
                "POST": "D",
                "VDGJ": 0,
                "VRE": "   ",
                "NFVD": " ",
                **audit(rng, date(2024, 1, 2), "P03B102"),
            }
            header["UPMJ"] = max(header["UPMJ"], receipt_date)
            lines = [
                {
                    "PYID": pyid,
                    "RC5": index,
                    "CKNU": header["CKNU"],
                    "DOC": item["DOC"],
                    "DCT": item["DCT"],
                    "KCO": item["KCO"],
                    "SFX": item["SFX"],
                    "AN8": an8,
                    "PYR": an8,
                    "DGJ": receipt_date,
                    "ICU": header["ICU"],
                    "PAAP": item["AG"] - item["AAP"],
                    "ADSA": 0,
                    "AWAT": 0,
                    "RSCO": "  ",
                    "CRCD": item["CRCD"],
                    "DCTM": "RC",
                    "RMK": "",
                    "POST": "D",
                    "VDGJ": 0,
                    "VRE": "   ",
                    "NFVD": " ",
                    "USER": header["USER"],
                    "PID": "P03B102",
                    "UPMJ": header["UPMJ"],
                    "JOBN": header["JOBN"],
                    "UPMT": header["UPMT"],
                }
                for index, item in enumerate(paid, start=1)
            ]
            self._leave_unapplied_cash(header, lines, first)
            receipts.append((header, lines))
        return receipts

    def _leave_unapplied_cash(self, header: Row, lines: list[Row], invoice: Row) -> None:
        """Some customers paid more than the invoice: the rest stays on the receipt (F03B13.AAP)
        and as an RU document with a negative open amount in F03B11 (DOC = invoice DOC + 5)."""
        rng = Draw(self.seed, header["PYID"], 1290)
        if rng.random() >= 0.08:
            return
        extra = rng.randrange(100, 50_000)
        if header["CRCD"] == "JPY":
            extra = max(100, extra // 100 * 100)
        header["CKAM"] += extra
        header["AAP"] = extra
        if header["CRRM"] == "F":
            header["FCAM"] += extra
            header["FAP"] = extra
        lines.append(
            {
                **lines[-1],
                "RC5": len(lines) + 1,
                "DOC": invoice["DOC"] + 5,
                "DCT": "RU",
                "SFX": "001",
                "PAAP": extra,
                "DCTM": "RU",
            }
        )

    def receipts_with_unapplied_cash(self, an8: int) -> list[tuple[Row, Row, Row]]:
        """(receipt header, its RU line, the RU document in F03B11) for the receipts that left cash
        unapplied."""
        result = []
        for header, lines in self.receipts_of(an8):
            if not header["AAP"]:
                continue
            line = lines[-1]
            company = header["CO"]
            unapplied = self.account_for(company, COMPANIES[company][1], "1290")
            day = header["DMTJ"]
            foreign = header["CRRM"] == "F"
            document = {
                "DOC": line["DOC"], "DCT": "RU", "KCO": company, "SFX": "001", "AN8": an8, "PYR": an8,
                "DIVJ": day, "DGJ": header["DGJ"], "DDJ": day, "FY": (day // 1000) % 100,
                "PN": (date(1900 + day // 1000, 1, 1) + timedelta(days=day % 1000 - 1)).month,
                "CO": company, "ICU": header["ICU"], "ICUT": "RB", "DICJ": day, "POST": "D", "PST": "A",
                "AG": -header["AAP"], "AAP": -header["AAP"], "ATXA": 0, "STAM": 0, "CRRM": header["CRRM"],
                "CRCD": header["CRCD"], "CRR": 10_000_000 if foreign else 0,
                "ACR": -header["AAP"] if foreign else 0, "FAP": -header["AAP"] if foreign else 0,
                "TXA1": pad("", 10), "EXR1": "  ", "RMK": "", "VR01": "", "PO": "",
                "MCU": right_justify(COMPANIES[company][1]), "PTC": "   ",
                "AID": unapplied["AID"] if unapplied else "", **_NO_LINKS, "PYID": header["PYID"],
                "USER": header["USER"], "PID": "P03B102", "UPMJ": header["UPMJ"], "JOBN": header["JOBN"],
                "UPMT": header["UPMT"],
            }  # fmt: skip
            result.append((header, line, document))
        return result

    def f03b13(self, group: int) -> list[Row]:
        return [header for header, _ in self.receipts_of(group)]

    def f03b14(self, group: int) -> list[Row]:
        return [line for _, lines in self.receipts_of(group) for line in lines]

    def f0911(self, group: tuple[str, str, int]) -> list[Row]:
        company, document_type, an8 = group
        if document_type == "PV":
            return self._voucher_gl(an8)
        if self.kind_of(an8) != "C" or self.customer_company(an8) != company:
            return []
        rows: list[Row] = []
        unit = COMPANIES[company][1]
        if document_type in ("RI", "RM"):
            revenue = self.account_for(company, unit, "4110")
            receivable = self.account_for(company, unit, "1210")
            for invoice in self.invoices_of(an8):
                if invoice[0]["DCT"] != document_type:
                    continue
                total = sum(item["AG"] for item in invoice)
                first = invoice[0]
                for line, (account, amount) in enumerate(((revenue, -total), (receivable, total)), start=1):
                    rows.append(
                        self._gl_line(
                            first, first["DOC"], document_type, line, account=account, amount=amount
                        )
                    )
        else:
            bank = self.account_for(company, unit, "1110")
            receivable = self.account_for(company, unit, "1210")
            unapplied = self.account_for(company, unit, "1290")
            for header, _lines in self.receipts_of(an8):
                amount, rest = header["CKAM"], header["AAP"]
                entries = [(bank, amount), (receivable, rest - amount)] + (
                    [(unapplied, -rest)] if rest else []
                )
                for line, (account, signed) in enumerate(entries, start=1):
                    rows.append(
                        self._gl_line(header, header["PYID"], "RC", line, account=account, amount=signed)
                    )
        return rows

    @staticmethod
    def _gl_line(
        source: Row, doc: int, document_type: str, line: int, *, account: Row | None, amount: int
    ) -> Row:
        account = account or {"AID": "", "MCU": "", "OBJ": "", "SUB": "", "CO": source.get("CO", "")}
        return {
            "KCO": source.get("KCO", source.get("CO")),
            "DCT": document_type,
            "DOC": doc,
            "DGJ": source["DGJ"],
            "JELN": line * 10,
            "LT": "AA",
            "EXTL": "  ",
            "ICU": source["ICU"],
            "ICUT": source["ICUT"],
            "CO": account["CO"],
            "AID": account["AID"],
            "MCU": account["MCU"],
            "OBJ": account["OBJ"],
            "SUB": account["SUB"],
            "ANI": f"{account['MCU'].strip()}.{account['OBJ'].strip()}"
            + (f".{account['SUB'].strip()}" if account["SUB"].strip() else ""),
            "AA": amount,
            "CRCD": source["CRCD"],
            "EXA": "",
            "EXR": "",
            "POST": "P",
            "AN8": source["AN8"],
            "USER": source["USER"],
            "PID": source["PID"],
            "UPMJ": source["UPMJ"],
            "JOBN": source["JOBN"],
            "UPMT": source["UPMT"],
        }

    def gl_groups(self) -> list[tuple[str, str, int]]:
        groups = [
            (self.customer_company(an8), document_type, an8)
            for an8 in self.address_numbers
            if self.kind_of(an8) == "C"
            for document_type in ("RC", "RI", "RM")
        ]
        groups += [
            (self.supplier_company(an8), "PV", an8)
            for an8 in self.address_numbers
            if self.kind_of(an8) == "V"
        ]
        groups.sort()
        return groups

    # -- payables -------------------------------------------------------------------------------

    def supplier_company(self, an8: int) -> str:
        """Which company a supplier bills: a quarter of them the European one."""
        return "00200" if mix(self.seed, an8, 410) % 4 == 0 else "00001"

    def vouchers_of(self, an8: int) -> list[Row]:
        """A supplier's vouchers (F0411, one pay item each), paid or open."""
        if self.kind_of(an8) != "V":
            return []
        rng = Draw(self.seed, an8, 411)
        company = self.supplier_company(an8)
        currency, unit = COMPANIES[company]
        vouchers = []
        for j in range(rng.weighted((0, 1, 2, 3), (30, 30, 25, 15))):
            invoice_date = date(2024, 1, 2) + timedelta(days=rng.randrange(650))
            gross = rng.randrange(10_000, 5_000_000)
            paid = rng.random() < 0.6
            supplier_invoice = rng.choice(("INV-{n:06d}", "{n}", "A/{n:05d}", "RE{n:07d}")).format(
                n=rng.randrange(10**5)
            )
            vouchers.append(
                {
                    "DOC": an8 * 10 + j, "DCT": "PV", "KCO": company, "SFX": "001", "SFXE": 0, "AN8": an8,
                    "PYE": an8, "DIVJ": to_julian(invoice_date), "DGJ": to_julian(invoice_date),
                    "DDJ": to_julian(invoice_date + timedelta(days=30)), "FY": invoice_date.year % 100,
                    "PN": invoice_date.month, "CO": company, "ICU": 300_000 + an8 % 50_000, "ICUT": "V",
                    "DICJ": to_julian(invoice_date), "POST": "D", "PST": "P" if paid else "A", "AG": gross,
                    "AAP": 0 if paid else gross, "ATXA": 0, "STAM": 0, "CRRM": "D", "CRCD": currency,
                    "CRR": 0, "ACR": 0, "FAP": 0, "GLC": pad("", 4), "MCU": right_justify(unit),
                    "PTC": pad("N30", 3), "VINV": supplier_invoice, "VR01": "", "RMK": "", "VOD": " ",
                    **audit(rng, invoice_date, "P0411"),
                }
            )  # fmt: skip
        return vouchers

    def f0411(self, group: int) -> list[Row]:
        return [dict(voucher) for voucher in self.vouchers_of(group)]

    def _voucher_gl(self, an8: int) -> list[Row]:
        rows = []
        for voucher in self.vouchers_of(an8):
            company = voucher["KCO"]
            unit = COMPANIES[company][1]
            obj = ("6110", "6120", "6210", "6310", "6410", "6510", "6610")[voucher["DOC"] % 7]
            expense, payable = self.account_for(company, unit, obj), self.account_for(company, unit, "2110")
            total = voucher["AG"]
            for line, (account, amount) in enumerate(((expense, total), (payable, -total)), start=1):
                rows.append(
                    self._gl_line(voucher, voucher["DOC"], "PV", line, account=account, amount=amount)
                )
        return rows

    # -- prices ---------------------------------------------------------------------------------

    def f4106(self, itm: int) -> list[Row]:
        """Base prices of an item, as P4106 keeps them: effective-dated rows per currency and unit of
        measure, for all branches (MCU blank) or one branch; an older row expires the day before
        the next one takes effect."""
        item = self.f4101(itm)[0]
        rng = Draw(self.seed, itm, 4106)
        effective = date(2015, 1, 1) + timedelta(days=rng.randrange(3800))
        # fasteners by the piece carry all 4 decimals; most prices are whole cents
        price = rng.randrange(100, 100_000) if rng.random() < 0.1 else rng.randrange(50, 500_000) * 100
        rows: list[Row] = []

        def add(start: date, end: date, amount: int, currency: str = "USD", **extra: Any) -> None:
            row = {
                "ITM": itm, "LITM": item["LITM"], "AITM": item["AITM"], "MCU": right_justify(""),
                "LOCN": "", "LOTN": "", "AN8": 0, "IGID": 0, "CGID": 0, "LOTG": "   ", "FRMP": 0,
                "CRCD": currency, "UOM": item["UOM1"], "EFTJ": to_julian(start), "EXDJ": to_julian(end),
                "UPRC": amount, **audit_time_of_day(rng, min(start, ANCHOR), "P4106"),
            }  # fmt: skip
            row.update(extra)
            rows.append(row)

        until = OPEN_ENDED
        if rng.random() < 0.06:  # a price rise entered ahead of time
            rise = date(2026, 7, 1) + timedelta(days=rng.randrange(300))
            add(rise, OPEN_ENDED, price * 21 // 20 // 100 * 100)
            until = rise - timedelta(days=1)
        add(effective, until, price)
        if rng.random() < 0.35:  # the price it replaced
            add(
                effective - timedelta(days=rng.randrange(200, 1500)),
                effective - timedelta(days=1),
                price * 9 // 10,
            )
        if rng.random() < 0.25:
            add(effective, OPEN_ENDED, price * 92 // 100 // 100 * 100, "EUR")
        if rng.random() < 0.08:
            add(effective, OPEN_ENDED, price * 137 // 100 // 100 * 100, "CAD")
        if rng.random() < 0.05:
            add(effective, OPEN_ENDED, max(1, price * 150 // 10_000) * 10_000, "JPY")  # whole yen
        if rng.random() < 0.1:  # Chicago charges more
            add(effective, OPEN_ENDED, price * 11 // 10, MCU=right_justify("M40"))
        if rng.random() < 0.08:  # and a price per case of 12
            add(effective, OPEN_ENDED, price * 12, UOM="CS" if item["UOM1"] != "CS" else "PL")
        key = TABLES["F4106"].primary_key
        return sorted(
            rows, key=lambda r: tuple(r[c].rstrip() if isinstance(r[c], str) else r[c] for c in key)
        )
