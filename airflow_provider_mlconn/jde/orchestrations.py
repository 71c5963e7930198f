"""Typed inputs and outputs of the write orchestrations published on the AIS Server.

The orchestrations (``ORCH_55_*``) are ours: a JDE administrator publishes them with these Generic
(flat JSON) inputs; docs/BEHAVIOR.md (J-section) is their contract. Inputs validate shape and JDE field
lengths here, so a payload that cannot fit fails before it is sent; business rules (customer exists,
distribution balances, reference unique...) are JDE's to check and come back as ``JdeBusinessError``.
Amounts travel as decimal strings, dates in the user's date format.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from airflow_provider_mlconn.jde.dates import DEFAULT_DATE_FORMAT, format_query_date, parse_query_date

CREATE_CUSTOMER_INVOICE = "ORCH_55_CreateCustomerInvoice"
CREATE_CREDIT_MEMO = "ORCH_55_CreateCreditMemo"
CREATE_VOUCHER = "ORCH_55_CreateVoucher"
CREATE_RECEIPT = "ORCH_55_CreateReceipt"
VOID_RECEIPT = "ORCH_55_VoidReceipt"
UPSERT_ITEM = "ORCH_55_UpsertItem"

# JDE error codes the orchestrations publish for "this record is already there".
DUPLICATE_INVOICE_REFERENCE = "5502"
DUPLICATE_RECEIPT_NUMBER = "5512"
DUPLICATE_CREDIT_MEMO_REFERENCE = "5530"
DUPLICATE_SUPPLIER_INVOICE = "5540"
RECEIPT_ALREADY_VOIDED = "5551"
DUPLICATE_CODES = frozenset(
    {
        DUPLICATE_INVOICE_REFERENCE,
        DUPLICATE_RECEIPT_NUMBER,
        DUPLICATE_CREDIT_MEMO_REFERENCE,
        DUPLICATE_SUPPLIER_INVOICE,
    }
)


def _amount(value: Decimal) -> str:
    return format(value, "f")


def _date(value: date | None, date_format: str) -> str | None:
    return None if value is None else format_query_date(value, date_format)


class _Input(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)


class InvoicePayItem(_Input):
    """One pay item (F03B11 row, SFX 001, 002...)."""

    gross_amount: Decimal
    tax_amount: Decimal | None = None
    due_date: date | None = None
    remark: str | None = Field(None, max_length=30)


class GlDistributionLine(_Input):
    """One G/L distribution line (F0911): ``account`` as ``BU.Object`` or ``BU.Object.Subsidiary``,
    ``amount`` positive for revenue (JDE stores it as a credit, negative AA)."""

    account: str = Field(min_length=3, max_length=29)
    amount: Decimal
    remark: str | None = Field(None, max_length=30)


class CustomerInvoiceInput(_Input):
    """A standard A/R invoice (document type RI). ``external_reference`` (F03B11.VR01) identifies the
    source invoice (the HubSpot invoice number) and must be unique per company: posting it twice is
    refused with error 5502."""

    customer_number: int = Field(gt=0)
    company: str = Field("00001", min_length=1, max_length=5)
    external_reference: str = Field(min_length=1, max_length=25)
    invoice_date: date
    gl_date: date | None = None
    due_date: date | None = None
    currency: str | None = Field(None, min_length=3, max_length=3)
    purchase_order: str | None = Field(None, max_length=8)
    remark: str | None = Field(None, max_length=30)
    pay_items: list[InvoicePayItem] = Field(min_length=1, max_length=999)
    gl_distribution: list[GlDistributionLine] = Field(min_length=1)

    def to_inputs(self, date_format: str = DEFAULT_DATE_FORMAT) -> dict[str, Any]:
        inputs: dict[str, Any] = {
            "CustomerNumber": str(self.customer_number),
            "Company": self.company,
            "ExternalReference": self.external_reference,
            "InvoiceDate": _date(self.invoice_date, date_format),
            "GLDate": _date(self.gl_date, date_format),
            "DueDate": _date(self.due_date, date_format),
            "CurrencyCode": self.currency,
            "PurchaseOrder": self.purchase_order,
            "Remark": self.remark,
            "PayItems": [
                {
                    "GrossAmount": _amount(item.gross_amount),
                    "TaxAmount": None if item.tax_amount is None else _amount(item.tax_amount),
                    "DueDate": _date(item.due_date, date_format),
                    "Remark": item.remark,
                }
                for item in self.pay_items
            ],
            "GLDistribution": [
                {"Account": line.account, "Amount": _amount(line.amount), "Remark": line.remark}
                for line in self.gl_distribution
            ],
        }
        return _drop_none(inputs)

    def record(self) -> str:
        return (
            f"invoice {self.external_reference} of customer {self.customer_number} (company {self.company})"
        )


class CustomerInvoiceResult(BaseModel):
    """The invoice's key (DOC, DCT, KCO) and totals. ``created`` is False when the reference was
    already posted and this describes the existing invoice."""

    model_config = ConfigDict(frozen=True)

    document_number: int
    document_type: str
    document_company: str
    external_reference: str
    gross_amount: Decimal
    pay_item_count: int
    batch_number: int | None = None
    due_date: date | None = None
    created: bool = True

    @classmethod
    def from_outputs(
        cls, outputs: dict[str, Any], date_format: str = DEFAULT_DATE_FORMAT
    ) -> CustomerInvoiceResult:
        due = outputs.get("DueDate")
        return cls(
            document_number=int(outputs["DocumentNumber"]),
            document_type=str(outputs["DocumentType"]),
            document_company=str(outputs["DocumentCompany"]),
            external_reference=str(outputs["ExternalReference"]),
            gross_amount=Decimal(str(outputs["GrossAmount"])),
            pay_item_count=int(outputs["PayItemCount"]),
            batch_number=int(outputs["BatchNumber"]) if outputs.get("BatchNumber") else None,
            due_date=parse_query_date(str(due), date_format) if due else None,
        )


class OriginalDocument(_Input):
    """The document a credit memo credits (F03B11 DOC/DCT/KCO)."""

    document_number: int = Field(gt=0)
    document_type: str = Field("RI", min_length=2, max_length=2)
    document_company: str = Field(min_length=1, max_length=5)


class CreditMemoInput(_Input):
    """A credit memo (document type RM): amounts entered positive, stored negative by JDE."""

    customer_number: int = Field(gt=0)
    company: str = Field(min_length=1, max_length=5)
    external_reference: str = Field(min_length=1, max_length=25)
    memo_date: date
    gl_date: date | None = None
    currency: str | None = Field(None, min_length=3, max_length=3)
    remark: str | None = Field(None, max_length=30)
    original: OriginalDocument | None = None
    pay_items: list[InvoicePayItem] = Field(min_length=1, max_length=999)
    gl_distribution: list[GlDistributionLine] = Field(min_length=1)

    def to_inputs(self, date_format: str = DEFAULT_DATE_FORMAT) -> dict[str, Any]:
        return _drop_none(
            {
                "CustomerNumber": str(self.customer_number),
                "Company": self.company,
                "ExternalReference": self.external_reference,
                "InvoiceDate": _date(self.memo_date, date_format),
                "GLDate": _date(self.gl_date, date_format),
                "CurrencyCode": self.currency,
                "Remark": self.remark,
                "OriginalDocument": None
                if self.original is None
                else {
                    "DocumentNumber": str(self.original.document_number),
                    "DocumentType": self.original.document_type,
                    "DocumentCompany": self.original.document_company,
                },
                "PayItems": [
                    {
                        "GrossAmount": _amount(item.gross_amount),
                        "TaxAmount": None if item.tax_amount is None else _amount(item.tax_amount),
                    }
                    for item in self.pay_items
                ],
                "GLDistribution": [
                    {"Account": line.account, "Amount": _amount(line.amount), "Remark": line.remark}
                    for line in self.gl_distribution
                ],
            }
        )

    def record(self) -> str:
        customer = f"customer {self.customer_number} (company {self.company})"
        return f"credit memo {self.external_reference} of {customer}"


class VoucherInput(_Input):
    """A supplier voucher (F0411, document type PV): ``supplier_invoice_number`` (VINV) identifies
    the supplier's invoice; G/L lines are expense debits."""

    supplier_number: int = Field(gt=0)
    company: str = Field(min_length=1, max_length=5)
    supplier_invoice_number: str = Field(min_length=1, max_length=25)
    invoice_date: date
    gl_date: date | None = None
    due_date: date | None = None
    currency: str | None = Field(None, min_length=3, max_length=3)
    remark: str | None = Field(None, max_length=30)
    pay_items: list[InvoicePayItem] = Field(min_length=1, max_length=999)
    gl_distribution: list[GlDistributionLine] = Field(min_length=1)

    def to_inputs(self, date_format: str = DEFAULT_DATE_FORMAT) -> dict[str, Any]:
        return _drop_none(
            {
                "SupplierNumber": str(self.supplier_number),
                "Company": self.company,
                "SupplierInvoiceNumber": self.supplier_invoice_number,
                "InvoiceDate": _date(self.invoice_date, date_format),
                "GLDate": _date(self.gl_date, date_format),
                "DueDate": _date(self.due_date, date_format),
                "CurrencyCode": self.currency,
                "Remark": self.remark,
                "PayItems": [
                    {
                        "GrossAmount": _amount(item.gross_amount),
                        "TaxAmount": None if item.tax_amount is None else _amount(item.tax_amount),
                    }
                    for item in self.pay_items
                ],
                "GLDistribution": [
                    {"Account": line.account, "Amount": _amount(line.amount), "Remark": line.remark}
                    for line in self.gl_distribution
                ],
            }
        )

    def record(self) -> str:
        supplier = f"supplier {self.supplier_number} (company {self.company})"
        return f"voucher {self.supplier_invoice_number} of {supplier}"


