"""Feature extraction for the teacher classifier: hashed n-grams and a stylometric block.

Two stateless scikit-learn transformers (nothing is learned in ``fit``, so the features of a text
never depend on the training set and a model file holds no vocabulary):

* :class:`NgramHasher` -- word 1-2-grams and character n-grams hashed into a fixed-width sparse
  matrix, with sublinear term frequency and l2 normalisation per block. Raw counts are exposed too
  (:meth:`NgramHasher.counts`) because counts of adjacent paragraph windows add up to (almost
  exactly) the counts of the whole document: the classifier vectorises each window once and gets
  the document's vector by summing, instead of transforming every character twice.
* :func:`stylometric_matrix` / :class:`StylometricFeatures` -- a small dense block of style rates:
  sentence-length rhythm, punctuation and markdown habits, paragraphing, vocabulary repetition, and
  the rates of discourse markers, hedges, politeness formulas and summary phrases typical of chat
  assistants. The rates are computed from additive counts (:func:`style_counts`, turned into
  rates by :func:`style_from_counts`), so a document's style row can be computed from the sum of
  its windows' count rows without reading the text again.

How it is computed (``FEATURE_VERSION = "ngram-style-3"``)
---------------------------------------------------------
A batch of texts is processed at once, in numpy, on its code points: the texts are concatenated
and encoded as UTF-32 (one ``uint32`` per code point), and every feature is a vectorised
operation on that array with a mask for whatever would cross a text boundary. Character classes
(whitespace, ``\\w``, letter, upper/lower case, decimal digit) come from lookup tables built from
``str`` methods (for the Basic Multilingual Plane once, for the few code points beyond it that a
batch holds -- emoji, rare CJK, mathematical letters -- per batch), so ``\\w`` is Python's.

*N-grams.* A token (a run of ``\\w`` characters, a single CJK ideograph or kana, or one character
that is neither ``\\w`` nor whitespace: the tokens of the regex ``\\b\\w+\\b|[^\\w\\s]`` on the
lower-cased text, except that Chinese and Japanese, written without spaces, are cut into characters:
version 2 made a whole clause one token, so the word block carried nothing for them) is
hashed with a polynomial over its lower-cased code points (each lowered on its own: the first
character of ``str.lower()``) mod 2**32, computed for all tokens at once from prefix sums.
Character n-grams are taken after runs of two or more whitespace characters are replaced by one
space (scikit-learn's rule), case kept. An n-gram's hash is a polynomial over its units (code
points, or token hashes for word bigrams) mod 2**32, plus ``n``. Hashes are 32-bit because they
only choose one of at most 2**31 columns: the column is the top bits of ``hash * 0x9E3779B9``
(Fibonacci hashing), and each block's CSR matrix is built from one sort of
``row * n_features + column`` keys. Version 1 used scikit-learn's
``HashingVectorizer`` (Python analyzer, murmurhash): the same n-grams land in other columns, so a
version-1 model is refused.

*Style counts* (:data:`STYLE_COUNT_NAMES`) are sums over a text: characters, words (the word
n-grams' tokens: ``\\w`` runs, each CJK character one word) and ``\\w`` characters, sentences (split
after ``.!?``/``。`` followed by whitespace, and at line breaks) with the sum and sum of squares of
their lengths in whitespace-separated words, short/long/lower-case sentences, non-blank lines,
paragraphs (non-blank lines after a blank line or at the start), list and heading lines, lines
ending with punctuation, punctuation marks, ``**``, contractions, phrase matches (lower-cased
words), and words repeated from the previous :data:`REPEAT_HORIZON` words. Three version-1 features
were not additive and changed:

- ``type_token_ratio`` (distinct / all of the first 300 words) -> ``recent_repeat_share``: share of
  words equal to one of the previous ``REPEAT_HORIZON`` words of the same text (a local
  vocabulary-repetition rate; only the first words of a window lose a little look-back).
- ``sentence_len_cv`` is computed from the sum and sum of squares of sentence lengths (same value).
- ``ends_with_punct`` (0/1 for the whole text) -> ``line_end_punct_share``: share of non-blank
  lines whose last character is ``. ! ? " )`` or ``。``.

Smaller definitional changes: ``paragraphs_per_kchar`` counts paragraph starts (was blank-line
matches + 1), ``uppercase_share`` uses ``str.isupper`` (was ASCII, Latin-1 and Cyrillic capitals),
sentence lengths and lower-case starts are as before, and ``...``/``**`` are counted as runs
(``len // 3`` and ``len // 2`` per run of dots or asterisks, as ``str.count`` does).
Counts are additive: for a document cut at blank lines, its counts equal the sum of its
paragraphs' counts exactly, except ``chars`` (the blank lines themselves), phrase matches and word
repeats spanning a cut (tested). A cut inside a paragraph (a long paragraph split into windows)
also adds a line, a paragraph start and possibly a sentence. N-gram counts are additive except for
the n-grams spanning a cut. So a document's style row may be computed as
``style_from_counts(sum of its pieces' style_counts)``; a model should then be trained on rows
computed the same way, so training and scoring see the same definition.

``FEATURE_VERSION`` names the exact feature definition. A model trained with another version is
refused at load time, because the same text would map to different columns.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import scipy.sparse as sp
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.sparsefuncs_fast import inplace_csr_row_normalize_l2

from detectors.text_units import CJK_RANGES

__all__ = [
    "FEATURE_VERSION",
    "REPEAT_HORIZON",
    "STYLE_COUNT_NAMES",
    "STYLE_FEATURE_NAMES",
    "NgramHasher",
    "StylometricFeatures",
    "check_texts",
    "style_counts",
    "style_from_counts",
    "stylometric_matrix",
]

FEATURE_VERSION = "ngram-style-3"


def check_texts(texts: object, what: str = "texts") -> list[str]:
    """``texts`` as a list of str; a clear ``TypeError`` for a bare string or a non-text item."""
    if isinstance(texts, str | bytes):
        raise TypeError(f"{what} must be a sequence of strings, not a single {type(texts).__name__}")
    if not isinstance(texts, Iterable):
        raise TypeError(f"{what} must be a sequence of strings, got {type(texts).__name__}")
    out = list(texts)
    for i, text in enumerate(out):
        if not isinstance(text, str):
            raise TypeError(
                f"{what}[{i}] is {type(text).__name__}, not str: the text column must hold strings "
                "(is a non-text column selected?)"
            )
    return out


# --- code points of a batch ------------------------------------------------------------------------

_BMP = 0x10000  # table index of every code point outside the Basic Multilingual Plane
# Character class bits (one uint16 table lookup per code point).
_WS, _WORD, _LETTER, _UPPER, _LOWER, _DIGIT = 1, 2, 4, 8, 16, 32
_SENTENCE_END_BIT, _STOP, _LINE_END_BIT, _BULLET, _CLOSER, _BLANK = 64, 128, 256, 512, 1024, 2048
_CJK = 4096  # ideographs and kana: written without spaces, so each one is a word token
_H = np.uint32  # hashes are 32-bit: they only pick one of at most 2**31 columns
_POLY = _H(0x01000193)  # odd multiplier of the polynomial hashes (each step is a bijection)
_POLY_INVERSE = _H(pow(int(_POLY), -1, 2**32))
_PAIR = _H(0x9E3779B1)  # multiplier combining token hashes into n-gram hashes
_FIBONACCI = _H(0x9E3779B9)
_CHUNK_CHARS = 1 << 20  # code points per internal chunk (bounds the work arrays)
_CHUNK_ROWS = 4096  # texts per chunk: row * 2**20 + column keys then fit in 32 bits


def _class_tables(codes: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(class bits, lower-cased code point, class-and-mark id) of each code point in ``codes``."""
    chars = [chr(c) for c in codes.tolist()]
    n = len(chars)
    cls = np.zeros(n, dtype=np.uint16)
    for bit, test in (
        (_WS, str.isspace),
        (_WORD, lambda ch: ch.isalnum() or ch == "_"),  # Python's \w
        (_LETTER, lambda ch: ch.isalnum() and not ch.isdecimal()),  # [^\W\d_]
        (_UPPER, str.isupper),
        (_LOWER, str.islower),
        (_DIGIT, str.isdecimal),  # Python's \d
    ):
        cls[np.fromiter(map(test, chars), dtype=bool, count=n)] |= bit
    for low, high in CJK_RANGES:
        cls[(codes >= low) & (codes <= high)] |= _CJK
    position = {c: i for i, c in enumerate(codes.tolist())}
    for bit, members in (
        (_SENTENCE_END_BIT, _SENTENCE_END),
        (_STOP, ".!?"),
        (_LINE_END_BIT, _LINE_END),
        (_BULLET, _BULLETS),
        (_CLOSER, ".)"),
        (_BLANK, " \t"),
    ):
        for member in members:
            if ord(member) in position:
                cls[position[ord(member)]] |= bit
    lower = np.fromiter((ord(ch.lower()[:1] or ch) for ch in chars), dtype=np.uint32, count=n)
    # One id per code point for the per-text class counts: kind bits * n_marks + punctuation mark.
    mark = np.zeros(n, dtype=np.uint16)
    for i, member in enumerate(_SINGLE_PUNCT, start=1):
        if ord(member) in position:
            mark[position[ord(member)]] = i
    kind = (
        ((cls & _WORD) != 0)
        | ((cls & _LETTER) != 0) << 1
        | ((cls & _UPPER) != 0) << 2
        | ((cls & _DIGIT) != 0) << 3
        | (codes >= 128) << 4
    ).astype(np.uint16)
    return cls, lower, kind * _N_MARKS + mark


