"""Paragraph windows and feature extraction (hashed n-grams, style counts) on real dev texts."""

from __future__ import annotations

import random
import re
from collections import Counter

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.feature_extraction.text import HashingVectorizer

from detectors import features
from detectors.features import (
    STYLE_COUNT_NAMES,
    STYLE_FEATURE_NAMES,
    NgramHasher,
    check_texts,
    style_counts,
    style_from_counts,
    stylometric_matrix,
)
from detectors.segments import DEFAULT_MAX_CHARS, DEFAULT_MIN_CHARS, segment_spans, segment_texts
from detectors.text_units import CJK_CHARACTER_CLASS


def _sample_texts(records: list[dict], n: int, seed: int) -> list[str]:
    return [r["text"] for r in random.Random(seed).sample(records, min(n, len(records)))]


@pytest.mark.shared_data
def test_windows_cover_real_texts_exactly(dev_human, dev_openai) -> None:
    texts = _sample_texts(dev_human, 400, 0) + _sample_texts(dev_openai, 400, 1)
    long_texts = [t for t in texts if len(t) > 3 * DEFAULT_MAX_CHARS]
    assert long_texts, "the sample should contain long documents"
    for text in texts:
        spans = segment_spans(text)
        # Every non-space character in exactly one window, windows in order and non-overlapping.
        assert re.sub(r"\s", "", "".join(text[s:e] for s, e in spans)) == re.sub(r"\s", "", text)
        assert all(a[1] <= b[0] for a, b in zip(spans, spans[1:], strict=False))
        lengths = [e - s for s, e in spans]
        assert max(lengths) <= DEFAULT_MAX_CHARS + DEFAULT_MIN_CHARS
        limit = DEFAULT_MAX_CHARS + DEFAULT_MIN_CHARS
        for i, (start, end) in enumerate(spans if len(spans) > 1 else []):
            if end - start < DEFAULT_MIN_CHARS:
                # A short window only stays alone when merging it with a neighbour breaks the limit.
                assert i == 0 or end - spans[i - 1][0] > limit
                assert i == len(spans) - 1 or spans[i + 1][1] - start > limit


def test_window_edge_cases() -> None:
    assert segment_spans("") == [] and segment_spans(" \n ") == []
    assert segment_texts("  short text  ") == ["short text"]
    no_breaks = "word " * 1000  # 5,000 characters without a sentence end or paragraph
    spans = segment_spans(no_breaks)
    assert len(spans) >= 5 and all(e - s <= DEFAULT_MAX_CHARS + DEFAULT_MIN_CHARS for s, e in spans)
    with pytest.raises(ValueError):
        segment_spans("x", min_chars=500, max_chars=100)


@pytest.mark.shared_data
def test_window_counts_add_up_to_document_counts(dev_openai) -> None:
    """The classifier sums window counts to get document counts; only n-grams spanning a window
    boundary are lost."""
    hasher = NgramHasher().fit(["x"])
    text = next(r["text"] for r in dev_openai if len(r["text"]) > 2500)
    windows = segment_texts(text)
    whole = hasher.counts([text])
    summed = [block.sum(axis=0) for block in hasher.counts(windows)]
    for doc_block, window_block in zip(whole, summed, strict=True):
        lost = doc_block.sum() - window_block.sum()
        assert 0 <= lost <= 0.05 * doc_block.sum()


@pytest.mark.shared_data
def test_stylometric_block_on_real_texts(dev_human, dev_openai) -> None:
    texts = _sample_texts(dev_human, 300, 2) + _sample_texts(dev_openai, 300, 3) + ["", "x"]
    matrix = stylometric_matrix(texts)
    assert matrix.shape == (len(texts), len(STYLE_FEATURE_NAMES)) and matrix.dtype == np.float32
    assert np.isfinite(matrix).all()
    assert np.all(matrix[-2] == 0)
    # Every feature varies on real text (none is constant / dead).
    assert np.all(matrix[:-2].std(axis=0) > 0), [
        n for n, s in zip(STYLE_FEATURE_NAMES, matrix[:-2].std(axis=0), strict=True) if s == 0
    ]


def test_check_texts_errors() -> None:
    with pytest.raises(TypeError, match="single str"):
        check_texts("one string")
    with pytest.raises(TypeError, match=r"texts\[1\] is int"):
        check_texts(["ok", 3])
    assert check_texts(("a", "b")) == ["a", "b"]