class DocumentResult(BaseModel):
    """A JDE document an orchestration wrote (or a lookup found): its key and batch."""

    model_config = ConfigDict(frozen=True)

    document_number: int
    document_type: str
    document_company: str
    batch_number: int | None = None

    @property
    def key(self) -> str:
        """``KCO-DCT-DOC``, e.g. ``00001-RI-90000012`` (the contract's document key form)."""
        return f"{self.document_company}-{self.document_type}-{self.document_number}"

    @classmethod
    def from_outputs(cls, outputs: dict[str, Any]) -> DocumentResult:
        return cls(
            document_number=int(outputs["DocumentNumber"]),
            document_type=str(outputs["DocumentType"]),
            document_company=str(outputs["DocumentCompany"]),
            batch_number=int(outputs["BatchNumber"]) if outputs.get("BatchNumber") else None,
        )

    @classmethod
    def from_key(cls, key: str) -> DocumentResult:
        company, document_type, number = key.split("-", 2)
        return cls(document_number=int(number), document_type=document_type, document_company=company)


class ReceiptApplication(_Input):
    """Apply ``amount`` of the receipt to an invoice (oldest open pay items first unless ``pay_item``)."""

    document_number: int = Field(gt=0)
    document_type: str = Field("RI", min_length=2, max_length=2)
    document_company: str | None = Field(None, max_length=5)
    pay_item: str | None = Field(None, max_length=3)
    amount: Decimal = Field(gt=0)


