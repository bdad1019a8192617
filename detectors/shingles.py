"""Shingles and batch MinHash signatures, bit-identical to datasketch.

Shingle definition (exact)
--------------------------
A text is first cut into *units*:

- ``shingle="word"``: ``text.lower()``, then every match of :data:`WORD_PATTERN`, in order.
  A unit is a run of Unicode word characters (``\\w``), except that each CJK ideograph or
  kana character is a unit on its own (Chinese and Japanese do not separate words with
  spaces; without this a whole Chinese sentence would be one "word").
  Punctuation, whitespace and case therefore never change the units.
- ``shingle="char"``: ``text.lower()`` with every run of whitespace replaced by one space
  and leading/trailing whitespace removed; every character is a unit.

A shingle is a tuple of ``ngram`` consecutive units (a text of ``k >= ngram`` units has
``k - ngram + 1`` shingles). Its 32-bit hash is a polynomial over the units' xxh32 digests::

    t_j = xxhash.xxh32_intdigest(unit_j.encode("utf-8"), seed=0)
    shingle_hash = (((t_0 * M + t_1) * M + t_2) * M + ...) mod 2**32,  M = 0x9E3779B1

so each unit is hashed once per batch and the n-gram hashes are combined with numpy.
:func:`shingle_hash` is that function for one shingle; it is the ``hashfunc`` handed to
datasketch in the reference path (:func:`datasketch_minhash`).

Texts with fewer than ``ngram`` units have no shingles by default (``short="empty"``): their
signature is datasketch's empty MinHash (all values ``2**32 - 1``), which never matches.
:func:`shingle_hashes` / internal callers can ask for ``short="whole"`` instead, where a text
of ``1 <= k < ngram`` units is one shingle of all its units (used to cluster short prompts).

Signatures
----------
datasketch 2.0's default permutation scheme ``"affine32"``: every shingle hash ``h`` is
pre-mixed with the 32-bit MurmurHash3 finaliser, then permutation ``k`` maps it to
``a_k * fmix(h) + b_k mod 2**32``, with ``(a, b)`` drawn exactly as datasketch draws them
from ``np.random.RandomState(seed)``. The signature is the per-permutation minimum. Here all
shingles of a batch are laid out as one ``num_perm x shingles`` matrix (processed in chunks
that fit the CPU cache) and reduced per document with ``np.minimum.reduceat``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np
import xxhash
from datasketch import MinHash

from detectors.text_units import CJK_CHARACTER_CLASS

_CJK = CJK_CHARACTER_CLASS
#: Word units: one CJK/kana character, or a run of other word characters.
WORD_PATTERN = re.compile(rf"[{_CJK}]|[^\W{_CJK}]+")
_WHITESPACE = re.compile(r"\s+")
# Fast path: a text without CJK/kana characters has exactly the units of plain ``\w+``.
_HAS_CJK = re.compile(f"[{_CJK}]").search
_PLAIN_WORDS = re.compile(r"\w+").findall
_CJK_WORDS = WORD_PATTERN.findall


def _word_units(text: str) -> list[str]:
    lowered = text.lower()
    return _CJK_WORDS(lowered) if _HAS_CJK(lowered) else _PLAIN_WORDS(lowered)

#: Multiplier of the polynomial n-gram hash (odd, so each step is a bijection mod 2**32).
SHINGLE_MULTIPLIER = 0x9E3779B1
EMPTY_HASH = np.uint32(0xFFFFFFFF)
_MASK32 = 0xFFFFFFFF
# Shingles per chunk of the permutation matrix: num_perm x this many uint32 stays in L2.
_CHUNK = 4096
_CACHE_LIMIT = 500_000  # distinct units remembered (~60 MB); cleared when full


class _UnitHashes(dict):
    """xxh32 digest of each unit, computed once and remembered (bounded)."""

    def __missing__(self, unit: str) -> int:
        if len(self) >= _CACHE_LIMIT:
            self.clear()
        value = self[unit] = xxhash.xxh32_intdigest(unit.encode("utf-8"))
        return value


_UNIT_HASHES = _UnitHashes()


def batch_bounds(texts: Sequence[str], max_docs: int, max_chars: int = 4_000_000) -> list[tuple[int, int]]:
    """Consecutive ``(start, stop)`` ranges of at most ``max_docs`` texts and about ``max_chars``
    characters (a single longer text is a batch of its own), so work arrays stay bounded."""
    bounds, start, chars = [], 0, 0
    for i, text in enumerate(texts):
        size = len(text) if text else 0
        if i > start and (i - start >= max_docs or chars + size > max_chars):
            bounds.append((start, i))
            start, chars = i, 0
        chars += size
    if start < len(texts):
        bounds.append((start, len(texts)))
    return bounds


def text_units(text: str, shingle: str = "word") -> list[str]:
    """The units of ``text`` (see the module docstring)."""
    if shingle == "word":
        return _word_units(text)
    if shingle == "char":
        return list(_WHITESPACE.sub(" ", text.lower()).strip())
    raise ValueError(f"shingle must be 'word' or 'char', got {shingle!r}")


def text_shingles(text: str, shingle: str = "word", ngram: int = 5, short: str = "empty") -> list[tuple]:
    """The shingles of ``text`` as tuples of units, in order (duplicates kept)."""
    units = text_units(text, shingle)
    if len(units) < ngram:
        return [tuple(units)] if (short == "whole" and units) else []
    return [tuple(units[i : i + ngram]) for i in range(len(units) - ngram + 1)]


def shingle_hash(units: Sequence[str]) -> int:
    """32-bit hash of one shingle (a tuple of units): the datasketch ``hashfunc`` of the reference path."""
    value = 0
    for unit in units:
        value = (value * SHINGLE_MULTIPLIER + xxhash.xxh32_intdigest(unit.encode("utf-8"))) & _MASK32
    return value


def permutations(num_perm: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """datasketch's affine32 permutation parameters ``(a, b)`` (uint32 arrays) for ``seed``."""
    a, b = MinHash(num_perm=num_perm, seed=seed).permutations
    return a.astype(np.uint32), b.astype(np.uint32)