# --- n-gram hashing ----------------------------------------------------------------------------------

_EDGE_TEXTS = [
    "",
    "   \n\t ",
    "x",
    "Hello, world!",
    "中文文本没有空格。日本語のテキスト、かな。",
    "Emoji \U0001f600\U0001f680 and astral \U00020000 letters \u00bd²",
    "lone surrogate \ud800 inside",
    "Tabs\tand\r\nCRLF\u00a0nbsp  double  spaces\n\n\nparagraphs",
    "İstanbul ΣΊΣΥΦΟΣ Straße",
    "\U0001d413\U0001d421\U0001d422\U0001d42c \U0001d422\U0001d42c bold, \U00010400\U00010428 Deseret",
]


def _columns(ngrams: list[str], block: int, char_length: int | None = None) -> dict[str, int]:
    """The column of each n-gram, from a batch where each text is exactly one n-gram of the block."""
    hasher = NgramHasher(char_ngram_range=None if char_length is None else (char_length, char_length))
    rows = hasher.fit(["x"]).counts(ngrams)[block]
    assert np.all(np.diff(rows.indptr) == 1)
    return dict(zip(ngrams, rows.indices.tolist(), strict=True))


@pytest.mark.shared_data
def test_char_ngrams_are_sklearns_ngrams(dev_human, dev_openai) -> None:
    """Each text's character n-grams are exactly scikit-learn's (whitespace runs collapsed, case
    kept), only hashed to other columns."""
    hasher = NgramHasher(char_ngram_range=(3, 5)).fit(["x"])
    analyzer = HashingVectorizer(analyzer="char", ngram_range=(3, 5), lowercase=False).build_analyzer()
    texts = _sample_texts(dev_human, 10, 4) + _sample_texts(dev_openai, 10, 5) + _EDGE_TEXTS
    grams = [analyzer(text) for text in texts]
    column_of: dict[str, int] = {}
    for n in (3, 4, 5):
        column_of.update(_columns(sorted({g for gs in grams for g in gs if len(g) == n}), 1, n))
    char_block = hasher.counts(texts)[1]
    for i, text_grams in enumerate(grams):
        row = char_block.getrow(i)
        expected = Counter(column_of[g] for g in text_grams)
        assert dict(zip(row.indices.tolist(), row.data.tolist(), strict=True)) == expected, texts[i][:80]


_CJK_CLASS = CJK_CHARACTER_CLASS


def test_cjk_characters_are_word_tokens() -> None:
    """Chinese and Japanese have no spaces: each ideograph or kana is a token (version 2 hashed a
    whole clause as one token), while Latin words next to them stay whole."""
    hasher = NgramHasher(word_ngram_range=(1, 1), char_ngram_range=None).fit(["x"])
    row = hasher.counts(["\u6211\u4eec\u662f\u5b66\u751f\u3002Hello \u65e5\u672c\u8a9e"])[0]
    assert row.sum() == 10  # 5 ideographs, the full stop, "hello", 3 ideographs
    same = hasher.counts(["\u5b66\u751f", "\u751f \u5b66"])[0]
    assert same[0].indices.tolist() == same[1].indices.tolist()
    # ... and the style block counts words the same way, so its rates stay rates
    counts = style_counts(["\u6211\u4eec\u662f\u5b66\u751f\u3002" * 3])[0]
    assert counts[STYLE_COUNT_NAMES.index("words")] == 15
    repeat = stylometric_matrix(["\u6211\u4eec\u662f\u5b66\u751f\u3002" * 3])[0]
    assert 0.0 <= repeat[STYLE_FEATURE_NAMES.index("recent_repeat_share")] <= 1.0