class ReceiptInput(_Input):
    """A customer receipt (F03B13) and its applications (F03B14). ``receipt_number`` (CKNU) identifies
    the source payment and must be unique per customer: a second post is refused with error 5512."""

    customer_number: int = Field(gt=0)
    company: str = Field("00001", min_length=1, max_length=5)
    receipt_number: str = Field(min_length=1, max_length=25)
    receipt_date: date
    gl_date: date | None = None
    amount: Decimal = Field(gt=0)
    currency: str | None = Field(None, min_length=3, max_length=3)
    bank_account: str | None = Field(None, max_length=29)
    remark: str | None = Field(None, max_length=30)
    applications: list[ReceiptApplication] = Field(default_factory=list)

    def to_inputs(self, date_format: str = DEFAULT_DATE_FORMAT) -> dict[str, Any]:
        return _drop_none(
            {
                "CustomerNumber": str(self.customer_number),
                "Company": self.company,
                "ReceiptNumber": self.receipt_number,
                "ReceiptDate": _date(self.receipt_date, date_format),
                "GLDate": _date(self.gl_date, date_format),
                "Amount": _amount(self.amount),
                "CurrencyCode": self.currency,
                "BankAccount": self.bank_account,
                "Remark": self.remark,
                "Applications": [
                    {
                        "DocumentNumber": str(a.document_number),
                        "DocumentType": a.document_type,
                        "DocumentCompany": a.document_company,
                        "PayItem": a.pay_item,
                        "Amount": _amount(a.amount),
                    }
                    for a in self.applications
                ],
            }
        )

    def record(self) -> str:
        return f"receipt {self.receipt_number} of customer {self.customer_number} (company {self.company})"


class AppliedInvoice(BaseModel):
    model_config = ConfigDict(frozen=True)

    document_number: int
    document_type: str
    document_company: str
    pay_item: str
    amount_applied: Decimal
    open_amount: Decimal | None = None
    pay_status: str | None = None


