"""A flow's settings: one Airflow Variable of JSON, validated by a pydantic model, read once a minute.

``map`` runs once per record, so a flow must not read its Variable each time; ``extract`` reads it
fresh (``fresh=True``) so a change applies from the next run on.
"""

from __future__ import annotations

import json
import threading
import time
from typing import Generic, TypeVar

from pydantic import BaseModel

S = TypeVar("S", bound=BaseModel)


class SettingsVariable(Generic[S]):
    """The settings of one flow: ``SettingsVariable("mlconn_customers", CustomerSettings)``."""

    ttl_seconds = 60.0

    def __init__(self, variable: str, model: type[S]) -> None:
        self.variable = variable
        self.model = model
        self._lock = threading.Lock()
        self._read_at = 0.0
        self._settings: S | None = None

    def get(self, *, fresh: bool = False) -> S:
        with self._lock:
            now = time.monotonic()
            if not fresh and self._settings is not None and now - self._read_at < self.ttl_seconds:
                return self._settings
            from airflow.sdk import Variable

            text = Variable.get(self.variable, default=None)
            try:
                settings = self.model.model_validate(json.loads(text)) if text else self.model()
            except ValueError as error:
                raise ValueError(
                    f"Variable {self.variable} is not valid settings of the flow: {error}"
                ) from error
            self._settings, self._read_at = settings, now
            return settings
