"""Custom HubSpot properties the sync needs, as typed specs (hubspot.md §6).

A JDE key lives in a custom property with ``hasUniqueValue`` so writes can upsert on it; that flag can
only be set when the property is created, which is why these specs are created once, idempotently,
by ``HubSpotHook.ensure_properties``.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from airflow_provider_mlconn.hubspot.objects import ObjectType

PropertyValueType = Literal["string", "number", "date", "datetime", "enumeration", "bool", "phone_number"]
FieldType = Literal[
    "text",
    "textarea",
    "number",
    "date",
    "select",
    "radio",
    "checkbox",
    "booleancheckbox",
    "phonenumber",
    "file",
    "html",
    "calculation_equation",
]
_FIELD_TYPES: dict[str, set[str]] = {
    "string": {"text", "textarea", "file", "html", "phonenumber"},
    "number": {"number", "calculation_equation"},
    "date": {"date"},
    "datetime": {"date"},
    "enumeration": {"select", "radio", "checkbox", "booleancheckbox"},
    "bool": {"booleancheckbox"},
    "phone_number": {"phonenumber", "text"},
}
_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


class PropertyOption(BaseModel):
    model_config = ConfigDict(frozen=True)

    label: str
    value: str
    display_order: int = 0
    hidden: bool = False
    description: str = ""

    def body(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "value": self.value,
            "displayOrder": self.display_order,
            "hidden": self.hidden,
            "description": self.description,
        }


class PropertyGroupSpec(BaseModel):
    model_config = ConfigDict(frozen=True)

    object_type: ObjectType
    name: str
    label: str

    def body(self) -> dict[str, Any]:
        return {"name": self.name, "label": self.label, "displayOrder": -1}


class PropertySpec(BaseModel):
    """A custom property as the sync wants it to exist in HubSpot."""

    model_config = ConfigDict(frozen=True)

    object_type: ObjectType
    name: str
    label: str
    group: PropertyGroupSpec
    type: PropertyValueType = "string"
    field_type: FieldType = "text"
    has_unique_value: bool = False
    description: str = ""
    options: tuple[PropertyOption, ...] = Field(default=())

    @field_validator("name")
    @classmethod
    def _internal_name(cls, name: str) -> str:
        if not _NAME.match(name):
            raise ValueError(
                f"{name!r}: HubSpot internal names are lower-case letters, digits and underscores"
            )
        return name

    @model_validator(mode="after")
    def _consistent(self) -> PropertySpec:
        if self.field_type not in _FIELD_TYPES[self.type]:
            raise ValueError(f"{self.name}: fieldType {self.field_type!r} does not fit type {self.type!r}")
        if self.group.object_type is not self.object_type:
            raise ValueError(
                f"{self.name}: group {self.group.name} belongs to {self.group.object_type.value}"
            )
        return self

    def body(self) -> dict[str, Any]:
        """The ``PropertyCreate`` body."""
        body: dict[str, Any] = {
            "name": self.name,
            "label": self.label,
            "type": self.type,
            "fieldType": self.field_type,
            "groupName": self.group.name,
            "description": self.description,
            "hasUniqueValue": self.has_unique_value,
        }
        if self.options:
            body["options"] = [option.body() for option in self.options]
        return body


JDE_GROUP_NAME = "jd_edwards"
JDE_GROUP_LABEL = "JD Edwards"


def jde_group(object_type: ObjectType) -> PropertyGroupSpec:
    """The "JD Edwards" property group of one object type (groups are per object type)."""
    return PropertyGroupSpec(object_type=object_type, name=JDE_GROUP_NAME, label=JDE_GROUP_LABEL)


COMPANY_ADDRESS_NUMBER = PropertySpec(
    object_type=ObjectType.COMPANIES,
    name="jde_address_number",
    label="JDE address number (AN8)",
    group=jde_group(ObjectType.COMPANIES),
    has_unique_value=True,
    description="JD Edwards Address Book number (F0101.AN8) of this customer; the sync upserts on it.",
)

CONTACT_KEY = PropertySpec(
    object_type=ObjectType.CONTACTS,
    name="jde_contact_key",
    label="JDE contact key (AN8-IDLN)",
    group=jde_group(ObjectType.CONTACTS),
    has_unique_value=True,
    description="JD Edwards Who's Who key (F0111.AN8 and IDLN) of this contact; the sync upserts on it.",
)
