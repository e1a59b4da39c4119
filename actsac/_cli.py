"""Small helpers shared by the console scripts."""

import sys
from typing import NoReturn


def first_line(exc: BaseException, limit: int = 300) -> str:
    """An exception as one short line (library errors often span many)."""
    text = str(exc).strip()
    return (text.splitlines()[0] if text else type(exc).__name__)[:limit]


def fail(message: str, code: int = 1) -> NoReturn:
    print(f"error: {message}", file=sys.stderr)
    raise SystemExit(code)