class _Tables:
    """Per-code-point lookup tables for the BMP, built once. Index ``_BMP`` stands for every code
    point beyond it (a non-ASCII symbol); :class:`_Batch` fixes up the few such code points of a
    batch (emoji, rare CJK, mathematical letters) one by one."""

    _built: _Tables | None = None

    def __init__(self) -> None:
        cls, lower, kind_mark = _class_tables(np.arange(_BMP + 1, dtype=np.uint32))
        cls[_BMP] = 0
        lower[_BMP] = _BMP
        kind_mark[_BMP] = 16 * _N_MARKS  # non-ASCII, nothing else
        self.cls, self.lower, self.kind_mark = cls, lower, kind_mark
        self.n_marks = _N_MARKS
        self.n_kind_marks = 32 * _N_MARKS
        # The class-and-mark ids that occur, numbered from 0 (48 ids): every kind alone (astral code points
        # have no mark), then each marked id of the table (a mark has one kind). Counting these few
        # cells per text instead of all 32 * n_marks is a smaller bincount and reduction.
        marked = np.unique(kind_mark[kind_mark % _N_MARKS != 0])
        occurring = np.concatenate([np.arange(32) * _N_MARKS, marked])
        self.class_id = np.zeros(self.n_kind_marks, dtype=np.uint8)
        self.class_id[occurring] = np.arange(occurring.size)
        self.n_class_ids = occurring.size
        self.code_class_id = self.class_id[kind_mark]  # per code point, as cls
        # (n_class_ids, 5 + marks): the kind bits, then the single marks of each id (0/1)
        kinds, marks = occurring // _N_MARKS, occurring % _N_MARKS
        self.class_columns = np.column_stack(
            [(kinds & b) != 0 for b in _KIND_BITS.values()] + [marks == i for i in range(1, _N_MARKS)]
        ).astype(np.float64)

    @classmethod
    def get(cls) -> _Tables:
        if cls._built is None:
            cls._built = cls()
        return cls._built


class _Powers:
    """``POLY**j`` and ``POLY**-j`` mod 2**32 for j < n, cached up to a bound."""

    _cached: tuple[np.ndarray, np.ndarray] = (np.ones(1, dtype=_H), np.ones(1, dtype=_H))

    @classmethod
    def get(cls, n: int) -> tuple[np.ndarray, np.ndarray]:
        if len(cls._cached[0]) >= n:
            return cls._cached
        size = max(n, 2 * len(cls._cached[0]))
        out = []
        for base in (_POLY, _POLY_INVERSE):
            powers = np.full(size, base, dtype=_H)
            powers[0] = 1
            out.append(np.cumprod(powers, dtype=_H))  # wraps mod 2**32
        if size <= 4 * _CHUNK_CHARS:
            cls._cached = (out[0], out[1])
        return out[0], out[1]


