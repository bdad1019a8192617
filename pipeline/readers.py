"""Streaming readers for the formats crawlers produce.

One reader per format turns an input into a stream of :class:`~pipeline.document.Document`
or :class:`~pipeline.document.Rejection`, in input order, one record at a time (Parquet in
small batches); no reader holds a whole file in memory.

Formats: ``jsonl`` (also NDJSON; plain, gzip or zstd, recognised by magic bytes, not by
name), ``csv``, ``tsv``, ``parquet``, ``text`` (one document per file; a folder of them is
read as one input) and ``warc`` / ``wet`` (fastwarc; HTML responses become main text with
resiliparse, WET ``conversion`` records are taken as text, every other record is skipped and
counted by kind).

Text is UTF-8 (invalid bytes become U+FFFD and are counted as ``invalid_utf8``); UTF-16 and
UTF-32 with a byte-order mark are decoded (:func:`_open_stream`). CSV/TSV detect their delimiter
among ``, ; tab |`` (:func:`_csv_delimiter`).

Fields are found by name: the text in ``text_field`` (default ``text``), and, case-insensitively,
the URL in ``url``/``uri``/``link``/``WARC-Target-URI``, the date in
``crawl_date``/``date``/``timestamp``/``WARC-Date``, the source in ``source``/``site``, an id in
``id``/``doc_id``; other fields are kept as ``meta``.

Reference and training sets are read with :func:`iter_texts`; the crawl ingest
(:mod:`pipeline.ingest`) uses :func:`expand_input` and :func:`read_input`.
"""

from __future__ import annotations

import codecs
import csv
import functools
import gzip
import io
import json
import logging
import os
import re
import sys
import zlib
from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import zstandard
from fastwarc.warc import ArchiveIterator, WarcRecordType
from resiliparse.extract.html2text import extract_plain_text
from resiliparse.parse.encoding import bytes_to_str, detect_encoding
from resiliparse.parse.html import HTMLTree

from pipeline import document as d
from pipeline.document import Document, ReaderStats, Rejection
from pipeline.normalize import decode_utf8, normalize_text, parse_date
from pipeline.storage import output_kind

log = logging.getLogger(__name__)

FORMATS = ("jsonl", "csv", "tsv", "parquet", "text", "warc", "wet")

_COMPRESSION_SUFFIXES = {".gz", ".gzip", ".zst", ".zstd"}
_FORMAT_SUFFIXES = {
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "jsonl",
    ".csv": "csv",
    ".tsv": "tsv",
    ".tab": "tsv",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".txt": "text",
    ".text": "text",
    ".md": "text",
    ".html": "text",  # one page per file, main text extracted
    ".htm": "text",
    ".warc": "warc",
    ".wet": "wet",
}
_GZIP_MAGIC = b"\x1f\x8b"
_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
_PARQUET_MAGIC = b"PAR1"
_UTF8_BOM = b"\xef\xbb\xbf"
_SNIFF_BYTES = 8192

_URL_NAMES = ("url", "uri", "link", "warc-target-uri", "target_uri", "target_url", "page_url")
_DATE_NAMES = ("crawl_date", "date", "timestamp", "warc-date", "crawled_at", "fetch_time", "fetch_date")
_SOURCE_NAMES = ("source", "site")
_ID_NAMES = ("id", "doc_id")
_PROMPT_ID_NAMES = ("prompt_id",)
_PROMPT_NAMES = ("prompt",)
_HTML_TYPES = {"text/html", "application/xhtml+xml", "application/xml", "text/xml"}


class InputError(Exception):
    """An input cannot be read at all; the message is a one-line reason for the user."""


# --------------------------------------------------------------------------- formats


def _suffixes(path: Path) -> tuple[str | None, str | None]:
    """(format from the name, compression suffix) for a file name."""
    suffixes = [s.lower() for s in path.suffixes]
    compression = None
    if suffixes and suffixes[-1] in _COMPRESSION_SUFFIXES:
        compression = suffixes.pop()
    fmt = _FORMAT_SUFFIXES.get(suffixes[-1]) if suffixes else None
    return fmt, compression


def source_name(path: Path) -> str:
    """Default source name of an input: its name without format and compression suffixes."""
    name = path.name
    while True:
        stem, ext = os.path.splitext(name)
        if ext.lower() in _COMPRESSION_SUFFIXES or ext.lower() in _FORMAT_SUFFIXES:
            name = stem
        else:
            return name or path.name


# Byte-order marks of UTF-32 before UTF-16: the UTF-32-LE mark starts with the UTF-16-LE one.
_WIDE_BOMS = ((b"\xff\xfe\x00\x00", "utf-32"), (b"\x00\x00\xfe\xff", "utf-32"),
              (b"\xff\xfe", "utf-16"), (b"\xfe\xff", "utf-16"))
_INVALID_WIDE = "distill-audit-invalid-wide"
# Undecodable UTF-16/32 becomes one byte that is never valid UTF-8 (0xFF), so the line readers
# replace it with U+FFFD and count the record as invalid_utf8, as they do for invalid UTF-8.
codecs.register_error(_INVALID_WIDE, lambda exc: ("\udcff", exc.end))


