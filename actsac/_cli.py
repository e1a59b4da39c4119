"""Small helpers shared by the console scripts."""

import importlib.util
import sys
from typing import NoReturn


def first_line(exc: BaseException, limit: int = 300) -> str:
    """An exception as one short line (library errors often span many)."""
    text = str(exc).strip()
    return (text.splitlines()[0] if text else type(exc).__name__)[:limit]


def fail(message: str, code: int = 1) -> NoReturn:
    print(f"error: {message}", file=sys.stderr)
    raise SystemExit(code)


def require_training_side(command: str, modules: tuple[str, ...]) -> None:
    """On a robot-only install (no PyTorch...), a training-side command says in one line what to install."""
    def absent(module: str) -> bool:
        try:
            return importlib.util.find_spec(module) is None
        except ValueError:  # in sys.modules as None: blocked on purpose
            return True

    missing = [m for m in modules if absent(m)]
    if missing:
        fail(f"{command} needs {', '.join(missing)}, not installed here (a robot-side install): "
             f"pip install 'actsac[train,cpu]'")