class ReceiptResult(BaseModel):
    """The receipt's payment id (PYID) and how it was applied; ``created`` False = it existed."""

    model_config = ConfigDict(frozen=True)

    payment_id: int
    receipt_number: str
    applied_amount: Decimal
    unapplied_amount: Decimal
    applications: list[AppliedInvoice] = Field(default_factory=list)
    batch_number: int | None = None
    created: bool = True

    @classmethod
    def from_outputs(cls, outputs: dict[str, Any]) -> ReceiptResult:
        return cls(
            payment_id=int(outputs["PaymentId"]),
            receipt_number=str(outputs["ReceiptNumber"]),
            applied_amount=Decimal(str(outputs["AppliedAmount"])),
            unapplied_amount=Decimal(str(outputs["UnappliedAmount"])),
            batch_number=int(outputs["BatchNumber"]) if outputs.get("BatchNumber") else None,
            applications=[
                AppliedInvoice(
                    document_number=int(a["DocumentNumber"]),
                    document_type=str(a["DocumentType"]),
                    document_company=str(a["DocumentCompany"]),
                    pay_item=str(a["PayItem"]),
                    amount_applied=Decimal(str(a["AmountApplied"])),
                    open_amount=Decimal(str(a["OpenAmount"])),
                    pay_status=str(a["PayStatus"]),
                )
                for a in outputs.get("Applications") or []
            ],
        )


class VoidReceiptInput(_Input):
    """Void a receipt by its payment id (PYID): JDE marks F03B13/F03B14 void (VDGJ, VRE), adds
    reversing lines, reopens the documents it paid and voids its unapplied cash."""

    payment_id: int = Field(gt=0)
    void_date: date | None = None
    reason: str = Field(min_length=1, max_length=3)

    def to_inputs(self, date_format: str = DEFAULT_DATE_FORMAT) -> dict[str, Any]:
        return _drop_none(
            {
                "PaymentId": str(self.payment_id),
                "VoidDate": _date(self.void_date, date_format),
                "VoidReason": self.reason,
            }
        )

    def record(self) -> str:
        return f"void of receipt (payment id) {self.payment_id}"


class VoidReceiptResult(BaseModel):
    """The voided receipt and the documents it reopened (``KCO-DCT-DOC``)."""

    model_config = ConfigDict(frozen=True)

    payment_id: int
    receipt_number: str
    void_date: str
    reopened: list[str] = Field(default_factory=list)

    @classmethod
    def from_outputs(cls, outputs: dict[str, Any]) -> VoidReceiptResult:
        return cls(
            payment_id=int(outputs["PaymentId"]),
            receipt_number=str(outputs.get("ReceiptNumber") or ""),
            void_date=str(outputs.get("VoidDate") or ""),
            reopened=[
                f"{d['DocumentCompany']}-{d['DocumentType']}-{d['DocumentNumber']}"
                for d in outputs.get("ReopenedDocuments") or []
            ],
        )


class ItemInput(_Input):
    """Create or update an item (F4101) found by its 2nd item number (LITM). Fields left None are not
    changed on update; a new item needs ``description``."""

    item_number: str = Field(min_length=1, max_length=25)
    description: str | None = Field(None, max_length=30)
    description_2: str | None = Field(None, max_length=30)
    search_text: str | None = Field(None, max_length=30)
    stocking_type: str | None = Field(None, min_length=1, max_length=1)
    unit_of_measure: str | None = Field(None, min_length=1, max_length=2)
    gl_class: str | None = Field(None, max_length=4)
    sales_category_1: str | None = Field(None, max_length=3)

    def to_inputs(self) -> dict[str, Any]:
        return _drop_none(
            {
                "ItemNumber": self.item_number,
                "Description": self.description,
                "Description2": self.description_2,
                "SearchText": self.search_text,
                "StockingType": self.stocking_type,
                "UnitOfMeasure": self.unit_of_measure,
                "GLClass": self.gl_class,
                "SalesCategory1": self.sales_category_1,
            }
        )

    def record(self) -> str:
        return f"item {self.item_number}"


class ItemResult(BaseModel):
    model_config = ConfigDict(frozen=True)

    short_item_number: int
    item_number: str
    action: Literal["CREATED", "UPDATED", "UNCHANGED"]

    @classmethod
    def from_outputs(cls, outputs: dict[str, Any]) -> ItemResult:
        return cls(
            short_item_number=int(outputs["ShortItemNumber"]),
            item_number=str(outputs["ItemNumber"]),
            action=outputs["Action"],
        )


def _drop_none(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _drop_none(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_drop_none(v) for v in value]
    return value
