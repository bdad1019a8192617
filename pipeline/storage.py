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
from dataclasses import dataclass
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


# tempfile creates files 0600 and directories 0700 (private until renamed into place); the
# outputs themselves get the modes the user's umask gives new files (0644 / 0755 under the usual
# 022), so a report or corpus is readable by whoever may read the folder. os.umask can only be
# read by setting it: done once, at import.
_UMASK = os.umask(0o022)
os.umask(_UMASK)
FILE_MODE = 0o666 & ~_UMASK
DIR_MODE = 0o777 & ~_UMASK


def _temp_file_beside(target: Path) -> tuple[int, str]:
    """``mkstemp`` next to ``target`` (same file system, so ``os.replace`` is atomic), with the
    mode a new file would get."""
    fd, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.fchmod(fd, FILE_MODE)
    return fd, name


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file and ``os.replace``."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = _temp_file_beside(target)
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


class OutputExistsError(Exception):
    """An output path exists and is not this tool's output of the expected kind; the message is a
    one-line reason for the user (nothing was written or removed)."""


@dataclass(frozen=True)
class OutputKind:
    """How to recognise a directory this tool wrote: a JSON ``marker`` file it always writes,
    whose object passes ``check``.

    :func:`atomic_directory` replaces an existing directory only when it is recognised as the
    kind being written (or is empty); walking input folders skips every recognised output.
    ``legacy_markers`` are names the marker had in earlier versions: a directory holding one is
    recognised too, so a re-run replaces an output of the old layout.
    """

    name: str
    marker: str
    check: Callable[[dict], bool]
    legacy_markers: tuple[str, ...] = ()

    def marker_path(self, path: str | os.PathLike[str]) -> Path | None:
        """The marker file (current name first, then the legacy ones) that makes ``path`` this
        kind's output, written by distill-audit; None when there is none."""
        for name in (self.marker, *self.legacy_markers):
            marker = Path(path) / name
            try:
                if not marker.is_file() or marker.stat().st_size > _MAX_MARKER_BYTES:
                    continue
                meta = read_json(marker)
            except (OSError, ValueError):  # unreadable, not UTF-8 or not JSON: not ours
                continue
            if isinstance(meta, dict) and self.check(meta):
                return marker
        return None

    def recognises(self, path: str | os.PathLike[str]) -> bool:
        """True when ``path`` is a directory holding this kind's marker, written by distill-audit."""
        return self.marker_path(path) is not None


# Markers are small JSON files; a larger file of the same name is not ours (and is not read).
_MAX_MARKER_BYTES = 64 << 20

CORPUS_OUTPUT = OutputKind(
    "corpus", "manifest.json",
    lambda m: m.get("kind") == "corpus_manifest" or m.get("generator") == "bench.scenarios",
)
#: The marker starts with "_", a name Parquet dataset readers skip (pyarrow's default
#: ``ignore_prefixes``, so pandas too; Spark), so the scores directory reads as a dataset as it
#: is. Earlier versions named it ``detectors.json``, which broke ``pyarrow.parquet.read_table(SCORES_DIR)``.
SCORES_OUTPUT = OutputKind(
    "scores directory", "_detectors.json", lambda m: {"flag_rule", "format_version"} <= m.keys(),
    legacy_markers=("detectors.json",),
)
#: ``format`` is detectors.minhash.FORMAT_NAME (atomic_directory checks every index it writes).
INDEX_OUTPUT = OutputKind(
    "MinHash index", "index.json", lambda m: m.get("format") == "distill-audit/minhash-index"
)
MODEL_OUTPUT = OutputKind(
    "model directory", "metrics.json", lambda m: {"model_format", "model_id"} <= m.keys()
)
REPORT_OUTPUT = OutputKind(
    "report directory", "report.json", lambda m: {"schema_version", "teacher_share", "verdict"} <= m.keys()
)
INGEST_PART_OUTPUT = OutputKind("staged ingest part", "part.json", lambda m: m.get("kind") == "ingest_part")
#: Every kind of directory the pipeline writes (walking input folders skips them all).
OUTPUT_KINDS = (CORPUS_OUTPUT, SCORES_OUTPUT, INDEX_OUTPUT, MODEL_OUTPUT, REPORT_OUTPUT, INGEST_PART_OUTPUT)


