"""HubSpot's error bodies: the request-level ``Error`` and the per-input ``StandardError`` of a 207."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class InputError:
    """One failed input of a batch (a ``StandardError``: all six fields always present)."""

    category: str
    message: str
    context: dict[str, list[str]] = field(default_factory=dict)
    errors: list[dict[str, Any]] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {
            "status": "error",
            "category": self.category,
            "message": self.message,
            "context": self.context,
            "errors": self.errors,
            "links": {},
        }


class HubSpotError(Exception):
    """A whole request refused. ``category`` None reproduces bodies HubSpot sends without one (404, 429)."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        category: str | None = "VALIDATION_ERROR",
        errors: list[dict[str, Any]] | None = None,
        context: dict[str, list[str]] | None = None,
        headers: dict[str, str] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.category = category
        self.errors = errors
        self.context = context
        self.headers = headers or {}
        self.extra = extra or {}

    def body(self, correlation_id: str) -> dict[str, Any]:
        body: dict[str, Any] = {"status": "error", "message": self.message, "correlationId": correlation_id}
        if self.category is not None:
            body["category"] = self.category
        if self.errors:
            body["errors"] = self.errors
        if self.context:
            body["context"] = self.context
        body.update(self.extra)
        return body

    @classmethod
    def from_input_error(cls, status: int, error: InputError) -> HubSpotError:
        return cls(
            status, error.message, category=error.category, errors=error.errors or None, context=error.context
        )


def validation_detail(code: str, message: str, property_name: str | None = None) -> dict[str, Any]:
    detail: dict[str, Any] = {"message": message, "code": code}
    if property_name is not None:
        detail["context"] = {"propertyName": [property_name]}
    return detail


def not_found() -> HubSpotError:
    """A numeric id that does not exist: HubSpot's terse body, without a category [obs]."""
    return HubSpotError(404, "resource not found", category=None)


def bad_request(message: str, **kwargs: Any) -> HubSpotError:
    return HubSpotError(400, message, category="VALIDATION_ERROR", **kwargs)
