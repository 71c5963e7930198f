"""What a HubSpot portal knows before anyone writes: object types, built-in properties, association types.

These are the sandbox's own copy of HubSpot's facts (shared/reference/hubspot.md §2, §4, §5); the
client package keeps a separate copy on purpose, so a wrong id on one side shows up as a failure.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

# The moment built-in definitions claim to have been created (HubSpot reports a fixed old date).
BUILTIN_CREATED_AT = "2019-08-06T02:41:08.000Z"


@dataclass(frozen=True)
class Option:
    label: str
    value: str
    display_order: int = 0
    hidden: bool = False
    description: str = ""

    def as_json(self) -> dict[str, object]:
        return {
            "label": self.label,
            "value": self.value,
            "displayOrder": self.display_order,
            "hidden": self.hidden,
            "description": self.description,
        }


@dataclass(frozen=True)
class PropertyDef:
    """One property definition. ``read_only`` values are set by HubSpot itself, never by API writes."""

    name: str
    label: str
    type: str = "string"
    field_type: str = "text"
    group: str = ""
    unique: bool = False
    read_only: bool = False
    calculated: bool = False
    options: tuple[Option, ...] = ()
    hubspot_defined: bool = True
    description: str = ""
    display_order: int = -1
    hidden: bool = False
    form_field: bool = False
    created_at: str = BUILTIN_CREATED_AT
    updated_at: str = BUILTIN_CREATED_AT
    archived: bool = False
    archived_at: str | None = None

    def option_values(self) -> set[str]:
        return {option.value for option in self.options}

    def as_json(self) -> dict[str, object]:
        body: dict[str, object] = {
            "name": self.name,
            "label": self.label,
            "type": self.type,
            "fieldType": self.field_type,
            "description": self.description,
            "groupName": self.group,
            "options": [option.as_json() for option in self.options],
            "displayOrder": self.display_order,
            "calculated": self.calculated,
            "externalOptions": False,
            "hasUniqueValue": self.unique,
            "hidden": self.hidden,
            "hubspotDefined": self.hubspot_defined,
            "modificationMetadata": {
                "archivable": not self.hubspot_defined,
                "readOnlyDefinition": self.hubspot_defined,
                "readOnlyValue": self.read_only,
            },
            "formField": self.form_field,
            "createdAt": self.created_at,
            "updatedAt": self.updated_at,
            "archived": self.archived,
        }
        if self.archived_at:
            body["archivedAt"] = self.archived_at
        return body


@dataclass(frozen=True)
class ObjectTypeDef:
    name: str  # plural API name, e.g. "line_items"
    type_id: str  # e.g. "0-8"
    singular: str  # e.g. "line_item"
    label: str  # upper-case name used in HubSpot messages, e.g. "LINE_ITEM"
    association_key: str  # key of a record's ``associations`` map, e.g. "line items"
    last_modified: str  # contacts: lastmodifieddate; everything else: hs_lastmodifieddate
    default_group: str
    default_properties: tuple[str, ...]
    properties: tuple[PropertyDef, ...] = field(default=())
    searchable: tuple[str, ...] = ()  # what a free-text ``query`` looks at


def _text(name: str, label: str, *, unique: bool = False, read_only: bool = False) -> PropertyDef:
    return PropertyDef(name=name, label=label, unique=unique, read_only=read_only)


def _number(name: str, label: str, *, read_only: bool = False, calculated: bool = False) -> PropertyDef:
    return PropertyDef(
        name=name,
        label=label,
        type="number",
        field_type="number",
        read_only=read_only,
        calculated=calculated,
    )


def _datetime(name: str, label: str, *, read_only: bool = False) -> PropertyDef:
    return PropertyDef(name=name, label=label, type="datetime", field_type="date", read_only=read_only)


def _bool(name: str, label: str) -> PropertyDef:
    options = (Option("Yes", "true", 0), Option("No", "false", 1))
    return PropertyDef(name=name, label=label, type="bool", field_type="booleancheckbox", options=options)


def _choice(name: str, label: str, values: tuple[str, ...]) -> PropertyDef:
    options = tuple(Option(v.replace("_", " ").capitalize(), v, i) for i, v in enumerate(values))
    return PropertyDef(name=name, label=label, type="enumeration", field_type="select", options=options)


def _computed_bool(name: str, label: str) -> PropertyDef:
    return replace(_bool(name, label), read_only=True, calculated=True)


def _system(last_modified: str) -> tuple[PropertyDef, ...]:
    return (
        _number("hs_object_id", "Record ID", read_only=True),
        _datetime("createdate", "Create Date", read_only=True),
        _datetime(last_modified, "Last Modified Date", read_only=True),
    )


def _grouped(group: str, props: tuple[PropertyDef, ...]) -> tuple[PropertyDef, ...]:
    return tuple(replace(p, group=group, display_order=i) for i, p in enumerate(props))


LIFECYCLE_STAGES = (
    "subscriber",
    "lead",
    "marketingqualifiedlead",
    "salesqualifiedlead",
    "opportunity",
    "customer",
    "evangelist",
    "other",
)
INVOICE_STATUSES = ("draft", "open", "paid", "voided")
PAYMENT_STATUSES = (
    "processing",
    "succeeded",
    "failed",
    "partially_refunded",
    "refunded",
    "processing_refund",
    "disputed_won",
    "disputed_lost",
    "disputed_action_required",
    "disputed_awaiting_decision",
)
PAYMENT_METHOD_TYPES = ("card", "ach", "cash", "check", "wire_transfer", "other", "sepa", "bacs", "pads")
PROCESSOR_TYPES = ("hs_payments", "byo_stripe", "none", "quickbooks", "xero")

_ADDRESS = (
    _text("address", "Street Address"),
    _text("city", "City"),
    _text("state", "State/Region"),
    _text("zip", "Postal Code"),
    _text("country", "Country/Region"),
)

CONTACTS = ObjectTypeDef(
    name="contacts",
    type_id="0-1",
    singular="contact",
    label="CONTACT",
    association_key="contacts",
    last_modified="lastmodifieddate",
    default_group="contactinformation",
    default_properties=("firstname", "lastname", "email", "lastmodifieddate", "hs_object_id", "createdate"),
    properties=_grouped(
        "contactinformation",
        (
            _text("email", "Email", unique=True),
            _text("firstname", "First Name"),
            _text("lastname", "Last Name"),
            _text("phone", "Phone Number"),
            _text("mobilephone", "Mobile Phone Number"),
            _text("company", "Company Name"),
            _text("jobtitle", "Job Title"),
            _text("website", "Website URL"),
            *_ADDRESS,
            _choice("lifecyclestage", "Lifecycle Stage", LIFECYCLE_STAGES),
            *_system("lastmodifieddate"),
        ),
    ),
    searchable=("firstname", "lastname", "email", "phone", "company"),
)

COMPANIES = ObjectTypeDef(
    name="companies",
    type_id="0-2",
    singular="company",
    label="COMPANY",
    association_key="companies",
    last_modified="hs_lastmodifieddate",
    default_group="companyinformation",
    default_properties=("name", "domain", "createdate", "hs_lastmodifieddate", "hs_object_id"),
    properties=_grouped(
        "companyinformation",
        (
            _text("name", "Company name"),
            _text("domain", "Company Domain Name"),
            _text("phone", "Phone Number"),
            _text("address2", "Street Address 2"),
            _text("website", "Website URL"),
            _text("industry", "Industry"),
            _text("description", "Description"),
            _number("numberofemployees", "Number of Employees"),
            _number("annualrevenue", "Annual Revenue"),
            *_ADDRESS,
            _choice("lifecyclestage", "Lifecycle Stage", LIFECYCLE_STAGES),
            *_system("hs_lastmodifieddate"),
        ),
    ),
    searchable=("name", "domain", "phone", "website"),
)

DEALS = ObjectTypeDef(
    name="deals",
    type_id="0-3",
    singular="deal",
    label="DEAL",
    association_key="deals",
    last_modified="hs_lastmodifieddate",
    default_group="dealinformation",
    default_properties=(
        "dealname",
        "amount",
        "closedate",
        "pipeline",
        "dealstage",
        "createdate",
        "hs_lastmodifieddate",
        "hs_object_id",
    ),
    properties=_grouped(
        "dealinformation",
        (
            _text("dealname", "Deal Name"),
            _number("amount", "Amount"),
            _datetime("closedate", "Close Date"),
            _text("pipeline", "Pipeline"),
            _text("dealstage", "Deal Stage"),
            _text("deal_currency_code", "Currency"),
            *_system("hs_lastmodifieddate"),
        ),
    ),
    searchable=("dealname",),
)

PRODUCTS = ObjectTypeDef(
    name="products",
    type_id="0-7",
    singular="product",
    label="PRODUCT",
    association_key="products",
    last_modified="hs_lastmodifieddate",
    default_group="productinformation",
    default_properties=("name", "description", "price", "createdate", "hs_lastmodifieddate", "hs_object_id"),
    properties=_grouped(
        "productinformation",
        (
            _text("name", "Name"),
            _text("description", "Description"),
            _number("price", "Unit price"),
            _text("hs_sku", "SKU"),
            _number("hs_cost_of_goods_sold", "Unit cost"),
            _text("hs_recurring_billing_period", "Term"),
            _choice("hs_product_type", "Product type", ("inventory", "non_inventory", "service")),
            _number("discount", "Unit discount"),
            _number("hs_discount_percentage", "Discount percentage"),
            _number("tax", "Tax"),
            *_system("hs_lastmodifieddate"),
        ),
    ),
    searchable=("name", "description", "price", "hs_sku"),
)

LINE_ITEMS = ObjectTypeDef(
    name="line_items",
    type_id="0-8",
    singular="line_item",
    label="LINE_ITEM",
    association_key="line items",
    last_modified="hs_lastmodifieddate",
    default_group="lineiteminformation",
    default_properties=("quantity", "amount", "price", "createdate", "hs_lastmodifieddate", "hs_object_id"),
    properties=_grouped(
        "lineiteminformation",
        (
            _text("name", "Name"),
            _text("description", "Description"),
            _text("hs_sku", "SKU"),
            _number("quantity", "Quantity"),
            _number("price", "Unit price"),
            _number("amount", "Net price", read_only=True, calculated=True),
            _number("discount", "Unit discount"),
            _number("hs_discount_percentage", "Discount percentage"),
            _number("tax", "Tax"),
            _text("hs_line_item_currency_code", "Currency"),
            _number("hs_product_id", "Product ID"),
            _number("hs_cost_of_goods_sold", "Unit cost"),
            _text("hs_tax_rate_group_id", "Tax rate"),
            _text("hs_recurring_billing_period", "Term"),
            # Set by HubSpot from price, quantity, discounts and the tax rate (commerce.py).
            _number("hs_pre_discount_amount", "Pre-discount amount", read_only=True, calculated=True),
            _number("hs_total_discount", "Total discount", read_only=True, calculated=True),
            _number("hs_tax_rate", "Tax rate (%)", read_only=True, calculated=True),
            _text("hs_tax_label", "Tax label", read_only=True),
            _number("hs_tax_amount", "Tax amount", read_only=True, calculated=True),
            _number("hs_post_tax_amount", "Post-tax amount", read_only=True, calculated=True),
            *_system("hs_lastmodifieddate"),
        ),
    ),
    searchable=("name", "description", "hs_sku"),
)

INVOICES = ObjectTypeDef(
    name="invoices",
    type_id="0-53",
    singular="invoice",
    label="INVOICE",
    association_key="invoices",
    last_modified="hs_lastmodifieddate",
    default_group="invoiceinformation",
    default_properties=("createdate", "hs_lastmodifieddate", "hs_object_id"),
    properties=_grouped(
        "invoiceinformation",
        (
            _text("hs_currency", "Currency"),
            _choice("hs_invoice_status", "Invoice status", INVOICE_STATUSES),
            _datetime("hs_invoice_date", "Invoice date"),
            _datetime("hs_due_date", "Due date"),
            _text("hs_number", "Invoice number", read_only=True),
            _text("hs_title", "Title"),
            _text("hs_purchase_order_number", "Purchase order number"),
            _text("hs_comments", "Comments"),
            _bool("hs_invoice_billable", "Billable"),
            _text("hs_tax_id", "Tax ID"),
            _text("hs_allowed_payment_methods", "Allowed payment methods"),
            _choice("hs_invoice_payment_collection_method", "Payment collection method", ("manual", "none")),
            _bool("hs_allow_partial_payments", "Allow partial payments"),
            _number("hs_subtotal", "Subtotal", read_only=True, calculated=True),
            _number("hs_amount_billed", "Amount billed", read_only=True, calculated=True),
            _number("hs_amount_paid", "Amount paid", read_only=True, calculated=True),
            _number("hs_balance_due", "Balance due", read_only=True, calculated=True),
            _text("hs_invoice_link", "Invoice link", read_only=True),
            _text("hs_pdf_download_link", "PDF download link", read_only=True),
            *_system("hs_lastmodifieddate"),
        ),
    ),
    searchable=("hs_number", "hs_title"),
)

_PAYMENT_ADDRESS = tuple(
    _text(f"hs_{kind}_address_{part}", f"{kind.capitalize()} address {part}")
    for kind in ("billing", "shipping")
    for part in ("line_1", "line_2", "city", "state", "postal_code", "country")
)

COMMERCE_PAYMENTS = ObjectTypeDef(
    name="commerce_payments",
    type_id="0-101",
    singular="commerce_payment",
    label="COMMERCE_PAYMENT",
    association_key="commerce_payments",
    last_modified="hs_lastmodifieddate",
    default_group="paymentinformation",
    default_properties=("createdate", "hs_lastmodifieddate", "hs_object_id"),
    properties=_grouped(
        "paymentinformation",
        (
            _number("hs_initial_amount", "Gross amount"),
            _datetime("hs_initiated_date", "Payment date"),
            _text("hs_currency_code", "Currency"),
            _text("hs_customer_email", "Customer email"),
            _number("hs_fees_amount", "Fees"),
            _number("hs_refunds_amount", "Refunds"),
            _text("hs_internal_comment", "Internal comment"),
            _choice("hs_latest_status", "Status", PAYMENT_STATUSES),
            _text("hs_payment_method_bank_or_issuer", "Bank or issuer"),
            _text("hs_payment_method_last_4", "Last 4"),
            _choice("hs_payment_method_type", "Payment method", PAYMENT_METHOD_TYPES),
            _datetime("hs_payout_date", "Payout date"),
            _choice("hs_processor_type", "Processor", PROCESSOR_TYPES),
            _text("hs_reference_number", "Reference number"),
            _number("hs_line_item_discounts_amount", "Line item discounts"),
            _number("hs_total_discounts_amount", "Total discounts"),
            _text("hs_shipping_ship_to_name", "Ship to name"),
            *_PAYMENT_ADDRESS,
            _text("hs_payment_id", "Payment ID", read_only=True),
            _text("hs_payment_method", "Payment method (processor)", read_only=True),
            _text("hs_payment_source_app", "Source app", read_only=True),
            _text("hs_payment_source_id", "Source ID", read_only=True),
            _text("hs_payment_source_name", "Source name", read_only=True),
            _text("hs_payment_source_url", "Source URL", read_only=True),
            _text("hs_payment_type", "Payment type", read_only=True),
            _text("hs_digital_wallet_type", "Digital wallet", read_only=True),
            _number("hs_platform_fee", "Platform fee", read_only=True),
            _text("hs_order_discount_code", "Order discount code", read_only=True),
            _text("hs_settlement_currency_code", "Settlement currency", read_only=True),
            _number("hs_net_amount", "Net amount", read_only=True, calculated=True),
            _number(
                "hs_net_amount_after_refunds", "Net amount after refunds", read_only=True, calculated=True
            ),
            _number(
                "hs_refunds_amount_in_portal_currency",
                "Refunds (portal currency)",
                read_only=True,
                calculated=True,
            ),
            _number(
                "hs_max_refundable_amount_in_portal_currency",
                "Refundable (portal currency)",
                read_only=True,
                calculated=True,
            ),
            _computed_bool("hs_has_associated_invoice", "Has associated invoice"),
            _number(
                "hs_number_of_associated_invoices",
                "Number of associated invoices",
                read_only=True,
                calculated=True,
            ),
            _text("hs_payment_creation_method", "Creation method", read_only=True),
            *_system("hs_lastmodifieddate"),
        ),
    ),
    searchable=("hs_reference_number", "hs_customer_email"),
)

ADJUSTMENT_TYPES = ("FIXED", "PERCENT")


def _adjustment(name: str, singular: str, type_id: str, *extra: PropertyDef) -> ObjectTypeDef:
    """Invoice-level discounts, fees and taxes (hubspot-commerce.md §1.2): a label, FIXED or PERCENT, a
    value and a sort order. The object type ids are [I]: HubSpot's object definitions were not retrieved."""
    group = f"{singular}information"
    return ObjectTypeDef(
        name=name,
        type_id=type_id,
        singular=singular,
        label=singular.upper(),
        association_key=name,
        last_modified="hs_lastmodifieddate",
        default_group=group,
        default_properties=(
            "hs_label",
            "hs_type",
            "hs_value",
            "createdate",
            "hs_lastmodifieddate",
            "hs_object_id",
        ),
        properties=_grouped(
            group,
            (
                _text("hs_label", "Label"),
                _choice("hs_type", "Type", ADJUSTMENT_TYPES),
                _number("hs_value", "Value"),
                _number("hs_sort_order", "Sort order"),
                *extra,
                *_system("hs_lastmodifieddate"),
            ),
        ),
        searchable=("hs_label",),
    )


