"""Paragraph windows: cut a document into contiguous segments of roughly 300-800 characters.

The classifier scores every window as well as the whole document, so a model answer pasted into a
human page shows up as one or two high-scoring windows (``teacher_prob_max_segment``) and as the
share of the page's characters in such windows (``teacher_fraction``).

Semantics of :func:`segment_spans`:

* Pieces are paragraphs (split at blank lines). A paragraph longer than ``max_chars`` is cut at
  the last sentence end (``.``, ``!``, ``?``, ``。``, or a line break) before ``max_chars``, else at
  the last space, else hard at ``max_chars``.
* Consecutive pieces are merged greedily until a window reaches ``min_chars``; a window never
  grows past ``max_chars`` by this merging. Then a window still shorter than ``min_chars`` joins
  its shorter neighbour if the result is at most ``max_chars + min_chars`` long (the hard limit).
* Spans are ``(start, end)`` character offsets into the original text, in order, with surrounding
  whitespace excluded; every non-whitespace character belongs to exactly one span. A text shorter
  than ``min_chars`` is one span; a blank text has none.
"""

from __future__ import annotations

import re

import numpy as np

__all__ = [
    "DEFAULT_MAX_CHARS",
    "DEFAULT_MIN_CHARS",
    "best_run",
    "best_runs",
    "paragraph_spans",
    "segment_spans",
    "segment_texts",
    "window_piece_ranges",
]

DEFAULT_MIN_CHARS = 300
DEFAULT_MAX_CHARS = 800

# A paragraph break: a whitespace run holding at least two line breaks.
_BLANK_LINE = re.compile(r"\n\s*\n")
_SENTENCE_END = re.compile(r"[.!?\u3002\uff01\uff1f][\"'\u201d\u2019)\]]*\s|\n")


