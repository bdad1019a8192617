"""Text normalisation and the stable identifiers derived from it.

Every document the pipeline writes goes through :func:`normalize_text` first, so that the
same visible text always has the same ``content_sha1`` whatever its input format:

* bytes are decoded as UTF-8; invalid bytes become U+FFFD and the caller counts them
  (:func:`decode_utf8` says whether a replacement happened);
* Unicode NFC;
* control characters (category Cc) other than newline and tab are removed, ``\\r\\n`` and
  lone ``\\r`` become ``\\n``;
* runs of other white space (Unicode, as ``str.split``) become one space, white space at
  the ends of lines is dropped, runs of blank lines become one blank line (paragraphs
  survive, because later detectors read chat and Q&A structure from line breaks);
* leading and trailing white space is stripped.

Domains come from tldextract's bundled public-suffix snapshot; nothing is fetched
(:func:`registered_domain` has the rules).
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import ipaddress
import re
import unicodedata
from datetime import UTC, date, datetime, timedelta
from email.utils import parsedate_to_datetime
from urllib.parse import urlsplit

import tldextract

# C0 and C1 controls except \t and \n (\r is handled first); DEL too.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")

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
    # Line by line with str.split(), which is C-fast: a regex over the whole text was 5-10x
    # slower on 2 KB documents (bench/bench_ingest.py).
    lines: list[str] = []
    blank = False
    for line in text.split("\n"):
        if line.isprintable():
            # Printable means no white space other than U+0020 (every other space character
            # is in a Separator or Other category), so most lines need no work at all.
            if "  " in line or line[:1] == " " or line[-1:] == " ":
                line = " ".join(line.split())
        else:
            line = " ".join(_CONTROL.sub("", line).split())
        if line:
            lines.append(line)
            blank = False
        elif lines and not blank:
            lines.append("")
            blank = True
    if blank:
        lines.pop()
    return "\n".join(lines)


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


def _unicode_host(host: str) -> str:
    """``host`` in one form: lower case, NFC, punycode labels (``xn--``) decoded to Unicode."""
    host = unicodedata.normalize("NFC", host.lower()).rstrip(".")
    if "xn--" not in host:
        return host
    labels = []
    for label in host.split("."):
        if label.startswith("xn--"):
            with contextlib.suppress(UnicodeError):  # not valid punycode: kept as written
                label = _decoded_label(label)
        labels.append(label)
    return ".".join(labels)


# dots other than "." that would split a decoded label into several (and so forge a domain)
_UNICODE_DOTS = frozenset("\u3002\uff0e\uff61")


def _decoded_label(label: str) -> str:
    """A punycode label decoded, or as written when the decoding is not a plain Unicode label:
    it must hold non-ASCII letters, no dot or control character, and encode back to ``label``
    (else ``xn--bbcco-9t3d`` would pass for ``bbc.co``)."""
    decoded = label[4:].encode("ascii").decode("punycode").lower()
    if (decoded.isascii() or any(c in _UNICODE_DOTS or c == "." for c in decoded)
            or any(unicodedata.category(c).startswith("C") for c in decoded)
            or "xn--" + decoded.encode("punycode").decode("ascii") != label):
        return label
    return decoded


@functools.lru_cache(maxsize=65_536)
def _domain_of_host(host: str, schemeless: bool = False) -> str | None:
    try:
        return ipaddress.ip_address(host).compressed  # an IP literal is its own domain
    except ValueError:
        pass
    host = _unicode_host(host)
    ext = _TLD_EXTRACT.extract_str(host)
    if ext.domain and ext.suffix:
        return f"{ext.domain}.{ext.suffix}"
    if schemeless:
        return None  # without a scheme, only a name under a public suffix is taken for a host
    if ext.domain and not ext.suffix:
        # No public suffix: single-label hosts (localhost) are their own domain; reserved or
        # private TLDs (site.example, wiki.corp.internal) keep their last two labels, so
        # distinct sites do not collapse into one "domain".
        if ext.subdomain:
            return f"{ext.subdomain.rsplit('.', 1)[-1]}.{ext.domain}"
        return ext.domain
    return None


# A URL without a scheme (``www.example.com/page``, ``example.org:8080/x?q``): a dotted name, an
# optional port, then the end or a path, query or fragment.
_SCHEMELESS = re.compile(r"([^\s/?#:@\[\]\\]+\.[^\s/?#:@\[\]\\]+?)\.?(?::\d{1,5})?(?:[/?#]|$)", re.ASCII)
_SCHEMELESS_MAX = 300


def _host(url: str) -> str | None:
    """Host of an absolute URL; a fast path for plain ``scheme://host[:port]/...`` URLs."""
    scheme_end = url.find("://")
    if 0 < scheme_end < 10:
        rest = url[scheme_end + 3 :]
        for sep in "/?#":
            cut = rest.find(sep)
            if cut >= 0:
                rest = rest[:cut]
        if "@" not in rest and "[" not in rest:
            host = rest.split(":", 1)[0].rstrip(".").lower()
            return host or None
    try:
        return urlsplit(url).hostname  # IPv6 literals ([2001:db8::1]) without brackets
    except ValueError:
        return None


