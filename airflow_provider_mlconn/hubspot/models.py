"""What the HubSpot hook hands back: records, per-record write outcomes, association results."""

from __future__ import annotations

import re
from datetime import datetime
from enum import Enum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from airflow_provider_mlconn.hubspot.objects import AssociationType, ObjectType

_EXISTING_ID = re.compile(r"Existing ID:\s*(\d+)")


class AssociatedId(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: str
    type: str


class HubSpotRecord(BaseModel):
    """A CRM record as read. Property values are strings (or None for a requested property without value)."""

    model_config = ConfigDict(frozen=True, populate_by_name=True)

    id: str
    properties: dict[str, str | None]
    created_at: datetime = Field(alias="createdAt")
    updated_at: datetime = Field(alias="updatedAt")
    archived: bool = False
    associations: dict[ObjectType, tuple[AssociatedId, ...]] = Field(default_factory=dict)

    @classmethod
    def from_api(cls, body: dict[str, Any]) -> HubSpotRecord:
        """Parse a ``SimplePublicObject``; association keys (``line items``, ``companies``) are normalised."""
        linked: dict[ObjectType, tuple[AssociatedId, ...]] = {}
        for key, collection in (body.get("associations") or {}).items():
            try:
                kind = ObjectType.parse(key)
            except ValueError:
                continue  # an object type the sync does not use
            results = collection.get("results", []) if isinstance(collection, dict) else []
            linked[kind] = tuple(AssociatedId(id=str(r["id"]), type=str(r.get("type", ""))) for r in results)
        return cls.model_validate(
            {
                "id": str(body["id"]),
                "properties": body.get("properties") or {},
                "createdAt": body["createdAt"],
                "updatedAt": body["updatedAt"],
                "archived": bool(body.get("archived", False)),
                "associations": linked,
            }
        )

    def associated_ids(self, object_type: ObjectType) -> list[str]:
        """Distinct ids of associated records of one type (a primary link is listed twice by HubSpot)."""
        return list(dict.fromkeys(a.id for a in self.associations.get(object_type, ())))


class WriteStatus(str, Enum):
    CREATED = "created"
    UPDATED = "updated"
    FAILED = "failed"


class RecordError(BaseModel):
    """Why HubSpot refused one record. ``existing_id`` is set when a contact's e-mail already belongs to
    another contact (409 "Existing ID: N"), so the caller can link to it instead of duplicating."""

    model_config = ConfigDict(frozen=True)

    message: str
    status: int | None = None
    category: str | None = None
    code: str | None = None
    existing_id: str | None = None
    retriable: bool = False

    @classmethod
    def from_body(cls, body: dict[str, Any], *, status: int | None, retriable: bool = False) -> RecordError:
        message = str(body.get("message") or "HubSpot refused the record")
        details = body.get("errors")
        if not isinstance(details, list):
            details = []
        code = next((str(d["code"]) for d in details if isinstance(d, dict) and d.get("code")), None)
        match = _EXISTING_ID.search(message)
        return cls(
            message=message,
            status=status,
            category=body.get("category"),
            code=code,
            existing_id=match.group(1) if match else None,
            retriable=retriable,
        )


class RecordOutcome(BaseModel):
    """The result of writing one record, keyed by the value of the id property (the JDE key)."""

    model_config = ConfigDict(frozen=True)

    key: str
    status: WriteStatus
    record_id: str | None = None
    error: RecordError | None = None

    @property
    def ok(self) -> bool:
        return self.status is not WriteStatus.FAILED


class AssociationLink(BaseModel):
    """Associate ``from_id`` to ``to_id`` with ``types`` (all of one direction). A labelled create replaces
    the pair's labels, so name every label the pair should keep (e.g. unlabeled and primary together)."""

    model_config = ConfigDict(frozen=True)

    from_id: str
    to_id: str
    types: tuple[AssociationType, ...]


class AssociationOutcome(BaseModel):
    model_config = ConfigDict(frozen=True)

    from_id: str
    to_id: str
    ok: bool
    labels: tuple[str, ...] = ()
    error: RecordError | None = None


class AssociatedRecord(BaseModel):
    """One record associated to a given record, with every association type id between them."""

    model_config = ConfigDict(frozen=True)

    to_id: str
    type_ids: tuple[int, ...]
    labels: tuple[str, ...] = ()
