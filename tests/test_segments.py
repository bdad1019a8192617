"""Paragraph pieces, windows as piece ranges, and the pasted-text run (detectors.segments)."""

from __future__ import annotations

import random

import numpy as np
import pytest

from detectors.segments import (
    DEFAULT_MIN_CHARS,
    best_run,
    best_runs,
    paragraph_spans,
    segment_spans,
    window_piece_ranges,
)


@pytest.mark.shared_data
def test_windows_are_ranges_of_paragraph_pieces(dev_human, dev_openai) -> None:
    """The classifier hashes pieces once and sums them into windows: the piece ranges must give
    exactly the windows of segment_spans, and the pieces must tile the windows in order."""
    rng = random.Random(5)
    texts = [r["text"] for r in rng.sample(dev_human, 300) + rng.sample(dev_openai, 300)]
    assert any(len(t) > 3000 for t in texts)
    for text in texts:
        pieces = paragraph_spans(text)
        ranges = window_piece_ranges(pieces)
        if len(text.strip()) > DEFAULT_MIN_CHARS:
            assert [(pieces[a][0], pieces[b - 1][1]) for a, b in ranges] == segment_spans(text)
        # contiguous, ordered, covering every piece once
        assert [a for a, _ in ranges] == [0] + [b for _, b in ranges[:-1]]
        assert ranges[-1][1] == len(pieces)
        assert all(s < e and text[s:e] == text[s:e].strip() for s, e in pieces)


def _pieces(lengths: list[int]) -> list[tuple[int, int]]:
    out, pos = [], 0
    for n in lengths:
        out.append((pos, pos + n))
        pos += n + 2
    return out


def test_best_run_finds_the_high_scoring_paragraphs() -> None:
    pieces = _pieces([400, 300, 250, 350, 500, 200])
    scores = np.array([-3.0, -2.0, 2.5, 1.5, -4.0, -1.0])
    assert best_run(pieces, scores) == (2, 4)
    # one weakly negative paragraph inside strong evidence stays in the run
    scores = np.array([-3.0, 3.0, -0.2, 3.0, -4.0, -1.0])
    assert best_run(pieces, scores) == (1, 4)
    # a bias raises the bar: only the strongest paragraph is left, then grown to min_chars
    assert best_run(pieces, np.array([-3.0, 0.5, 0.5, 4.0, -4.0, -1.0]), bias=1.0) == (3, 4)


def test_best_run_grows_short_runs_and_handles_all_negative_pages() -> None:
    pieces = _pieces([100, 120, 80, 400])
    # the best single piece is 80 characters: grown towards the better neighbour to >= 300
    run = best_run(pieces, np.array([-1.0, 1.0, 2.0, -5.0]))
    assert pieces[run[1] - 1][1] - pieces[run[0]][0] >= DEFAULT_MIN_CHARS
    assert run[0] <= 2 < run[1]
    # every piece negative: the least negative piece (length-weighted), grown as needed
    run = best_run(_pieces([500, 500, 500]), np.array([-3.0, -0.5, -2.0]))
    assert run == (1, 2)
    # a page shorter than min_chars: the run is the whole page
    assert best_run(_pieces([50, 60]), np.array([1.0, -1.0])) == (0, 2)
    with pytest.raises(ValueError):
        best_run([], np.zeros(0))


def test_best_runs_finds_the_maximum_sum_run_of_every_document() -> None:
    """Checked against brute force over all contiguous runs (best_run is best_runs of one document,
    so comparing the two would test nothing): without growth the run has the largest
    ``length * (score - bias)`` sum; with growth it spans ``min_chars`` or the whole document and
    contains that maximum-sum run."""
    rng = np.random.default_rng(3)
    spans, scores, ranges, docs = [], [], [], []
    for _ in range(300):
        n = int(rng.integers(1, 9))
        lengths = rng.integers(20, 600, n)
        starts = np.concatenate([[0], np.cumsum(lengths + 2)[:-1]])
        doc_spans = np.stack([starts, starts + lengths], axis=1)
        doc_scores = rng.integers(-3, 4, n).astype(float)  # integer scores: ties are frequent
        ranges.append((len(spans), len(spans) + n))
        docs.append((doc_spans, doc_scores))
        spans.extend(doc_spans.tolist())
        scores.extend(doc_scores)
    plain = best_runs(np.array(spans), np.array(scores), np.array(ranges), min_chars=0, bias=1.0)
    grown = best_runs(np.array(spans), np.array(scores), np.array(ranges), min_chars=700, bias=1.0)
    for (doc_spans, doc_scores), (lo, _), (a, b), (ga, gb) in zip(
        docs, ranges, plain.tolist(), grown.tolist(), strict=True
    ):
        gain = (doc_spans[:, 1] - doc_spans[:, 0]) * (doc_scores - 1.0)
        n = len(gain)
        best = max(gain[i:j].sum() for i in range(n) for j in range(i + 1, n + 1))
        assert gain[a - lo : b - lo].sum() == best
        assert ga <= a and b <= gb
        covered = doc_spans[gb - lo - 1, 1] - doc_spans[ga - lo, 0]
        assert covered >= 700 or (ga - lo, gb - lo) == (0, n)