class _WideToUtf8(io.RawIOBase):
    """The UTF-8 bytes of a UTF-16 or UTF-32 text stream that starts with its byte-order mark."""

    def __init__(self, stream: BinaryIO, encoding: str) -> None:
        super().__init__()
        self._text = io.TextIOWrapper(stream, encoding=encoding, errors=_INVALID_WIDE, newline="")
        self._pending = b""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while not self._pending:
            chunk = self._text.read(1 << 14)
            if not chunk:
                return 0
            self._pending = chunk.encode("utf-8", errors="surrogateescape")
        n = min(len(buffer), len(self._pending))
        buffer[:n] = self._pending[:n]
        self._pending = self._pending[n:]
        return n

    def close(self) -> None:
        if not self.closed:
            self._text.close()
        super().close()


def _open_stream(path: Path) -> BinaryIO:
    """Open ``path`` for reading, decompressing gzip or zstd by magic bytes (not by name).

    Text in UTF-16 or UTF-32 with a byte-order mark (Windows exports) comes out as UTF-8.
    """
    stream = _open_decompressed(path)
    try:
        head = stream.peek(4)[:4]
    except (*_STREAM_ERRORS, OSError):
        return stream  # the caller's first read reports the break
    for bom, encoding in _WIDE_BOMS:
        if head.startswith(bom):
            return io.BufferedReader(_WideToUtf8(stream, encoding), buffer_size=1 << 16)
    return stream


def _open_decompressed(path: Path) -> BinaryIO:
    raw = open(path, "rb")  # noqa: SIM115 - returned to the caller, who closes it
    head = raw.read(4)
    raw.seek(0)
    if head.startswith(_GZIP_MAGIC):
        raw.close()
        return gzip.open(path, "rb")  # owns its file, unlike GzipFile(fileobj=...)
    if head == _ZSTD_MAGIC:
        reader = zstandard.ZstdDecompressor().stream_reader(raw, read_across_frames=True, closefd=True)
        return io.BufferedReader(reader, buffer_size=1 << 16)
    return raw


def _head(path: Path, n: int = _SNIFF_BYTES) -> bytes:
    """The first ``n`` decompressed bytes of ``path`` (fewer when the stream breaks early)."""
    with _open_stream(path) as stream:
        try:
            return stream.read(n)
        except (EOFError, OSError, zlib.error, zstandard.ZstdError):
            return b""


_C1_BYTES = bytes(range(0x80, 0xA0))


def looks_binary(head: bytes) -> bool:
    """True when a sample of bytes is not text: NUL bytes, control bytes, or mostly undecodable
    bytes that are not text in a single-byte encoding either.

    Latin-1 or cp1252 text is text (read as UTF-8 with U+FFFD and counted as ``invalid_utf8``,
    like any invalid UTF-8): its non-ASCII bytes are letters in 0xA0-0xFF and few are in
    0x80-0x9F (C1 controls; cp1252 quotes and dashes), where random or compressed data has an
    eighth of all its bytes.
    """
    if not head:
        return False
    if b"\x00" in head:
        return True
    text = head.decode("utf-8", errors="replace")
    bad = text.count("\ufffd")
    # A cut multi-byte character at the end of the sample costs at most 3 replacements.
    if bad > 3 and bad > len(text) * 0.1:
        c1 = len(head) - len(head.translate(None, _C1_BYTES))
        # Latin-1 text is still mostly ASCII letters, spaces and punctuation; 0xFF padding or
        # data in 0xA0-0xFF is not
        printable_ascii = sum(1 for b in head if 32 <= b < 127 or b in (9, 10, 13))
        if c1 > len(head) * 0.05 or printable_ascii < len(head) * 0.5:
            return True
    controls = sum(1 for b in head if b < 9 or 13 < b < 32)
    return controls > len(head) * 0.1


def _sniff_format(path: Path) -> str | None:
    with open(path, "rb") as handle:
        if handle.read(4) == _PARQUET_MAGIC:
            return "parquet"
    head = _head(path, 1 << 16)
    if head.startswith(b"WARC/"):
        return "wet" if b"WARC-Type: conversion" in head else "warc"
    if looks_binary(head):
        return None
    first = head.lstrip()[:1]
    if first == b"{":
        return "jsonl"
    return "text"


def detect_format(path: Path) -> str:
    """The format of ``path``: one of :data:`FORMATS`.

    The name decides when it has a known suffix (``.jsonl.gz``, ``.warc.wet.gz``, ...);
    otherwise the content does (Parquet magic, ``WARC/`` header, a JSON object, plain
    text). A directory is a text folder. Raises :class:`InputError` for a missing path or
    content of no known format.
    """
    path = Path(path)
    if not path.exists():
        raise InputError(f"input not found: {path}")
    if path.is_dir():
        return "text"
    fmt, _ = _suffixes(path)
    if fmt is not None:
        return fmt
    try:
        sniffed = _sniff_format(path)
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror or exc}") from None
    if sniffed is None:
        raise InputError(f"unknown format (not JSONL, CSV/TSV, Parquet, text or WARC): {path}")
    return sniffed


# --------------------------------------------------------------------------- inputs


@dataclass(frozen=True)
class InputSpec:
    """One unit of reading (one ingest task): a file, or the text files of one folder input.

    ``files`` is ``(path,)`` for a single file and the sorted text files for a text folder.
    ``default_source`` is used when neither ``--source`` nor a record field names the source.
    """

    path: Path
    fmt: str
    files: tuple[Path, ...]
    default_source: str


