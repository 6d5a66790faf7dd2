"""Atomic file writes: write to a temporary file in the same folder, fsync, then rename.

Only regular files or new paths are ever written: ``check_output_path`` refuses folders, device
nodes, FIFOs, sockets and system paths (``/dev``, ``/proc``, ``/sys``) with a clear message, and
``atomic_path`` checks again right before its rename, so a device node such as ``/dev/full`` is never
replaced by a regular file. A symbolic link to a regular file is followed (the link stays, its target
is replaced).
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
import tempfile
from pathlib import Path
from typing import Iterator

from sigverify.errors import OutputPathError

#: folders whose files are devices or kernel interfaces, never data files
SYSTEM_PREFIXES = ("/dev", "/proc", "/sys")


def file_kind(mode: int) -> str:
    """What a non-regular file is, for a message ("a folder", "a device", "a named pipe (FIFO)", "a
    socket"; "not a regular file" otherwise). Used by the writers here and the image reader."""
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISFIFO(mode):
        return "a named pipe (FIFO)"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def check_output_path(path: str | os.PathLike, what: str = "output file") -> Path:
    """The path to write for ``path``: refuse anything but a regular file or a new path.

    Returns the resolved path (a symlink to a regular file resolves to its target)."""
    raw = Path(path)
    if str(raw) in ("", "."):
        raise OutputPathError(f"no {what} given")
    try:
        resolved = raw.resolve()
    except (OSError, RuntimeError) as exc:
        raise OutputPathError(f"{raw}: cannot be used as the {what} ({exc})") from exc
    for pre in SYSTEM_PREFIXES:
        if str(resolved) == pre or str(resolved).startswith(pre + os.sep):
            raise OutputPathError(f"{raw}: is a system path ({pre}); choose a normal file as the {what}")
    try:
        st = os.stat(resolved)
    except FileNotFoundError:
        parent = resolved.parent
        if parent.exists() and not parent.is_dir():
            raise OutputPathError(f"{raw}: {parent} is not a folder") from None
        return resolved
    except OSError as exc:
        if exc.errno == errno.ENAMETOOLONG:
            raise OutputPathError(f"{raw}: the path is too long for the {what}") from exc
        raise OutputPathError(f"{raw}: cannot be used as the {what} ({exc.strerror or exc})") from exc
    if not stat.S_ISREG(st.st_mode):
        raise OutputPathError(f"{raw}: is {file_kind(st.st_mode)}, not a regular file; choose a file name for the {what}")
    return resolved


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it replaces ``path`` in one rename.

    On any exception the temporary file is removed and ``path`` is left untouched. ``path`` must be a
    regular file or a new path (``OutputPathError`` otherwise, before and again right before the rename).
    """
    target = check_output_path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        with open(tmp_path, "rb+") as fh:
            fh.flush()
            os.fsync(fh.fileno())
        with contextlib.suppress(FileNotFoundError):  # never rename over a non-regular file
            st = os.lstat(target)
            if not stat.S_ISREG(st.st_mode):
                raise OutputPathError(f"{target}: became {file_kind(st.st_mode)} while writing; not replaced")
        os.replace(tmp_path, target)
        with contextlib.suppress(OSError):
            dfd = os.open(target.parent, os.O_RDONLY)
            try:
                os.fsync(dfd)
            finally:
                os.close(dfd)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp_path.unlink()
        raise


def write_bytes_atomic(path: str | os.PathLike, data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def write_text_atomic(path: str | os.PathLike, text: str, encoding: str = "utf-8") -> None:
    write_bytes_atomic(path, text.encode(encoding))