class _Batch:
    """The texts of a chunk as one array of code points, with what the features need of it."""

    def __init__(self, texts: Sequence[str]) -> None:
        self.n = len(texts)
        self.lengths = np.fromiter(map(len, texts), dtype=np.int64, count=self.n)
        self.starts = np.zeros(self.n + 1, dtype=np.int64)
        np.cumsum(self.lengths, out=self.starts[1:])
        joined = "".join(texts)
        # surrogatepass: a lone surrogate stays one code point instead of failing. Read as
        # little-endian and converted to native order (a no-op on x86/ARM), so hashes never depend
        # on the machine's byte order.
        encoded = joined.encode("utf-32-le", "surrogatepass")
        self.codes = np.frombuffer(encoded, dtype="<u4").astype(np.uint32, copy=False)
        self.index = np.minimum(self.codes, _BMP)
        tables = _Tables.get()
        self.cls = tables.cls[self.index]
        self.row = np.repeat(np.arange(self.n, dtype=np.int32), self.lengths)
        nonempty = self.lengths > 0
        self.text_first = self.starts[:-1][nonempty]
        self.text_last = self.starts[1:][nonempty] - 1
        self.has_astral = bool(self.codes.size) and int(self.codes.max()) >= _BMP
        self.astral = np.flatnonzero(self.codes >= _BMP) if self.has_astral else None
        if self.astral is not None:
            unique, inverse = np.unique(self.codes[self.astral], return_inverse=True)
            cls, lower, kind_mark = _class_tables(unique)
            self.cls[self.astral] = cls[inverse]
            self.astral_lower, self.astral_kind_mark = lower[inverse], kind_mark[inverse]
        self._tokens: tuple[np.ndarray, np.ndarray, np.ndarray] | tuple[()] = ()

    def flag(self, bit: int) -> np.ndarray:
        return (self.cls & bit) != 0

    def prev(self, mask: np.ndarray) -> np.ndarray:
        """``mask`` of the previous code point in the same text (False at a text's start)."""
        out = np.empty_like(mask)
        if mask.size:
            out[0] = False
            out[1:] = mask[:-1]
            out[self.text_first] = False
        return out

    def next(self, mask: np.ndarray) -> np.ndarray:
        """``mask`` of the next code point in the same text (False at a text's end)."""
        out = np.empty_like(mask)
        if mask.size:
            out[-1] = False
            out[:-1] = mask[1:]
            out[self.text_last] = False
        return out

    def at(self, positions: np.ndarray, offset: int) -> np.ndarray:
        """Code points at ``positions + offset``; 0 where that leaves the text of ``positions``."""
        target = positions + offset
        inside = (target >= 0) & (target < self.codes.size)
        target = np.where(inside, target, 0)
        inside &= self.row[target] == self.row[positions]
        return np.where(inside, self.codes[target], 0)

    def cls_at(self, positions: np.ndarray, offset: int, bit: int) -> np.ndarray:
        """Whether the code point at ``positions + offset`` (inside the same text) has class ``bit``."""
        return (_Tables.get().cls[np.minimum(self.at(positions, offset), _BMP)] & bit) != 0

    def tokens(self, punctuation: bool) -> tuple[np.ndarray, np.ndarray]:
        """Hashes (uint32) and rows of the tokens in text order: runs of ``\\w`` (lower-cased), plus,
        with ``punctuation``, every character that is neither ``\\w`` nor whitespace."""
        if not self._tokens:
            self._tokens = self._all_tokens()
        hashes, rows, is_word = self._tokens
        return (hashes, rows) if punctuation else (hashes[is_word], rows[is_word])

    def _all_tokens(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        word = self.flag(_WORD)
        cjk = self.flag(_CJK)
        run = word & ~cjk  # runs of \w outside CJK are words; each CJK character is one
        single = (~word & ~self.flag(_WS)) | cjk
        starts = np.flatnonzero((run & ~self.prev(run)) | single)
        ends = np.flatnonzero((run & ~self.next(run)) | single)
        if starts.size == 0:
            return np.zeros(0, dtype=_H), np.zeros(0, dtype=np.int32), np.zeros(0, dtype=bool)
        # Polynomial hash of each token from prefix sums: sum_j c_j * P**(end - j) mod 2**32.
        lower = _Tables.get().lower[self.index]
        if self.astral is not None:
            lower[self.astral] = self.astral_lower
        powers, inverse = _Powers.get(self.codes.size)
        lower *= inverse[: self.codes.size]
        prefix = np.cumsum(lower, dtype=_H)
        before = prefix[np.maximum(starts - 1, 0)]
        before[starts == 0] = 0
        return (prefix[ends] - before) * powers[ends], self.row[starts], word[starts]


def _chunks(texts: Sequence[str]) -> list[tuple[int, int]]:
    """Consecutive ``(start, stop)`` ranges of at most ``_CHUNK_ROWS`` texts and about
    ``_CHUNK_CHARS`` code points (a longer text is a chunk of its own)."""
    bounds, start, size = [], 0, 0
    for i, text in enumerate(texts):
        if i > start and (size + len(text) > _CHUNK_CHARS or i - start >= _CHUNK_ROWS):
            bounds.append((start, i))
            start, size = i, 0
        size += len(text)
    bounds.append((start, len(texts)))
    return bounds


def _ngram_hashes(units: np.ndarray, rows: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Polynomial hashes of the ``n``-grams of consecutive ``units`` within one row, and their rows."""
    count = units.size - n + 1
    if count <= 0:
        return np.zeros(0, dtype=_H), np.zeros(0, dtype=np.int32)
    if n == 1:
        return units, rows
    hashes = units[:count] * _PAIR
    for k in range(1, n):
        hashes += units[k : k + count]
        if k < n - 1:
            hashes *= _PAIR
    hashes += _H(n)  # so that an n-gram and an m-gram of other units rarely share a hash
    same_row = rows[:count] == rows[n - 1 : n - 1 + count]
    return hashes[same_row], rows[:count][same_row]


def _key_dtype(n_rows: int, n_features: int) -> type:
    return np.uint32 if n_rows * n_features <= 2**32 else np.uint64


def _bucket_keys(hashes: np.ndarray, rows: np.ndarray, n_rows: int, n_features: int) -> np.ndarray:
    """``row * n_features + column``, the column from Fibonacci hashing of the 32-bit hash."""
    mixed = hashes * _FIBONACCI
    if n_features & (n_features - 1) == 0:
        shift = 33 - n_features.bit_length()
        columns = mixed >> _H(shift) if shift < 32 else np.zeros_like(mixed)
    else:
        columns = mixed % _H(n_features)
    key = _key_dtype(n_rows, n_features)
    return rows.astype(key) * key(n_features) + columns


def _count_matrix(keys: np.ndarray, n_rows: int, n_features: int) -> sp.csr_matrix:
    """CSR counts from ``row * n_features + column`` keys (one sort, no Python loop)."""
    if keys.size == 0:
        return sp.csr_matrix((n_rows, n_features), dtype=np.float32)
    keys.sort()
    change = np.empty(keys.size, dtype=bool)
    change[0] = True
    np.not_equal(keys[1:], keys[:-1], out=change[1:])
    first = np.flatnonzero(change)
    unique = keys[first]
    data = np.empty(first.size, dtype=np.float32)  # run lengths (exact: counts < 2**24)
    np.subtract(first[1:], first[:-1], out=data[:-1], casting="unsafe")
    data[-1] = keys.size - first[-1]
    key = keys.dtype.type
    if n_features & (n_features - 1) == 0:
        columns = (unique & key(n_features - 1)).astype(np.int32)
    else:
        columns = (unique % key(n_features)).astype(np.int32)
    # The keys are sorted, so each row starts where its first possible key would go.
    indptr = np.empty(n_rows + 1, dtype=np.int32)
    indptr[:-1] = np.searchsorted(unique, np.arange(n_rows, dtype=keys.dtype) * key(n_features))
    indptr[-1] = unique.size
    return sp.csr_matrix((data, columns, indptr), shape=(n_rows, n_features))


# --- hashed n-grams --------------------------------------------------------------------------------


class NgramHasher(TransformerMixin, BaseEstimator):
    """Hashed word and character n-grams, sublinear TF, each block l2-normalised.

    Word n-grams are over lower-cased tokens (runs of ``\\w`` and single punctuation marks);
    character n-grams keep case, with runs of whitespace collapsed to one space.
    ``char_ngram_range=None`` drops the character block (word n-grams only).
    """

    def __init__(
        self,
        word_ngram_range: tuple[int, int] = (1, 2),
        char_ngram_range: tuple[int, int] | None = (4, 4),
        n_features_word: int = 2**20,
        n_features_char: int = 2**20,
    ) -> None:
        self.word_ngram_range = word_ngram_range
        self.char_ngram_range = char_ngram_range
        self.n_features_word = n_features_word
        self.n_features_char = n_features_char

    def _check_params(self) -> None:
        for name in ("word_ngram_range", "char_ngram_range"):
            value = getattr(self, name)
            if value is None and name == "char_ngram_range":
                continue
            low, high = value
            if not 1 <= low <= high:
                raise ValueError(f"{name} must be (low, high) with 1 <= low <= high, got {value!r}")
        for name in ("n_features_word", "n_features_char"):
            if not 1 <= getattr(self, name) <= 2**31 - 1:
                raise ValueError(f"{name} must be in [1, 2**31 - 1], got {getattr(self, name)!r}")

    def fit(self, texts: Sequence[str], y: object = None) -> NgramHasher:
        check_texts(texts)
        self._check_params()
        self.n_blocks_ = 1 if self.char_ngram_range is None else 2
        return self

    def _word_keys(self, batch: _Batch) -> np.ndarray:
        hashes, rows = batch.tokens(punctuation=True)
        low, high = self.word_ngram_range
        keys = [
            _bucket_keys(*_ngram_hashes(hashes, rows, n), batch.n, self.n_features_word)
            for n in range(low, high + 1)
        ]
        return np.concatenate(keys)

    def _char_keys(self, batch: _Batch) -> np.ndarray:
        # Runs of two or more whitespace characters become one space (scikit-learn's rule).
        space = batch.flag(_WS)
        in_run = space & (batch.prev(space) | batch.next(space))
        keep = ~(in_run & batch.prev(space))
        units = batch.codes.copy()
        units[in_run] = 32
        units, rows = units[keep], batch.row[keep]
        low, high = self.char_ngram_range
        keys = [
            _bucket_keys(*_ngram_hashes(units, rows, n), batch.n, self.n_features_char)
            for n in range(low, high + 1)
        ]
        return np.concatenate(keys)

    def counts(self, texts: Sequence[str]) -> list[sp.csr_matrix]:
        """Raw n-gram counts, one CSR matrix per block (word, then char), float32; additive over
        concatenated windows (a window's n-grams never leave it)."""
        return self._counts(check_texts(texts), with_style=False)[0]

    def counts_and_style(self, texts: Sequence[str]) -> tuple[list[sp.csr_matrix], np.ndarray]:
        """``(self.counts(texts), style_counts(texts))`` in one pass over the text (cheaper than two
        calls: the code points and tokens are extracted once)."""
        blocks, style = self._counts(check_texts(texts), with_style=True)
        return blocks, style

    def _counts(self, texts: list[str], with_style: bool) -> tuple[list[sp.csr_matrix], np.ndarray | None]:
        self._check_params()
        blocks: list[list[sp.csr_matrix]] = [[], []]
        styles = []
        for lo, hi in _chunks(texts):
            batch = _Batch(texts[lo:hi])
            blocks[0].append(_count_matrix(self._word_keys(batch), batch.n, self.n_features_word))
            if self.char_ngram_range is not None:
                blocks[1].append(_count_matrix(self._char_keys(batch), batch.n, self.n_features_char))
            if with_style:
                styles.append(_style_counts_batch(batch))
        out = [parts[0] if len(parts) == 1 else sp.vstack(parts, format="csr") for parts in blocks if parts]
        return out, (np.vstack(styles) if with_style else None)

    def weigh(self, blocks: Sequence[sp.csr_matrix], in_place: bool = False) -> sp.csr_matrix:
        """Counts -> the model's features: log1p term frequency, l2 norm per block, stacked.

        ``in_place=True``: the blocks are scratch (e.g. fresh sums of piece counts) and float32 CSR
        blocks are overwritten instead of copied."""
        weighted = []
        for block in blocks:
            if not (in_place and sp.isspmatrix_csr(block) and block.dtype == np.float32):
                block = sp.csr_matrix(block, dtype=np.float32, copy=True)
            np.log1p(block.data, out=block.data)
            # What sklearn's normalize(block, copy=False) runs, without its input checks.
            inplace_csr_row_normalize_l2(block)
            weighted.append(block)
        return weighted[0] if len(weighted) == 1 else sp.hstack(weighted, format="csr")

    def weigh_sums(self, blocks: Sequence[sp.csr_matrix], indicator: sp.csr_matrix) -> sp.csr_matrix:
        """``self.weigh([indicator @ block for block in blocks])``: the features of sums of count
        rows (windows and documents made of paragraphs), without stacking the blocks side by side.

        Stacking column blocks interleaves every row of every block (that copy cost as much as the
        sums). Instead the blocks are stacked vertically (columns shifted) and each indicator row
        is repeated once per block, so output row ``r * n_blocks + k`` is row ``r`` of block ``k``,
        its entries in the same order as ``indicator @ block``; consecutive rows then *are* the
        stacked row, and normalising each of them is the l2 norm per block. Same numbers, tested.
        """
        n_blocks = len(blocks)
        if n_blocks == 1:
            return self.weigh([indicator @ blocks[0]], in_place=True)
        indicator = sp.csr_matrix(indicator)
        n_rows, n_parts = indicator.shape
        widths = np.cumsum([0] + [block.shape[1] for block in blocks])
        parts = [
            sp.csr_matrix(
                (block.data, block.indices.astype(np.int64) + widths[k], block.indptr),
                shape=(n_parts, widths[-1]),
            )
            for k, block in enumerate(blocks)
        ]
        stacked = sp.vstack(parts, format="csr", dtype=np.float32)
        # Indicator row r * n_blocks + k: row r over the rows of block k in ``stacked``.
        sizes = np.diff(indicator.indptr)
        repeated_sizes = np.repeat(sizes, n_blocks)
        indptr = np.zeros(n_rows * n_blocks + 1, dtype=np.int64)
        np.cumsum(repeated_sizes, out=indptr[1:])
        row_of_entry = np.repeat(np.arange(n_rows * n_blocks), repeated_sizes)
        block_of_entry = row_of_entry % n_blocks
        first_entry = np.repeat(indicator.indptr[:-1], n_blocks)
        within = np.arange(indptr[-1]) - indptr[:-1][row_of_entry]
        indices = indicator.indices[first_entry[row_of_entry] + within] + block_of_entry * n_parts
        data = indicator.data[first_entry[row_of_entry] + within]
        repeated = sp.csr_matrix((data, indices, indptr), shape=(n_rows * n_blocks, n_parts * n_blocks))
        sums = repeated @ stacked
        np.log1p(sums.data, out=sums.data)
        inplace_csr_row_normalize_l2(sums)
        indptr = np.ascontiguousarray(sums.indptr[::n_blocks])
        return sp.csr_matrix((sums.data, sums.indices, indptr), shape=(n_rows, widths[-1]))

    def transform(self, texts: Sequence[str]) -> sp.csr_matrix:
        return self.weigh(self.counts(check_texts(texts)))


# --- stylometric block -----------------------------------------------------------------------------

# Phrase lists, matched on lower-cased \w+ words (so "it's" is the two words "it", "s").
_DISCOURSE = (
    "however",
    "additionally",
    "furthermore",
    "moreover",
    "overall",
    "ultimately",
    "consequently",
    "therefore",
    "thus",
    "in conclusion",
    "in summary",
    "to summarize",
    "to summarise",
    "in addition",
    "firstly",
    "secondly",
    "lastly",
    "finally",
    "on the other hand",
    "as a result",
    "for example",
    "for instance",
    "it is important to",
    "it s important to",
    "it is worth noting",
    "it s worth noting",
    "it is essential",
    "it s essential",
    "it is crucial",
    "it s crucial",
    "keep in mind",
    "in today s",
    "plays a crucial role",
    "plays a vital role",
    "plays a significant role",
    "plays a key role",
)
_ASSISTANT_VOCAB = (
    "delve",
    "delves",
    "delving",
    "crucial",
    "essential",
    "various",
    "ensure",
    "ensuring",
    "enhance",
    "enhancing",
    "comprehensive",
    "significant",
    "significantly",
    "potential",
    "valuable",
    "vital",
    "foster",
    "fostering",
    "utilize",
    "utilizing",
    "robust",
    "seamless",
    "navigate",
    "landscape",
    "realm",
    "tapestry",
    "pivotal",
    "intricate",
    "invaluable",
    "showcase",
    "key",
    "effectively",
    "efficiently",
    "specific",
    "unique",
    "overall",
    "additionally",
    "furthermore",
    "moreover",
)
_HEDGE = (
    "may",
    "might",
    "could",
    "can be",
    "generally",
    "typically",
    "often",
    "usually",
    "likely",
    "possibly",
    "perhaps",
    "potentially",
    "some",
    "tend to",
    "depending on",
    "depends on",
    "it is possible",
    "it s possible",
)
_POLITE = (
    "please",
    "thank you",
    "thanks",
    "sorry",
    "glad",
    "happy to",
    "hope this helps",
    "feel free",
    "let me know",
    "certainly",
    "sure",
    "of course",
    "absolutely",
    "great question",
    "i hope",
    "here are",
    "here is",
    "here s",
)
_FIRST_PERSON = ("i", "me", "my", "mine")
_SECOND_PERSON = ("you", "your", "yours")
_PHRASE_GROUPS = {
    "discourse": _DISCOURSE,
    "assistant_vocab": _ASSISTANT_VOCAB,
    "hedge": _HEDGE,
    "polite": _POLITE,
    "first_person": _FIRST_PERSON,
    "second_person": _SECOND_PERSON,
}

_PUNCT = {
    "comma": ",",
    "period": ".",
    "semicolon": ";",
    "colon": ":",
    "exclamation": "!",
    "question": "?",
    "double_quote": '"',
    "apostrophe": "'",
    "open_paren": "(",
    "hyphen": "-",
    "em_dash": "\u2014",
    "curly_quote": "\u2019",
    "asterisk": "*",
    "hash": "#",
    "backtick": "`",
    "ellipsis": "...",
}
_SINGLE_PUNCT = tuple(mark for mark in _PUNCT.values() if len(mark) == 1)
_N_MARKS = len(_SINGLE_PUNCT) + 1
# The style counts of the kind bits of _class_tables' class-and-mark ids.
_KIND_BITS = {"word_chars": 1, "letters": 2, "uppercase": 4, "digits": 8, "non_ascii": 16}
_SENTENCE_END = ".!?\u3002"
_LINE_END = '.!?")\u3002'
_BULLETS = "-*\u2022+"
REPEAT_HORIZON = 16  # a word counts as repeated when it is one of the previous 16 words
_SHORT_SENTENCE, _LONG_SENTENCE = 8, 35  # words

#: Columns of :func:`style_counts` (additive per text).
STYLE_COUNT_NAMES: tuple[str, ...] = (
    "chars",
    "words",
    "word_chars",
    "sentences",
    "sentence_words",
    "sentence_words_squared",
    "short_sentences",
    "long_sentences",
    "lowercase_start_sentences",
    "recent_repeats",
    *(f"punct_{name}" for name in _PUNCT),
    "paragraphs",
    "lines",
    "list_lines",
    "heading_lines",
    "line_end_punct_lines",
    "bold_marks",
    "uppercase",
    "letters",
    "digits",
    "non_ascii",
    *(f"{name}_phrases" for name in _PHRASE_GROUPS),
    "contractions",
    "space_before_punct",
)
_C = {name: i for i, name in enumerate(STYLE_COUNT_NAMES)}

STYLE_FEATURE_NAMES: tuple[str, ...] = (
    "log_chars",
    "log_words",
    "sentence_len_mean",
    "sentence_len_cv",
    "short_sentence_share",
    "long_sentence_share",
    "word_len_mean",
    "recent_repeat_share",
    *(f"punct_{name}" for name in _PUNCT),
    "paragraphs_per_kchar",
    "lines_per_kchar",
    "list_line_share",
    "heading_line_share",
    "bold_rate",
    "uppercase_share",
    "digit_share",
    "non_ascii_share",
    "discourse_rate",
    "assistant_vocab_rate",
    "hedge_rate",
    "polite_rate",
    "first_person_rate",
    "second_person_rate",
    "contraction_rate",
    "lowercase_sentence_start_share",
    "space_before_punct_rate",
    "line_end_punct_share",
)


def _codes_of(chars: str) -> np.ndarray:
    return np.fromiter(map(ord, chars), dtype=np.uint32, count=len(chars))


class _PhraseTable:
    """Hashes of every phrase (as an n-gram of word tokens) and each phrase's groups."""

    _built: _PhraseTable | None = None
    _FILTER_BITS = 16  # a bitmap over the top hash bits skips the binary search for most n-grams

    def __init__(self) -> None:
        phrases = sorted({p for group in _PHRASE_GROUPS.values() for p in group})
        batch = _Batch(phrases)
        words, rows = batch.tokens(punctuation=False)
        lengths = np.bincount(rows, minlength=len(phrases))
        self.max_words = int(lengths.max())
        hashes = np.zeros(len(phrases), dtype=_H)
        for n in range(1, self.max_words + 1):
            ngram, ngram_rows = _ngram_hashes(words, rows, n)
            whole = lengths[ngram_rows] == n
            hashes[ngram_rows[whole]] = ngram[whole]
        order = np.argsort(hashes)
        self.hashes = hashes[order]
        self.bitmap = np.zeros(1 << self._FILTER_BITS, dtype=bool)
        self.bitmap[self.hashes >> _H(32 - self._FILTER_BITS)] = True
        membership = np.zeros((len(phrases), len(_PHRASE_GROUPS)), dtype=np.float64)
        for j, group in enumerate(_PHRASE_GROUPS.values()):
            for phrase in group:
                membership[phrases.index(phrase), j] = 1.0
        self.membership = membership[order]

    @classmethod
    def get(cls) -> _PhraseTable:
        if cls._built is None:
            cls._built = cls()
        return cls._built

    def group_counts(self, words: np.ndarray, rows: np.ndarray, n_rows: int) -> np.ndarray:
        """``(n_rows, n_groups)`` phrase occurrences (overlapping n-grams of the word hashes)."""
        n_phrases = len(self.hashes)
        hit_rows, hit_phrases = [], []
        for n in range(1, self.max_words + 1):
            ngram, ngram_rows = _ngram_hashes(words, rows, n)
            candidate = np.flatnonzero(self.bitmap[ngram >> _H(32 - self._FILTER_BITS)])
            ngram, ngram_rows = ngram[candidate], ngram_rows[candidate]
            where = np.minimum(np.searchsorted(self.hashes, ngram), n_phrases - 1)
            hit = self.hashes[where] == ngram
            hit_rows.append(ngram_rows[hit].astype(np.int64))
            hit_phrases.append(where[hit])
        per_phrase = np.bincount(
            np.concatenate(hit_rows) * n_phrases + np.concatenate(hit_phrases), minlength=n_rows * n_phrases
        ).reshape(n_rows, n_phrases)
        return per_phrase @ self.membership


def _runs(batch: _Batch, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(first position, length) of each run of True in ``mask`` inside a text."""
    starts = np.flatnonzero(mask & ~batch.prev(mask))
    ends = np.flatnonzero(mask & ~batch.next(mask))
    return starts, ends - starts + 1


class _Counter:
    """Adds per-position events into the per-text count matrix."""

    def __init__(self, batch: _Batch, out: np.ndarray) -> None:
        self.row, self.n, self.out = batch.row, batch.n, out

    def __call__(self, name: str, positions: np.ndarray, weights: np.ndarray | None = None) -> None:
        self.out[:, _C[name]] = np.bincount(self.row[positions], weights=weights, minlength=self.n)


def _style_counts_batch(batch: _Batch) -> np.ndarray:
    out = np.zeros((batch.n, len(STYLE_COUNT_NAMES)), dtype=np.float64)
    if batch.codes.size == 0:
        return out
    count = _Counter(batch, out)
    codes = batch.codes
    out[:, _C["chars"]] = batch.lengths
    # Character classes and single punctuation marks: one bincount over the whole batch.
    tables = _Tables.get()
    class_id = tables.code_class_id[batch.index]
    if batch.astral is not None:
        class_id[batch.astral] = tables.class_id[batch.astral_kind_mark]
    cells = batch.row * tables.n_class_ids + class_id
    by_cell = np.bincount(cells, minlength=batch.n * tables.n_class_ids).reshape(batch.n, tables.n_class_ids)
    # integer counts summed in float64: exact in any order
    by_column = by_cell @ tables.class_columns
    for j, name in enumerate(_KIND_BITS):
        out[:, _C[name]] = by_column[:, j]
    for i, name in enumerate(name for name, mark in _PUNCT.items() if len(mark) == 1):
        out[:, _C[f"punct_{name}"]] = by_column[:, len(_KIND_BITS) + i]
    # Runs: "..." and "**" counted like str.count (non-overlapping), words as runs of \w.
    dot_starts, dot_lengths = _runs(batch, codes == ord("."))
    count("punct_ellipsis", dot_starts, dot_lengths // 3)
    star_starts, star_lengths = _runs(batch, codes == ord("*"))
    count("bold_marks", star_starts, star_lengths // 2)
    word = batch.flag(_WORD)
    # words as the n-grams see them: runs of \w, except that each CJK character is one
    run = word & ~batch.flag(_CJK)
    count("words", np.flatnonzero((run & ~batch.prev(run)) | batch.flag(_CJK)))
    # " ," and " .".
    count("space_before_punct", np.flatnonzero((codes == 32) & batch.next((codes == 44) | (codes == 46))))
    # Contractions: \w['\u2019](t|s|m|re|ve|ll|d)\b, any case.
    apostrophes = np.flatnonzero(((codes == ord("'")) | (codes == 0x2019)) & batch.prev(word))
    follow = [tables.lower[np.minimum(batch.at(apostrophes, k), _BMP)] for k in (1, 2)]
    one = np.isin(follow[0], _codes_of("tsmd")) & ~batch.cls_at(apostrophes, 2, _WORD)
    pair = follow[0].astype(np.int64) * 65536 + follow[1]
    two = np.isin(pair, [ord(a) * 65536 + ord(b) for a, b in ("re", "ve", "ll")])
    two &= ~batch.cls_at(apostrophes, 3, _WORD)
    count("contractions", apostrophes[one | two])
    space = batch.flag(_WS)
    _sentence_counts(batch, space, count)
    _line_counts(batch, space, count)
    words, word_rows = batch.tokens(punctuation=False)
    first_group = _C[f"{next(iter(_PHRASE_GROUPS))}_phrases"]
    phrases = _PhraseTable.get().group_counts(words, word_rows, batch.n)
    out[:, first_group : first_group + len(_PHRASE_GROUPS)] = phrases
    out[:, _C["recent_repeats"]] = _recent_repeats(words, word_rows, batch.n)
    return out


def _sentence_counts(batch: _Batch, space: np.ndarray, count: _Counter) -> None:
    """Sentences split after .!?。 + whitespace and at line breaks; lengths in whitespace words."""
    breaks = (batch.codes == 10) | (space & batch.prev(batch.flag(_SENTENCE_END_BIT)))
    breaks[batch.text_first] = True
    visible = ~space
    word_starts = np.flatnonzero(visible & ~batch.prev(visible))
    if word_starts.size == 0:
        return
    first_word = np.flatnonzero(_follows_mark(np.flatnonzero(breaks), word_starts))
    lengths = np.diff(np.append(first_word, word_starts.size)).astype(np.float64)
    positions = word_starts[first_word]
    count("sentences", positions)
    count("sentence_words", positions, lengths)
    count("sentence_words_squared", positions, lengths**2)
    count("short_sentences", positions[lengths < _SHORT_SENTENCE])
    count("long_sentences", positions[lengths > _LONG_SENTENCE])
    count("lowercase_start_sentences", positions[(batch.cls[positions] & _LOWER) != 0])


def _follows_mark(marks: np.ndarray, positions: np.ndarray) -> np.ndarray:
    """For sorted ``positions``: whether one of the sorted ``marks`` lies in (previous position,
    this position]; True for the first. The same as comparing running counts of the marks at
    consecutive positions, without a pass over every code point."""
    follows = np.zeros(positions.size, dtype=bool)
    follows[0] = True
    at = np.searchsorted(positions, marks)
    follows[at[at < positions.size]] = True
    return follows


def _line_counts(batch: _Batch, space: np.ndarray, count: _Counter) -> None:
    """Non-blank lines, paragraphs, list and heading lines, lines ending with punctuation."""
    codes, cls = batch.codes, batch.cls
    line_start = codes == 10
    line_start[batch.text_first] = True
    visible = np.flatnonzero(~space)
    if visible.size == 0:
        return
    line_starts = np.flatnonzero(line_start)
    opens = _follows_mark(line_starts, visible)
    closes = np.empty(visible.size, dtype=bool)
    closes[-1] = True
    closes[:-1] = opens[1:]
    first = visible[opens]  # first visible character of each non-blank line
    last = visible[closes]  # its last visible character
    count("lines", first)
    # A paragraph starts at a text's first non-blank line or after a blank line.
    open_idx = np.flatnonzero(opens)
    before = np.maximum(open_idx - 1, 0)
    new_text = (open_idx == 0) | (batch.row[visible[before]] != batch.row[first])
    # line starts in (previous visible character, first]: two or more = a blank line between
    starts_between = np.searchsorted(line_starts, first, side="right") - np.searchsorted(
        line_starts, visible[before], side="right"
    )
    count("paragraphs", first[new_text | (starts_between >= 2)])
    count("line_end_punct_lines", last[(cls[last] & _LINE_END_BIT) != 0])
    # List lines: ^[ \t]*([-*•+]|\d{1,2}[.)])[ \t]+\S
    first_cls = cls[first]
    bullet = ((first_cls & _BULLET) != 0) & batch.cls_at(first, 1, _BLANK) & (last > first + 1)
    numbered = ((first_cls & _DIGIT) != 0) & (
        (batch.cls_at(first, 1, _CLOSER) & batch.cls_at(first, 2, _BLANK) & (last > first + 2))
        | (
            batch.cls_at(first, 1, _DIGIT)
            & batch.cls_at(first, 2, _CLOSER)
            & batch.cls_at(first, 3, _BLANK)
            & (last > first + 3)
        )
    )
    count("list_lines", first[bullet | numbered])
    # Heading lines: ^[ \t]*(#{1,6}[ \t]+\S.*|[^\n.!?]{2,60}:)[ \t]*$
    length = last - first + 1
    colon = np.flatnonzero((codes[last] == ord(":")) & (length >= 3) & (length <= 61))
    if colon.size:
        # no stop in [first, last): the candidates' characters only (at most 60 each)
        at = first[colon, None] + np.arange(60)
        stops = ((cls[np.minimum(at, cls.size - 1)] & _STOP) != 0) & (at < last[colon, None])
        colon = colon[~stops.any(axis=1)]
    hashes = np.zeros(first.size, dtype=np.int64)
    running = codes[first] == ord("#")
    for k in range(1, 8):
        hashes += running
        running &= batch.at(first, k) == ord("#")
    after_hashes = np.zeros(first.size, dtype=bool)
    for k in range(1, 7):
        after_hashes |= (hashes == k) & batch.cls_at(first, k, _BLANK)
    hashed = np.flatnonzero(after_hashes & (last > first + hashes))
    count("heading_lines", first[np.union1d(colon, hashed)])


def _recent_repeats(words: np.ndarray, rows: np.ndarray, n_rows: int) -> np.ndarray:
    """Words equal to one of the previous ``REPEAT_HORIZON`` words of the same text."""
    if words.size == 0:
        return np.zeros(n_rows)
    keyed = words ^ (rows.astype(_H) * _FIBONACCI)  # equal keys: (almost surely) same word, same text
    repeated = np.zeros(words.size, dtype=bool)
    for k in range(1, min(REPEAT_HORIZON, words.size - 1) + 1):
        repeated[k:] |= keyed[k:] == keyed[:-k]
    return np.bincount(rows[repeated], minlength=n_rows).astype(np.float64)


def style_counts(texts: Sequence[str]) -> np.ndarray:
    """``(n, len(STYLE_COUNT_NAMES))`` float64 additive counts per text (see the module docstring).

    The counts of a document cut into windows are (almost) the sum of the windows' counts, so
    ``style_from_counts(indicator @ style_counts(windows))`` gives the documents' style rows."""
    texts = check_texts(texts)
    parts = [_style_counts_batch(_Batch(texts[lo:hi])) for lo, hi in _chunks(texts)]
    return parts[0] if len(parts) == 1 else np.vstack(parts)


def style_from_counts(counts: np.ndarray) -> np.ndarray:
    """Rates from :func:`style_counts` rows (or sums of them): ``(n, len(STYLE_FEATURE_NAMES))``
    float32, all finite; a row with no characters is all zeros."""
    counts = np.asarray(counts, dtype=np.float64)
    if counts.ndim != 2 or counts.shape[1] != len(STYLE_COUNT_NAMES):
        raise ValueError(f"counts must have shape (n, {len(STYLE_COUNT_NAMES)}), got {counts.shape}")

    def col(name: str) -> np.ndarray:
        return counts[:, _C[name]]

    def ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
        return num / np.maximum(den, 1.0)

    chars, words, sentences = col("chars"), col("words"), col("sentences")
    kchar = np.maximum(chars, 1.0) / 1000.0
    lines = np.maximum(col("lines"), 1.0)
    mean_len = ratio(col("sentence_words"), sentences)
    variance = np.maximum(ratio(col("sentence_words_squared"), sentences) - mean_len**2, 0.0)
    columns = [
        np.log1p(chars),
        np.log1p(words),
        np.minimum(mean_len, 200.0) / 50.0,
        np.sqrt(variance) / np.maximum(mean_len, 1e-9) * (mean_len > 0),
        ratio(col("short_sentences"), sentences),
        ratio(col("long_sentences"), sentences),
        ratio(col("word_chars"), words) / 10.0,
        ratio(col("recent_repeats"), words),
        *(col(f"punct_{name}") / kchar / 10.0 for name in _PUNCT),
        col("paragraphs") / kchar,
        lines / kchar / 10.0,
        col("list_lines") / lines,
        col("heading_lines") / lines,
        col("bold_marks") / kchar,
        ratio(col("uppercase"), col("letters")),
        ratio(col("digits"), chars),
        ratio(col("non_ascii"), chars),
        *(ratio(col(f"{name}_phrases"), words) * 10.0 for name in _PHRASE_GROUPS),
        ratio(col("contractions"), words) * 10.0,
        ratio(col("lowercase_start_sentences"), sentences),
        col("space_before_punct") / kchar,
        col("line_end_punct_lines") / lines,
    ]
    out = np.stack(columns, axis=1) if len(counts) else np.zeros((0, len(STYLE_FEATURE_NAMES)))
    out[chars <= 0] = 0.0
    return out.astype(np.float32)


def stylometric_matrix(texts: Sequence[str]) -> np.ndarray:
    """Dense ``(n, len(STYLE_FEATURE_NAMES))`` float32 matrix of style rates (all finite):
    ``style_from_counts(style_counts(texts))``."""
    return style_from_counts(style_counts(texts))


class StylometricFeatures(TransformerMixin, BaseEstimator):
    """Stateless transformer wrapping :func:`stylometric_matrix`."""

    def fit(self, texts: Sequence[str], y: object = None) -> StylometricFeatures:
        check_texts(texts)
        self.n_features_out_ = len(STYLE_FEATURE_NAMES)
        return self

    def transform(self, texts: Sequence[str]) -> np.ndarray:
        return stylometric_matrix(check_texts(texts))

    def get_feature_names_out(self, input_features: object = None) -> np.ndarray:
        return np.asarray(STYLE_FEATURE_NAMES, dtype=object)