def _walk_entries(root: Path, exclude: Collection[Path] = ()) -> Iterator[tuple[Path, str | None]]:
    """Everything under ``root`` in a stable (sorted) order: ``(file, None)`` for a file to read,
    ``(path, reason)`` for a file or folder left out (and not descended into).

    Left out: hidden names (starting with ``.``: editor swap files, ``.git``, and the temporary
    ``.NAME.*`` siblings distill-audit writes next to an output), the folders in ``exclude``
    (resolved paths: the output of the run walking them) and folders that are recognisably
    distill-audit outputs (a corpus, scores, index, model or report directory), which a re-run
    must not read back as input.
    """
    for dirpath, dirnames, filenames in os.walk(root):
        here = Path(dirpath)
        skipped = {n: _skip_reason(here / n, exclude, is_dir=True) for n in dirnames}
        skipped.update({n: _skip_reason(here / n, (), is_dir=False) for n in filenames})
        dirnames[:] = sorted(n for n in dirnames if skipped[n] is None)
        walked = set(dirnames)
        for name in sorted(skipped):
            if name not in walked:
                yield here / name, skipped[name]


def _skip_reason(path: Path, exclude: Collection[Path], is_dir: bool) -> str | None:
    if path.name.startswith("."):
        return HIDDEN
    if not is_dir:
        return None
    kind = output_kind(path)
    if exclude and path.resolve() in exclude:
        return "the output directory of this run" + (f", a distill-audit {kind.name}" if kind else "")
    if kind is not None:
        return f"a distill-audit {kind.name} (has its {kind.marker}), not input"
    return None


#: The reason :func:`_walk_entries` gives for a hidden file or folder.
HIDDEN = "hidden"


def _walk(root: Path, exclude: Collection[Path] = ()) -> Iterator[Path]:
    """Files under ``root`` to read, in a stable (sorted) order (see :func:`_walk_entries`)."""
    for path, reason in _walk_entries(root, exclude):
        if reason is None:
            yield path


def _exclusions(out: str | os.PathLike[str] | None) -> frozenset[Path]:
    return frozenset() if out is None else frozenset({Path(out).resolve()})


def hidden_entries(inputs: Sequence[str | os.PathLike[str]],
                   out: str | os.PathLike[str] | None = None) -> list[str]:
    """Hidden files and folders (name starting with ``.``) that walking the input folders skips.

    They are left out on purpose (editor swap files, ``.git``, ``.DS_Store``); the manifest
    lists them so that nothing is dropped silently.
    """
    return left_out_entries(inputs, out)[0]


def skipped_outputs(inputs: Sequence[str | os.PathLike[str]],
                    out: str | os.PathLike[str] | None = None) -> list[dict[str, str]]:
    """Folders that walking the input folders leaves out because they are outputs: ``out`` (the
    run's own output) and recognisable distill-audit outputs; ``[{"path", "reason"}]``.

    The manifest lists them (``skipped_outputs``) so that nothing is dropped silently.
    """
    return left_out_entries(inputs, out)[1]


def left_out_entries(inputs: Sequence[str | os.PathLike[str]], out: str | os.PathLike[str] | None = None
                     ) -> tuple[list[str], list[dict[str, str]]]:
    """Both lists in one walk of the input folders: :func:`hidden_entries` (the manifest's
    ``ignored_files``) and :func:`skipped_outputs` (its ``skipped_outputs``)."""
    exclude = _exclusions(out)
    hidden: list[str] = []
    outputs: list[dict[str, str]] = []
    for item in inputs:
        if not Path(item).is_dir():
            continue
        for path, reason in _walk_entries(Path(item), exclude):
            if reason == HIDDEN:
                hidden.append(str(path))
            elif reason is not None:
                outputs.append({"path": str(path), "reason": reason})
    return hidden, outputs


def expand_input(path: str | os.PathLike[str], fmt: str | None = None,
                 exclude: Collection[Path] = ()) -> list[InputSpec]:
    """Turn one user-given path into input specs.

    A file is one spec. A folder is walked: every file with a structured format (JSONL,
    CSV/TSV, Parquet, WARC/WET) is its own spec (source = its name); all other files
    form one text-folder spec (one document per file, source = the folder name), in
    which a file that turns out not to be text is rejected, never dropped. ``fmt``
    forces the format of every file. Walking leaves out hidden names, the folders in ``exclude``
    (resolved paths) and distill-audit outputs (see :func:`_walk_entries`). Raises
    :class:`InputError` for a missing path, an explicitly given file that cannot be opened, or an
    unknown format.
    """
    p = Path(path)
    if fmt is not None and fmt not in FORMATS:
        raise InputError(f"unknown format {fmt!r} (choose from {', '.join(FORMATS)})")
    if not p.exists() and not p.is_symlink():
        raise InputError(f"input not found: {p}")
    if p.is_dir():
        specs: list[InputSpec] = []
        text_files: list[Path] = []
        for file in _walk(p, exclude):
            file_fmt = fmt or _suffixes(file)[0]
            if file_fmt in (None, "text"):
                text_files.append(file)
            else:
                specs.append(InputSpec(file, file_fmt, (file,), source_name(file)))
        if text_files:
            specs.append(InputSpec(p, "text", tuple(text_files), p.resolve().name or "text"))
        return specs
    try:
        with open(p, "rb"):
            pass
    except OSError as exc:
        raise InputError(f"cannot read {p}: {exc.strerror or exc}") from None
    file_fmt = fmt or detect_format(p)
    return [InputSpec(p, file_fmt, (p,), source_name(p))]


