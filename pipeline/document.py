"""The records readers produce: a :class:`Document`, a :class:`Rejection`, and reader stats.

A reader turns one input file into a stream of ``Document | Rejection`` in input order;
every record of the file ends up as exactly one of the two, which is what makes the
ingest accounting (``records_read == written + exact_duplicates + rejected``) provable.
Records a reader skips on purpose (WARC request/metadata/... records) are not documents:
they are counted by kind in :class:`ReaderStats` and are not part of ``records_read``.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

# Stable rejection reasons (snake_case); manifests and rejected/ use exactly these strings.
MALFORMED_JSON = "malformed_json"
NOT_AN_OBJECT = "not_an_object"
MALFORMED_CSV = "malformed_csv"
MISSING_TEXT_FIELD = "missing_text_field"
INVALID_TEXT_FIELD = "invalid_text_field"
EMPTY_TEXT = "empty_text"
TOO_LONG = "too_long"
CORRUPT_RECORD = "corrupt_record"
TRUNCATED_INPUT = "truncated_input"
BINARY_CONTENT = "binary_content"
UNREADABLE_FILE = "unreadable_file"
NOT_TEXT = "not_text"
HTML_EXTRACTION_FAILED = "html_extraction_failed"

EXCERPT_CHARS = 200


def excerpt(value: object, limit: int = EXCERPT_CHARS) -> str | None:
    """A short printable excerpt of a rejected record, for people reading ``rejected/``."""
    if value is None:
        return None
    if isinstance(value, bytes | bytearray):
        value = bytes(value[: limit * 4]).decode("utf-8", errors="replace")
    text = str(value)[:limit]
    return "".join(ch if ch.isprintable() or ch in "\n\t" else "\ufffd" for ch in text)


@dataclass(slots=True)
class Document:
    """One input record with text, before normalisation.

    ``position`` is the record's place in its input file: the 1-based line number for
    JSONL, the 1-based data row for CSV/TSV (header excluded), the 0-based row for Parquet,
    the 0-based record number for WARC/WET (counting every record, skipped ones too) and
    the 0-based file number for text folders.
    """

    text: str
    position: int
    input_path: str
    fmt: str
    source: str | None = None
    url: str | None = None
    date: Any = None
    id: str | None = None
    prompt_id: str | None = None
    prompt: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    invalid_utf8: bool = False
    crawl_date: datetime | None = None


@dataclass(slots=True)
class Rejection:
    """A record that could not become a document, with a stable ``reason``."""

    reason: str
    position: int
    input_path: str
    detail: str | None = None
    excerpt: str | None = None


@dataclass
class ReaderStats:
    """Counts a reader keeps beside the records it yields."""

    skipped: Counter[str] = field(default_factory=Counter)  # WARC records skipped, by kind
    invalid_utf8: int = 0  # records whose bytes were not valid UTF-8 (decoded with U+FFFD)
    invalid_dates: int = 0  # date values present but unreadable (stored as null)

    def merge(self, other: ReaderStats) -> None:
        self.skipped.update(other.skipped)
        self.invalid_utf8 += other.invalid_utf8
        self.invalid_dates += other.invalid_dates