DISCOUNTS = _adjustment("discounts", "discount", "0-84", _text("hs_duration", "Duration"))
FEES = _adjustment("fees", "fee", "0-85")
TAXES = _adjustment("taxes", "tax", "0-86")

OBJECT_TYPES: tuple[ObjectTypeDef, ...] = (
    CONTACTS,
    COMPANIES,
    DEALS,
    PRODUCTS,
    LINE_ITEMS,
    INVOICES,
    COMMERCE_PAYMENTS,
    DISCOUNTS,
    FEES,
    TAXES,
)


def _aliases() -> dict[str, ObjectTypeDef]:
    aliases: dict[str, ObjectTypeDef] = {}
    for kind in OBJECT_TYPES:
        for alias in (kind.name, kind.singular, kind.type_id):
            aliases[alias] = kind
    aliases["payments"] = COMMERCE_PAYMENTS  # hubspot.md §5.4: the legacy name of the same object
    return aliases


OBJECT_ALIASES = _aliases()


def resolve_object_type(name: str) -> ObjectTypeDef | None:
    """``contacts``, ``contact`` and ``0-1`` all name the same object type (case-insensitive names)."""
    return OBJECT_ALIASES.get(name) or OBJECT_ALIASES.get(name.lower())


@dataclass(frozen=True)
class AssociationTypeDef:
    """One direction of a HUBSPOT_DEFINED association type; ``label`` is None for the unlabeled default."""

    from_type: str
    to_type: str
    type_id: int
    reverse_type_id: int
    label: str | None
    name: str  # the ``type`` string in a record's ``associations`` map, e.g. "contact_to_company"

    @property
    def is_default(self) -> bool:
        return self.label is None