def fmix32(values: np.ndarray) -> np.ndarray:
    """MurmurHash3's 32-bit finaliser, element-wise on a uint32 array (datasketch's pre-mix)."""
    h = values.astype(np.uint32, copy=True)
    h ^= h >> np.uint32(16)
    h *= np.uint32(0x85EBCA6B)
    h ^= h >> np.uint32(13)
    h *= np.uint32(0xC2B2AE35)
    h ^= h >> np.uint32(16)
    return h


def unit_hashes(texts: Sequence[str], shingle: str = "word") -> tuple[np.ndarray, np.ndarray]:
    """The xxh32 digest of every unit of every text, in order, as one flat uint32 array plus offsets.

    Returns ``(hashes, offsets)``: the units of text ``i`` are ``hashes[offsets[i]:offsets[i+1]]``.
    These are the ``t_j`` of the shingle hash (module docstring); the MinHash detector also aligns
    them in order to tell a copy of a reference from a rewrite of it.
    """
    lookup = _UNIT_HASHES.__getitem__
    unit_counts = np.zeros(len(texts), dtype=np.int64)
    all_units: list[str] = []
    if shingle == "word":
        has_cjk, plain, cjk = _HAS_CJK, _PLAIN_WORDS, _CJK_WORDS
        for i, text in enumerate(texts):
            lowered = text.lower()
            units = cjk(lowered) if has_cjk(lowered) else plain(lowered)
            unit_counts[i] = len(units)
            all_units += units
    else:
        for i, text in enumerate(texts):
            units = text_units(text, shingle)
            unit_counts[i] = len(units)
            all_units += units
    hashes = np.fromiter(map(lookup, all_units), dtype=np.uint32, count=len(all_units))
    offsets = np.zeros(len(texts) + 1, dtype=np.int64)
    np.cumsum(unit_counts, out=offsets[1:])
    return hashes, offsets


def shingle_hashes(
    texts: Sequence[str], shingle: str = "word", ngram: int = 5, short: str = "empty"
) -> tuple[np.ndarray, np.ndarray]:
    """Hashes of every shingle of every text, as one flat uint32 array plus offsets.

    Returns ``(hashes, offsets)``: the shingles of text ``i`` are ``hashes[offsets[i]:offsets[i+1]]``
    in text order (duplicates kept).
    """
    if ngram < 1:
        raise ValueError("ngram must be >= 1")
    if short not in ("empty", "whole"):
        raise ValueError(f"short must be 'empty' or 'whole', got {short!r}")
    units, unit_offsets = unit_hashes(texts, shingle)
    return shingles_from_units(units, unit_offsets, ngram, short)