@pytest.mark.shared_data
def test_word_ngrams_are_tokens_and_bigrams(dev_human, dev_openai) -> None:
    """Word block = lower-cased tokens of the version-1 regex (CJK cut into characters) and their
    bigrams."""
    texts = _sample_texts(dev_human, 10, 6) + _sample_texts(dev_openai, 10, 7) + _EDGE_TEXTS
    # Per-character lowering differs from str.lower() where the case mapping changes the length.
    texts = [t for t in texts if all(len(c.lower()) == 1 for c in t)]
    tokens = [re.findall(rf"[{_CJK_CLASS}]|[^\W{_CJK_CLASS}]+|[^\w\s]", text.lower()) for text in texts]
    column_of = _columns(sorted({t for ts in tokens for t in ts}), 0)
    pairs = sorted({f"{a} {b}" for ts in tokens for a, b in zip(ts, ts[1:], strict=False)})
    pair_rows = NgramHasher(word_ngram_range=(2, 2), char_ngram_range=None).fit(["x"]).counts(pairs)[0]
    column_of.update((p, int(pair_rows.indices[pair_rows.indptr[i]])) for i, p in enumerate(pairs))
    words = NgramHasher(char_ngram_range=None).fit(["x"]).counts(texts)[0]
    for i, text_tokens in enumerate(tokens):
        bigrams = [f"{a} {b}" for a, b in zip(text_tokens, text_tokens[1:], strict=False)]
        expected = Counter(column_of[t] for t in text_tokens + bigrams)
        row = words.getrow(i)
        assert dict(zip(row.indices.tolist(), row.data.tolist(), strict=True)) == expected, texts[i][:80]


def test_hashing_is_deterministic_and_batch_independent(monkeypatch) -> None:
    hasher = NgramHasher(char_ngram_range=(3, 5)).fit(["x"])
    texts = _EDGE_TEXTS * 3
    together = hasher.counts(texts)
    alone = [hasher.counts([t]) for t in texts]
    for block in range(2):
        stacked = sp.vstack([a[block] for a in alone]).tocsr()
        assert (together[block] != stacked).nnz == 0
    # Internal chunking (by characters and by rows) changes nothing.
    monkeypatch.setattr(features, "_CHUNK_CHARS", 7)
    monkeypatch.setattr(features, "_CHUNK_ROWS", 2)
    chunked = hasher.counts(texts)
    for block in range(2):
        assert (together[block] != chunked[block]).nnz == 0
    assert together[0].dtype == np.float32 and together[0].shape == (len(texts), 2**20)


@pytest.mark.shared_data
def test_counts_and_style_is_both_calls(dev_human, monkeypatch) -> None:
    hasher = NgramHasher().fit(["x"])
    texts = _sample_texts(dev_human, 200, 13) + _EDGE_TEXTS
    separate = hasher.counts(texts), style_counts(texts)  # default chunks: all texts in one
    assert features._chunks(texts) == [(0, len(texts))]
    # The one-pass call over many small chunks (several texts each, and texts alone in theirs)
    # gives what the two calls give: a chunk-boundary slip in either output shows.
    monkeypatch.setattr(features, "_CHUNK_CHARS", 4000)
    monkeypatch.setattr(features, "_CHUNK_ROWS", 3)
    chunks = features._chunks(texts)
    assert len(chunks) > 50
    assert any(hi - lo > 1 for lo, hi in chunks) and any(hi - lo == 1 for lo, hi in chunks)
    blocks, style = hasher.counts_and_style(texts)
    assert len(blocks) == len(separate[0]) == 2
    assert all((a != b).nnz == 0 for a, b in zip(blocks, separate[0], strict=True))
    assert np.array_equal(style, separate[1])


def test_hasher_params_and_transform() -> None:
    hasher = NgramHasher(char_ngram_range=None, n_features_word=1000).fit(["x"])
    matrix = hasher.transform(["a b c d", ""])
    assert matrix.shape == (2, 1000) and matrix[1].nnz == 0
    assert np.isclose(np.linalg.norm(matrix[0].toarray()), 1.0)
    assert NgramHasher().fit(["x"]).transform(["abcd efgh"]).shape == (1, 2**21)
    with pytest.raises(ValueError, match="char_ngram_range"):
        NgramHasher(char_ngram_range=(3, 2)).fit(["x"])


def test_very_long_text_is_chunked_consistently() -> None:
    hasher = NgramHasher().fit(["x"])
    paragraph = "It is important to note that results may vary. " * 40 + "\n\n"
    long_text = paragraph * 700  # ~1.3M characters: longer than one internal chunk
    blocks, style = hasher.counts_and_style([long_text, paragraph])
    # Word n-grams: 700 times the paragraph's, plus 699 bigrams ". it" across paragraphs.
    extra = blocks[0][0] - 700 * blocks[0][1]
    extra.eliminate_zeros()
    assert extra.nnz == 1 and extra.data[0] == 699
    # Character 4-grams: one per position of the whitespace-collapsed text.
    collapsed = re.sub(r"\s\s+", " ", long_text)
    assert blocks[1][0].sum() == len(collapsed) - 3
    words = STYLE_COUNT_NAMES.index("words")
    assert style[0, words] == 700 * style[1, words]
    assert np.allclose(stylometric_matrix([long_text])[0, 2:7], stylometric_matrix([paragraph])[0, 2:7])


