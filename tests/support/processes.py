"""Work spread over spawned processes, as a deployment's task processes (or machines) run it."""

from __future__ import annotations

import json
import multiprocessing
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any


def run_spawned(
    target: Callable[..., None], arguments: Sequence[tuple[Any, ...]], *, timeout: float = 120
) -> None:
    """``target(*args)`` in a spawned process per entry of ``arguments`` (the environment carries the
    Airflow connections), all at once; each must exit 0."""
    context = multiprocessing.get_context("spawn")
    processes = [context.Process(target=target, args=args) for args in arguments]
    for process in processes:
        process.start()
    for process in processes:
        process.join(timeout)
    assert [process.exitcode for process in processes] == [0] * len(processes)


def assert_one_budget(outs: Sequence[Path], *, sends: int, limit: int, window_s: float) -> None:
    """The send times the processes wrote to ``outs`` (JSON lists), together, as one budget of
    ``limit`` per ``window_s`` spends them: any ``limit + 1`` sends span a window."""
    sent = sorted(at for out in outs for at in json.loads(out.read_text()))
    assert len(sent) == sends
    assert all(sent[i + limit] - sent[i] >= window_s - 0.01 for i in range(len(sent) - limit))
