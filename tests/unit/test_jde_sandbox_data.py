"""The AIS sandbox's seeded data and query engine, exercised in-process (no HTTP)."""

from __future__ import annotations

import itertools
import re
from collections import Counter
from datetime import date
from typing import Any

import pytest

from airflow_provider_mlconn.sandbox.jde.seed import Dataset
from airflow_provider_mlconn.sandbox.jde.store import QueryContext, QueryError, Store, compile_query, select

pytestmark = pytest.mark.unit
CONTEXT = QueryContext("MM/dd/yyyy", "JDE", date(2026, 1, 15))


@pytest.fixture(scope="module")
def store() -> Store:
    return Store(Dataset(customers=2000, seed=7))


def rows(store: Store, table: str, query: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    virtual = store.table(table)
    return list(select(virtual, compile_query(virtual.schema, query, CONTEXT)))


def cond(control_id: str, operator: str, *contents: str) -> dict[str, Any]:
    return {"controlId": control_id, "operator": operator, "value": [{"content": c} for c in contents]}


def test_the_same_seed_gives_the_same_rows_and_another_seed_other_rows() -> None:
    first, again, other = (Store(Dataset(customers=200, seed=s)) for s in (1, 1, 2))
    assert rows(first, "F0111") == rows(again, "F0111")
    assert rows(first, "F0101") != rows(other, "F0101")


def test_customers_n_yields_exactly_n_customers_among_suppliers_and_employees() -> None:
    dataset = Dataset(customers=100_000, seed=1)
    kinds = Counter(dataset.kind_of(an8) for an8 in dataset.address_numbers)
    assert kinds["C"] == 100_000
    assert kinds["V"] > 0 and kinds["E"] > 0 and kinds["O"] == 2
    assert dataset.address_numbers == sorted(dataset.address_numbers)


def test_the_data_carries_the_mess_real_jde_data_has(store: Store) -> None:
    book = rows(store, "F0101", {"condition": [cond("F0101.AT1", "EQUAL", "C")]})
    names = [r["ALPH"] for r in book]
    assert any(re.search(r"[\u0370-\u03ff\u0400-\u04ff\u3040-\u30ff\u4e00-\u9fff]", n) for n in names)
    assert any(re.search(r"[éüöñçłø]", n) for n in names)
    assert any(len(n) == 40 for n in names), "names cut at the 40 characters of ALPH"
    assert any(n != n.rstrip() for n in names), "names typed with trailing blanks"
    assert all(r["AT1"] == "C  " for r in book), "codes come back blank-padded"
    assert all(r["MCU"].startswith(" ") for r in book), "business units are right-justified"
    assert any(r["AC30"] == "INA" for r in book), "inactive customers"
    emails = [r["EMAL"] for r in rows(store, "F01151") if r["IDLN"] > 0]
    assert any("@" not in e or e.count("@") > 1 or e.endswith("@") for e in emails), "invalid e-mails"
    per_customer = Counter((r["AN8"], r["EMAL"]) for r in rows(store, "F01151") if r["IDLN"] > 0)
    assert any(n > 1 for n in per_customer.values()), "one e-mail on two contacts of a customer"
    contacts = {(r["AN8"], r["IDLN"]) for r in rows(store, "F0111") if r["IDLN"] > 0}
    with_email = {(r["AN8"], r["IDLN"]) for r in rows(store, "F01151")}
    assert contacts - with_email, "contacts without an e-mail"
    addresses = Counter(r["AN8"] for r in rows(store, "F0116"))
    assert any(n > 1 for n in addresses.values()), "effective-dated address history"
    assert any(r["CRCD"] == "JPY" for r in rows(store, "F03012"))


def test_every_table_comes_out_in_primary_key_order_without_duplicates(store: Store) -> None:
    for name, virtual in store.tables.items():
        keys = [tuple(r[c] for c in virtual.schema.primary_key) for r in rows(store, name)]
        assert keys, name
        assert len(set(keys)) == len(keys), name
        normalised = [tuple(v.rstrip() if isinstance(v, str) else v for v in k) for k in keys]
        assert normalised == sorted(normalised), name


def test_string_equality_ignores_blank_padding_and_between_is_inclusive(store: Store) -> None:
    customers = rows(store, "F0101", {"condition": [cond("F0101.AT1", "LIST", "C", "V")]})
    assert {r["AT1"] for r in customers} == {"C  ", "V  "}
    first, last = customers[0]["AN8"], customers[5]["AN8"]
    ranged = rows(store, "F0101", {"condition": [cond("F0101.AN8", "BETWEEN", str(first), str(last))]})
    assert ranged[0]["AN8"] == first and ranged[-1]["AN8"] == last


def test_match_any_and_complex_queries_fold_left_to_right(store: Store) -> None:
    query = {
        "matchType": "MATCH_ALL",
        "condition": [cond("F0101.AT1", "EQUAL", "C")],
        "complexQuery": [
            {
                "andOr": "AND",
                "query": {
                    "matchType": "MATCH_ANY",
                    "condition": [cond("F0101.AN8", "EQUAL", "10001"), cond("F0101.AN8", "EQUAL", "10017")],
                },
            }
        ],
    }
    # 10017 is a supplier (slot 17 of its block): only the customer remains
    assert [r["AN8"] for r in rows(store, "F0101", query)] == [10001]


def test_dates_in_conditions_must_use_the_users_format(store: Store) -> None:
    recent = rows(store, "F0101", {"condition": [cond("F0101.UPMJ", "GREATER_EQUAL", "06/01/2025")]})
    assert recent and all(r["UPMJ"] >= 125152 for r in recent)
    virtual = store.table("F0101")
    with pytest.raises(QueryError, match=r"user's format MM/dd/yyyy"):
        compile_query(virtual.schema, {"condition": [cond("F0101.UPMJ", "EQUAL", "2025-06-01")]}, CONTEXT)


def test_a_list_over_address_numbers_reads_only_those_groups(store: Store) -> None:
    virtual = store.table("F0111")
    generated: list[int] = []
    original = virtual.generate

    def counting(group: int) -> list[dict[str, Any]]:
        generated.append(group)
        return original(group)

    virtual.generate = counting
    try:
        found = rows(store, "F0111", {"condition": [cond("F0111.AN8", "LIST", "10002", "10005", "99999999")]})
    finally:
        virtual.generate = original
    assert {r["AN8"] for r in found} == {10002, 10005}
    assert sorted(generated) == [10002, 10005]


def test_unknown_columns_and_operators_are_refused_with_the_name(store: Store) -> None:
    schema = store.table("F0101").schema
    with pytest.raises(QueryError, match=r"F0101\.NOPE"):
        compile_query(schema, {"condition": [cond("F0101.NOPE", "EQUAL", "x")]}, CONTEXT)
    with pytest.raises(QueryError, match="LIKE"):
        compile_query(schema, {"condition": [cond("F0101.AN8", "LIKE", "x")]}, CONTEXT)
    with pytest.raises(QueryError, match="string columns"):
        compile_query(schema, {"condition": [cond("F0101.AN8", "STR_START_WITH", "1")]}, CONTEXT)


def test_no_generated_row_is_stamped_after_the_anchor_so_change_polls_read_only_edits() -> None:
    store = Store(Dataset(customers=300, seed=3))
    for name in store.tables:
        assert max(r["UPMJ"] for r in rows(store, name)) <= store.seeded_until, name
    virtual = store.table("F0111")
    edited = [dict(r) for r in virtual.rows_of(10004)]
    edited[0]["UPMJ"] = 126005  # 2026-01-05
    virtual.replace_group(10004, edited)
    after = f"{date(2026, 1, 1):%m/%d/%Y}"
    query = compile_query(
        virtual.schema, {"condition": [cond("F0111.UPMJ", "GREATER_EQUAL", after)]}, CONTEXT
    )
    assert [(r["AN8"], r["IDLN"]) for r in store.select(virtual, query)] == [(10004, 0)]


def test_every_account_key_mcu_obj_sub_is_unique_and_its_business_unit_exists(store: Store) -> None:
    accounts = rows(store, "F0901")
    keys = Counter((r["MCU"], r["OBJ"].rstrip(), r["SUB"].rstrip()) for r in accounts)
    assert [key for key, n in keys.items() if n > 1] == []
    units = {r["MCU"]: r for r in rows(store, "F0006")}
    assert all(units[r["MCU"]]["CO"] == r["CO"] for r in accounts), "an account's BU belongs to its company"
    assert all(set(u) >= {"MCU", "DL01", "CO", "STYL"} for u in units.values())


def test_both_companies_carry_a_revenue_range_with_subsidiaries_headers_and_inactive_accounts(
    store: Store,
) -> None:
    revenue = [r for r in rows(store, "F0901") if "4000" <= r["OBJ"].rstrip() <= "4999"]
    for company in ("00001", "00200"):
        mine = [r for r in revenue if r["CO"] == company]
        assert any(r["SUB"].strip() for r in mine), company
        assert any(r["PEC"] == "N" for r in mine), company
        assert any(r["PEC"] == "I" for r in mine), company
        assert any(r["PEC"] == " " and not r["SUB"].strip() for r in mine), company
    assert len({r["MCU"] for r in revenue if r["CO"] == "00001"}) >= 3, "revenue in each branch"


def test_every_item_has_a_base_price_some_expired_some_per_currency_branch_or_future(store: Store) -> None:
    prices = rows(store, "F4106")
    items = {r["ITM"] for r in rows(store, "F4101")}
    assert {r["ITM"] for r in prices} == items
    today = 126334  # 2026-11-30
    assert all(r["EFTJ"] <= r["EXDJ"] for r in prices)
    assert any(r["EXDJ"] < today for r in prices), "an expired older row"
    assert any(r["EFTJ"] > today for r in prices), "a price rise entered ahead of time"
    assert {"USD", "EUR", "CAD"} <= {r["CRCD"] for r in prices}
    assert any(r["MCU"].strip() for r in prices) and any(not r["MCU"].strip() for r in prices)
    assert any(r["UPRC"] % 100 for r in prices), "prices carry 4 implied decimals"
    assert all(r["AN8"] == 0 and "TDAY" in r and "UPMT" not in r for r in prices)
    usd = [r for r in prices if r["CRCD"] == "USD" and not r["MCU"].strip()]
    for itm in items:  # one all-branches USD price in effect per unit of measure, any day
        mine = [r for r in usd if r["ITM"] == itm]
        for unit in {r["UOM"] for r in mine}:
            periods = sorted((r["EFTJ"], r["EXDJ"]) for r in mine if r["UOM"] == unit)
            assert all(a[1] < b[0] for a, b in itertools.pairwise(periods)), itm


def test_a_share_of_invoices_is_billed_from_sales_orders_whose_lines_sum_to_the_invoice(store: Store) -> None:
    invoices = [r for r in rows(store, "F03B11") if r["DCT"] == "RI"]
    billed = {r["DOC"]: r for r in invoices if r["SDOC"]}
    assert 0.25 < len(billed) / len({r["DOC"] for r in invoices}) < 0.55
    lines = rows(store, "F42119")
    assert all(r["DCTO"] == "SO" and r["DCT"] == "RI" and r["PID"] == "R42800" for r in lines)
    totals: Counter[int] = Counter()
    for line in lines:
        assert line["UORG"] * line["UPRC"] == line["AEXP"] * 100, "extended = quantity x price"
        assert billed[line["DOC"]]["SDOC"] == line["DOCO"] and line["AN8"] == billed[line["DOC"]]["AN8"]
        totals[line["DOC"]] += line["AEXP"]
    gross = Counter[int]()
    for row in invoices:
        gross[row["DOC"]] += row["AG"]
    assert set(totals) == set(billed) and all(totals[doc] == gross[doc] for doc in totals)


def test_some_receipts_leave_unapplied_cash_as_an_ru_document(store: Store) -> None:
    documents = [r for r in rows(store, "F03B11") if r["DCT"] == "RU"]
    assert documents
    headers = {r["PYID"]: r for r in rows(store, "F03B13")}
    lines = rows(store, "F03B14")
    for document in documents:
        header = headers[document["PYID"]]
        assert document["AAP"] == document["AG"] == -header["AAP"] < 0
        (line,) = [r for r in lines if r["PYID"] == header["PYID"] and r["DCT"] == "RU"]
        assert line["DOC"] == document["DOC"] and line["PAAP"] == header["AAP"] and line["DCTM"] == "RU"
        assert sum(r["PAAP"] for r in lines if r["PYID"] == header["PYID"]) == header["CKAM"]


def test_suppliers_have_vouchers_with_their_invoice_number_and_a_journal_entry(store: Store) -> None:
    vouchers = rows(store, "F0411")
    assert vouchers and all(r["DCT"] == "PV" and r["VINV"] for r in vouchers)
    assert {r["KCO"] for r in vouchers} == {"00001", "00200"}
    assert {r["PST"] for r in vouchers} == {"P", "A"}
    kinds = {r["AN8"] for r in rows(store, "F0101", {"condition": [cond("F0101.AT1", "EQUAL", "V")]})}
    assert {r["AN8"] for r in vouchers} <= kinds
    entries = rows(store, "F0911", {"condition": [cond("F0911.DCT", "EQUAL", "PV")]})
    assert {r["DOC"] for r in entries} == {r["DOC"] for r in vouchers}
    assert sum(r["AA"] for r in entries) == 0


def test_no_seeded_ledger_row_is_dated_after_the_anchor_so_date_polls_read_edited_groups_alone(
    store: Store,
) -> None:
    from airflow_provider_mlconn.sandbox.jde.calendar import to_julian
    from airflow_provider_mlconn.sandbox.jde.seed import ANCHOR

    anchor = to_julian(ANCHOR)
    for table in ("F03B11", "F03B13", "F03B14"):
        columns = store.table(table).seeded_dates
        assert "UPMJ" in columns and len(columns) > 1, table
        for row in rows(store, table):
            assert all(row[column] <= anchor for column in columns), (table, row)


def test_the_customer_and_document_indexes_answer_what_a_full_scan_answers() -> None:
    indexed = Store(Dataset(customers=300, seed=7))
    # a document entered later sits in a next-number group of its own
    new_item = {**rows(indexed, "F03B11")[0], "DOC": 90000007, "AN8": 10003}
    indexed.append("F03B11", 90000007 // 10, [new_item])
    receipts = rows(indexed, "F03B13")
    customers = [10003, *sorted({r["AN8"] for r in receipts})[3:6]]
    everything = rows(indexed, "F03B11")
    by_customer = rows(indexed, "F03B11", {"condition": [cond("F03B11.AN8", "LIST", *map(str, customers))]})
    assert by_customer == [r for r in everything if r["AN8"] in customers]
    assert any(r["DOC"] == 90000007 for r in by_customer) and len({r["AN8"] for r in by_customer}) >= 3
    paid_by = rows(indexed, "F03B13", {"condition": [cond("F03B13.AN8", "LIST", *map(str, customers))]})
    assert paid_by == [r for r in receipts if r["AN8"] in customers] and len(paid_by) >= 3
    lines = rows(indexed, "F03B14")
    paid = sorted({r["DOC"] for r in lines})[:5]
    applied = rows(indexed, "F03B14", {"condition": [cond("F03B14.DOC", "LIST", *map(str, paid))]})
    assert applied == [r for r in lines if r["DOC"] in paid] and len(applied) >= 5
    journal = rows(indexed, "F0911")
    documents = sorted({r["DOC"] for r in journal if r["DCT"] == "RI"})[:5]
    entries = rows(indexed, "F0911", {"condition": [cond("F0911.DOC", "LIST", *map(str, documents))]})
    assert entries == [r for r in journal if r["DOC"] in documents] and len(entries) >= 5


def test_open_items_gives_every_customer_exactly_that_many_open_invoices() -> None:
    ledger = rows(Store(Dataset(customers=60, seed=7, open_items=3)), "F03B11")
    documents: dict[int, set[int]] = {}
    for row in ledger:
        assert (row["DCT"], row["AAP"], row["PST"]) == ("RI", row["AG"], "A")
        documents.setdefault(row["AN8"], set()).add(row["DOC"])
    assert len(documents) == 60 and {len(docs) for docs in documents.values()} == {3}
