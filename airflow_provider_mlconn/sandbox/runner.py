"""Run a sandbox app: in the foreground for the CLI, in a thread for tests, or as a subprocess.

Whichever way it starts, the server binds the socket before it reports ready, so the URL it hands
out accepts connections at once. Port 0 picks a free port.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator, Sequence
from typing import Any

import uvicorn

READY_PREFIX = "ready "


def bind_socket(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def _url(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port}"


class _Server(uvicorn.Server):
    """A uvicorn server that tells when it accepts connections."""

    def __init__(self, config: uvicorn.Config, on_ready: Any = None) -> None:
        super().__init__(config)
        self._on_ready = on_ready

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=sockets)
        if self.started and self._on_ready is not None:
            self._on_ready()


def _config(app: Any, *, log_level: str) -> uvicorn.Config:
    # h11 + asyncio keep the sandbox free of optional native speedups, so it behaves alike everywhere.
    return uvicorn.Config(
        app,
        log_level=log_level,
        access_log=False,
        lifespan="off",
        timeout_keep_alive=30,
        backlog=2048,
    )


def serve_forever(app: Any, *, host: str, port: int, log_level: str = "warning") -> None:
    """Serve ``app`` until interrupted; print ``ready http://HOST:PORT`` once it accepts connections."""
    sock = bind_socket(host, port)
    url = _url(sock)

    def announce() -> None:
        print(f"{READY_PREFIX}{url}", flush=True)

    server = _Server(_config(app, log_level=log_level), on_ready=announce)
    server.run(sockets=[sock])


class ThreadedServer:
    """A sandbox served from a background thread of this process (tests)."""

    def __init__(self, app: Any, *, host: str = "127.0.0.1", port: int = 0) -> None:
        self.app = app
        self._sock = bind_socket(host, port)
        self.url = _url(self._sock)
        self._ready = threading.Event()
        self._server = _Server(_config(app, log_level="warning"), on_ready=self._ready.set)
        self._thread = threading.Thread(target=self._run, name=f"sandbox {self.url}", daemon=True)

    def _run(self) -> None:
        asyncio.run(self._server.serve(sockets=[self._sock]))

    def start(self, timeout: float = 15.0) -> ThreadedServer:
        self._thread.start()
        if not self._ready.wait(timeout):
            raise RuntimeError(f"sandbox at {self.url} did not start within {timeout}s")
        return self

    def stop(self, timeout: float = 10.0) -> None:
        self._server.should_exit = True
        self._thread.join(timeout)
        with contextlib.suppress(OSError):
            self._sock.close()

    def __enter__(self) -> ThreadedServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class SandboxProcess:
    """``mlconn-sandbox <system> ...`` as a child process; ``url`` is known once it printed ready."""

    def __init__(
        self, system: str, args: Sequence[str] = (), *, host: str = "127.0.0.1", port: int = 0
    ) -> None:
        self.command = [
            sys.executable,
            "-m",
            "airflow_provider_mlconn.sandbox",
            system,
            "--host",
            host,
            "--port",
            str(port),
            *args,
        ]
        self.process: subprocess.Popen[str] | None = None
        self.url = ""

    def start(self, timeout: float = 30.0) -> SandboxProcess:
        self.process = subprocess.Popen(
            self.command,
            stdout=subprocess.PIPE,
            stderr=None,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        assert self.process.stdout is not None
        line_holder: list[str] = []

        def read_ready() -> None:
            assert self.process is not None and self.process.stdout is not None
            for line in self.process.stdout:
                if line.startswith(READY_PREFIX):
                    line_holder.append(line[len(READY_PREFIX) :].strip())
                    return

        reader = threading.Thread(target=read_ready, daemon=True)
        reader.start()
        reader.join(timeout)
        if not line_holder:
            self.stop()
            raise RuntimeError(f"{' '.join(self.command)} did not print ready within {timeout}s")
        self.url = line_holder[0]
        # Keep draining stdout so a chatty server never blocks on a full pipe.
        threading.Thread(target=self._drain, daemon=True).start()
        return self

    def _drain(self) -> None:
        if self.process is not None and self.process.stdout is not None:
            for _ in self.process.stdout:
                pass

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    def stop(self, timeout: float = 10.0) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout)

    def __enter__(self) -> SandboxProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


@contextlib.contextmanager
def running(app: Any) -> Iterator[ThreadedServer]:
    """``with running(app) as server: server.url``: an in-process sandbox for the block's duration."""
    server = ThreadedServer(app).start()
    try:
        yield server
    finally:
        server.stop()