def output_kind(path: str | os.PathLike[str]) -> OutputKind | None:
    """The kind of distill-audit output the directory ``path`` is, or None."""
    return next((kind for kind in OUTPUT_KINDS if kind.recognises(path)), None)


def check_replaceable(path: str | os.PathLike[str], kind: OutputKind) -> None:
    """Raise :class:`OutputExistsError` unless ``path`` may be (re)written as a ``kind`` output.

    It may when it does not exist, is an empty directory, or is a directory recognised as a
    ``kind`` output (a re-run replaces its own output). An existing file, a symbolic link or any
    other directory is refused: replacing it would delete what the user keeps there.
    """
    target = Path(path)
    advice = "choose an empty or new --out"
    if target.is_symlink():
        raise OutputExistsError(f"refusing to replace {target}: it is a symbolic link, not a distill-audit "
                                f"{kind.name}; give the directory it points to, or {advice}")
    if not target.exists():
        return
    if not target.is_dir():
        raise OutputExistsError(f"refusing to replace {target}: it is an existing file, not a distill-audit "
                                f"{kind.name} directory; {advice}")
    if kind.recognises(target):
        return
    try:
        with os.scandir(target) as entries:
            empty = next(entries, None) is None
    except OSError as exc:
        raise OutputExistsError(f"refusing to replace {target}: cannot list it "
                                f"({exc.strerror or exc})") from None
    if empty:
        return
    other = output_kind(target)
    why = (f"it is a distill-audit {other.name}, not a {kind.name}" if other is not None else
           f"it exists and is not a distill-audit {kind.name} (no {kind.marker} written by distill-audit)")
    raise OutputExistsError(f"refusing to replace {target}: {why}; {advice}")


@contextlib.contextmanager
def atomic_directory(path: str | os.PathLike[str], kind: OutputKind) -> Iterator[Path]:
    """Yield a temporary directory that replaces ``path`` when the block succeeds.

    ``kind`` says what is written, and so which existing ``path`` may be replaced (see
    :func:`check_replaceable`): it is checked before the block runs, so a refused output costs
    no work, and again before the rename. Whatever the block writes must include ``kind``'s
    marker file, so that the next run recognises it.

    On error the temporary directory is removed and ``path`` is left as it was. An
    existing ``path`` is replaced: it is first renamed aside, then deleted, so there is
    no moment at which ``path`` holds a mix of old and new files.
    """
    target = Path(path)
    check_replaceable(target, kind)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
    tmp.chmod(DIR_MODE)  # the mode a new directory would get (mkdtemp's is 0700)
    try:
        yield tmp
        if not kind.recognises(tmp):
            raise RuntimeError(f"{target}: the {kind.name} written lacks its {kind.marker} marker")
        check_replaceable(target, kind)  # it may have changed while the block ran
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    old = _move_aside(target) if target.exists() else None
    os.replace(tmp, target)
    _fsync_dir(target.parent)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _move_aside(target: Path) -> Path:
    """Rename ``target`` to a hidden name beside it (readers and input walks skip it); return that."""
    old = target.parent / f".{target.name}.old-{os.getpid()}"
    shutil.rmtree(old, ignore_errors=True)
    os.replace(target, old)
    return old


def remove_output(path: str | os.PathLike[str], kind: OutputKind) -> bool:
    """Delete the directory ``path`` if it is a ``kind`` output written by distill-audit; return
    whether it was.

    Anything else (nothing there, a file, a symbolic link, a folder without ``kind``'s marker) is
    left as it is. The directory is renamed aside first, so it disappears at once as a whole.
    """
    target = Path(path)
    if target.is_symlink() or not kind.recognises(target):
        return False
    old = _move_aside(target)
    _fsync_dir(target.parent)
    shutil.rmtree(old, ignore_errors=True)
    return True


def write_table(path: str | os.PathLike[str], table: pa.Table, row_group_size: int = 64_000) -> None:
    """Write one zstd Parquet file atomically."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = _temp_file_beside(target)
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
    such as a corpus's ``manifest.json`` may live in the same directory.
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