def _split_long(text: str, start: int, end: int, max_chars: int) -> list[tuple[int, int]]:
    """Cut text[start:end] into pieces of at most max_chars at sentence ends or spaces."""
    pieces: list[tuple[int, int]] = []
    while end - start > max_chars:
        window = text[start : start + max_chars]
        cut = 0
        for match in _SENTENCE_END.finditer(window, max_chars // 3):
            cut = match.end()
        if cut == 0:
            space = window.rfind(" ", max_chars // 3)
            cut = space + 1 if space > 0 else max_chars
        piece_end = start + cut
        stripped_end = piece_end
        while stripped_end > start and text[stripped_end - 1].isspace():
            stripped_end -= 1
        if stripped_end > start:
            pieces.append((start, stripped_end))
        start = piece_end
        while start < end and text[start].isspace():
            start += 1
    if end > start:
        pieces.append((start, end))
    return pieces


def paragraph_spans(text: str, max_chars: int = DEFAULT_MAX_CHARS) -> list[tuple[int, int]]:
    """``(start, end)`` offsets of the paragraphs of ``text`` (split at blank lines, surrounding
    whitespace excluded), a paragraph longer than ``max_chars`` cut as in :func:`segment_spans`.

    These are the pieces windows and pasted-text runs are made of: a text pasted between two
    paragraphs of a page starts and ends on a piece boundary."""
    pieces: list[tuple[int, int]] = []
    pos = 0
    for end, after in [(m.start(), m.end()) for m in _BLANK_LINE.finditer(text)] + [(len(text), 0)]:
        start = pos
        while start < end and text[start].isspace():
            start += 1
        while end > start and text[end - 1].isspace():
            end -= 1
        if end - start > max_chars:
            pieces.extend(_split_long(text, start, end, max_chars))
        elif end > start:
            pieces.append((start, end))  # most paragraphs: no call
        pos = after
    return pieces


def window_piece_ranges(
    pieces: list[tuple[int, int]], min_chars: int = DEFAULT_MIN_CHARS, max_chars: int = DEFAULT_MAX_CHARS
) -> list[tuple[int, int]]:
    """The windows of :func:`segment_spans` as ``(first, last + 1)`` index ranges into ``pieces``."""
    if min_chars < 1 or max_chars < min_chars:
        raise ValueError(f"need 1 <= min_chars <= max_chars, got {min_chars}, {max_chars}")
    if not pieces:
        return []
    ranges: list[tuple[int, int]] = []
    first = 0
    for i in range(1, len(pieces)):
        cur_start, cur_end = pieces[first][0], pieces[i - 1][1]
        if cur_end - cur_start >= min_chars or pieces[i][1] - cur_start > max_chars:
            ranges.append((first, i))
            first = i
    ranges.append((first, len(pieces)))
    return _absorb_short(ranges, pieces, min_chars, max_chars + min_chars)


def segment_spans(
    text: str, min_chars: int = DEFAULT_MIN_CHARS, max_chars: int = DEFAULT_MAX_CHARS
) -> list[tuple[int, int]]:
    """``(start, end)`` offsets of the paragraph windows of ``text`` (see the module docstring)."""
    if min_chars < 1 or max_chars < min_chars:
        raise ValueError(f"need 1 <= min_chars <= max_chars, got {min_chars}, {max_chars}")
    stripped = text.strip()
    if not stripped:
        return []
    if len(stripped) <= min_chars:
        first = len(text) - len(text.lstrip())
        return [(first, first + len(stripped))]
    pieces = paragraph_spans(text, max_chars)
    return [(pieces[i][0], pieces[j - 1][1]) for i, j in window_piece_ranges(pieces, min_chars, max_chars)]


def best_run(
    pieces: list[tuple[int, int]], scores: np.ndarray, min_chars: int = DEFAULT_MIN_CHARS, bias: float = 0.0
) -> tuple[int, int]:
    """The contiguous run of pieces most likely to be one pasted text: ``(first, last + 1)``.

    ``scores`` are per-piece log-odds (e.g. of the teacher class). The run maximises the sum of
    ``length * (score - bias)`` over its pieces (maximum-sum subarray, so every piece inside pulls
    its weight and a run is not cut by one neutral paragraph if the evidence around it is strong),
    then grows towards its higher-scoring neighbour until it spans ``min_chars`` characters (short
    texts give noisy scores) or covers every piece.
    """
    n = len(pieces)
    if n == 0:
        raise ValueError("no pieces")
    first, stop = best_runs(np.asarray(pieces), scores, np.array([[0, n]]), min_chars, bias)[0]
    return int(first), int(stop)


def best_runs(
    spans: np.ndarray,
    scores: np.ndarray,
    ranges: np.ndarray,
    min_chars: int = DEFAULT_MIN_CHARS,
    bias: float = 0.0,
) -> np.ndarray:
    """:func:`best_run` of many documents at once: ``spans`` ``(n_pieces, 2)`` and ``scores`` of
    every piece, ``ranges`` ``(n_docs, 2)`` each document's pieces ``[lo, hi)``; returns each
    document's run as an ``(n_docs, 2)`` range of piece indices.

    One loop over plain Python floats for the whole batch (per-document numpy calls cost more
    than the scan itself); the arithmetic, and so every tie, is the same as one document at a time.
    """
    spans = np.asarray(spans, dtype=np.int64).reshape(-1, 2)
    score_array = np.asarray(scores, dtype=np.float64)
    gain = ((spans[:, 1] - spans[:, 0]).astype(np.float64) * (score_array - bias)).tolist()
    score, start, end = score_array.tolist(), spans[:, 0].tolist(), spans[:, 1].tolist()
    out = np.zeros((len(ranges), 2), dtype=np.int64)
    for k, (first, stop) in enumerate(np.asarray(ranges, dtype=np.int64).reshape(-1, 2).tolist()):
        if stop <= first:
            raise ValueError("no pieces")
        best, best_lo, best_hi = -np.inf, first, first + 1
        run, lo = 0.0, first
        for i in range(first, stop):
            if run <= 0.0:
                run, lo = 0.0, i
            run += gain[i]
            if run > best:
                best, best_lo, best_hi = run, lo, i + 1
        while end[best_hi - 1] - start[best_lo] < min_chars and (best_lo > first or best_hi < stop):
            left = score[best_lo - 1] if best_lo > first else -np.inf
            right = score[best_hi] if best_hi < stop else -np.inf
            if right >= left:
                best_hi += 1
            else:
                best_lo -= 1
        out[k] = best_lo, best_hi
    return out


def _absorb_short(
    ranges: list[tuple[int, int]], pieces: list[tuple[int, int]], min_chars: int, limit: int
) -> list[tuple[int, int]]:
    """Merge each window shorter than ``min_chars`` into its shorter neighbour when the result
    stays within ``limit`` characters (short windows give noisy scores)."""
    out = list(ranges)

    def span(k: int) -> tuple[int, int]:
        return pieces[out[k][0]][0], pieces[out[k][1] - 1][1]

    i = 0
    while i < len(out):
        start, end = span(i)
        if end - start >= min_chars or len(out) == 1:
            i += 1
            continue
        options = []
        if i > 0 and end - span(i - 1)[0] <= limit:
            prev = span(i - 1)
            options.append((prev[1] - prev[0], i - 1))
        if i + 1 < len(out) and span(i + 1)[1] - start <= limit:
            nxt = span(i + 1)
            options.append((nxt[1] - nxt[0], i + 1))
        if not options:
            i += 1
            continue
        _, j = min(options)
        lo, hi = min(i, j), max(i, j)
        out[lo : hi + 1] = [(out[lo][0], out[hi][1])]
        i = lo
    return out


def segment_texts(
    text: str, min_chars: int = DEFAULT_MIN_CHARS, max_chars: int = DEFAULT_MAX_CHARS
) -> list[str]:
    """The paragraph windows of ``text`` as strings (``[]`` for a blank text)."""
    return [text[s:e] for s, e in segment_spans(text, min_chars, max_chars)]
