"""HubSpot object types and association type ids, as the client needs them (hubspot.md §2.1, §4.2)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class ObjectType(str, Enum):
    """A CRM object type by its API name; ``type_id`` is HubSpot's ``0-x`` id."""

    CONTACTS = "contacts"
    COMPANIES = "companies"
    DEALS = "deals"
    PRODUCTS = "products"
    LINE_ITEMS = "line_items"
    INVOICES = "invoices"
    COMMERCE_PAYMENTS = "commerce_payments"
    DISCOUNTS = "discounts"
    FEES = "fees"
    TAXES = "taxes"

    @property
    def type_id(self) -> str:
        return _TYPE_IDS[self]

    @property
    def last_modified_property(self) -> str:
        """Contacts keep ``lastmodifieddate``; every other object ``hs_lastmodifieddate`` (filtering contacts
        on ``hs_lastmodifieddate`` silently matches nothing)."""
        return "lastmodifieddate" if self is ObjectType.CONTACTS else "hs_lastmodifieddate"

    @classmethod
    def parse(cls, name: str) -> ObjectType:
        """``contacts``, ``contact``, ``0-1`` and HubSpot's ``associations`` keys (``line items``) alike."""
        if isinstance(name, ObjectType):
            return name
        key = name.strip().lower().replace(" ", "_")
        found = _ALIASES.get(key)
        if found is None:
            raise ValueError(f"{name!r} is not a HubSpot object type this provider knows")
        return found


_TYPE_IDS = {
    ObjectType.CONTACTS: "0-1",
    ObjectType.COMPANIES: "0-2",
    ObjectType.DEALS: "0-3",
    ObjectType.PRODUCTS: "0-7",
    ObjectType.LINE_ITEMS: "0-8",
    ObjectType.INVOICES: "0-53",
    ObjectType.COMMERCE_PAYMENTS: "0-101",
    # Invoice-level adjustments (hubspot-commerce.md §1.2); their 0-x ids are not documented.
    ObjectType.DISCOUNTS: "0-84",
    ObjectType.FEES: "0-85",
    ObjectType.TAXES: "0-86",
}
_ALIASES = {
    **{t.value: t for t in ObjectType},
    **{t.value.rstrip("s"): t for t in ObjectType},
    **{type_id: t for t, type_id in _TYPE_IDS.items()},
    "company": ObjectType.COMPANIES,
    "tax": ObjectType.TAXES,
    "payments": ObjectType.COMMERCE_PAYMENTS,
}


class AssociationCategory(str, Enum):
    HUBSPOT_DEFINED = "HUBSPOT_DEFINED"
    USER_DEFINED = "USER_DEFINED"
    INTEGRATOR_DEFINED = "INTEGRATOR_DEFINED"


@dataclass(frozen=True)
class AssociationType:
    """One direction of an association type: the id is only valid from ``from_type`` to ``to_type``."""

    from_type: ObjectType
    to_type: ObjectType
    type_id: int
    category: AssociationCategory = AssociationCategory.HUBSPOT_DEFINED
    label: str | None = None

    def spec(self) -> dict[str, object]:
        """The ``AssociationSpec`` body HubSpot expects."""
        return {"associationCategory": self.category.value, "associationTypeId": self.type_id}


def _hubspot(
    from_type: ObjectType, to_type: ObjectType, type_id: int, label: str | None = None
) -> AssociationType:
    return AssociationType(from_type, to_type, type_id, AssociationCategory.HUBSPOT_DEFINED, label)


C, CO, D, LI, INV, PAY = (
    ObjectType.CONTACTS,
    ObjectType.COMPANIES,
    ObjectType.DEALS,
    ObjectType.LINE_ITEMS,
    ObjectType.INVOICES,
    ObjectType.COMMERCE_PAYMENTS,
)

# v4 ids. In the legacy v1 table 1/2 were the plain contact<->company links; in v4 they are the
# *primary* labels and 279/280 the unlabeled ones (hubspot.md §4.2). A contact has one primary company.
CONTACT_TO_COMPANY = _hubspot(C, CO, 279)
COMPANY_TO_CONTACT = _hubspot(CO, C, 280)
CONTACT_TO_COMPANY_PRIMARY = _hubspot(C, CO, 1, "Primary")
COMPANY_TO_CONTACT_PRIMARY = _hubspot(CO, C, 2, "Primary")
DEAL_TO_COMPANY = _hubspot(D, CO, 341)
DEAL_TO_CONTACT = _hubspot(D, C, 3)
DEAL_TO_LINE_ITEM = _hubspot(D, LI, 19)
INVOICE_TO_LINE_ITEM = _hubspot(INV, LI, 409)
LINE_ITEM_TO_INVOICE = _hubspot(LI, INV, 410)
INVOICE_TO_CONTACT = _hubspot(INV, C, 177)
CONTACT_TO_INVOICE = _hubspot(C, INV, 178)
INVOICE_TO_COMPANY = _hubspot(INV, CO, 179)
COMPANY_TO_INVOICE = _hubspot(CO, INV, 180)
INVOICE_TO_PAYMENT = _hubspot(INV, PAY, 541)
PAYMENT_TO_INVOICE = _hubspot(PAY, INV, 542)
PAYMENT_TO_CONTACT = _hubspot(PAY, C, 387)
PAYMENT_TO_COMPANY = _hubspot(PAY, CO, 389)
PAYMENT_TO_LINE_ITEM = _hubspot(PAY, LI, 395)

ASSOCIATION_TYPES: tuple[AssociationType, ...] = (
    CONTACT_TO_COMPANY,
    COMPANY_TO_CONTACT,
    CONTACT_TO_COMPANY_PRIMARY,
    COMPANY_TO_CONTACT_PRIMARY,
    DEAL_TO_COMPANY,
    DEAL_TO_CONTACT,
    DEAL_TO_LINE_ITEM,
    INVOICE_TO_LINE_ITEM,
    LINE_ITEM_TO_INVOICE,
    INVOICE_TO_CONTACT,
    CONTACT_TO_INVOICE,
    INVOICE_TO_COMPANY,
    COMPANY_TO_INVOICE,
    INVOICE_TO_PAYMENT,
    PAYMENT_TO_INVOICE,
    PAYMENT_TO_CONTACT,
    PAYMENT_TO_COMPANY,
    PAYMENT_TO_LINE_ITEM,
)