# --------------------------------------------------------------------------- fields


@dataclass(frozen=True)
class _FieldMap:
    text: str | None
    url: str | None
    date: str | None
    source: str | None
    id: str | None
    prompt_id: str | None
    prompt: str | None

    @functools.cached_property
    def used(self) -> frozenset[str]:
        names = (self.text, self.url, self.date, self.source, self.id, self.prompt_id, self.prompt)
        return frozenset(n for n in names if n)


def _pick(lower: dict[str, str], names: tuple[str, ...], taken: set[str]) -> str | None:
    for name in names:
        key = lower.get(name)
        if key is not None and key not in taken:
            return key
    return None


@functools.lru_cache(maxsize=1024)
def _field_map(keys: tuple[str, ...], text_field: str) -> _FieldMap:
    """Which record keys hold the text, URL, date, ... (computed once per key layout)."""
    lower: dict[str, str] = {}
    for key in keys:
        lower.setdefault(key.lower(), key)
    text = text_field if text_field in keys else lower.get(text_field.lower())
    taken = {text} if text else set()
    return _FieldMap(
        text=text,
        url=_pick(lower, _URL_NAMES, taken),
        date=_pick(lower, _DATE_NAMES, taken),
        source=_pick(lower, _SOURCE_NAMES, taken),
        id=_pick(lower, _ID_NAMES, taken),
        prompt_id=_pick(lower, _PROMPT_ID_NAMES, taken),
        prompt=_pick(lower, _PROMPT_NAMES, taken),
    )