def shingles_from_units(
    units: np.ndarray, unit_offsets: np.ndarray, ngram: int = 5, short: str = "empty"
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`shingle_hashes` from the output of :func:`unit_hashes` (units hashed once, used twice)."""
    return _combine_ngrams(units, np.diff(unit_offsets), ngram, short)


def _combine_ngrams(
    unit_hashes: np.ndarray, unit_counts: np.ndarray, ngram: int, short: str
) -> tuple[np.ndarray, np.ndarray]:
    n_units = len(unit_hashes)
    unit_ends = np.cumsum(unit_counts)
    unit_starts = unit_ends - unit_counts
    n_shingles = np.maximum(unit_counts - ngram + 1, 0)
    if short == "whole":
        n_shingles = np.where((unit_counts > 0) & (unit_counts < ngram), 1, n_shingles)
    offsets = np.zeros(len(unit_counts) + 1, dtype=np.int64)
    np.cumsum(n_shingles, out=offsets[1:])
    total = int(offsets[-1])
    if total == 0:
        return np.zeros(0, dtype=np.uint32), offsets
    multiplier = np.uint32(SHINGLE_MULTIPLIER)
    # Polynomial hash of the n units starting at every unit position (positions near the
    # end of the batch are padded with zeros and never selected).
    padded = np.zeros(n_units + ngram, dtype=np.uint32)
    padded[:n_units] = unit_hashes
    rolling = padded[:n_units].copy()
    for j in range(1, ngram):
        rolling *= multiplier
        rolling += padded[j : n_units + j]
    full = unit_counts >= ngram
    # Start unit of each full-length shingle: for text i, unit_starts[i] + 0..n_shingles[i]-1.
    counts_full = np.where(full, unit_counts - ngram + 1, 0)
    full_offsets = np.cumsum(counts_full) - counts_full
    starts = np.repeat(unit_starts - full_offsets, counts_full) + np.arange(int(counts_full.sum()))
    if short == "empty" or not np.any((unit_counts > 0) & ~full):
        return rolling[starts], offsets
    out = np.empty(total, dtype=np.uint32)
    full_rows = np.repeat(full, n_shingles)
    out[full_rows] = rolling[starts]
    for i in np.flatnonzero((unit_counts > 0) & ~full):
        value = 0
        for t in unit_hashes[unit_starts[i] : unit_ends[i]].tolist():
            value = (value * SHINGLE_MULTIPLIER + t) & _MASK32
        out[offsets[i]] = value
    return out, offsets


def segment_minima(
    hashes: np.ndarray, segment_starts: np.ndarray, n_segments: int, a: np.ndarray, b: np.ndarray
) -> np.ndarray:
    """MinHash values of consecutive segments of ``hashes``: an ``n_segments x num_perm`` uint32 array.

    Segment ``s`` covers ``hashes[segment_starts[s]:segment_starts[s+1]]`` (the last one runs to
    the end). Empty segments get the empty value ``2**32 - 1`` in every permutation.
    """
    num_perm = len(a)
    out = np.full((n_segments, num_perm), EMPTY_HASH, dtype=np.uint32)
    total = len(hashes)
    if total == 0 or n_segments == 0:
        return out
    mixed = fmix32(hashes)
    a_col = a.reshape(-1, 1)
    b_col = b.reshape(-1, 1)
    starts = np.asarray(segment_starts, dtype=np.int64)
    nonempty = np.flatnonzero(np.diff(np.append(starts, total)) > 0)
    ne_starts = starts[nonempty]
    buf = np.empty((num_perm, _CHUNK), dtype=np.uint32)
    chunk_begin = 0
    while chunk_begin < total:
        chunk_end = min(chunk_begin + _CHUNK, total)
        width = chunk_end - chunk_begin
        work = buf[:, :width]
        np.multiply(a_col, mixed[chunk_begin:chunk_end], out=work)
        work += b_col
        # Sub-ranges of this chunk: the chunk start plus every segment start inside it.
        lo = np.searchsorted(ne_starts, chunk_begin, side="right")
        hi = np.searchsorted(ne_starts, chunk_end, side="left")
        # ne_starts[lo - 1] <= chunk_begin: that segment owns the chunk's first sub-range.
        cut = np.concatenate(([0], ne_starts[lo:hi] - chunk_begin))
        minima = np.minimum.reduceat(work, cut, axis=1).T
        rows = nonempty[lo - 1 : hi]
        out[rows] = np.minimum(out[rows], minima)
        chunk_begin = chunk_end
    return out


def signatures_from_hashes(
    hashes: np.ndarray, offsets: np.ndarray, num_perm: int, seed: int
) -> np.ndarray:
    """One signature (uint32 row) per text from :func:`shingle_hashes` output."""
    a, b = permutations(num_perm, seed)
    return segment_minima(hashes, offsets[:-1], len(offsets) - 1, a, b)


def datasketch_minhash(
    text: str, shingle: str = "word", ngram: int = 5, num_perm: int = 128, seed: int = 1, short: str = "empty"
) -> MinHash:
    """Reference path: the same signature computed by datasketch itself, one shingle at a time."""
    minhash = MinHash(num_perm=num_perm, seed=seed, hashfunc=shingle_hash)
    minhash.update_batch(text_shingles(text, shingle, ngram, short))
    return minhash
