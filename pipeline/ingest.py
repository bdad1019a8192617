"""Ingest: inputs in crawl formats -> one Parquet corpus with exact accounting.

Two steps, so a flow can run one task per input file:

1. :func:`ingest_file` reads one :class:`InputSpec`, normalises each record, rejects what
   cannot be a document (with a stable reason) and writes a *staged part* (documents and
   rejections as Parquet, in input order) plus its counts.
2. :func:`finalize_corpus` merges the staged parts in input order, drops exact duplicates
   by ``content_sha1`` (first occurrence kept, across all inputs), and writes the corpus
   directory atomically::

       CORPUS_DIR/docs/source=<name>/part-00000.parquet   (zstd, hive-partitioned by source)
       CORPUS_DIR/rejected/part-00000.parquet             (REJECTED_SCHEMA)
       CORPUS_DIR/manifest.json

For every input, ``records_read == written + exact_duplicates + rejected``. Memory does
not grow with input size: records stream in batches, and the only thing that grows is
the set of 20-byte digests used for de-duplication.

:mod:`flows.ingest` runs the two steps as Prefect tasks. :func:`ingest` is the in-process
equivalent (no Prefect): it feeds documents straight into the same corpus writer instead of
staging them, and gives the same dataset. :func:`read_corpus` reads a corpus back in a
stable order.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from pipeline import document as d
from pipeline.document import Document, ReaderStats, Rejection
from pipeline.normalize import content_sha1, make_doc_id, normalize_text, registered_domain
from pipeline.readers import (
    InputError,
    InputSpec,
    expand_input,
    left_out_entries,
    read_input,
    resolve_date,
)
from pipeline.schema import (
    CORPUS_SCHEMA,
    CORPUS_SCHEMA_VERSION,
    REJECTED_SCHEMA,
    check_schema,
)
from pipeline.storage import (
    CORPUS_OUTPUT,
    INGEST_PART_OUTPUT,
    atomic_directory,
    atomic_write_json,
    read_json,
)

__all__ = [
    "IngestOptions",
    "InputError",
    "InputSpec",
    "finalize_corpus",
    "ingest",
    "ingest_file",
    "plan_inputs",
    "read_corpus",
]

MANIFEST_NAME = "manifest.json"
DOCS_DIR = "docs"
REJECTED_DIR = "rejected"
# Files inside docs/ carry every corpus column except the partition column.
DOCS_FILE_SCHEMA = CORPUS_SCHEMA.remove(CORPUS_SCHEMA.get_field_index("source"))
PARTITIONING = ds.partitioning(pa.schema([pa.field("source", pa.string())]), flavor="hive")

_STAGE_BATCH_ROWS = 4096
_STAGE_BATCH_CHARS = 16_000_000
# Corpus row groups: large enough for fast scans, small enough to bound writer memory.
_ROW_GROUP_ROWS = 65_536
_ROW_GROUP_BYTES = 32 << 20
_BUFFERED_BYTES_LIMIT = 64 << 20

ProgressCallback = Callable[[str, int, int], None]


@dataclass
class IngestOptions:
    """Options of one ingest run.

    ``source`` overrides every record's source; ``fmt`` forces the input format;
    ``text_field`` names the text column; a normalised text longer than ``max_chars``
    characters is rejected as ``too_long``.
    """

    source: str | None = None
    fmt: str | None = None
    text_field: str = "text"
    max_chars: int = 1_000_000


def plan_inputs(
    inputs: Sequence[str | os.PathLike[str]], options: IngestOptions = IngestOptions(),
    out: str | os.PathLike[str] | None = None,
) -> list[InputSpec]:
    """Expand user inputs into specs (one per file; a folder's text files form one spec).

    Inputs keep the order given; a folder's files are sorted. Walking a folder leaves out hidden
    names, the corpus directory ``out`` (when it lies inside an input folder) and every
    recognisable distill-audit output (see :func:`skipped_outputs`), so a re-run does not read
    its own output back. Raises :class:`InputError`
    (one-line message) for a missing path, an unreadable explicit file or an unknown format.
    """
    if not inputs:
        raise InputError("no input given")
    specs: list[InputSpec] = []
    seen: set[tuple[Path, tuple[Path, ...]]] = set()
    exclude = frozenset() if out is None else frozenset({Path(out).resolve()})
    for item in inputs:
        for spec in expand_input(item, options.fmt, exclude):
            key = (spec.path.resolve(), tuple(f.resolve() for f in spec.files))
            if key not in seen:  # the same file given twice is read once
                seen.add(key)
                specs.append(spec)
    return specs


# --------------------------------------------------------------------------- step 1


def _file_info(path: Path, fmt: str) -> dict[str, Any]:
    info: dict[str, Any] = {"path": str(path), "format": fmt, "size": None, "sha256": None}
    try:
        with open(path, "rb") as handle:
            info["sha256"] = hashlib.file_digest(handle, "sha256").hexdigest()
        info["size"] = path.stat().st_size
    except OSError as exc:
        info["error"] = exc.strerror or str(exc)
    return info


def _spec_info(spec: InputSpec) -> dict[str, Any]:
    """size and sha256 of an input; a text folder also lists each of its files."""
    files = [_file_info(f, spec.fmt) for f in spec.files]
    if spec.fmt == "text" and spec.path.is_dir():
        sizes = [f["size"] for f in files]
        return {"size": sum(s for s in sizes if s is not None), "sha256": None, "files": files}
    return {"size": files[0]["size"], "sha256": files[0]["sha256"]}


def _stage_name(spec: InputSpec) -> str:
    key = f"{spec.fmt}\x00{spec.path.resolve()}\x00" + "\x00".join(str(f) for f in spec.files)
    return "part-" + hashlib.sha1(key.encode()).hexdigest()[:20]


class _RowBuffer:
    """Rows (tuples in schema column order) collected and handed to ``sink`` as Arrow tables."""

    def __init__(self, schema: pa.Schema, sink: Callable[[pa.Table], None]) -> None:
        self.schema = schema
        self.sink = sink
        self.rows: list[tuple] = []
        self.chars = 0

    def append(self, row: tuple, chars: int = 0) -> None:
        self.rows.append(row)
        self.chars += chars
        if len(self.rows) >= _STAGE_BATCH_ROWS or self.chars >= _STAGE_BATCH_CHARS:
            self.flush()

    def flush(self) -> None:
        if not self.rows:
            return
        columns = zip(*self.rows, strict=True)
        arrays = [pa.array(values, type=f.type) for f, values in zip(self.schema, columns, strict=True)]
        self.sink(pa.Table.from_arrays(arrays, schema=self.schema))
        self.rows = []
        self.chars = 0


def _reject_row(rej: Rejection) -> tuple:
    return (rej.reason, rej.input_path, rej.position, rej.detail, rej.excerpt)


def _read_spec(spec: InputSpec, options: IngestOptions, docs_sink: Callable[[pa.Table], None],
               rejected_sink: Callable[[pa.Table], None]) -> dict:
    """Read, normalise and check one input, handing documents and rejections to the sinks in order."""
    started = time.perf_counter()
    stats = ReaderStats()
    staged = 0
    rejected: dict[str, int] = {}
    dumps = orjson.dumps
    meta_opts = orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS
    docs = _RowBuffer(CORPUS_SCHEMA, docs_sink)
    rejects = _RowBuffer(REJECTED_SCHEMA, rejected_sink)
    for item in read_input(spec, options.text_field, stats):
        if isinstance(item, Document):
            row, rej = _document_row(item, spec, options, stats, dumps, meta_opts)
            if row is not None:
                docs.append(row, row[6])
                staged += 1
                continue
            item = rej
        assert isinstance(item, Rejection)
        rejected[item.reason] = rejected.get(item.reason, 0) + 1
        rejects.append(_reject_row(item))
    docs.flush()
    rejects.flush()
    n_rejected = sum(rejected.values())
    return {
        "path": str(spec.path),
        "format": spec.fmt,
        "default_source": spec.default_source,
        **_spec_info(spec),
        "records_read": staged + n_rejected,
        "staged": staged,
        "rejected": n_rejected,
        "rejected_by_reason": dict(sorted(rejected.items())),
        "warc_records_skipped": dict(sorted(stats.skipped.items())),
        "invalid_utf8": stats.invalid_utf8,
        "invalid_dates": stats.invalid_dates,
        "seconds": round(time.perf_counter() - started, 3),
    }


def ingest_file(spec: InputSpec, staging_dir: Path, options: IngestOptions = IngestOptions()) -> dict:
    """Read one input into a staged part under ``staging_dir``; return its counts.

    The part (``docs.parquet``, ``rejected.parquet``) is written atomically, so a retried
    task simply replaces it. The returned dict is JSON-serialisable: ``path``, ``format``,
    ``default_source``, ``size``, ``sha256`` (``files`` with both per file for a text
    folder), ``records_read``,
    ``staged``, ``rejected``, ``rejected_by_reason``, ``warc_records_skipped``,
    ``invalid_utf8``, ``invalid_dates``, ``seconds`` and ``part_dir``.
    """
    part_dir = Path(staging_dir) / _stage_name(spec)
    with atomic_directory(part_dir, INGEST_PART_OUTPUT) as tmp:
        # Staged parts live only until the merge: cheap LZ4 instead of the corpus' zstd.
        docs_writer = pq.ParquetWriter(tmp / "docs.parquet", CORPUS_SCHEMA, compression="lz4")
        rej_writer = pq.ParquetWriter(tmp / "rejected.parquet", REJECTED_SCHEMA, compression="zstd")
        try:
            result = _read_spec(spec, options, docs_writer.write_table, rej_writer.write_table)
        finally:
            docs_writer.close()
            rej_writer.close()
        atomic_write_json(tmp / INGEST_PART_OUTPUT.marker, {"kind": "ingest_part", "input": str(spec.path)})
    result["part_dir"] = str(part_dir)
    return result


def _document_row(doc: Document, spec: InputSpec, options: IngestOptions, stats: ReaderStats,
                  dumps: Any, meta_opts: int) -> tuple[tuple | None, Rejection | None]:
    text = normalize_text(doc.text)
    if not text:
        return None, Rejection(d.EMPTY_TEXT, doc.position, doc.input_path, "no text after normalisation",
                               d.excerpt(doc.text))
    n_chars = len(text)
    if n_chars > options.max_chars:
        return None, Rejection(d.TOO_LONG, doc.position, doc.input_path,
                               f"{n_chars} characters > max_chars {options.max_chars}", d.excerpt(text))
    sha = content_sha1(text)
    source = options.source or doc.source or spec.default_source
    resolve_date(doc, stats)
    meta = doc.meta
    # The record's own id and prompt have no corpus column; keep them with the leftovers.
    extra = {k: v for k, v in (("id", doc.id), ("prompt_id", doc.prompt_id), ("prompt", doc.prompt))
             if v is not None and k not in meta}
    if extra and "warc_record_id" not in meta:
        meta = {**meta, **extra}
    # In CORPUS_SCHEMA column order.
    return (
        make_doc_id(source, sha),
        source,
        doc.url,
        registered_domain(doc.url),
        doc.crawl_date,
        text,
        n_chars,
        sha,
        doc.fmt,
        dumps(meta, option=meta_opts, default=str).decode() if meta else None,
    ), None


# --------------------------------------------------------------------------- step 2


class _PartitionWriter:
    """docs/source=<name>/part-00000.parquet, written in large row groups."""

    def __init__(self, docs_dir: Path, source: str) -> None:
        self.dir = docs_dir / f"source={quote(source, safe='')}"
        self.writer: pq.ParquetWriter | None = None
        self.batches: list[pa.RecordBatch] = []
        self.rows = 0
        self.bytes = 0
        self.written = 0

    def append(self, batch: pa.RecordBatch) -> None:
        self.batches.append(batch)
        self.rows += batch.num_rows
        self.bytes += batch.nbytes
        if self.rows >= _ROW_GROUP_ROWS or self.bytes >= _ROW_GROUP_BYTES:
            self.flush()

    def flush(self) -> None:
        if not self.rows:
            return
        if self.writer is None:
            self.dir.mkdir(parents=True, exist_ok=True)
            self.writer = pq.ParquetWriter(self.dir / "part-00000.parquet", DOCS_FILE_SCHEMA,
                                           compression="zstd")
        table = pa.Table.from_batches(self.batches, schema=DOCS_FILE_SCHEMA)
        self.writer.write_table(table, row_group_size=self.rows)
        self.written += self.rows
        self.batches = []
        self.rows = 0
        self.bytes = 0
        del table
        # Hand freed buffers back to the OS, so RSS tracks what is really held.
        pa.default_memory_pool().release_unused()

    def close(self) -> None:
        self.flush()
        if self.writer is not None:
            self.writer.close()


def _split_by_source(batch: pa.RecordBatch) -> Iterator[tuple[str, pa.RecordBatch]]:
    sources = batch.column("source")
    body = batch.drop_columns(["source"])
    unique = pc.unique(sources).to_pylist()
    if len(unique) == 1:
        yield unique[0], body
        return
    for source in unique:
        yield source, body.filter(pc.equal(sources, source))


def _add(total: dict[str, int], part: dict[str, int]) -> None:
    for key, value in part.items():
        total[key] = total.get(key, 0) + value


class _CorpusWriter:
    """Writes docs/ and rejected/ under a (temporary) corpus directory, de-duplicating globally.

    Inputs are added in order: documents and rejections of one input, then
    :meth:`end_input` with that input's read counts; :meth:`manifest` sums everything up.
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        self.docs_dir = root / DOCS_DIR
        self.docs_dir.mkdir()
        (root / REJECTED_DIR).mkdir()
        self.partitions: dict[str, _PartitionWriter] = {}
        self.rejected_writer = pq.ParquetWriter(root / REJECTED_DIR / "part-00000.parquet", REJECTED_SCHEMA,
                                                compression="zstd")
        self.seen: set[bytes] = set()
        self.by_source: dict[str, int] = {}
        self.inputs: list[dict] = []
        self._written = 0
        self._duplicates = 0

    def add_documents(self, data: pa.Table | pa.RecordBatch) -> None:
        batches = data.to_batches() if isinstance(data, pa.Table) else [data]
        for batch in batches:
            keep = []
            seen = self.seen
            for digest in batch.column("content_sha1").to_pylist():
                key = bytes.fromhex(digest)
                if key in seen:
                    keep.append(False)
                else:
                    seen.add(key)
                    keep.append(True)
            n_keep = sum(keep)
            self._duplicates += len(keep) - n_keep
            if not n_keep:
                continue
            kept = batch if n_keep == len(keep) else batch.filter(pa.array(keep))
            self._written += n_keep
            for source, piece in _split_by_source(kept):
                writer = self.partitions.get(source)
                if writer is None:
                    writer = self.partitions[source] = _PartitionWriter(self.docs_dir, source)
                writer.append(piece)
                self.by_source[source] = self.by_source.get(source, 0) + piece.num_rows
            if sum(w.bytes for w in self.partitions.values()) > _BUFFERED_BYTES_LIMIT:
                for writer in self.partitions.values():
                    writer.flush()

    def add_rejections(self, data: pa.Table | pa.RecordBatch) -> None:
        if isinstance(data, pa.Table):
            self.rejected_writer.write_table(data)
        else:
            self.rejected_writer.write_batch(data)

    def end_input(self, result: dict) -> None:
        """Close the current input's accounting with its read result (from ``_read_spec``)."""
        if self._written + self._duplicates != result["staged"]:
            raise RuntimeError(f"{result['path']}: {self._written + self._duplicates} documents merged, "
                               f"{result['staged']} read")
        entry = {k: v for k, v in result.items() if k not in ("staged", "part_dir")}
        entry["written"] = self._written
        entry["exact_duplicates"] = self._duplicates
        self.inputs.append(entry)
        self._written = self._duplicates = 0

    def close(self) -> None:
        try:
            for writer in self.partitions.values():
                writer.close()
        finally:
            self.rejected_writer.close()

    def manifest(self, options: IngestOptions, timings: dict[str, float],
                 ignored_files: Sequence[str] = (), skipped_outputs: Sequence[dict] = ()) -> dict:
        totals: dict[str, Any] = {}
        keys = ("records_read", "written", "exact_duplicates", "rejected", "invalid_utf8", "invalid_dates")
        for key in keys:
            totals[key] = sum(entry[key] for entry in self.inputs)
        if totals["records_read"] != totals["written"] + totals["exact_duplicates"] + totals["rejected"]:
            raise RuntimeError(f"ingest accounting does not add up: {totals}")
        rejected_by_reason: dict[str, int] = {}
        skipped: dict[str, int] = {}
        for entry in self.inputs:
            _add(rejected_by_reason, entry["rejected_by_reason"])
            _add(skipped, entry["warc_records_skipped"])
        totals["rejected_by_reason"] = dict(sorted(rejected_by_reason.items()))
        totals["warc_records_skipped"] = dict(sorted(skipped.items()))
        totals["written_by_source"] = dict(sorted(self.by_source.items()))
        return {
            "kind": "corpus_manifest",
            "schema_version": CORPUS_SCHEMA_VERSION,
            "options": asdict(options),
            "inputs": self.inputs,
            "counts": totals,
            "ignored_files": list(ignored_files),
            "skipped_outputs": list(skipped_outputs),
            "timings": {k: round(v, 3) for k, v in timings.items()},
        }


def finalize_corpus(file_results: list[dict], staging_dir: Path, out: Path,
                    options: IngestOptions = IngestOptions(), ignored_files: Sequence[str] = (),
                    skipped: Sequence[dict] = ()) -> dict:
    """Merge staged parts (in the order given) into the corpus at ``out``; return the manifest.

    Exact duplicates (same ``content_sha1``) are dropped across all inputs, first occurrence
    kept. ``out`` is replaced atomically; ``staging_dir`` is left for the caller to remove.
    ``ignored_files`` (hidden files skipped in input folders) and ``skipped`` (output folders
    skipped in them, ``[{"path", "reason"}]``) are recorded in the manifest.
    """
    started = time.perf_counter()
    with atomic_directory(out, CORPUS_OUTPUT) as tmp:
        corpus = _CorpusWriter(tmp)
        try:
            for result in file_results:
                part = Path(result["part_dir"])
                # pre_buffer=False: read one row group at a time instead of caching the whole file.
                with pq.ParquetFile(part / "docs.parquet", pre_buffer=False) as staged:
                    for batch in staged.iter_batches(batch_size=8192):
                        corpus.add_documents(batch)
                with pq.ParquetFile(part / "rejected.parquet", pre_buffer=False) as rejected:
                    for batch in rejected.iter_batches(batch_size=8192):
                        corpus.add_rejections(batch)
                corpus.end_input(result)
        finally:
            corpus.close()
        manifest = corpus.manifest(options, {
            "read_seconds": sum(r["seconds"] for r in file_results),
            "finalize_seconds": time.perf_counter() - started,
        }, ignored_files, skipped)
        atomic_write_json(tmp / MANIFEST_NAME, manifest)
    return manifest


# --------------------------------------------------------------------------- in-process run


def ingest(inputs: Sequence[str | os.PathLike[str]], out: str | os.PathLike[str],
           options: IngestOptions = IngestOptions(), progress: ProgressCallback | None = None) -> dict:
    """Ingest ``inputs`` into the corpus directory ``out`` in this process; return the manifest.

    Same result as the flow (staged parts merged by :func:`finalize_corpus`), but documents
    go straight to the corpus writer, which saves writing and re-reading staged parts.
    ``progress(label, done, total)`` is called before each input and once at the end
    (``done``/``total`` count inputs).
    """
    started = time.perf_counter()
    specs = plan_inputs(inputs, options, out)
    # listed before this run writes anything next to ``out`` (its temporary directory)
    ignored, skipped = left_out_entries(inputs, out)  # one walk of the input folders
    total = len(specs)
    read_seconds = 0.0
    with atomic_directory(out, CORPUS_OUTPUT) as tmp:
        corpus = _CorpusWriter(tmp)
        try:
            for done, spec in enumerate(specs):
                if progress is not None:
                    progress(str(spec.path), done, total)
                result = _read_spec(spec, options, corpus.add_documents, corpus.add_rejections)
                corpus.end_input(result)
                read_seconds += result["seconds"]
        finally:
            corpus.close()
        seconds = time.perf_counter() - started
        manifest = corpus.manifest(options, {
            "read_seconds": read_seconds,
            "finalize_seconds": seconds - read_seconds,
            "total_seconds": seconds,
        }, ignored, skipped)
        atomic_write_json(tmp / MANIFEST_NAME, manifest)
    if progress is not None:
        progress("done", total, total)
    return manifest


# --------------------------------------------------------------------------- reading back


def open_corpus(corpus_dir: str | os.PathLike[str]) -> ds.Dataset:
    """The corpus ``docs/`` dataset (``source`` from the partition), after a schema check."""
    root = Path(corpus_dir)
    manifest_path = root / MANIFEST_NAME
    if not manifest_path.is_file():
        raise InputError(f"not a corpus directory (no {MANIFEST_NAME}): {root}")
    manifest = read_json(manifest_path)
    if manifest.get("schema_version") != CORPUS_SCHEMA_VERSION:
        raise InputError(f"corpus {root} has schema version {manifest.get('schema_version')!r}, "
                         f"this code reads {CORPUS_SCHEMA_VERSION!r}: re-run ingest")
    dataset = ds.dataset(str(root / DOCS_DIR), format="parquet", partitioning=PARTITIONING)
    if dataset.files:
        check_schema(dataset.schema, CORPUS_SCHEMA, f"corpus {root}")
    return dataset


def read_corpus(corpus_dir: str | os.PathLike[str], columns: list[str] | None = None,
                batch_size: int = 4096) -> Iterator[pa.RecordBatch]:
    """Stream the corpus documents as record batches, in a stable order.

    Order: partitions by their directory name, then rows in the order they were written
    (input order). ``columns`` defaults to every corpus column, in ``CORPUS_SCHEMA`` order.
    Raises :class:`InputError` when ``corpus_dir`` is not a corpus, and
    :class:`pipeline.schema.SchemaMismatchError` when it has another schema version.
    """
    dataset = open_corpus(corpus_dir)
    names = list(columns) if columns is not None else CORPUS_SCHEMA.names
    for fragment in sorted(dataset.get_fragments(), key=lambda f: f.path):
        yield from fragment.to_batches(columns=names, schema=dataset.schema, batch_size=batch_size)