def registered_domain(url: str | None) -> str | None:
    """Registered domain of ``url`` (``www.bbc.co.uk`` -> ``bbc.co.uk``), or ``None``.

    Uses tldextract's bundled public-suffix snapshot only (its ICANN section: every
    ``*.blogspot.com`` is ``blogspot.com``), with no network fetch. Internationalised names come
    out in one form, lower-case Unicode (``xn--mnchen-3ya.de`` and ``MÜNCHEN.de`` both give
    ``münchen.de``); an IP literal is its own domain (``2001:db8::1``, ``192.168.1.5``). A URL
    without a scheme (``www.example.com/page``, ``example.org/path``) counts when it starts with a
    host name under a public suffix; ``index.html`` or ``localhost/x`` without a scheme give ``None``.
    """
    if not url:
        return None
    url = url.strip()
    host = _host(url)
    if host:
        return _domain_of_host(host)
    if "://" not in url and not url.startswith("/"):
        # only the start can be a host (at most 253 characters): the pattern backtracks in
        # quadratic time, and a crawl's url field may be any length
        head = url[:_SCHEMELESS_MAX]
        match = _SCHEMELESS.match(head)
        if match and (match.end() < len(head) or len(url) <= _SCHEMELESS_MAX):
            return _domain_of_host(match.group(1), schemeless=True)
    return None


# Epoch numbers: the unit follows from the magnitude, because a crawl date (3 March 1973 to the
# year 5138) has 9-11 digits in seconds, 12-14 in milliseconds, 15-17 in microseconds and 18-20 in
# nanoseconds: [1e8, 1e11) seconds, [1e11, 1e14) ms, [1e14, 1e17) us, [1e17, 1e20) ns. Anything
# outside [1e8, 1e20), negative values included, is not a crawl date.
_EPOCH_MIN = 1e8
_EPOCH_UNITS = ((1e11, 1.0), (1e14, 1e3), (1e17, 1e6), (1e20, 1e9))
_EPOCH_STR = re.compile(r"\+?\d+(?:\.\d+)?", re.ASCII)


def _from_epoch(value: float) -> datetime | None:
    if not value >= _EPOCH_MIN:  # NaN too
        return None
    for limit, per_second in _EPOCH_UNITS:
        if value < limit:
            return datetime.fromtimestamp(value / per_second, tz=UTC)
    return None


# Year-first dates with "/" or "." (2023/05/01, 2023.05.01 12:30:00) are unambiguous; day-or-month-
# first ones (01/05/2023) are not, and stay invalid.
_YEAR_FIRST = re.compile(r"(\d{4})([/.])(\d{1,2})\2(\d{1,2})(?:[ T](\d{1,2}):(\d{2})(?::(\d{2}))?)?",
                         re.ASCII)
# English month names are unambiguous too (May 1, 2023; 1 May 2023; Sep. 3 2021). Matched by a
# table, not strptime's %B/%b, which follow the process's LC_TIME locale.
_MONTHS = {name: number for number, names in enumerate(
    (("january", "jan"), ("february", "feb"), ("march", "mar"), ("april", "apr"), ("may",),
     ("june", "jun"), ("july", "jul"), ("august", "aug"), ("september", "sep", "sept"),
     ("october", "oct"), ("november", "nov"), ("december", "dec")), start=1) for name in names}
_MONTH_FIRST = re.compile(r"([A-Za-z]{3,9})\.? (\d{1,2}),? (\d{4})", re.ASCII)
_DAY_FIRST = re.compile(r"(\d{1,2}) ([A-Za-z]{3,9})\.?,? (\d{4})", re.ASCII)


def _month_name_date(raw: str) -> datetime | None:
    if len(raw) > 30:
        return None
    month_first = _MONTH_FIRST.fullmatch(raw)
    if month_first:
        month, day, year = month_first.groups()
    else:
        day_first = _DAY_FIRST.fullmatch(raw)
        if not day_first:
            return None
        day, month, year = day_first.groups()
    number = _MONTHS.get(month.lower())
    return datetime(int(year), number, int(day)) if number else None