# --- style counts ------------------------------------------------------------------------------------

# words: runs of \w, each CJK character one word (as the word n-grams take them)
_PHRASE_WORDS = re.compile(rf"[{CJK_CHARACTER_CLASS}]|[^\W{CJK_CHARACTER_CLASS}]+")


def _reference_counts(text: str) -> dict[str, float]:
    """Plain-Python definitions of some count columns (regexes, as feature version 1 computed them)."""
    words = _PHRASE_WORDS.findall(text.lower())
    sentences = [len(s.split()) for s in re.split(r"(?<=[.!?\u3002])\s+|\n+", text) if s.strip()]
    lines = [line for line in text.split("\n") if line.strip()]
    joined = " " + " ".join(words) + " "
    return {
        "chars": len(text),
        "words": len(words),
        "word_chars": sum(map(len, words)),
        "sentences": len(sentences),
        "sentence_words": sum(sentences),
        "sentence_words_squared": sum(n * n for n in sentences),
        "short_sentences": sum(n < 8 for n in sentences),
        "long_sentences": sum(n > 35 for n in sentences),
        "lines": len(lines),
        "list_lines": len(re.findall(r"^[ \t]*(?:[-*\u2022+]|\d{1,2}[.)])[ \t]+\S", text, re.M)),
        "heading_lines": len(re.findall(r"^[ \t]*(?:#{1,6}[ \t]+\S.*|[^\n.!?]{2,60}:)[ \t]*$", text, re.M)),
        "contractions": len(re.findall(r"\w['\u2019](?:t|s|m|re|ve|ll|d)\b", text, re.I)),
        "punct_comma": text.count(","),
        "punct_ellipsis": text.count("..."),
        "bold_marks": text.count("**"),
        "space_before_punct": text.count(" ,") + text.count(" ."),
        "digits": len(re.findall(r"\d", text)),
        "non_ascii": len(re.findall(r"[^\x00-\x7f]", text)),
        "letters": len(re.findall(r"[^\W\d_]", text)),
        "discourse_phrases": sum(joined.count(f" {p} ") for p in features._DISCOURSE),
        "second_person_phrases": sum(joined.count(f" {p} ") for p in features._SECOND_PERSON),
    }


@pytest.mark.shared_data
def test_style_counts_match_plain_python(dev_human, dev_openai, dev_other_llm) -> None:
    texts = (
        _sample_texts(dev_human, 150, 8)
        + _sample_texts(dev_openai, 150, 9)
        + _sample_texts(dev_other_llm, 50, 10)
    )
    texts = [t for t in texts if "\r" not in t and "\x0b" not in t and "\x0c" not in t] + _EDGE_TEXTS[3:6]
    counts = style_counts(texts)
    mismatches = []
    for i, text in enumerate(texts):
        for name, expected in _reference_counts(text).items():
            got = counts[i, STYLE_COUNT_NAMES.index(name)]
            if got != expected:
                mismatches.append((i, name, got, expected))
    # Lines with a leading no-break space and the like make a handful of list/heading lines differ.
    assert len(mismatches) <= 0.002 * len(texts) * 21, mismatches[:10]


@pytest.mark.shared_data
def test_style_counts_add_up_over_paragraphs_and_windows(dev_openai, dev_human) -> None:
    texts = [
        t for t in _sample_texts(dev_openai, 300, 11) + _sample_texts(dev_human, 300, 12) if len(t) > 1500
    ]
    assert texts
    # Cut at blank lines, a document's counts are the sum of its paragraphs' counts, except for
    # what spans a boundary: the blank lines themselves, phrases and word repeats.
    paragraphs = [[p for p in re.split(r"\n[ \t]*\n", t) if p.strip()] for t in texts]
    summed = np.stack([style_counts(p).sum(axis=0) for p in paragraphs])
    whole = style_counts(texts)
    inexact = {"chars", "recent_repeats"} | {n for n in STYLE_COUNT_NAMES if n.endswith("_phrases")}
    exact = [i for i, n in enumerate(STYLE_COUNT_NAMES) if n not in inexact]
    assert np.array_equal(summed[:, exact], whole[:, exact]), [
        n for i, n in enumerate(STYLE_COUNT_NAMES) if not np.array_equal(summed[:, i], whole[:, i])
    ]
    assert np.abs(summed - whole).sum() <= 0.05 * whole.sum()
    # Windows also cut long paragraphs: each cut adds a line and a paragraph start.
    windows = np.stack([style_counts(segment_texts(t)).sum(axis=0) for t in texts])
    relative = np.abs(windows - whole).sum(axis=0) / np.maximum(whole.sum(axis=0), 1)
    loose = [STYLE_COUNT_NAMES.index(n) for n in ("paragraphs", "lines", "line_end_punct_lines")]
    assert relative[loose].max() < 0.35 and np.delete(relative, loose).max() < 0.1


