"""What a reconciliation found, and how it is shown: a finding per difference, a tally per entity,
the summary table of the task log and the counts of the asset event (no values: those are masked in
the log and kept whole, encrypted, in the store)."""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from decimal import Decimal, InvalidOperation
from enum import Enum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from airflow_provider_mlconn.sync.masking import mask_value

#: Flows the reconciliation compares (the names of their ``Flow``s).
RECONCILED_FLOWS = ("customers", "money", "ar_status", "gl_accounts", "items")
#: Findings named one by one in the task log; the rest are counted (all are in the stored report).
LOG_ROWS = 50


class Kind(str, Enum):
    """What kind of difference a finding is."""

    MISSING_IN_HUBSPOT = "missing_in_hubspot"
    MISSING_IN_JDE = "missing_in_jde"
    DUPLICATE = "duplicate"
    DRIFT = "drift"
    TOTAL = "total"


class Finding(BaseModel):
    """One difference between the systems, named by the JDE key of the record."""

    model_config = ConfigDict(frozen=True)

    flow: str
    entity: str
    key: str
    kind: Kind
    #: The field that differs (drift, totals); None for a record that is missing or doubled.
    field: str | None = None
    jde: str | None = None
    hubspot: str | None = None
    #: The HubSpot records concerned (two or more for a duplicate).
    hubspot_ids: tuple[str, ...] = ()
    note: str = ""
    #: What ``repair`` did or could not do with it (set when the report is saved).
    repair: str = ""

    def masked(self) -> dict[str, Any]:
        """The finding as a log may show it: personal values masked by their field's name."""
        field = self.field or ""
        return {
            **self.model_dump(mode="json"),
            "jde": mask_value(field, self.jde),
            "hubspot": mask_value(field, self.hubspot),
        }


class Tally(BaseModel):
    """One entity's counts: records on each side, matched, and differences by kind."""

    flow: str
    entity: str
    jde: int = 0
    hubspot: int = 0
    matched: int = 0
    #: Records the flow's mapping refuses (a run would not send them either): not differences.
    not_sent: int = 0
    differences: dict[str, int] = Field(default_factory=dict)

    def add(self, kind: Kind) -> None:
        self.differences[kind.value] = self.differences.get(kind.value, 0) + 1


class ReconcileReport(BaseModel):
    """The whole comparison of one ``mlconn_reconcile`` run."""

    run_key: str
    started_at: datetime
    finished_at: datetime | None = None
    flows: list[str]
    tallies: list[Tally] = Field(default_factory=list)
    findings: list[Finding] = Field(default_factory=list)
    #: ``{"requested": bool, "queued": {entity: n}, "not_repairable": n}``
    repair: dict[str, Any] = Field(default_factory=dict)
    #: API calls made by the comparison, per system.
    calls: dict[str, int] = Field(default_factory=dict)

    @property
    def differences(self) -> int:
        return len(self.findings)

    def counts(self) -> dict[str, dict[str, dict[str, int]]]:
        """``{flow: {entity: {kind: n}}}`` of every finding."""
        counted: Counter[tuple[str, str, str]] = Counter(
            (f.flow, f.entity, f.kind.value) for f in self.findings
        )
        out: dict[str, dict[str, dict[str, int]]] = {}
        for (flow, entity, kind), count in sorted(counted.items()):
            out.setdefault(flow, {}).setdefault(entity, {})[kind] = count
        return out

    def summary(self) -> dict[str, Any]:
        """The asset event's extra: counts only, nothing personal; ``differences`` 0 means in step."""
        return {
            "run_key": self.run_key,
            "differences": self.differences,
            "in_step": self.differences == 0,
            "flows": self.flows,
            "by_kind": dict(Counter(f.kind.value for f in self.findings)),
            "by_entity": self.counts(),
            "checked": {
                f"{t.flow}.{t.entity}": {"jde": t.jde, "hubspot": t.hubspot, "not_sent": t.not_sent}
                for t in self.tallies
            },
            "repair": self.repair,
        }


_COLUMNS = (
    "entity",
    "JDE",
    "HubSpot",
    "matched",
    "not sent",
    "missing HS",
    "missing JDE",
    "dupl.",
    "drift",
    "totals",
)


def render_text(report: ReconcileReport, *, rows: int = LOG_ROWS) -> str:
    """The summary table and the first ``rows`` findings, personal values masked."""
    table = [list(_COLUMNS)]
    for tally in report.tallies:
        d = tally.differences
        table.append(
            [
                f"{tally.flow}.{tally.entity}",
                str(tally.jde),
                str(tally.hubspot),
                str(tally.matched),
                str(tally.not_sent),
                *(str(d.get(kind.value, 0)) for kind in Kind),
            ]
        )
    widths = [max(len(line[i]) for line in table) for i in range(len(_COLUMNS))]
    lines = [
        f"reconciliation {report.run_key}: {report.differences} difference(s) "
        f"({', '.join(report.flows)}; API calls "
        + ", ".join(f"{system} {count}" for system, count in sorted(report.calls.items()))
        + ")"
    ]
    lines += [
        "   "
        + "  ".join(cell.rjust(widths[i]) if i else cell.ljust(widths[i]) for i, cell in enumerate(line))
        for line in table
    ]
    for finding in report.findings[:rows]:
        shown = finding.masked()
        text = f"   - {finding.kind.value:<18} {finding.flow}.{finding.entity} {finding.key}"
        if finding.field:
            text += f" {finding.field}: JDE {shown['jde']!r} vs HubSpot {shown['hubspot']!r}"
        if finding.hubspot_ids:
            text += f" (HubSpot {', '.join(finding.hubspot_ids)})"
        if finding.note:
            text += f"; {finding.note}"
        if finding.repair:
            text += f" [repair: {finding.repair}]"
        lines.append(text)
    if len(report.findings) > rows:
        lines.append(
            f"   ... and {len(report.findings) - rows} more: `mlconn reconcile report --json` lists them all"
        )
    if report.repair.get("requested"):
        queued = report.repair.get("queued", {})
        lines.append(
            "   repair: queued for the flows' next runs: "
            + (", ".join(f"{entity} {count}" for entity, count in sorted(queued.items())) or "nothing")
            + f"; not repairable by a run: {report.repair.get('not_repairable', 0)}"
        )
    return "\n".join(lines)


