"""Paragraph windows and feature extraction on real dev texts."""

from __future__ import annotations

import random
import re

import numpy as np
import pytest

from detectors.features import STYLE_FEATURE_NAMES, NgramHasher, check_texts, stylometric_matrix
from detectors.segments import DEFAULT_MAX_CHARS, DEFAULT_MIN_CHARS, segment_spans, segment_texts


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
