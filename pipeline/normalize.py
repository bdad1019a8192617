"""Text normalisation and the stable identifiers derived from it.

Every document the pipeline writes goes through :func:`normalize_text` first, so that the
same visible text always has the same ``content_sha1`` whatever its input format:

* bytes are decoded as UTF-8; invalid bytes become U+FFFD and the caller counts them
  (:func:`decode_utf8` says whether a replacement happened);
* Unicode NFC;
* control characters (category Cc) other than newline and tab are removed, ``\\r\\n`` and
  lone ``\\r`` become ``\\n``;
* runs of horizontal white space become one space, white space at the ends of lines is
  dropped, runs of three or more line breaks become one blank line (paragraphs survive,
  because later detectors read chat and Q&A structure from line breaks);
* leading and trailing white space is stripped.

Domains come from tldextract's bundled public-suffix snapshot; nothing is fetched.
"""

from __future__ import annotations

import functools
import hashlib
import re
import unicodedata
from datetime import UTC, datetime
from urllib.parse import urlsplit

import tldextract

# C0 and C1 controls except \t and \n (\r is handled first); DEL too.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
_HSPACE = re.compile(r"[^\S\n]+")  # any white space except a line break
_LINE_END_SPACE = re.compile(r" ?\n ?")
_MANY_BREAKS = re.compile(r"\n{3,}")

# Bundled suffix list only: an empty URL list disables the download, cache_dir=None the disk cache.
_TLD_EXTRACT = tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None, fallback_to_snapshot=True)


def decode_utf8(data: bytes) -> tuple[str, bool]:
    """Decode ``data`` as UTF-8; return the text and whether invalid bytes were replaced."""
    try:
        return data.decode("utf-8"), False
    except UnicodeDecodeError:
        return data.decode("utf-8", errors="replace"), True


def normalize_text(text: str) -> str:
    """Return the normalised form of ``text`` (see the module docstring for the exact rules)."""
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    if not text.isascii():
        text = unicodedata.normalize("NFC", text)
    text = _CONTROL.sub("", text)
    text = _HSPACE.sub(" ", text)
    if " \n" in text or "\n " in text:
        text = _LINE_END_SPACE.sub("\n", text)
    if "\n\n\n" in text:
        text = _MANY_BREAKS.sub("\n\n", text)
    return text.strip()


def content_sha1(text: str) -> str:
    """Hex SHA-1 of the UTF-8 bytes of an already normalised text (the exact-duplicate key)."""
    return hashlib.sha1(text.encode("utf-8")).hexdigest()


def make_doc_id(source: str, sha1_hex: str) -> str:
    """Stable document id: 24 hex digits of SHA-1 over the source name and the content hash.

    It depends only on where a text comes from and what it says, not on file order or run,
    so re-ingesting the same input gives the same ids. Within one corpus it is unique,
    because exact duplicates (same ``content_sha1``) are dropped before ids are used.
    """
    return hashlib.sha1(f"{source}\x00{sha1_hex}".encode()).hexdigest()[:24]


@functools.lru_cache(maxsize=65_536)
def _domain_of_host(host: str) -> str | None:
    ext = _TLD_EXTRACT.extract_str(host)
    if ext.domain and ext.suffix:
        return f"{ext.domain}.{ext.suffix}".lower()
    if ext.domain and not ext.suffix:
        # IP addresses and single-label hosts (localhost) have no public suffix.
        return ext.domain.lower()
    return None


def registered_domain(url: str | None) -> str | None:
    """Registered domain of ``url`` (``www.bbc.co.uk`` -> ``bbc.co.uk``), or ``None``.

    Uses tldextract's bundled public-suffix snapshot only, with no network fetch.
    """
    if not url:
        return None
    try:
        host = urlsplit(url.strip()).hostname
    except ValueError:
        return None
    if not host:
        return None
    return _domain_of_host(host)


def parse_date(value: object) -> datetime | None:
    """Parse a crawl date into an aware UTC datetime, or ``None`` when it cannot be read.

    Accepts ISO 8601 strings (``Z`` or an offset; naive times are taken as UTC), WARC's
    ``YYYYMMDDhhmmss`` and epoch seconds or milliseconds as numbers. Malformed values such as
    ClueWeb's ``2008-10-294T05:21:46-0700`` give ``None``; the caller counts them.
    """
    if value is None or isinstance(value, bool):
        return None
    try:
        if isinstance(value, datetime):
            parsed = value
        elif isinstance(value, int | float):
            seconds = float(value) / 1000.0 if abs(value) > 1e11 else float(value)
            parsed = datetime.fromtimestamp(seconds, tz=UTC)
        elif isinstance(value, str):
            raw = value.strip()
            if not raw:
                return None
            if len(raw) == 14 and raw.isdigit():
                parsed = datetime.strptime(raw, "%Y%m%d%H%M%S")
            else:
                parsed = datetime.fromisoformat(raw)
        else:
            return None
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=UTC)
        return parsed.astimezone(UTC)
    except (ValueError, OverflowError, OSError):
        return None