def _iso_or_http_date(raw: str) -> datetime:
    """ISO 8601 (WARC-Date; a lower-case t/z too), HTTP / RFC 2822 (``Mon, 01 May 2023 12:00:00
    GMT``; ``-0000`` gives a naive time, taken as UTC), year-first dates with ``/`` or ``.``, and
    English month-name dates. Raises ValueError for anything else."""
    if raw[:1].isdigit():
        try:
            return datetime.fromisoformat(raw.upper() if raw[-1:] == "z" or "t" in raw else raw)
        except ValueError:
            pass
        year_first = _YEAR_FIRST.fullmatch(raw)
        if year_first:
            year, _, month, day, hour, minute, second = year_first.groups()
            return datetime(int(year), int(month), int(day),
                            int(hour or 0), int(minute or 0), int(second or 0))
    try:
        return parsedate_to_datetime(raw)
    except (ValueError, TypeError, IndexError):
        pass
    named = _month_name_date(raw)
    if named is None:
        raise ValueError(f"not a date: {raw!r}")
    return named


@functools.lru_cache(maxsize=8192)
def _parse_date_str(value: str) -> datetime | None:
    # Crawl dates repeat (per second at most), so parsed strings are cached.
    raw = value.strip()
    if not raw:
        return None
    try:
        if raw.isascii() and raw.isdigit() and len(raw) in (8, 14):
            # WARC/Wayback YYYYMMDDhhmmss and ISO basic YYYYMMDD, never epoch numbers
            parsed = datetime.strptime(raw, "%Y%m%d%H%M%S" if len(raw) == 14 else "%Y%m%d")
        elif _EPOCH_STR.fullmatch(raw):
            parsed = _from_epoch(float(raw))
        else:
            parsed = _iso_or_http_date(raw)
        if parsed is None:
            return None
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=UTC)
        return parsed.astimezone(UTC)
    except (ValueError, TypeError, OverflowError, OSError):
        return None


def parse_date(value: object) -> datetime | None:
    """Parse a crawl date into an aware UTC datetime, or ``None`` when it cannot be read.

    Accepts:

    * datetimes (naive ones are taken as UTC) and dates (midnight UTC of that day), as Parquet's
      ``timestamp``, ``date32`` and ``date64`` columns give them;
    * ISO 8601 strings (WARC-Date ``2023-05-01T12:00:00Z``, an offset, a date alone; naive times
      are taken as UTC), WARC's ``YYYYMMDDhhmmss`` and ISO's basic ``YYYYMMDD``;
    * HTTP / RFC 2822 dates (``Mon, 01 May 2023 12:00:00 GMT``), year-first dates with ``/`` or
      ``.`` (``2023/05/01``, ``2023.05.01 12:30``) and English month-name dates (``May 1, 2023``,
      ``1 May 2023``);
    * epoch numbers, as numbers or digit strings (every CSV epoch is a string), in a unit decided by
      their magnitude: from 1e8 (1973) seconds, from 1e11 milliseconds, from 1e14 microseconds,
      from 1e17 to 1e20 nanoseconds (so ``1682942400``, ``1682942400000`` and
      ``1682942400000000`` are the same instant); smaller, negative or larger numbers are invalid,
      and 8- and 14-digit strings are dates, not epochs (above).

    Anything else, such as ClueWeb's malformed ``2008-10-294T05:21:46-0700``, ``01/05/2023`` (day
    or month first?) or ``yesterday``, gives ``None``; the caller counts it.
    """
    if value is None or isinstance(value, bool):
        return None
    try:
        if isinstance(value, datetime):
            parsed = value
        elif isinstance(value, date):
            parsed = datetime(value.year, value.month, value.day, tzinfo=UTC)
        elif isinstance(value, int) and len(str(abs(value))) in (8, 14):
            return _plausible(_parse_date_str(str(value)))  # 20230501120000 as a number too
        elif isinstance(value, int | float):
            parsed = _from_epoch(float(value))
        elif isinstance(value, str):
            return _plausible(_parse_date_str(value))
        else:
            return None
        if parsed is None:
            return None
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=UTC)
        return _plausible(parsed.astimezone(UTC))
    except (ValueError, OverflowError, OSError):
        return None


#: The earliest crawl date taken as real (the web is younger); later than a day from now is not
#: a crawl date either (placeholders such as 9999-12-31, or a timestamp read in the wrong unit).
EARLIEST_CRAWL_DATE = datetime(1990, 1, 1, tzinfo=UTC)


def _plausible(parsed: datetime | None) -> datetime | None:
    if parsed is None or parsed < EARLIEST_CRAWL_DATE or parsed > datetime.now(UTC) + timedelta(days=1):
        return None
    return parsed