_PAGE_STYLE = (
    "body{font-family:system-ui,sans-serif;margin:2em;color:#1b1b1b}"
    "table{border-collapse:collapse;margin:1em 0}th,td{border:1px solid #ccc;padding:.3em .6em;"
    "text-align:left;vertical-align:top}th{background:#f3f3f3}td.n{text-align:right}"
    ".ok{color:#1a7f37}.diff{color:#b42318}"
)


def render_html(report: ReconcileReport) -> str:
    """The report as one self-contained HTML page: the summary table and every finding, personal
    values masked as in the log (``--json`` has them whole); every value escaped."""
    from html import escape

    def cell(value: Any, numeric: bool = False) -> str:
        return f'<td class="n">{escape(str(value))}</td>' if numeric else f"<td>{escape(str(value))}</td>"

    verdict = (
        '<p class="ok">In step: no difference.</p>'
        if not report.differences
        else f'<p class="diff">{report.differences} difference(s).</p>'
    )
    calls = ", ".join(f"{system} {count}" for system, count in sorted(report.calls.items()))
    rows = []
    for tally in report.tallies:
        d = tally.differences
        numbers = [
            tally.jde,
            tally.hubspot,
            tally.matched,
            tally.not_sent,
            *(d.get(k.value, 0) for k in Kind),
        ]
        rows.append(
            "<tr>" + cell(f"{tally.flow}.{tally.entity}") + "".join(cell(n, True) for n in numbers) + "</tr>"
        )
    findings = []
    for finding in report.findings:
        shown = finding.masked()
        findings.append(
            "<tr>"
            + cell(finding.kind.value)
            + cell(f"{finding.flow}.{finding.entity}")
            + cell(finding.key)
            + cell(finding.field or "")
            + cell("" if shown["jde"] is None else shown["jde"])
            + cell("" if shown["hubspot"] is None else shown["hubspot"])
            + cell(", ".join(finding.hubspot_ids))
            + cell(finding.note)
            + cell(finding.repair)
            + "</tr>"
        )
    header = "".join(f"<th>{escape(column)}</th>" for column in _COLUMNS)
    parts = [
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">',
        f"<title>Reconciliation {escape(report.run_key)}</title><style>{_PAGE_STYLE}</style></head><body>",
        "<h1>JD Edwards and HubSpot compared</h1>",
        f"<p>Run {escape(report.run_key)}, started {escape(report.started_at.isoformat())}; flows "
        f"{escape(', '.join(report.flows))}; API calls {escape(calls)}.</p>",
        verdict,
        f"<table><tr>{header}</tr>{''.join(rows)}</table>",
    ]
    if findings:
        parts.append(
            "<table><tr><th>kind</th><th>entity</th><th>JDE key</th><th>field</th><th>JDE</th>"
            "<th>HubSpot</th><th>HubSpot ids</th><th>note</th><th>repair</th></tr>"
            + "".join(findings)
            + "</table>"
        )
    parts.append(
        "<p>Names, e-mails and phones are masked; <code>mlconn reconcile report --json</code> shows "
        "every value.</p></body></html>\n"
    )
    return "".join(parts)


def day_text(value: Any) -> str:
    """A HubSpot date or datetime (ISO text or epoch milliseconds) as ``YYYY-MM-DD`` (its UTC day);
    text that is no date as it is; nothing as ""."""
    from airflow_provider_mlconn.mapping.invoices import hubspot_day

    try:
        day = hubspot_day(value)
    except ValueError:
        return str(value).strip()
    return "" if day is None else day.isoformat()


def normalized(value: Any) -> str:
    """A property value as compared: text without surrounding blanks, plain decimals by value
    (``"1000"`` and ``"1000.0"`` are one amount, docs/BEHAVIOR.md R2), nothing as ""."""
    if value is None:
        return ""
    text = str(value).strip()
    try:
        number = Decimal(text)
    except (InvalidOperation, ValueError):
        return text
    if not number.is_finite() or not _looks_numeric(text):
        return text
    return format(number.normalize(), "f") if number else "0"


def _looks_numeric(text: str) -> bool:
    # "00001" (a JDE company) and "1e5" are codes, not amounts: only plain decimals compare by value.
    body = text.lstrip("-")
    return (
        bool(body)
        and body.replace(".", "", 1).isdigit()
        and not (len(body) > 1 and body[0] == "0" and "." not in body)
    )
