"""AIS sessions: tokens bound to a device name (or the caller's address), with idle and absolute expiry."""

from __future__ import annotations

import base64
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from airflow_provider_mlconn.sandbox.jde.store import Cursor


@dataclass
class Session:
    token: str
    username: str
    environment: str
    role: str
    device: str | None
    client_ip: str
    created: float
    last_used: float
    stateless: bool = False
    cursors: dict[int, Cursor] = field(default_factory=dict)


class Sessions:
    """Issued tokens. ``time_to_live`` is absolute (AIS ``timeToLive``); ``idle_timeout`` is AIS
    ``sessionTimeout``. A token is only valid with the device name it was requested with."""

    def __init__(
        self, *, time_to_live: float, idle_timeout: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.time_to_live = time_to_live
        self.idle_timeout = idle_timeout
        self.clock = clock
        self._sessions: dict[str, Session] = {}
        self._next_stack = 0

    def open(
        self,
        *,
        username: str,
        environment: str,
        role: str,
        device: str | None,
        client_ip: str,
        stateless: bool,
    ) -> Session:
        now = self.clock()
        token = "044" + base64.b64encode(secrets.token_bytes(96)).decode()
        session = Session(token, username, environment, role, device, client_ip, now, now, stateless)
        if not stateless:
            self._sessions[token] = session
        return session

    def find(self, token: str, *, device: str | None, client_ip: str) -> tuple[Session | None, str]:
        """The live session for ``token`` used from ``device``, or None and why it was refused."""
        session = self._sessions.get(token)
        if session is None:
            return None, "unknown or logged-out token"
        now = self.clock()
        if now - session.created >= self.time_to_live or now - session.last_used >= self.idle_timeout:
            self._sessions.pop(token, None)
            return None, "token expired"
        if session.device is not None and device != session.device:
            return None, "token used with a different device name"
        if session.device is None and client_ip != session.client_ip:
            return None, "token used from a different address"
        session.last_used = now
        return session, ""

    def end(self, token: str) -> bool:
        return self._sessions.pop(token, None) is not None

    def next_stack_id(self) -> int:
        self._next_stack += 1
        return self._next_stack

    def active(self) -> int:
        now = self.clock()
        return sum(
            1
            for s in self._sessions.values()
            if now - s.created < self.time_to_live and now - s.last_used < self.idle_timeout
        )

    def open_cursors(self) -> int:
        return sum(len(s.cursors) for s in self._sessions.values())

    def clear(self) -> None:
        self._sessions.clear()
