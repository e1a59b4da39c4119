"""File helpers shared by every package (no heavy imports: the robot side uses them too)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Callable, Mapping


def atomic_write(path: str | os.PathLike, write: Callable[[str], None]) -> Path:
    """Call ``write(tmp_path)`` on a temp file beside ``path``, then rename it over ``path``.

    A reader never sees a half-written file and a failure never clobbers a good one. Raises
    FileNotFoundError naming the directory when it does not exist.
    """
    path = Path(path)
    if not path.parent.is_dir():
        raise FileNotFoundError(f"{path}: directory {path.parent} does not exist")
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(tmp)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes it owner-only; give it a normal file's permissions
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def output_problem(path: str | os.PathLike, inputs: Mapping[str, str | os.PathLike | None] = {}) -> str | None:
    """Why a new file cannot be written at ``path`` (checked before long work, not after it), or None.
    ``inputs`` names the files the run reads, e.g. {"the model": model_path}: an output must not replace one."""
    path = Path(path)
    if path.is_dir():
        return "is a directory; give a file name"
    if not path.parent.is_dir():
        return f"directory {path.parent} does not exist"
    if not os.access(path.parent, os.W_OK):
        return f"directory {path.parent} is not writable"
    for name, source in inputs.items():
        if source is not None and Path(source).is_file() and path.resolve() == Path(source).resolve():
            return f"would overwrite {name}: it is an input of this run"
    return None


def file_sha256(path: str | os.PathLike) -> str:
    import hashlib

    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