def test_style_edge_cases() -> None:
    matrix = stylometric_matrix(_EDGE_TEXTS)
    assert matrix.shape == (len(_EDGE_TEXTS), len(STYLE_FEATURE_NAMES)) and np.isfinite(matrix).all()
    assert np.all(matrix[0] == 0)  # empty text
    cjk = style_counts(["中文文本没有空格。"])[0]
    assert cjk[STYLE_COUNT_NAMES.index("non_ascii")] == 9 and cjk[STYLE_COUNT_NAMES.index("words")] == 8
    emoji = style_counts(["a \U0001f600 b"])[0]
    assert emoji[STYLE_COUNT_NAMES.index("chars")] == 5 and emoji[STYLE_COUNT_NAMES.index("words")] == 2
    # Letters beyond the BMP are word characters and letters, as for Python's regexes.
    bold = dict(
        zip(STYLE_COUNT_NAMES, style_counts(["\U0001d413\U0001d421\U0001d422\U0001d42c x"])[0], strict=True)
    )
    assert bold["words"] == 2 and bold["letters"] == 5 and bold["uppercase"] == 1 and bold["non_ascii"] == 4
    text = "It's fine.\n\n## Steps\n1. First step here\n- a bullet point\nHowever, thank you!"
    row = dict(zip(STYLE_COUNT_NAMES, style_counts([text])[0], strict=True))
    assert row["contractions"] == 1 and row["list_lines"] == 2 and row["heading_lines"] == 1
    assert row["paragraphs"] == 2 and row["lines"] == 5 and row["polite_phrases"] == 1
    assert row["discourse_phrases"] == 1 and row["line_end_punct_lines"] == 2
    with pytest.raises(ValueError, match="shape"):
        style_from_counts(np.zeros((2, 3)))


@pytest.mark.shared_data
@pytest.mark.parametrize("char_range", [(4, 4), None])
def test_weigh_sums_is_weigh_of_the_sums(dev_human, dev_openai, char_range) -> None:
    # weigh_sums (the scoring path) must give exactly the matrix of weigh(indicator @ block):
    # same entries in the same order, so the stage-1 sums accumulate identically.
    texts = _sample_texts(dev_human, 60, 11) + _sample_texts(dev_openai, 60, 12) + ["", "x"]
    hasher = NgramHasher(char_ngram_range=char_range).fit(texts)
    blocks = hasher.counts(texts)
    rng = np.random.default_rng(0)
    starts = rng.integers(0, len(texts), 300)
    ranges = np.stack([starts, np.minimum(starts + rng.integers(0, 6, 300), len(texts))], axis=1)
    sizes = ranges[:, 1] - ranges[:, 0]
    indicator = sp.csr_matrix(
        (
            np.ones(sizes.sum(), dtype=np.float32),
            np.concatenate([np.arange(a, b) for a, b in ranges]),
            np.concatenate([[0], np.cumsum(sizes)]),
        ),
        shape=(len(ranges), len(texts)),
    )
    expected = hasher.weigh([indicator @ block for block in blocks])
    got = hasher.weigh_sums(blocks, indicator)
    assert got.shape == expected.shape
    for name in ("indptr", "indices", "data"):
        np.testing.assert_array_equal(getattr(got, name), getattr(expected, name), err_msg=name)
    # weigh in place gives what weigh gives on a copy.
    scratch = [block.copy() for block in blocks]
    in_place, copied = hasher.weigh(scratch, in_place=True), hasher.weigh(blocks)
    for name in ("indptr", "indices", "data"):
        np.testing.assert_array_equal(getattr(in_place, name), getattr(copied, name), err_msg=name)
