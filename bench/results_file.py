"""bench/RESULTS.md: each benchmark owns one `## <title>` section and rewrites only that one."""

from __future__ import annotations

import os
import re
from pathlib import Path

RESULTS = Path(__file__).resolve().with_name("RESULTS.md")


def put_section(title: str, section: str) -> None:
    """Replaces the `## <title>` section (up to the next `## `) with `section`, which starts with that
    heading, or appends it; the other sections stay as they are. The file is replaced whole, so a
    benchmark stopped half-way never leaves it half-written."""
    text = RESULTS.read_text() if RESULTS.exists() else "# Benchmark results\n"
    pattern = re.compile(rf"^## {re.escape(title)}\n.*?(?=^## |\Z)", re.M | re.S)
    if pattern.search(text):
        text = pattern.sub(lambda _: section.rstrip("\n") + "\n\n", text, count=1)
    else:
        text = text.rstrip("\n") + "\n\n" + section
    temporary = RESULTS.with_name(f".RESULTS.md.{os.getpid()}")
    temporary.write_text(text.rstrip("\n") + "\n")
    os.replace(temporary, RESULTS)