def _as_str(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        return value or None
    if isinstance(value, bool | int | float):
        return str(value)
    return None


def _record_to_doc(
    rec: dict[str, Any],
    fmap: _FieldMap,
    position: int,
    input_path: str,
    fmt: str,
    text_field: str,
    invalid_utf8: bool,
) -> Document | Rejection:
    if fmap.text is None:
        return Rejection(
            d.MISSING_TEXT_FIELD, position, input_path,
            f"no field {text_field!r} (fields: {', '.join(sorted(rec))[:200]})",
            d.excerpt(orjson.dumps(rec, default=str)),
        )
    text = rec[fmap.text]
    if isinstance(text, bytes):
        text, bad = decode_utf8(text)
        invalid_utf8 = invalid_utf8 or bad
    if not isinstance(text, str):
        reason = d.MISSING_TEXT_FIELD if text is None else d.INVALID_TEXT_FIELD
        return Rejection(
            reason, position, input_path,
            f"field {fmap.text!r} is {'null' if text is None else type(text).__name__}, not a string",
            d.excerpt(orjson.dumps(rec, default=str)),
        )
    used = fmap.used
    meta = {k: v for k, v in rec.items() if k not in used} if len(rec) > len(used) else {}
    return Document(
        text=text,
        position=position,
        input_path=input_path,
        fmt=fmt,
        source=_as_str(rec.get(fmap.source)) if fmap.source else None,
        url=_as_str(rec.get(fmap.url)) if fmap.url else None,
        date=rec.get(fmap.date) if fmap.date else None,
        id=_as_str(rec.get(fmap.id)) if fmap.id else None,
        prompt_id=_as_str(rec.get(fmap.prompt_id)) if fmap.prompt_id else None,
        prompt=_as_str(rec.get(fmap.prompt)) if fmap.prompt else None,
        meta=meta,
        invalid_utf8=invalid_utf8,
    )


def _stream_error(exc: BaseException, position: int, input_path: str) -> Rejection:
    """A rejection for a compressed stream that broke (truncated or corrupt) at ``position``."""
    if isinstance(exc, EOFError):
        return Rejection(d.TRUNCATED_INPUT, position, input_path, f"input ends early: {exc}")
    return Rejection(d.CORRUPT_RECORD, position, input_path, f"cannot decompress: {exc}")


_STREAM_ERRORS = (EOFError, zlib.error, gzip.BadGzipFile, zstandard.ZstdError)


def _refuse_binary(stream: BinaryIO, name: str, what: str) -> Rejection | None:
    """A rejection when the start of a line-format stream is binary or already broken."""
    try:
        head = stream.peek(_SNIFF_BYTES)[:_SNIFF_BYTES] if hasattr(stream, "peek") else b""
    except _STREAM_ERRORS as exc:
        return _stream_error(exc, 1, name)
    if looks_binary(head):
        return Rejection(d.BINARY_CONTENT, 0, name, f"binary data, not {what}", d.excerpt(head[:80]))
    return None


# --------------------------------------------------------------------------- JSONL


def _read_jsonl(path: Path, text_field: str, stats: ReaderStats) -> Iterator[Document | Rejection]:
    name = str(path)
    loads = orjson.loads
    decode_error = orjson.JSONDecodeError
    with _open_stream(path) as stream:
        refused = _refuse_binary(stream, name, "JSON lines")
        if refused is not None:
            yield refused
            return
        array = None
        if stream.peek(64).removeprefix(_UTF8_BOM).lstrip().startswith(b"["):
            array = _json_array(stream)
    if array is not None:
        yield from _json_array_docs(array, name, text_field)
        return
    with _open_stream(path) as stream:
        lineno = 0
        lines = iter(stream)
        while True:
            try:
                raw = next(lines)
            except StopIteration:
                return
            except _STREAM_ERRORS as exc:
                yield _stream_error(exc, lineno + 1, name)
                return
            lineno += 1
            if lineno == 1:
                raw = raw.removeprefix(_UTF8_BOM)  # spreadsheet exports start with a BOM
            invalid = False
            try:
                obj = loads(raw)
            except decode_error as exc:
                if not raw.strip():
                    continue
                error: orjson.JSONDecodeError = exc
                text, invalid = decode_utf8(raw)
                try:
                    obj = loads(text) if invalid else None
                except decode_error as retry:
                    error, obj = retry, None
                if obj is None:
                    yield _unparsable_line(error, text, raw, lineno, name, text_field)
                    continue
                stats.invalid_utf8 += 1
            if type(obj) is not dict:
                yield Rejection(d.NOT_AN_OBJECT, lineno, name, f"JSON {type(obj).__name__}, not an object",
                                d.excerpt(raw))
                continue
            yield _record_to_doc(obj, _field_map(tuple(obj), text_field), lineno, name, "jsonl", text_field,
                                 invalid)


_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def _first_lone_surrogate(value: Any, path: str) -> tuple[str, str] | None:
    """``(field path, surrogate)`` of the first lone surrogate in a parsed JSON value, or None."""
    if isinstance(value, str):
        found = _LONE_SURROGATE.search(value)
        return (path, found.group()) if found else None
    if isinstance(value, dict):
        items = value.items()
    elif isinstance(value, list):
        items = enumerate(value)
    else:
        return None
    for key, item in items:
        inner = f"{path}.{key}" if path else str(key)
        hit = _first_lone_surrogate(key, inner) or _first_lone_surrogate(item, inner)
        if hit:
            return hit
    return None


def _unparsable_line(
    error: orjson.JSONDecodeError, text: str, raw: bytes, lineno: int, name: str, text_field: str
) -> Rejection:
    """The rejection of a JSONL line orjson refuses, with the actual reason.

    A lone UTF-16 surrogate escape (``"\\ud800"`` without its pair) is well-formed JSON syntax
    but not Unicode text (orjson refuses it, and Parquet could not store it): in the text field it
    makes the record ``invalid_text_field``, elsewhere ``malformed_json``, each naming the field.
    """
    if "surrogate" in str(error):
        try:
            obj = json.loads(text)  # the standard library keeps lone surrogates as they are
        except ValueError:
            obj = None
        if type(obj) is dict:
            key = _field_map(tuple(obj), text_field).text
            hit = _first_lone_surrogate(obj[key], key) if key is not None else None
            reason = d.INVALID_TEXT_FIELD if hit else d.MALFORMED_JSON
            hit = hit or _first_lone_surrogate(obj, "")
            if hit:
                field_name, char = hit
                return Rejection(
                    reason, lineno, name,
                    f"field {field_name!r} has a lone surrogate (\\u{ord(char):04x} without its pair): "
                    "not valid Unicode text",
                    d.excerpt(raw),
                )
    return Rejection(d.MALFORMED_JSON, lineno, name, f"not valid JSON: {error}", d.excerpt(raw))


def _json_array(stream: BinaryIO) -> list | None:
    """The file as one JSON array, or None when it is not one.

    A JSON array cannot be streamed without a streaming parser, so this is the one reader
    that loads a whole file; crawl shards are JSONL, arrays are for small reference sets.
    """
    try:
        data = stream.read()
        value = orjson.loads(data.removeprefix(_UTF8_BOM))
    except (orjson.JSONDecodeError, *_STREAM_ERRORS):
        return None
    return value if isinstance(value, list) else None


def _json_array_docs(records: list, name: str, text_field: str) -> Iterator[Document | Rejection]:
    for position, obj in enumerate(records, start=1):
        if type(obj) is not dict:
            yield Rejection(d.NOT_AN_OBJECT, position, name, f"array element is a {type(obj).__name__}",
                            d.excerpt(orjson.dumps(obj)))
            continue
        yield _record_to_doc(obj, _field_map(tuple(obj), text_field), position, name, "jsonl", text_field,
                             False)


# --------------------------------------------------------------------------- CSV / TSV


_DELIMITERS = (",", ";", "\t", "|")


def _csv_delimiter(head: bytes, fmt: str, text_field: str) -> str:
    """The delimiter of a CSV/TSV file, from its first bytes.

    The format's own delimiter (``,`` for CSV, tab for TSV) unless the header row does not name
    the text field with it but does with another of ``, ; tab |`` (semicolon CSVs of
    spreadsheets in many locales); when no delimiter gives a text column, :class:`csv.Sniffer`
    picks one of the four from the sample, so rows still split (and are counted) right.
    """
    default = "\t" if fmt == "tsv" else ","
    sample = decode_utf8(head.removeprefix(_UTF8_BOM))[0]
    if len(head) >= _SNIFF_BYTES and "\n" in sample:
        sample = sample[: sample.rindex("\n") + 1]  # no cut last line
    wanted = text_field.lower()
    candidates = (default, *(c for c in _DELIMITERS if c != default))
    for delimiter in candidates:
        header = next(csv.reader(io.StringIO(sample), delimiter=delimiter), [])
        if wanted in (f.lower() for f in header):
            return delimiter
    try:
        return csv.Sniffer().sniff(sample, delimiters="".join(_DELIMITERS)).delimiter
    except csv.Error:
        return default


def _read_csv(path: Path, fmt: str, text_field: str, stats: ReaderStats) -> Iterator[Document | Rejection]:
    name = str(path)
    csv.field_size_limit(min(sys.maxsize, 2**31 - 1))
    bad_line = [False]

    def lines(stream: BinaryIO) -> Iterator[str]:
        for raw in stream:
            text, invalid = decode_utf8(raw.removeprefix(_UTF8_BOM))
            if invalid:
                bad_line[0] = True
            yield text

    with _open_stream(path) as stream:
        refused = _refuse_binary(stream, name, fmt.upper())
        if refused is not None:
            yield refused
            return
        delimiter = _csv_delimiter(stream.peek(_SNIFF_BYTES)[:_SNIFF_BYTES], fmt, text_field)
        reader = csv.reader(lines(stream), delimiter=delimiter)
        row_no = 0
        header: list[str] | None = None
        while True:
            bad_line[0] = False
            try:
                row = next(reader)
            except StopIteration:
                return
            except _STREAM_ERRORS as exc:
                yield _stream_error(exc, row_no + 1, name)
                return
            except csv.Error as exc:
                row_no += 1
                yield Rejection(d.MALFORMED_CSV, row_no, name, f"line {reader.line_num}: {exc}")
                continue
            if header is None:
                header = row
                fmap = _field_map(tuple(header), text_field)
                continue
            if not row:
                continue
            row_no += 1
            if len(row) != len(header):
                yield Rejection(d.MALFORMED_CSV, row_no, name,
                                f"line {reader.line_num}: {len(row)} fields, header has {len(header)}",
                                d.excerpt(delimiter.join(row)))
                continue
            if bad_line[0]:
                stats.invalid_utf8 += 1
            yield _record_to_doc(dict(zip(header, row, strict=True)), fmap, row_no, name, fmt, text_field,
                                 bad_line[0])


# --------------------------------------------------------------------------- Parquet


def _read_parquet(path: Path, text_field: str, stats: ReaderStats) -> Iterator[Document | Rejection]:
    name = str(path)
    try:
        parquet = pq.ParquetFile(path, pre_buffer=False)  # one row group at a time, not the whole file
    except (pa.ArrowException, OSError) as exc:
        yield Rejection(d.CORRUPT_RECORD, 0, name, f"not a readable Parquet file: {exc}")
        return
    fmap = _field_map(tuple(parquet.schema_arrow.names), text_field)
    position = 0
    with parquet:
        batches = parquet.iter_batches(batch_size=1024)
        while True:
            try:
                batch = next(batches)
            except StopIteration:
                return
            except (pa.ArrowException, OSError) as exc:
                yield Rejection(d.CORRUPT_RECORD, position, name, f"unreadable row group: {exc}")
                return
            for rec in batch.to_pylist():
                doc = _record_to_doc(rec, fmap, position, name, "parquet", text_field, False)
                if isinstance(doc, Document) and doc.invalid_utf8:
                    stats.invalid_utf8 += 1
                position += 1
                yield doc


# --------------------------------------------------------------------------- text files


def _read_text_files(spec: InputSpec, stats: ReaderStats) -> Iterator[Document | Rejection]:
    for position, file in enumerate(spec.files):
        name = str(file)
        try:
            with _open_stream(file) as stream:
                data = stream.read()
        except _STREAM_ERRORS as exc:
            yield _stream_error(exc, position, name)
            continue
        except OSError as exc:
            yield Rejection(d.UNREADABLE_FILE, position, name, f"cannot read: {exc.strerror or exc}")
            continue
        if looks_binary(data[:_SNIFF_BYTES]):
            known_text = _suffixes(file)[0] == "text"
            reason = d.BINARY_CONTENT if known_text else d.NOT_TEXT
            yield Rejection(reason, position, name, "binary data, not text", d.excerpt(data[:80]))
            continue
        rel = file.relative_to(spec.path) if spec.path.is_dir() else Path(file.name)
        if file.suffix.lower() in (".html", ".htm"):
            text = _html_to_text(data, None)
            if isinstance(text, Rejection):
                text.position, text.input_path = position, name
                yield text
                continue
            yield Document(text=text, position=position, input_path=name, fmt="text", id=str(rel),
                           meta={"content_type": "text/html"})
            continue
        text, invalid = decode_utf8(data)
        if invalid:
            stats.invalid_utf8 += 1
        yield Document(text=text, position=position, input_path=name, fmt="text", id=str(rel),
                       invalid_utf8=invalid)


# --------------------------------------------------------------------------- WARC / WET


class _StreamBroken(Exception):
    def __init__(self, reason: str, member_start: int, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.member_start = member_start


class _GzipMembers:
    """Decompress concatenated gzip members, reporting where a member is corrupt or cut.

    Data decompressed before a failure is returned first; the next read raises
    :class:`_StreamBroken` with the raw offset of the failing member, so the caller can
    resume at the next member (WARC files are gzipped one record per member). fastwarc
    only needs ``read`` and an initial ``tell`` from a Python stream.
    """

    def __init__(self, raw: BinaryIO, offset: int) -> None:
        raw.seek(offset)
        self._raw = raw
        self._pos = offset  # raw offset of the first byte of self._pending
        self._pending = b""
        self._inflate: Any = None
        self.member_start = offset
        self._out = bytearray()
        self._error: _StreamBroken | None = None
        self._eof = False
        self._served = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def tell(self) -> int:
        return self._served

    def read(self, size: int = -1) -> bytes:
        while (size < 0 or len(self._out) < size) and self._error is None and not self._eof:
            if self._out and size >= 0:
                break
            self._fill()
        if not self._out:
            if self._error is not None:
                raise self._error
            return b""
        n = len(self._out) if size < 0 else min(size, len(self._out))
        chunk = bytes(self._out[:n])
        del self._out[:n]
        self._served += n
        return chunk

    def _fill(self) -> None:
        if not self._pending:
            self._pending = self._raw.read(1 << 16)
            if not self._pending:
                if self._inflate is not None:
                    self._error = _StreamBroken(d.TRUNCATED_INPUT, self.member_start,
                                                "gzip member ends before its end marker")
                else:
                    self._eof = True
                return
        if self._inflate is None:
            self._inflate = zlib.decompressobj(31)
            self.member_start = self._pos
        data, self._pending = self._pending, b""
        try:
            self._out += self._inflate.decompress(data)
        except zlib.error as exc:
            self._error = _StreamBroken(d.CORRUPT_RECORD, self.member_start, f"gzip: {exc}")
            return
        if self._inflate.eof:
            unused = self._inflate.unused_data
            self._pos += len(data) - len(unused)
            self._pending = unused
            self._inflate = None
        else:
            self._pos += len(data)


def _html_to_text(body: bytes, charset: str | None) -> str | Rejection:
    """Main text of an HTML page (resiliparse), decoded with ``charset`` or the detected encoding.

    A failure comes back as a position-less ``html_extraction_failed`` rejection for the
    caller to complete.
    """
    try:
        try:
            html = bytes_to_str(body, charset or detect_encoding(body), errors="replace")
        except LookupError:  # a charset label no codec knows: detect instead
            html = bytes_to_str(body, detect_encoding(body), errors="replace")
        return extract_plain_text(HTMLTree.parse(html), main_content=True)
    except Exception as exc:  # resiliparse raises plain exceptions on broken trees
        return Rejection(d.HTML_EXTRACTION_FAILED, 0, "", str(exc)[:200], d.excerpt(body[:80]))


def _http_body(record: Any) -> bytes:
    body = record.reader.read()
    encoding = (record.http_headers.get("Content-Encoding") or "").strip().lower()
    # Some crawls (ClueWeb) store decoded bodies but keep the Content-Encoding header,
    # so only bodies that really start with the gzip magic are inflated.
    if encoding in ("gzip", "x-gzip", "deflate") and body.startswith(_GZIP_MAGIC):
        body = zlib.decompress(body, 47)
    return body


def _warc_record_doc(record: Any, position: int, name: str, fmt: str,
                     stats: ReaderStats) -> Document | Rejection | None:
    """A document for a response/conversion record, a rejection, or None (skipped, counted)."""
    rtype = record.record_type
    headers = record.headers
    url = (headers.get("WARC-Target-URI") or "").strip().strip("<>") or None
    raw_date = headers.get("WARC-Date")
    record_id = headers.get("WARC-Record-ID")
    if record_id is None or headers.get("WARC-Type") is None:
        return Rejection(d.CORRUPT_RECORD, position, name, "WARC record without WARC-Record-ID/WARC-Type",
                         d.excerpt(str(dict(headers.items()))))
    if rtype == WarcRecordType.conversion:
        text, invalid = decode_utf8(record.reader.read())
        mime = "text/plain"
    elif rtype == WarcRecordType.response:
        if not record.is_http:
            stats.skipped["response_not_http"] += 1
            return None
        status = record.http_headers.status_code
        if status is None or not 200 <= status < 300:
            stats.skipped["response_not_ok"] += 1
            return None
        mime = (record.http_content_type or "").lower()
        # Only HTML pages are documents; robots.txt, feeds, images and other plain-text or
        # binary responses are skipped and counted (WET conversion records carry the text).
        if mime and mime not in _HTML_TYPES:
            stats.skipped["response_non_html"] += 1
            return None
        try:
            body = _http_body(record)
        except zlib.error as exc:
            return Rejection(d.CORRUPT_RECORD, position, name, f"HTTP body: {exc}", url)
        if not mime and looks_binary(body[:_SNIFF_BYTES]):
            stats.skipped["response_non_html"] += 1
            return None
        invalid = False
        text = _html_to_text(body, record.http_charset)
        if isinstance(text, Rejection):
            text.position, text.input_path, text.excerpt = position, name, url
            return text
        mime = mime or "text/html"
    else:
        stats.skipped[str(rtype)] += 1
        return None
    if invalid:
        stats.invalid_utf8 += 1
    return Document(text=text, position=position, input_path=name, fmt=fmt, url=url, date=raw_date,
                    id=record_id, meta={"warc_record_id": record_id, "content_type": mime},
                    invalid_utf8=invalid)


def _next_gzip_member(raw: BinaryIO, after: int) -> int | None:
    """Offset of the next gzip member header after ``after``, or None."""
    raw.seek(after)
    carry = b""
    base = after
    while True:
        chunk = raw.read(1 << 16)
        if not chunk:
            return None
        data = carry + chunk
        idx = data.find(b"\x1f\x8b\x08")
        if idx >= 0:
            return base + idx
        carry = data[-2:]
        base += len(data) - len(carry)


def _read_warc(path: Path, fmt: str, stats: ReaderStats) -> Iterator[Document | Rejection]:
    name = str(path)
    with open(path, "rb") as raw:
        head = raw.read(4)
        raw.seek(0)
        gzipped = head.startswith(_GZIP_MAGIC)
        if not gzipped and head[:4] != b"WARC" and looks_binary(raw.read(_SNIFF_BYTES)):
            yield Rejection(d.BINARY_CONTENT, 0, name, "not a WARC file")
            return
        raw.seek(0)
        position = 0
        offset = 0
        last_break_position = -1
        while True:
            if gzipped:
                stream: Any = _GzipMembers(raw, offset)
                opts: dict[str, Any] = {"stream_detect": False}
            elif head == _ZSTD_MAGIC:
                stream = zstandard.ZstdDecompressor().stream_reader(raw, read_across_frames=True)
                opts = {"stream_detect": False}
            else:
                stream, opts = raw, {}
            records = ArchiveIterator(stream, parse_http=True, auto_decode="transfer", quirks_mode=True,
                                      fsspec_args=False, **opts)
            try:
                for record in records:
                    item = _warc_record_doc(record, position, name, fmt, stats)
                    position += 1
                    if item is not None:
                        yield item
                return
            except _StreamBroken as broken:
                if broken.reason == d.TRUNCATED_INPUT:
                    yield Rejection(d.TRUNCATED_INPUT, position, name,
                                    f"input ends inside the gzip member at byte {broken.member_start}")
                    return
                # Corrupt member: report it once, then resume at the next gzip member.
                if last_break_position != position:
                    yield Rejection(d.CORRUPT_RECORD, position, name,
                                    f"corrupt gzip member at byte {broken.member_start}: {broken}")
                    position += 1
                    last_break_position = position
                resume = _next_gzip_member(raw, broken.member_start + 1)
                if resume is None:
                    return
                offset = resume
            except (OSError, ValueError, zstandard.ZstdError) as exc:
                yield Rejection(d.CORRUPT_RECORD, position, name, f"unreadable WARC data: {exc}")
                return


# --------------------------------------------------------------------------- dispatch


def read_input(spec: InputSpec, text_field: str = "text",
               stats: ReaderStats | None = None) -> Iterator[Document | Rejection]:
    """Stream the records of one input spec in input order.

    A file that cannot be opened becomes one ``unreadable_file`` rejection; a compressed
    stream that breaks becomes a ``truncated_input`` / ``corrupt_record`` rejection after the
    records read before the break.
    """
    stats = stats if stats is not None else ReaderStats()
    if spec.fmt == "text":
        yield from _read_text_files(spec, stats)
        return
    path = spec.path
    readers = {
        "jsonl": lambda: _read_jsonl(path, text_field, stats),
        "csv": lambda: _read_csv(path, "csv", text_field, stats),
        "tsv": lambda: _read_csv(path, "tsv", text_field, stats),
        "parquet": lambda: _read_parquet(path, text_field, stats),
        "warc": lambda: _read_warc(path, "warc", stats),
        "wet": lambda: _read_warc(path, "wet", stats),
    }
    if spec.fmt not in readers:
        raise InputError(f"unknown format {spec.fmt!r} for {path}")
    try:
        yield from readers[spec.fmt]()
    except (FileNotFoundError, PermissionError, IsADirectoryError, NotADirectoryError) as exc:
        yield Rejection(d.UNREADABLE_FILE, 0, str(path), f"cannot read: {exc.strerror or exc}")


def iter_texts(path: str | Path, fmt: str | None = None, text_field: str = "text") -> Iterator[dict]:
    """Normalised texts of a reference or training set (JSONL/CSV/TSV/Parquet/text, a folder is walked).

    Yields ``{"id", "text", "source", "prompt_id", "prompt", "meta"}``. ``id`` is the record's
    id field, else ``<file>:<position>``; ``source`` is the record's source field or None.
    Records that cannot be used (malformed, empty, ...) are skipped and counted in one
    warning per input. Raises :class:`InputError` for a missing path or unknown format.
    """
    for entry in skipped_outputs([path]):
        log.warning("%s: skipped, %s", entry["path"], entry["reason"])
    for spec in expand_input(path, fmt):
        skipped: dict[str, int] = {}
        for item in read_input(spec, text_field):
            if isinstance(item, Rejection):
                skipped[item.reason] = skipped.get(item.reason, 0) + 1
                continue
            text = normalize_text(item.text)
            if not text:
                skipped[d.EMPTY_TEXT] = skipped.get(d.EMPTY_TEXT, 0) + 1
                continue
            yield {
                "id": item.id or f"{Path(item.input_path).name}:{item.position}",
                "text": text,
                "source": item.source,
                "prompt_id": item.prompt_id,
                "prompt": item.prompt,
                "meta": item.meta,
            }
        if skipped:
            log.warning("%s: skipped %d unusable records (%s)", spec.path, sum(skipped.values()),
                        ", ".join(f"{k}={v}" for k, v in sorted(skipped.items())))


def resolve_date(doc: Document, stats: ReaderStats) -> None:
    """Fill ``doc.crawl_date`` from its raw ``date`` value, counting unreadable dates."""
    if doc.date is None or doc.date == "":
        return
    doc.crawl_date = parse_date(doc.date)
    if doc.crawl_date is None:
        stats.invalid_dates += 1
