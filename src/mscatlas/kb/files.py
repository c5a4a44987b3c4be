"""Writing output files atomically: a reader (or a crash) never sees half a file.

Each file is written to a temporary file in the same directory, flushed to disk, then renamed
over the target (a rename within one file system is atomic). A failure (disk full, no
permission, a path that is a directory) raises :class:`OutputError` naming the path and leaves
the old file as it was. A symlink is not followed unless ``force`` is given: writing through
it would replace a file elsewhere.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path

__all__ = ["OutputError", "atomic_write", "atomic_write_chunks", "replace_directory"]


class OutputError(Exception):
    """An output could not be written; the old one (if any) is intact."""


def _check_target(path: Path, *, force: bool, kind: str) -> None:
    if path.is_symlink() and not force:
        raise OutputError(f"{path} is a symbolic link (to {path.readlink()}); not following it (--force)")
    if kind == "file" and path.is_dir():
        raise OutputError(f"{path} is a directory, not a file")
    if kind == "directory" and path.exists() and not path.is_dir():
        raise OutputError(f"{path} exists and is not a directory")


def atomic_write(path: Path, data: bytes, *, force: bool = False) -> None:
    """Write ``data`` to ``path`` atomically (see the module docstring)."""
    atomic_write_chunks(path, [data], force=force)


def atomic_write_chunks(path: Path, chunks: Iterable[bytes], *, force: bool = False) -> int:
    """Write ``chunks`` one after another to ``path`` atomically; returns the bytes written.

    A chunk that fails to come (an error while producing it) leaves the old file unchanged."""
    _check_target(path, force=force, kind="file")
    target = path.resolve() if path.is_symlink() else path
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    except OSError as exc:
        raise OutputError(f"cannot write {path}: {exc.strerror or exc}") from exc
    tmp = Path(tmp_name)
    try:
        written = 0
        with os.fdopen(fd, "wb") as handle:
            for chunk in chunks:
                written += handle.write(chunk)
            handle.flush()
            os.fsync(handle.fileno())
        if target.exists():
            shutil.copymode(target, tmp)
        else:
            tmp.chmod(0o666 & ~_umask())
        tmp.replace(target)
    except OSError as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise OutputError(f"cannot write {path}: {exc.strerror or exc}; the old file is unchanged") from exc
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    return written


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def replace_directory(
    out: Path, files: Mapping[str, bytes | Iterable[bytes]], *, marker: str, force: bool = False
) -> None:
    """Make ``out`` a directory holding exactly ``files`` (names to bytes, or to byte chunks
    written in the order of ``files``: a streamed release), all or nothing.

    The files are written to a new directory beside ``out``, which then takes its place. An
    existing ``out`` is replaced only when it is empty or holds ``marker`` (it is an earlier
    output of the same kind): any other directory is refused rather than deleted.
    """
    _check_target(out, force=force, kind="directory")
    target = out.resolve() if out.is_symlink() else out
    if target.is_dir() and any(target.iterdir()) and not (target / marker).is_file():
        raise OutputError(f"{out} is a directory that is not a release (no {marker}); choose another --out")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
    except OSError as exc:
        raise OutputError(f"cannot write {out}: {exc.strerror or exc}") from exc
    old = None
    try:
        for name, content in files.items():
            with (staging / name).open("wb") as handle:
                for chunk in [content] if isinstance(content, bytes) else content:
                    handle.write(chunk)
                handle.flush()
                os.fsync(handle.fileno())
        staging.chmod(0o777 & ~_umask())
        if target.exists():
            old = target.with_name(f".{target.name}.{staging.name}.old")
            target.replace(old)
        staging.replace(target)
    except OSError as exc:
        if old is not None and not target.exists():
            old.replace(target)  # put the previous release back
            old = None
        shutil.rmtree(staging, ignore_errors=True)
        raise OutputError(f"cannot write {out}: {exc.strerror or exc}; the old release is unchanged") from exc
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
