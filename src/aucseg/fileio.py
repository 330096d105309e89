"""One atomic writer for every file aucseg saves (checkpoints, configs, JSON, PNG, logs).

A file is written to a temporary name beside its destination, flushed to disk and renamed
over it, so a reader (or a run killed mid-write) sees either the old file or the new one,
never half of one. Files get the normal mode (``0o666`` minus the umask), not the ``0o600``
of temporary files. A failed write removes its temporary file and raises one
:class:`~aucseg.errors.InputError` line naming the path and the OS reason (disk full,
read-only, permission, a directory in the way).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from aucseg.errors import InputError

__all__ = [
    "TMP_SUFFIX",
    "atomic_write",
    "check_writable_dir",
    "remove_stale_temps",
    "write_bytes_atomic",
    "write_text_atomic",
]

TMP_SUFFIX = ".aucseg-tmp"


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # e.g. platforms without directory fds
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def os_error_message(path: str | Path, exc: OSError) -> str:
    """``cannot write PATH: REASON; FIX`` for an OS error while writing ``path``."""
    reason = exc.strerror or type(exc).__name__
    if isinstance(exc, IsADirectoryError) or Path(path).is_dir():
        fix = "a directory is in the way; remove or rename it"
    elif exc.errno == 28:  # ENOSPC
        fix = "free disk space or choose another output location"
    else:
        fix = "check the permissions or choose another output location"
    return f"cannot write {path}: {reason}; {fix}"


def atomic_write(path: str | Path, write: Callable[[BinaryIO], None]) -> Path:
    """Write ``path`` atomically: ``write(f)`` fills a temporary file that replaces ``path``.

    Raises:
        InputError: the file cannot be written (the temporary file is removed).
    """
    path = Path(path)
    tmp_name = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=TMP_SUFFIX)
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp_name, 0o666 & ~_umask())
        os.replace(tmp_name, path)
        tmp_name = None
        _fsync_dir(path.parent)
    except OSError as exc:
        raise InputError(os_error_message(path, exc)) from exc
    finally:
        if tmp_name is not None:
            Path(tmp_name).unlink(missing_ok=True)
    return path


def write_bytes_atomic(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically."""
    return atomic_write(path, lambda f: f.write(data))


def write_text_atomic(path: str | Path, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    return write_bytes_atomic(path, text.encode("utf-8"))


def remove_stale_temps(folder: str | Path) -> list[Path]:
    """Delete temporary files that interrupted writes left in ``folder``; return them."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    stale = [p for p in folder.glob(f".*{TMP_SUFFIX}") if p.is_file()]
    for p in stale:
        p.unlink(missing_ok=True)
    return stale


def check_writable_dir(folder: str | Path, what: str) -> Path:
    """Create ``folder`` if needed and prove it writable, before any long work starts.

    Args:
        what: the option that named it, e.g. ``"--work-dir"``.

    Raises:
        InputError: it is a file, or cannot be created or written.
    """
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise InputError(f"{what} {folder} is a file, not a directory; give a directory path")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise InputError(f"{what} {folder} is not writable: {reason}; choose another") from None
    return folder