def _pair(
    from_type: ObjectTypeDef,
    to_type: ObjectTypeDef,
    type_id: int,
    reverse_id: int,
    label: str | None = None,
    *,
    unlabeled_suffix: bool = False,
) -> tuple[AssociationTypeDef, AssociationTypeDef]:
    suffix = "_unlabeled" if unlabeled_suffix else ""
    forward = AssociationTypeDef(
        from_type.name,
        to_type.name,
        type_id,
        reverse_id,
        label,
        f"{from_type.singular}_to_{to_type.singular}{suffix}",
    )
    backward = AssociationTypeDef(
        to_type.name,
        from_type.name,
        reverse_id,
        type_id,
        label,
        f"{to_type.singular}_to_{from_type.singular}{suffix}",
    )
    return forward, backward


# hubspot.md §4.2 (HUBSPOT_DEFINED, direction matters). Where a pair has a "Primary" label, the
# unlabeled type's record-level name carries "_unlabeled" (as HubSpot reports it).
ASSOCIATION_TYPES: tuple[AssociationTypeDef, ...] = (
    *_pair(CONTACTS, COMPANIES, 279, 280, unlabeled_suffix=True),
    *_pair(CONTACTS, COMPANIES, 1, 2, "Primary"),
    *_pair(DEALS, COMPANIES, 341, 342, unlabeled_suffix=True),
    *_pair(DEALS, COMPANIES, 5, 6, "Primary"),
    *_pair(DEALS, CONTACTS, 3, 4),
    *_pair(DEALS, LINE_ITEMS, 19, 20),
    *_pair(INVOICES, LINE_ITEMS, 409, 410),
    *_pair(INVOICES, CONTACTS, 177, 178),
    *_pair(INVOICES, COMPANIES, 179, 180),
    *_pair(INVOICES, DEALS, 175, 176),
    *_pair(INVOICES, COMMERCE_PAYMENTS, 541, 542),
    # 411/413/415 are documented (hubspot.md §4.2); their reverse ids 412/414/416 are [I] (pairs differ by 1).
    *_pair(INVOICES, DISCOUNTS, 411, 412),
    *_pair(INVOICES, FEES, 413, 414),
    *_pair(INVOICES, TAXES, 415, 416),
    *_pair(COMMERCE_PAYMENTS, CONTACTS, 387, 388),
    *_pair(COMMERCE_PAYMENTS, COMPANIES, 389, 390),
    *_pair(COMMERCE_PAYMENTS, DEALS, 391, 392),
    *_pair(COMMERCE_PAYMENTS, LINE_ITEMS, 395, 396),
)

ASSOCIATION_BY_ID: dict[int, AssociationTypeDef] = {a.type_id: a for a in ASSOCIATION_TYPES}


def association_types_between(from_type: str, to_type: str) -> list[AssociationTypeDef]:
    return [a for a in ASSOCIATION_TYPES if a.from_type == from_type and a.to_type == to_type]


def default_association(from_type: str, to_type: str) -> AssociationTypeDef | None:
    return next((a for a in association_types_between(from_type, to_type) if a.is_default), None)
