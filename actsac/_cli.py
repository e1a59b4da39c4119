"""Small helpers shared by the console scripts."""

import sys


class UserError(Exception):
    """A mistake in the user's input: reported as one line, never as a traceback."""


def first_line(exc: BaseException, limit: int = 300) -> str:
    """An exception as one short line (library errors often span many)."""
    text = str(exc).strip()
    return (text.splitlines()[0] if text else type(exc).__name__)[:limit]


def fail(message: str, code: int = 1) -> "NoReturn":  # noqa: F821
    print(f"error: {message}", file=sys.stderr)
    raise SystemExit(code)
