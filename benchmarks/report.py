"""Write one benchmark's results into its own section of BENCHMARKS.md.

Each benchmark owns the text between ``<!-- bench:NAME -->`` and ``<!-- /bench:NAME -->``; running
one benchmark replaces its section and leaves the others as they were.
"""

from __future__ import annotations

import os
import platform
import re
from datetime import datetime, timezone
from pathlib import Path

BENCHMARKS_MD = Path(__file__).resolve().parent.parent / "BENCHMARKS.md"

HEADER = """# Benchmarks

Measured by the scripts in `benchmarks/` (`make bench` runs them all; each can run alone with
`.venv/bin/python -m benchmarks.<name>`). Ratios compare things measured side by side in the same
run on the same machine, so they hold on other hardware better than the absolute figures do.
"""


def machine_line() -> str:
    return (
        f"{platform.system()} {platform.machine()}, {os.cpu_count()} CPUs, "
        f"Python {platform.python_version()}, measured {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC"
    )


def write_section(name: str, markdown: str, path: Path = BENCHMARKS_MD) -> None:
    start, end = f"<!-- bench:{name} -->", f"<!-- /bench:{name} -->"
    block = f"{start}\n{markdown.strip()}\n\n_{machine_line()}_\n{end}"
    text = path.read_text(encoding="utf-8") if path.exists() else HEADER
    pattern = re.compile(re.escape(start) + r".*?" + re.escape(end), re.DOTALL)
    if pattern.search(text):
        text = pattern.sub(lambda _: block, text)
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    path.write_text(text, encoding="utf-8")
