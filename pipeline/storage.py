"""Atomic file and directory writes, and Parquet dataset helpers.

Every file or directory the pipeline produces is first written under a temporary name in
the same parent directory and then renamed into place, so a crash never leaves a half
file and a reader never sees one.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq

_T = TypeVar("_T")
#: Serialises reads of persisted arrays within a process (see :func:`load_arrays`).
_ARRAY_LOAD_LOCK = threading.RLock()
_AST_RACE = "AST constructor recursion depth mismatch"


def load_arrays(load: Callable[[], _T], attempts: int = 3) -> _T:
    """Run ``load``, a read of persisted numpy arrays, one thread at a time, and retry it when
    CPython 3.11 raises its spurious ``SystemError: AST constructor recursion depth mismatch``.

    numpy parses every ``.npy`` header (and so every array in a skops model file) with
    ``ast.literal_eval``. CPython 3.11 keeps the AST constructor's recursion depth in
    interpreter-wide state, so a parse that overlaps one in another thread can fail that way
    (python/cpython#106905). It happened in CI: a flow run's two detect tasks load the same model
    side by side. The lock keeps this package's own loads apart; the retry covers a parse in a
    thread that is not ours (the failed parse changes nothing, so trying again is safe).
    """
    for attempt in range(attempts):
        try:
            with _ARRAY_LOAD_LOCK:
                return load()
        except SystemError as exc:
            if _AST_RACE not in str(exc) or attempt == attempts - 1:
                raise
    raise AssertionError("unreachable")


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file and ``os.replace``."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp_name, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_name)
        raise
    _fsync_dir(target.parent)


def atomic_write_text(path: str | os.PathLike[str], text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | os.PathLike[str], obj: Any) -> None:
    """Write ``obj`` as indented, key-sorted JSON (stable across runs)."""
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False, default=str) + "\n")


def read_json(path: str | os.PathLike[str]) -> Any:
    with open(path, encoding="utf-8") as handle:
        return json.load(handle)


@contextlib.contextmanager
def atomic_directory(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary directory that replaces ``path`` when the block succeeds.

    On error the temporary directory is removed and ``path`` is left as it was. An
    existing ``path`` is replaced: it is first renamed aside, then deleted, so there is
    no moment at which ``path`` holds a mix of old and new files.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    old = None
    if target.exists():
        old = target.parent / f".{target.name}.old-{os.getpid()}"
        shutil.rmtree(old, ignore_errors=True)
        os.replace(target, old)
    os.replace(tmp, target)
    _fsync_dir(target.parent)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def write_table(path: str | os.PathLike[str], table: pa.Table, row_group_size: int = 64_000) -> None:
    """Write one zstd Parquet file atomically."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    try:
        pq.write_table(table, tmp_name, compression="zstd", row_group_size=row_group_size)
        os.replace(tmp_name, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_name)
        raise


def open_dataset(path: str | os.PathLike[str], schema: pa.Schema | None = None) -> ds.Dataset:
    """Open a (possibly hive-partitioned) Parquet dataset directory.

    Only ``*.parquet`` files count (sorted, hidden temporary names skipped), so side files
    such as ``detectors.json`` may live in the same directory.
    """
    root = Path(path)
    files = sorted(
        str(file)
        for file in root.rglob("*.parquet")
        if not any(part.startswith(".") for part in file.relative_to(root).parts)
    )
    return ds.dataset(
        files, format="parquet", partitioning="hive", partition_base_dir=str(root), schema=schema
    )
