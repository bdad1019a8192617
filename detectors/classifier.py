"""Calibrated "teacher vs human vs other LLM" text classifier (scikit-learn), with segment scoring.

Model (:class:`TeacherClassifier`, a scikit-learn estimator):

1. Stage 1 -- hashed word 1-2-grams and character n-grams (:class:`detectors.features.NgramHasher`,
   sublinear TF, l2 per block) into a multinomial logistic model trained with SGD, and binary
   logistic models (``nb_pairs``: teacher vs human, teacher vs other LLM) on the same features
   scaled by their naive-Bayes log-count ratios (NBSVM-style, Wang & Manning 2012:
   :func:`fit_log_count_ratio_model`). All are linear: stage 1 costs one sparse product per class
   and per binary model.
2. Stage 2 -- a small ``HistGradientBoostingClassifier`` over the stage-1 log-probabilities, the
   binary models' margins and the stylometric block (:func:`detectors.features.style_from_counts`
   of the text's additive style counts, so a document's row is the sum of its paragraphs' counts).
   It is fitted on *out-of-fold* stage-1 outputs (grouped folds), so it learns how far to trust the
   n-gram model, and it combines the n-gram evidence with style (sentence rhythm, lists/headings,
   discourse markers ...). Its log-loss training gives calibrated probabilities directly; the
   measured expected calibration error is written to ``metrics.json``.

Classes are ``"teacher"``, ``"human"`` and, when given, ``"other_llm"``. ``teacher_prob`` is
P(teacher); ``llm_prob`` is P(teacher) + P(other_llm) ("looks like any LLM").

:func:`train_model` trains on labelled records, measures error rates with prompt-grouped
cross-validation (the same prompt never sits in train and test), chooses the operating thresholds
(1% false-positive rate on human text), and writes ``model.skops``, ``metrics.json`` and
``MODEL_CARD.md`` atomically. :func:`load_model` checks the skops file's types against an explicit
allow-list and the feature version before anything is used.

Long documents and pasted text: :meth:`TeacherModel.score_documents` cuts every document into
paragraph pieces (:func:`detectors.segments.paragraph_spans`) and hashes each piece once; the
n-gram counts of the document, of its paragraph windows and of its *run* are sums of piece counts.
The run is the contiguous stretch of paragraphs most likely to be pasted teacher text
(:func:`detectors.segments.best_run` over the paragraphs' stage-1 teacher log-odds). Windows and
the run are scored by a second stage 2 trained on the paragraph windows of the training documents
(``stage2_window_``); the page score ``teacher_prob_max_segment`` is the best segment under the
model's ``segment_rule``, compared with its own threshold (``segment_threshold``: 1% FPR on
held-out human pages' page scores, measured in :func:`train_model` with the embedded TPR at 25%
and 50%).

Empty and near-empty texts (fewer than ``MIN_WORDS`` words and fewer than ``MIN_CHARS``
non-space characters) are not assessable: every score is
0.0 ("no evidence"), so they are never flagged and never add to an estimated share.
"""

from __future__ import annotations

import copy
import datetime as _dt
import hashlib
import io
import json
import platform
import time
import warnings
import zipfile
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import scipy.sparse as sp
import sklearn
from scipy.special import expit
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import SGDClassifier
from sklearn.metrics import brier_score_loss, confusion_matrix, roc_auc_score
from sklearn.model_selection import GroupKFold
from sklearn.utils.validation import check_is_fitted
from threadpoolctl import threadpool_limits

from detectors.features import FEATURE_VERSION, NgramHasher, check_texts, style_from_counts
from detectors.segments import DEFAULT_MAX_CHARS, best_runs, paragraph_spans, window_piece_ranges
from pipeline.normalize import normalize_text
from pipeline.storage import atomic_write_bytes, atomic_write_json, atomic_write_text, load_arrays

__all__ = [
    "MIN_SAMPLES_PER_CLASS",
    "MODEL_FORMAT",
    "MIN_WORDS",
    "MODEL_FILE",
    "ModelLoadError",
    "SEGMENT_RULES",
    "SegmentScores",
    "TeacherClassifier",
    "TeacherModel",
    "TrainingDataError",
    "drop_shared_texts",
    "expected_calibration_error",
    "load_model",
    "segment_scores",
    "train_model",
    "training_arrays",
]

TEACHER, HUMAN, OTHER_LLM = "teacher", "human", "other_llm"
MODEL_FILE = "model.skops"
METRICS_FILE = "metrics.json"
CARD_FILE = "MODEL_CARD.md"
MIN_SAMPLES_PER_CLASS = 20
#: A text given under two classes (same text after :func:`pipeline.normalize.normalize_text`) is
#: a label the model cannot learn. A few happen in real data (a citation a human and a model wrote
#: alike: 1 pair in the 25,781 dev texts) and are dropped from both classes; more than this share
#: of either class's texts is a mix-up of the inputs (the same file as --teacher and --human) and
#: stops training.
MAX_SHARED_TEXT_SHARE = 0.05
MIN_WORDS = 3
MIN_CHARS = 20
TARGET_FPR = 0.01
# Structure of a saved model: bump when the fitted parts change (so far: the window-trained stage 2
# and the segment rule, then the naive-Bayes members of stage 1), so that a model saved by older
# code is refused instead of misused.
MODEL_FORMAT = "stack2-window-stage2-run-nb-1"
_STAGE1_EPS = 1e-6


class TrainingDataError(ValueError):
    """Training input is unusable (a class missing, too few samples, non-text values)."""


class ModelLoadError(RuntimeError):
    """A model directory cannot be loaded safely (pickle, unknown types, other feature version)."""


# --- the estimator ---------------------------------------------------------------------------------


def _default_groups(n: int) -> np.ndarray:
    return np.arange(n).astype(str)


class TeacherClassifier(ClassifierMixin, BaseEstimator):
    """Two-stage text classifier: hashed n-gram SGD logistic model, stacked with style in HGB.

    ``fit(texts, y, groups=None, sample_weight=None)``: ``groups`` (e.g. prompt ids) keep related
    texts in the same internal fold when the out-of-fold stage-1 outputs for stage 2 are made.
    """

    def __init__(
        self,
        word_ngram_range: tuple[int, int] = (1, 2),
        char_ngram_range: tuple[int, int] | None = (4, 4),
        n_features: int = 2**20,
        alpha: float = 1e-5,
        sgd_max_iter: int = 30,
        n_folds: int = 5,
        hgb_max_iter: int = 100,
        hgb_learning_rate: float = 0.1,
        hgb_min_samples_leaf: int = 40,
        hgb_l2_regularization: float = 1.0,
        segment_rule: str = "run+windows",
        run_bias: float = 1.0,
        piece_max_chars: int = DEFAULT_MAX_CHARS,
        nb_pairs: tuple[tuple[str, str], ...] = ((TEACHER, HUMAN), (TEACHER, OTHER_LLM)),
        nb_alpha: float = 3e-6,
        random_state: int = 0,
    ) -> None:
        self.word_ngram_range = word_ngram_range
        self.char_ngram_range = char_ngram_range
        self.n_features = n_features
        self.alpha = alpha
        self.sgd_max_iter = sgd_max_iter
        self.n_folds = n_folds
        self.hgb_max_iter = hgb_max_iter
        self.hgb_learning_rate = hgb_learning_rate
        self.hgb_min_samples_leaf = hgb_min_samples_leaf
        self.hgb_l2_regularization = hgb_l2_regularization
        self.segment_rule = segment_rule
        self.run_bias = run_bias
        self.piece_max_chars = piece_max_chars
        self.nb_pairs = nb_pairs
        self.nb_alpha = nb_alpha
        self.random_state = random_state

    # building blocks -------------------------------------------------------------------------------
    def _new_hasher(self) -> NgramHasher:
        return NgramHasher(
            word_ngram_range=self.word_ngram_range,
            char_ngram_range=self.char_ngram_range,
            n_features_word=self.n_features,
            n_features_char=self.n_features,
        )

    def _new_stage1(self) -> SGDClassifier:
        return SGDClassifier(
            loss="log_loss",
            alpha=self.alpha,
            max_iter=self.sgd_max_iter,
            tol=1e-4,
            random_state=self.random_state,
        )

    def _new_stage2(self) -> HistGradientBoostingClassifier:
        return HistGradientBoostingClassifier(
            max_iter=self.hgb_max_iter,
            learning_rate=self.hgb_learning_rate,
            max_leaf_nodes=15,
            min_samples_leaf=self.hgb_min_samples_leaf,
            l2_regularization=self.hgb_l2_regularization,
            random_state=self.random_state,
        )

    @staticmethod
    def _stage2_input(stage1_rows: np.ndarray, style: np.ndarray) -> np.ndarray:
        return np.hstack([stage1_rows, style]).astype(np.float32)

    def _fit_stage1(
        self,
        features: sp.csr_matrix,
        y: np.ndarray,
        weight: np.ndarray | None,
        rows: np.ndarray | None = None,
    ) -> Stage1:
        """Stage 1 fitted on ``rows`` of ``features`` (all rows when None)."""
        if rows is not None:
            features, y = features[rows], y[rows]
            weight = None if weight is None else weight[rows]
        model = _fit_capped_sgd(self._new_stage1(), features, y, sample_weight=weight)
        members = [
            fit_log_count_ratio_model(
                features,
                y,
                positive,
                negative,
                weight,
                alpha=self.nb_alpha,
                max_iter=self.sgd_max_iter,
                random_state=self.random_state,
            )
            for positive, negative in self._nb_pairs_used()
        ]
        weights = (
            np.vstack([w for w, _ in members]) if members else np.zeros((0, features.shape[1]), np.float32)
        )
        return Stage1(model, weights, np.asarray([b for _, b in members], dtype=np.float64))

    def _nb_pairs_used(self) -> list[tuple[str, str]]:
        """The ``nb_pairs`` whose classes are both trained (no other-LLM samples: no such pair)."""
        return [(a, b) for a, b in self.nb_pairs if a in self.classes_ and b in self.classes_]

    def _stage1(self) -> Stage1:
        return Stage1(self.stage1_, self.stage1_nb_weights_, self.stage1_nb_intercepts_)

    def folds(self, y: np.ndarray, groups: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
        """The grouped folds used for out-of-fold outputs (deterministic for ``random_state``)."""
        n_groups = len(np.unique(groups))
        splitter = GroupKFold(
            n_splits=min(self.n_folds, n_groups), shuffle=True, random_state=self.random_state
        )
        return list(splitter.split(np.zeros(len(y)), y, groups))

    # fit / predict ---------------------------------------------------------------------------------
    def fit(
        self,
        texts: Sequence[str],
        y: Sequence[str],
        groups: Sequence[str] | None = None,
        sample_weight: Sequence[float] | None = None,
    ) -> TeacherClassifier:
        self.fit_with_oof(texts, y, groups, sample_weight)
        return self

    def fit_with_oof(
        self,
        texts: Sequence[str],
        y: Sequence[str],
        groups: Sequence[str] | None = None,
        sample_weight: Sequence[float] | None = None,
        on_fold: Callable[[np.ndarray, np.ndarray, Stage1], None] | None = None,
    ) -> OutOfFoldRows:
        """Fit, and return the out-of-fold stage-2 input rows of the documents and their windows.

        Stage 1 is fitted on documents; the document stage 2 (``stage2_``) on the documents'
        out-of-fold rows, the window stage 2 (``stage2_window_``) on the out-of-fold rows of every
        document's paragraph windows, labelled by their document (one HGB cannot serve 2 KB
        documents and 500-character windows at once: measured in bench/results_classifier.md).
        ``on_fold(train_idx, test_idx, stage1)`` is called for every internal fold, so a
        caller can score extra material (e.g. held-out pages) with a stage-1 model that never saw
        those documents.
        """
        if self.segment_rule not in SEGMENT_RULES:
            raise ValueError(f"segment_rule must be one of {SEGMENT_RULES}, got {self.segment_rule!r}")
        texts = check_texts(texts)
        y = np.asarray(y)
        if len(texts) != len(y):
            raise ValueError(f"{len(texts)} texts but {len(y)} labels")
        groups = _default_groups(len(y)) if groups is None else np.asarray(groups).astype(str)
        weight = None if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
        self.classes_ = np.unique(y)
        if len(self.classes_) < 2:
            raise ValueError("need at least two classes")
        for pair in self.nb_pairs:
            if len(pair) != 2 or pair[0] == pair[1] or not set(pair) <= {TEACHER, HUMAN, OTHER_LLM}:
                raise ValueError(
                    f"nb_pairs entries must be two different classes of {TEACHER!r}, {HUMAN!r}, "
                    f"{OTHER_LLM!r}; got {pair!r}"
                )
        self.hasher_ = self._new_hasher().fit(texts)
        plan = _plan(texts, require_assessable=False, piece_max_chars=self.piece_max_chars)
        counts, piece_style = self.hasher_.counts_and_style(plan.pieces)
        features, style = self._features_of(counts, piece_style, plan.doc_ranges)
        window_features, window_style = self._features_of(counts, piece_style, plan.window_ranges)
        window_owner = plan.window_owner
        width = len(self.classes_) + len(self._nb_pairs_used())
        oof = np.zeros((len(y), width))
        window_oof = np.zeros((len(window_owner), width))
        for train_idx, test_idx in self.folds(y, groups):
            stage1 = self._fit_stage1(features, y, weight, train_idx)
            oof[test_idx] = stage1.rows(features[test_idx], self.classes_)
            rows = np.flatnonzero(np.isin(window_owner, test_idx))
            window_oof[rows] = stage1.rows(window_features[rows], self.classes_)
            if on_fold is not None:
                on_fold(train_idx, test_idx, stage1)
        final = self._fit_stage1(features, y, weight)
        self.stage1_ = final.model
        self.stage1_nb_weights_, self.stage1_nb_intercepts_ = final.nb_weights, final.nb_intercepts
        rows = OutOfFoldRows(
            self._stage2_input(oof, style), self._stage2_input(window_oof, window_style), window_owner
        )
        with _one_thread():
            # Unweighted on purpose: the stage-2 probabilities are calibrated on the training mix,
            # and HGB with sample weights spends most of its time in weighted percentiles.
            self.stage2_ = self._new_stage2().fit(rows.documents, y)
            self.stage2_window_ = self._new_stage2().fit(rows.windows, y[window_owner])
        self.n_features_in_ = 1
        return rows

    def _features_of(
        self, counts: list[sp.csr_matrix], piece_style: np.ndarray, ranges: np.ndarray
    ) -> tuple[sp.csr_matrix, np.ndarray]:
        """N-gram features and style rows of piece ranges: both are sums of the pieces' counts
        (the text is read once, whatever the number of windows and runs made of it)."""
        indicator = _range_indicator(ranges, piece_style.shape[0])
        features = self.hasher_.weigh_sums(counts, indicator)
        return features, style_from_counts(indicator @ piece_style)

    def _stage2_rows(
        self, features: sp.csr_matrix, style: np.ndarray, stage1: Stage1 | None = None
    ) -> np.ndarray:
        """Stage-2 input rows (either stage 2) from n-gram features and style rows; ``stage1``
        (default: the fitted one) is e.g. :meth:`Stage1.on_columns` for a batch's compact columns."""
        stage1 = self._stage1() if stage1 is None else stage1
        return self._stage2_input(stage1.rows(features, self.classes_), style)

    def predict_proba_features(self, features: sp.csr_matrix, style: np.ndarray) -> np.ndarray:
        """Document class probabilities from precomputed n-gram features and style rows."""
        check_is_fitted(self, "stage2_")
        with _one_thread():
            return self.stage2_.predict_proba(self._stage2_rows(features, style))

    def predict_proba_windows(self, features: sp.csr_matrix, style: np.ndarray) -> np.ndarray:
        """Class probabilities of window-sized passages (the window-trained stage 2)."""
        check_is_fitted(self, "stage2_window_")
        with _one_thread():
            return self.stage2_window_.predict_proba(self._stage2_rows(features, style))

    def predict_proba_stacked(self, stacked: np.ndarray) -> np.ndarray:
        """Stage-2 probabilities for precomputed stage-2 input rows."""
        with _one_thread():
            return self.stage2_.predict_proba(stacked)

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        texts = check_texts(texts)
        check_is_fitted(self, "stage2_")
        plan = _plan(texts, require_assessable=False, piece_max_chars=self.piece_max_chars)
        counts, piece_style = self.hasher_.counts_and_style(plan.pieces)
        return self.predict_proba_features(*self._features_of(counts, piece_style, plan.doc_ranges))

    def predict(self, texts: Sequence[str]) -> np.ndarray:
        return self.classes_[np.argmax(self.predict_proba(texts), axis=1)]


@dataclass
class OutOfFoldRows:
    """Out-of-fold stage-2 input rows: documents, their windows, and each window's document."""

    documents: np.ndarray
    windows: np.ndarray
    window_owner: np.ndarray


@dataclass
class Stage1:
    """The linear first stage: the multinomial model and the naive-Bayes-scaled binary models
    (``nb_weights`` already include the log-count ratios, so each is one dot product)."""

    model: SGDClassifier
    nb_weights: np.ndarray  # (n_pairs, n_columns) float32
    nb_intercepts: np.ndarray  # (n_pairs,)
    # Set by on_columns: the full-width column of each column this stage 1 is restricted to.
    columns: np.ndarray | None = None

    def on_columns(self, columns: np.ndarray) -> Stage1:
        """This stage 1 for features whose column j is column ``columns[j]`` of the full width
        (see :func:`_compact_columns`): the same products over fewer, contiguous weights."""
        model = copy.copy(self.model)
        model.coef_ = self.model.coef_[:, columns]
        model.n_features_in_ = len(columns)
        return Stage1(model, self.nb_weights[:, columns], self.nb_intercepts, columns)

    def rows(self, features: sp.csr_matrix, classes: np.ndarray) -> np.ndarray:
        """Stage-2 inputs from n-gram features: class log-probabilities, then the binary margins."""
        log_proba = np.log(np.clip(_aligned_proba(self.model, features, classes), _STAGE1_EPS, 1.0))
        if not len(self.nb_intercepts):
            return log_proba
        # one contiguous weight row at a time (a strided (n_columns, k) operand would be copied)
        margins = np.column_stack([features @ w for w in self.nb_weights]) + self.nb_intercepts
        return np.hstack([log_proba, margins])


def fit_log_count_ratio_model(
    features: sp.csr_matrix,
    y: np.ndarray,
    positive: str,
    negative: str,
    sample_weight: np.ndarray | None = None,
    alpha: float = 1e-5,
    max_iter: int = 30,
    random_state: int = 0,
) -> tuple[np.ndarray, float]:
    """A binary ``positive``-vs-``negative`` logistic model on features scaled by their naive-Bayes
    log-count ratios (NBSVM-style, Wang & Manning 2012); other labels are left out.

    The ratio of column j is ``log((p_j / |p|) / (q_j / |q|))`` with ``p_j`` (``q_j``) the number of
    positive (negative) texts using it, plus one. Scaling lets the linear model start from the
    naive-Bayes evidence. Measured on the dev data as extra stage-2 inputs (teacher vs human and
    teacher vs other LLM): +0.0025 ROC-AUC and +0.019 TPR at 1% FPR teacher vs human, +0.0055
    ROC-AUC teacher vs other LLMs (bench/results_classifier.md, session 3). Returns ``(weights,
    intercept)`` with the ratios folded into the weights: ``margin = features @ weights + intercept``.
    """
    if not (np.any(y == positive) and np.any(y == negative)):
        # a small fold without one of the two classes: the member says nothing
        return np.zeros(features.shape[1], dtype=np.float32), 0.0
    rows = np.flatnonzero((y == positive) | (y == negative))
    features = sp.csr_matrix(features[rows])
    is_positive = y[rows] == positive
    n_columns = features.shape[1]
    present = []
    for mask in (is_positive, ~is_positive):
        part = features[np.flatnonzero(mask)]
        present.append(np.bincount(part.indices, minlength=n_columns).astype(np.float64) + 1.0)
    ratio = np.log(present[0] / present[0].sum()) - np.log(present[1] / present[1].sum())
    features.data = features.data * ratio[features.indices].astype(features.data.dtype)
    model = SGDClassifier(
        loss="log_loss", alpha=alpha, max_iter=max_iter, tol=1e-4, random_state=random_state
    )
    _fit_capped_sgd(model, features, is_positive, None if sample_weight is None else sample_weight[rows])
    return (model.coef_[0] * ratio).astype(np.float32), float(model.intercept_[0])


def _fit_capped_sgd(
    model: SGDClassifier, features: sp.csr_matrix, y: np.ndarray, sample_weight: np.ndarray | None
) -> SGDClassifier:
    """``model.fit(...)`` without scikit-learn's ConvergenceWarning.

    The SGD models stop at ``sgd_max_iter`` epochs (30 by default) on purpose: the cap is the
    chosen speed/quality trade-off (bench/results_classifier.md; the benches silence the same
    warning), so "maximum number of iteration reached" is expected on nearly every fit and would
    only put warning blocks on the user's stderr. Other warnings still show. (``catch_warnings``
    swaps the process-wide filters: a warning from another thread at that moment may be hidden.)"""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return model.fit(features, y, sample_weight=sample_weight)


def _one_thread() -> threadpool_limits:
    """HistGradientBoosting's OpenMP threads slow it down by 5-10x on a busy machine (measured);
    one thread is both predictable and, for these small dense blocks, fast enough."""
    return threadpool_limits(limits=1, user_api="openmp")


def _linear_proba(model: SGDClassifier, features: sp.csr_matrix) -> np.ndarray:
    """``model.predict_proba(features)`` for the log-loss SGD model, the same numbers, cheaper.

    scikit-learn computes ``features @ coef_.T``, and scipy copies the strided ``coef_.T`` (all
    hashed columns x classes) into a contiguous array on every call, which took longer than the
    product itself. Each class's row of ``coef_`` is contiguous, so the product is taken class by
    class (scipy accumulates the same terms in the same order: identical results, tested); the
    rest is sklearn's one-vs-rest normalisation."""
    if model.loss != "log_loss":
        return model.predict_proba(features)
    decision = np.column_stack([features @ weights for weights in model.coef_]) + model.intercept_
    proba = expit(decision, out=decision)
    if proba.shape[1] == 1:
        return np.stack([1 - proba[:, 0], proba[:, 0]], axis=1)
    total = proba.sum(axis=1)
    all_zero = total == 0
    if all_zero.any():
        proba[all_zero, :] = 1
        total[all_zero] = proba.shape[1]
    proba /= total.reshape((proba.shape[0], -1))
    return proba


def _aligned_proba(model: SGDClassifier, features: sp.csr_matrix, classes: np.ndarray) -> np.ndarray:
    """predict_proba with columns in ``classes`` order (a fold may lack a class)."""
    proba = _linear_proba(model, features)
    if len(model.classes_) == len(classes) and np.array_equal(model.classes_, classes):
        return proba
    out = np.full((features.shape[0], len(classes)), _STAGE1_EPS)
    for j, cls in enumerate(model.classes_):
        out[:, int(np.searchsorted(classes, cls))] = proba[:, j]
    return out


# --- document scoring: paragraph pieces, windows and the pasted-text run ---------------------------

SEGMENT_RULES = ("windows", "run", "run+windows", "windows+document", "run+windows+document")
# Segment kinds are bit flags: a short document's only window can also be its run.
WINDOW, RUN = 1, 2


def is_assessable(text: str) -> bool:
    """At least ``MIN_WORDS`` whitespace-separated words, or ``MIN_CHARS`` non-space characters
    (scripts written without spaces, e.g. Chinese)."""
    if len(text.split(None, MIN_WORDS)) >= MIN_WORDS:
        return True
    return len("".join(text.split())) >= MIN_CHARS


@dataclass
class _Plan:
    """How a batch of texts is cut: paragraph pieces (hashed once), and windows and documents as
    ranges of pieces (their n-gram counts are sums of piece counts)."""

    pieces: list[str]
    piece_spans: np.ndarray  # (n_pieces, 2) character offsets in the owning text
    piece_owner: np.ndarray
    doc_ranges: np.ndarray  # (n_texts, 2) piece ranges [lo, hi); empty for texts not assessed
    window_ranges: np.ndarray  # (n_windows, 2) piece ranges
    window_owner: np.ndarray
    assessable: np.ndarray

    @property
    def n_windows(self) -> np.ndarray:
        return np.bincount(self.window_owner, minlength=len(self.doc_ranges))


def _plan(
    texts: Sequence[str], require_assessable: bool = True, piece_max_chars: int = DEFAULT_MAX_CHARS
) -> _Plan:
    pieces: list[str] = []
    spans: list[tuple[int, int]] = []
    pieces_per_text: list[int] = []
    window_ranges: list[tuple[int, int]] = []
    windows_per_text: list[int] = []
    # Plain lists in the loop, arrays at the end (per-text numpy calls were a visible cost).
    for text in texts:
        own = paragraph_spans(text, piece_max_chars) if not require_assessable or is_assessable(text) else []
        lo = len(pieces)
        pieces.extend([text[s:e] for s, e in own])
        spans.extend(own)
        pieces_per_text.append(len(own))
        ranges = window_piece_ranges(own) if own else []
        window_ranges.extend([(lo + a, lo + b) for a, b in ranges])
        windows_per_text.append(len(ranges))
    n_pieces = np.asarray(pieces_per_text, dtype=np.int64).reshape(-1)
    ends = np.cumsum(n_pieces)
    n_texts = np.arange(len(texts))
    return _Plan(
        pieces,
        np.asarray(spans, dtype=np.int64).reshape(-1, 2),
        np.repeat(n_texts, n_pieces),
        np.stack([ends - n_pieces, ends], axis=1),
        np.asarray(window_ranges, dtype=np.int64).reshape(-1, 2),
        np.repeat(n_texts, np.asarray(windows_per_text, dtype=np.int64).reshape(-1)),
        n_pieces > 0,
    )


def _range_indicator(ranges: np.ndarray, n_cols: int) -> sp.csr_matrix:
    """Rows of ones over the column ranges [lo, hi)."""
    ranges = np.asarray(ranges, dtype=np.int64).reshape(-1, 2)
    sizes = ranges[:, 1] - ranges[:, 0]
    indptr = np.concatenate([[0], np.cumsum(sizes)])
    starts = np.repeat(ranges[:, 0] - indptr[:-1], sizes)
    indices = starts + np.arange(indptr[-1])
    data = np.ones(indptr[-1], dtype=np.float32)
    return sp.csr_matrix((data, indices, indptr), shape=(len(ranges), n_cols))


def _compact_columns(blocks: Sequence[sp.csr_matrix]) -> tuple[list[sp.csr_matrix], np.ndarray]:
    """The n-gram count blocks of a batch with their columns renumbered 0..k-1 (per block, in
    column order), and the full-width column (blocks side by side) of each new column.

    A batch of documents uses a few hundred thousand of the 2**21 hashed columns. Renumbered, the
    sparse sums' accumulators and the stage-1 weights (gathered once with
    :meth:`Stage1.on_columns`) are a fraction of the size, so fewer cache misses; every row keeps
    its entries in the same order, so sums and products are the same numbers (measured: 1.5x
    faster sums, 2x faster stage-1 products)."""
    compact, columns, offset = [], [], 0
    for block in blocks:
        used = np.zeros(block.shape[1], dtype=bool)
        used[block.indices] = True
        new_column = np.cumsum(used.view(np.int8), dtype=np.int32)
        new_column -= 1
        compact.append(
            sp.csr_matrix(
                (block.data, new_column[block.indices], block.indptr),
                shape=(block.shape[0], int(new_column[-1]) + 1 if used.size else 0),
            )
        )
        columns.append(np.flatnonzero(used) + offset)
        offset += block.shape[1]
    return compact, np.concatenate(columns)


@dataclass
class SegmentScores:
    """Document probabilities and scored segments (windows and runs) of a batch of texts."""

    n: int
    doc_proba: np.ndarray  # (n, n_classes); zero rows for texts not assessed
    assessable: np.ndarray
    owner: np.ndarray  # per segment: its document
    kind: np.ndarray  # WINDOW, RUN or both (bit flags)
    start: np.ndarray  # character offsets in the document
    end: np.ndarray
    teacher: np.ndarray  # P(teacher) from the window model
    doc_chars: np.ndarray  # characters covered by the document's pieces
    doc_teacher: np.ndarray  # the document model's P(teacher)

    def page_score(self, rule: str) -> np.ndarray:
        """Per document: the best segment's P(teacher) among the segments ``rule`` uses."""
        use = _rule_mask(self.kind, rule)
        best = np.zeros(self.n)
        np.maximum.at(best, self.owner[use], self.teacher[use])
        if rule.endswith("+document"):
            # the whole-document model's P(teacher) as one more candidate
            np.maximum(best, self.doc_teacher, out=best)
        return best

    def teacher_fraction(self, rule: str, threshold: float) -> np.ndarray:
        """Share of each document's characters inside segments (of ``rule``) scoring >= threshold.

        Windows partition the document and a run is one contiguous span, so the union of flagged
        characters = flagged windows + flagged run - their overlap."""
        use = _rule_mask(self.kind, rule)
        hit = use & (self.teacher >= threshold)
        length = (self.end - self.start).astype(np.float64)
        flagged = np.bincount(self.owner[hit], weights=length[hit], minlength=self.n)
        runs = np.flatnonzero(hit & (self.kind == RUN))
        if runs.size:
            run_start = np.full(self.n, -1)
            run_end = np.full(self.n, -1)
            run_start[self.owner[runs]] = self.start[runs]
            run_end[self.owner[runs]] = self.end[runs]
            windows = np.flatnonzero(hit & (self.kind & WINDOW > 0))
            d = self.owner[windows]
            overlap = np.clip(
                np.minimum(self.end[windows], run_end[d]) - np.maximum(self.start[windows], run_start[d]),
                0,
                None,
            )
            flagged -= np.bincount(d, weights=overlap.astype(np.float64), minlength=self.n)
        fraction = np.clip(flagged / np.maximum(self.doc_chars, 1.0), 0.0, 1.0)
        if rule.endswith("+document"):
            fraction[self.doc_teacher >= threshold] = 1.0  # the whole document is a segment too
        return fraction


def _rule_mask(kind: np.ndarray, rule: str) -> np.ndarray:
    if rule not in SEGMENT_RULES:
        raise ValueError(f"segment_rule must be one of {SEGMENT_RULES}, got {rule!r}")
    rule = rule.removesuffix("+document")
    if rule == "windows":
        return kind & WINDOW > 0
    if rule == "run":
        return kind & RUN > 0
    if rule == "run+windows":
        return np.ones(kind.shape, dtype=bool)
    raise ValueError(f"segment_rule must be one of {SEGMENT_RULES}, got {rule!r}")


def _teacher_log_odds(stage1: Stage1, classes: np.ndarray, features: sp.csr_matrix) -> np.ndarray:
    proba = _aligned_proba(stage1.model, features, classes)
    p = np.clip(proba[:, list(classes).index(TEACHER)], _STAGE1_EPS, 1 - _STAGE1_EPS)
    return np.log(p) - np.log1p(-p)


def segment_scores(
    classifier: TeacherClassifier, texts: Sequence[str], rules: Sequence[str] | None = None
) -> SegmentScores:
    """Score documents and their segments (one batch).

    Segments, all scored by the window-trained stage 2: a one-window document's window (the
    document); for longer documents, each paragraph window and the document's *run*: the
    contiguous paragraphs most likely to be pasted teacher text (:func:`detectors.segments.best_run`
    over the paragraphs' stage-1 teacher log-odds; stage 1 is linear, so this costs one sparse
    row per paragraph). ``rules`` (default: the classifier's ``segment_rule``) say which segment
    kinds are needed; windows of long documents are skipped when no rule uses them.
    """
    texts = check_texts(texts)
    rules = [classifier.segment_rule] if rules is None else list(rules)
    need_windows = any("windows" in r for r in rules)
    need_run = any("run" in r for r in rules)
    n = len(texts)
    teacher_col = list(classifier.classes_).index(TEACHER)
    plan = _plan(texts, piece_max_chars=classifier.piece_max_chars)
    docs = np.flatnonzero(plan.assessable)
    doc_proba = np.zeros((n, len(classifier.classes_)))
    doc_chars = np.zeros(n)
    empty = np.zeros(0, dtype=np.int64)
    if docs.size == 0:
        return SegmentScores(
            n, doc_proba, plan.assessable, empty, empty, empty, empty, np.zeros(0), doc_chars, np.zeros(n)
        )
    hasher = classifier.hasher_
    counts, piece_style = hasher.counts_and_style(plan.pieces)
    counts, columns = _compact_columns(counts)
    stage1 = classifier._stage1().on_columns(columns)
    lo, hi = plan.doc_ranges[docs, 0], plan.doc_ranges[docs, 1]
    doc_chars[docs] = plan.piece_spans[hi - 1, 1] - plan.piece_spans[lo, 0]

    n_windows = plan.n_windows
    n_pieces = plan.doc_ranges[:, 1] - plan.doc_ranges[:, 0]
    # The run of every document with several paragraphs (stage-1 log-odds per paragraph).
    run_ranges = plan.doc_ranges.copy()
    several = docs[n_pieces[docs] > 1] if need_run else docs[:0]
    if several.size:
        is_several = np.zeros(n, dtype=bool)
        is_several[several] = True
        in_several = np.flatnonzero(is_several[plan.piece_owner])
        log_odds = np.zeros(len(plan.pieces))
        piece_features = hasher.weigh([b[in_several] for b in counts], in_place=True)
        log_odds[in_several] = _teacher_log_odds(stage1, classifier.classes_, piece_features)
        run_ranges[several] = best_runs(
            plan.piece_spans, log_odds, plan.doc_ranges[several], bias=classifier.run_bias
        )
    whole_run = np.all(run_ranges == plan.doc_ranges, axis=1)
    # The document itself is a segment too: the only window of a short document, and/or its run
    # when the run covers every paragraph.
    doc_kind = np.where(n_windows[docs] == 1, WINDOW, 0) | np.where(whole_run[docs] & need_run, RUN, 0)
    keep = np.flatnonzero(doc_kind > 0)
    windows = np.flatnonzero(n_windows[plan.window_owner] > 1) if need_windows else empty
    partial = several[~whole_run[several]]
    # Documents, windows and partial runs in one feature matrix and one stage-1 pass (rows are
    # independent: the same numbers as separate passes, with one sparse product per block).
    stage2_rows = classifier._stage2_rows(
        *classifier._features_of(
            counts,
            piece_style,
            np.concatenate([plan.doc_ranges[docs], plan.window_ranges[windows], run_ranges[partial]]),
        ),
        stage1,
    )
    doc_rows, segment_rows = stage2_rows[: docs.size], stage2_rows[docs.size :]
    with _one_thread():
        doc_proba[docs] = classifier.stage2_.predict_proba(doc_rows)
        proba = classifier.stage2_window_.predict_proba(np.concatenate([doc_rows[keep], segment_rows]))
    owner_arr = np.concatenate([docs[keep], plan.window_owner[windows], partial])
    ranges_arr = np.concatenate(
        [plan.doc_ranges[docs[keep]], plan.window_ranges[windows], run_ranges[partial]]
    )
    kind = np.concatenate([doc_kind[keep], np.full(windows.size, WINDOW), np.full(partial.size, RUN)])
    return SegmentScores(
        n,
        doc_proba,
        plan.assessable,
        owner_arr,
        kind,
        plan.piece_spans[ranges_arr[:, 0], 0],
        plan.piece_spans[ranges_arr[:, 1] - 1, 1],
        proba[:, teacher_col],
        doc_chars,
        doc_proba[:, teacher_col],
    )


def score_texts(
    classifier: TeacherClassifier, texts: Sequence[str], threshold: float, batch_size: int = 2048
) -> dict[str, np.ndarray]:
    """Whole-document and segment scores for ``texts`` (see :meth:`TeacherModel.score_documents`);
    ``threshold`` applies to segments for ``teacher_fraction``."""
    texts = check_texts(texts)
    n = len(texts)
    out = {key: np.zeros(n, dtype=np.float32) for key in _SCORE_KEYS}
    classes = list(classifier.classes_)
    teacher_col = classes.index(TEACHER)
    llm_cols = [classes.index(c) for c in (TEACHER, OTHER_LLM) if c in classes]
    rule = classifier.segment_rule
    for lo in range(0, n, batch_size):
        batch = texts[lo : lo + batch_size]
        scored = segment_scores(classifier, batch)
        docs = np.flatnonzero(scored.assessable)
        sl = slice(lo, lo + len(batch))
        out["teacher_prob"][sl][docs] = scored.doc_proba[docs, teacher_col]
        out["llm_prob"][sl][docs] = scored.doc_proba[docs][:, llm_cols].sum(axis=1)
        out["teacher_prob_max_segment"][sl][docs] = scored.page_score(rule)[docs]
        out["teacher_fraction"][sl][docs] = scored.teacher_fraction(rule, threshold)[docs]
    return out


_SCORE_KEYS = ("teacher_prob", "teacher_prob_max_segment", "teacher_fraction", "llm_prob")


@dataclass
class TeacherModel:
    """A trained classifier with its operating thresholds and measured metrics."""

    classifier: TeacherClassifier
    threshold: float
    llm_threshold: float
    segment_threshold: float
    metrics: dict = field(default_factory=dict)
    model_id: str = ""
    feature_version: str = FEATURE_VERSION

    def score_documents(self, texts: Sequence[str], batch_size: int = 2048) -> dict[str, np.ndarray]:
        """Scores per document, float32 arrays keyed ``teacher_prob`` (whole document, P(teacher)),
        ``teacher_prob_max_segment`` (the best segment's P(teacher) under the model's
        ``segment_rule``: paragraph windows and/or the run of paragraphs most likely pasted from the
        teacher; compare it with ``segment_threshold``), ``teacher_fraction`` (share of the
        document's characters in segments with P(teacher) >= ``segment_threshold``) and
        ``llm_prob`` (P(teacher) + P(other_llm)). Texts with fewer than ``MIN_WORDS`` words score
        0.0 throughout.
        """
        return score_texts(self.classifier, texts, self.segment_threshold, batch_size=batch_size)


# --- metrics ---------------------------------------------------------------------------------------


def expected_calibration_error(proba: np.ndarray, truth: np.ndarray, n_bins: int = 15) -> float:
    """Expected calibration error of binary probabilities (equal-width bins, weighted by count)."""
    proba = np.asarray(proba, dtype=np.float64)
    truth = np.asarray(truth, dtype=np.float64)
    bins = np.minimum((proba * n_bins).astype(int), n_bins - 1)
    total = 0.0
    for b in range(n_bins):
        mask = bins == b
        if mask.any():
            total += mask.mean() * abs(proba[mask].mean() - truth[mask].mean())
    return float(total)


def _threshold_at_fpr(negative_scores: np.ndarray, fpr: float) -> float:
    """Smallest threshold t with mean(negative >= t) <= fpr (scores >= t are flagged)."""
    scores = np.sort(np.asarray(negative_scores, dtype=np.float64))
    if scores.size == 0:
        return 0.5
    allowed = int(np.floor(fpr * scores.size))
    # Flag only scores strictly above the (allowed+1)-th highest negative score.
    cut = scores[scores.size - allowed - 1]
    return float(np.nextafter(cut, np.inf))


def _operating_point(pos: np.ndarray, neg: np.ndarray, threshold: float) -> dict:
    return {
        "threshold": float(threshold),
        "tpr": float(np.mean(pos >= threshold)) if pos.size else None,
        "fpr": float(np.mean(neg >= threshold)) if neg.size else None,
    }


def _tpr_at_fpr(pos: np.ndarray, neg: np.ndarray, fpr: float) -> float:
    return float(np.mean(pos >= _threshold_at_fpr(neg, fpr)))


def evaluate_scores(
    labels: np.ndarray,
    proba: np.ndarray,
    classes: Sequence[str],
    sources: Sequence[str],
) -> dict:
    """The metrics.json block for out-of-fold probabilities (columns in ``classes`` order)."""
    classes = list(classes)
    teacher = proba[:, classes.index(TEACHER)]
    llm = proba[:, [classes.index(c) for c in (TEACHER, OTHER_LLM) if c in classes]].sum(axis=1)
    is_teacher, is_human = labels == TEACHER, labels == HUMAN
    is_other = labels == OTHER_LLM
    th_mask = is_teacher | is_human
    threshold = _threshold_at_fpr(teacher[is_human], TARGET_FPR)
    llm_threshold = _threshold_at_fpr(llm[is_human], TARGET_FPR)
    predicted = np.where(teacher >= threshold, TEACHER, np.where(llm >= llm_threshold, OTHER_LLM, HUMAN))
    present = [c for c in (TEACHER, HUMAN, OTHER_LLM) if c in classes]
    sources = np.asarray(sources)
    per_source = []
    for source in sorted(set(sources[is_human])):
        mask = is_human & (sources == source)
        per_source.append(
            {"source": str(source), "n": int(mask.sum()), "fpr": float(np.mean(teacher[mask] >= threshold))}
        )
    per_source.sort(key=lambda row: (-row["fpr"], row["source"]))
    metrics = {
        "feature_version": FEATURE_VERSION,
        "operating_point": _operating_point(teacher[is_teacher], teacher[is_human], threshold),
        "llm_operating_point": _operating_point(llm[is_teacher | is_other], llm[is_human], llm_threshold),
        "roc_auc": float(roc_auc_score(is_teacher[th_mask], teacher[th_mask])),
        "tpr_at_fpr": {
            "0.01": _tpr_at_fpr(teacher[is_teacher], teacher[is_human], 0.01),
            "0.05": _tpr_at_fpr(teacher[is_teacher], teacher[is_human], 0.05),
        },
        "brier": float(brier_score_loss(is_teacher, teacher)),
        "ece": expected_calibration_error(teacher, is_teacher),
        "confusion_matrix": {
            "labels": present,
            "matrix": confusion_matrix(labels, predicted, labels=present).tolist(),
            "rule": "teacher if teacher_prob >= threshold, else other_llm if llm_prob >= llm_threshold, "
            "else human",
        },
        "per_source_fpr": per_source,
    }
    if is_other.any():
        to_mask = is_teacher | is_other
        metrics["roc_auc_teacher_vs_other_llm"] = float(roc_auc_score(is_teacher[to_mask], teacher[to_mask]))
        metrics["roc_auc_llm_vs_human"] = float(roc_auc_score(~is_human, llm))
        metrics["other_llm_flagged_as_teacher"] = float(np.mean(teacher[is_other] >= threshold))
    metrics["pairwise"] = pairwise_metrics(labels, proba, classes)
    return metrics


def pairwise_metrics(labels: np.ndarray, proba: np.ndarray, classes: Sequence[str]) -> dict:
    """One-vs-one discrimination of the multi-class model: for classes a and b, the score
    ``P(a) / (P(a) + P(b))`` on the texts of a and b only.

    This is what a binary a-vs-b model measures (issue #4's reference figures are binary models), and
    it is the model's answer to "teacher or human?" when other LLMs are not in question. It is *not*
    what ``detect`` flags: ``teacher_prob`` is P(teacher) among all three classes, which must also
    keep other LLMs' text out, so its teacher-vs-human figures (``roc_auc``, ``tpr_at_fpr``) are lower.
    """
    classes = list(classes)
    out: dict = {}
    for other in (HUMAN, OTHER_LLM):
        if other not in classes or not np.any(labels == other):
            continue
        p_teacher, p_other = proba[:, classes.index(TEACHER)], proba[:, classes.index(other)]
        score = p_teacher / np.maximum(p_teacher + p_other, 1e-12)
        pos, neg = score[labels == TEACHER], score[labels == other]
        mask = (labels == TEACHER) | (labels == other)
        out[f"teacher_vs_{other}"] = {
            "roc_auc": float(roc_auc_score(labels[mask] == TEACHER, score[mask])),
            "tpr_at_fpr": {"0.01": _tpr_at_fpr(pos, neg, 0.01), "0.05": _tpr_at_fpr(pos, neg, 0.05)},
        }
    out["score"] = "P(teacher) / (P(teacher) + P(other class)), texts of the two classes only"
    return out


# --- training --------------------------------------------------------------------------------------


def _validate_records(records: object, label: str) -> list[dict]:
    if records is None:
        return []
    if isinstance(records, str | bytes | dict):
        raise TrainingDataError(f"{label}: expected a list of records (dicts with a 'text' field)")
    out = list(records)
    for i, record in enumerate(out):
        if not isinstance(record, dict) or "text" not in record:
            raise TrainingDataError(f"{label}[{i}]: expected a dict with a 'text' field")
        if not isinstance(record["text"], str):
            raise TrainingDataError(
                f"{label}[{i}]: 'text' is {type(record['text']).__name__}, not a string "
                "(is a non-text column selected as the text field?)"
            )
    return out


def drop_shared_texts(parts: dict[str, list[dict]]) -> tuple[dict[str, list[dict]], dict[str, int]]:
    """``parts`` without the records whose text (after ``normalize_text``) also appears under another
    class, and how many each class lost.

    Raises :class:`TrainingDataError` when, for some pair of classes, more than
    :data:`MAX_SHARED_TEXT_SHARE` of either class's records have a text of the other class: that
    is a mix-up of the inputs, and dropping the texts would hide it.
    """
    keys = {cls: [normalize_text(r["text"]) for r in records] for cls, records in parts.items()}
    distinct = {cls: set(k) for cls, k in keys.items()}
    classes = list(parts)
    mixed_up = []
    for i, a in enumerate(classes):
        for b in classes[i + 1:]:
            shared = distinct[a] & distinct[b]
            if not shared:
                continue
            n_a, n_b = (sum(k in shared for k in keys[c]) for c in (a, b))
            if max(n_a / len(keys[a]), n_b / len(keys[b])) > MAX_SHARED_TEXT_SHARE:
                mixed_up.append(
                    f"'{a}' and '{b}' share {len(shared)} text(s): {n_a} of {len(keys[a])} {a} texts, "
                    f"{n_b} of {len(keys[b])} {b} texts"
                )
    if mixed_up:
        raise TrainingDataError(
            "the same texts are given under two classes: " + "; ".join(mixed_up)
            + f" (more than {MAX_SHARED_TEXT_SHARE:.0%} of a class: are the teacher/human/other-LLM "
            "inputs mixed up?)"
        )
    kept: dict[str, list[dict]] = {}
    dropped: dict[str, int] = {}
    for cls, records in parts.items():
        elsewhere = set().union(*(distinct[c] for c in classes if c != cls))
        kept[cls] = [r for r, k in zip(records, keys[cls], strict=True) if k not in elsewhere]
        dropped[cls] = len(records) - len(kept[cls])
    return kept, dropped


def _source_family(source: object) -> str:
    return str(source).split("/", 1)[0] if source else "unknown"


def balanced_weights(labels: np.ndarray, sources: Sequence[str]) -> np.ndarray:
    """Per-sample weights: each class has the same total weight, and inside a class each source
    family (the part of ``source`` before the first ``/``) weighs ``sqrt(n)`` rather than ``n``,
    so a large dataset counts more than a small one but cannot dominate."""
    families = np.asarray([_source_family(s) for s in sources])
    keys = np.char.add(np.char.add(labels.astype(str), "\x00"), families)
    _, inverse, counts = np.unique(keys, return_inverse=True, return_counts=True)
    weight = 1.0 / np.sqrt(counts[inverse])
    for cls in np.unique(labels):
        mask = labels == cls
        weight[mask] /= weight[mask].sum()
    return weight * (len(labels) / weight.sum())


def _embed(host: str, guest: str, share: float) -> str:
    """``guest`` pasted into ``host`` at a paragraph break so it makes ~``share`` of the result."""
    host_len = int(len(guest) * (1 - share) / share)
    host = host[:host_len]
    cut = host.rfind("\n\n", 0, len(host) // 2 + 1)
    cut = cut if cut > 0 else len(host) // 2
    return host[:cut].rstrip() + "\n\n" + guest.strip() + "\n\n" + host[cut:].lstrip()


# Shares of a page's characters taken by pasted teacher text in the held-out measurement; 1.0 is
# the teacher text alone (the ceiling for any page rule: the best a perfect cut could reach).
EMBED_SHARES = (0.25, 0.5, 1.0)
#: Length bins (characters of the pasted teacher text) of the 25%-pasted TPR in metrics.json:
#: a short answer pasted into a page carries little evidence, a long one nearly always enough.
PASTED_LENGTH_BINS = (0, 200, 500, 1000, 2000)


def _measure_segment_rules(
    fold_models: list[TeacherClassifier],
    fold_parts: list[tuple],
    texts: list[str],
    rule: str,
    doc_threshold: float,
) -> tuple[dict, dict]:
    """Page threshold and embedded TPR for every segment rule, from held-out pages.

    Each fold's models score that fold's held-out human pages and the pages made of held-out
    teacher text pasted into them; a rule's page threshold gives 1% FPR on the human pages' page
    scores (the best of several segments needs a higher threshold than one document score)."""
    human_scores: list[SegmentScores] = []
    embedded: dict[float, list[SegmentScores]] = {share: [] for share in EMBED_SHARES}
    guest_chars = np.concatenate(
        # the characters pasted (_embed pastes the stripped text)
        [np.array([len(texts[g].strip()) for g in guests], dtype=np.int64) for *_, guests in fold_parts]
    )
    for fold_clf, (_, _, pages, test_human, _, _) in zip(fold_models, fold_parts, strict=True):
        human_scores.append(segment_scores(fold_clf, [texts[i] for i in test_human], SEGMENT_RULES))
        for share in EMBED_SHARES:
            embedded[share].append(segment_scores(fold_clf, pages[share], SEGMENT_RULES))
    table = {}
    for name in SEGMENT_RULES:
        human_page = np.concatenate([s.page_score(name) for s in human_scores])
        threshold = _threshold_at_fpr(human_page, TARGET_FPR)
        row = {"threshold": threshold, "fpr": float(np.mean(human_page >= threshold))}
        for share in EMBED_SHARES:
            page = np.concatenate([s.page_score(name) for s in embedded[share]])
            row[f"tpr_{int(share * 100)}pct"] = float(np.mean(page >= threshold)) if page.size else None
        table[name] = row
    chosen = table[rule]
    threshold = chosen["threshold"]
    emb_fraction = np.concatenate([s.teacher_fraction(rule, threshold) for s in embedded[0.25]])
    emb_page = np.concatenate([s.page_score(rule) for s in embedded[0.25]])
    human_fraction = np.concatenate([s.teacher_fraction(rule, threshold) for s in human_scores])
    human_page = np.concatenate([s.page_score(rule) for s in human_scores])

    def rate(mask: np.ndarray) -> float | None:
        return float(np.mean(mask)) if mask.size else None

    point = {
        "threshold": threshold,
        "rule": rule,
        "tpr": chosen["tpr_25pct"],
        "tpr_50pct": chosen["tpr_50pct"],
        "fpr": chosen["fpr"],
        "embedded_pages": int(emb_fraction.size),
        "embedded_flagged_by_teacher_fraction": rate(emb_fraction > 0),
        "human_flagged_by_teacher_fraction": rate(human_fraction > 0),
        # how many human pages a segment would flag at the (lower) document threshold
        "human_segments_above_document_threshold": rate(human_page >= doc_threshold),
        "embedded_mean_teacher_fraction": float(emb_fraction.mean()) if emb_fraction.size else None,
        "tpr_teacher_alone": chosen["tpr_100pct"],
        "tpr_by_pasted_length": _tpr_by_length(emb_page >= threshold, guest_chars),
        "note": "page score = teacher_prob_max_segment (best segment under `rule`: 'windows' = paragraph "
        "windows, 'run' = the run of paragraphs most likely pasted teacher text, 'run+windows' = both); "
        "threshold = 1% FPR on held-out human pages' page scores; tpr / tpr_50pct = share of held-out "
        "human pages with a held-out teacher text pasted in as ~25% / ~50% of the characters that reach "
        "it (tpr_teacher_alone: the teacher texts alone, the ceiling of any page rule; "
        "tpr_by_pasted_length: tpr by the pasted text's length in characters); "
        "teacher_fraction = share of characters in segments at or above the threshold",
    }
    return point, table


def training_arrays(parts: dict[str, list[dict]]) -> tuple[list[str], np.ndarray, list[str], np.ndarray]:
    """``(texts, labels, sources, groups)`` of labelled records (``{label: [record, ...]}``), in
    order. A record's group is its prompt (``p:<prompt_id>``) or, without one, the record itself,
    so grouped folds never split one prompt's texts."""
    records = [(label, r) for label, rs in parts.items() for r in rs]
    texts = [r["text"] for _, r in records]
    labels = np.asarray([label for label, _ in records])
    sources = [str(r.get("source") or "unknown") for _, r in records]
    groups = np.asarray(
        [
            f"p:{r['prompt_id']}" if r.get("prompt_id") is not None else f"r:{i}"
            for i, (_, r) in enumerate(records)
        ]
    )
    return texts, labels, sources, groups


def _tpr_by_length(flagged: np.ndarray, chars: np.ndarray) -> list[dict]:
    """Flagged share of pasted pages per :data:`PASTED_LENGTH_BINS` bin of the pasted text."""
    edges = (*PASTED_LENGTH_BINS, None)
    rows = []
    for low, high in zip(edges[:-1], edges[1:], strict=True):
        inside = (chars >= low) & (chars < high if high is not None else True)
        rows.append({"min_chars": low, "max_chars": high, "pages": int(inside.sum()),
                     "tpr": float(flagged[inside].mean()) if inside.any() else None})
    return rows


def train_model(
    teacher: list[dict],
    human: list[dict],
    other_llm: list[dict] | None,
    out_dir: str | Path,
    random_state: int = 0,
    classifier: TeacherClassifier | None = None,
) -> dict:
    """Train, cross-validate (prompt-grouped) and save a model; returns the metrics.

    Records are dicts with ``"text"`` and optional ``"source"`` and ``"prompt_id"``. Records that
    share a ``prompt_id`` stay in one fold; a record without one is its own group. A text given
    under two classes is dropped from both (counted in ``metrics["shared_texts_dropped"]``);
    more than :data:`MAX_SHARED_TEXT_SHARE` of a class is refused (:func:`drop_shared_texts`).
    Writes ``model.skops``, ``metrics.json`` and ``MODEL_CARD.md`` into ``out_dir`` (each
    atomically).
    """
    started = time.perf_counter()
    parts = {TEACHER: _validate_records(teacher, "teacher"), HUMAN: _validate_records(human, "human")}
    other = _validate_records(other_llm, "other_llm")
    if other_llm is not None and other:
        parts[OTHER_LLM] = other
    parts, shared_dropped = drop_shared_texts(parts)
    for cls, records in parts.items():
        if len(records) < MIN_SAMPLES_PER_CLASS:
            raise TrainingDataError(
                f"class '{cls}' has {len(records)} samples; at least {MIN_SAMPLES_PER_CLASS} are needed"
            )
    texts, labels, sources, groups = training_arrays(parts)
    weight = balanced_weights(labels, sources)
    clf = classifier if classifier is not None else TeacherClassifier(random_state=random_state)
    clf.set_params(random_state=random_state)

    # Held-out embedded pages: a teacher text pasted as ~25% (and ~50%) of a human page, both from
    # the fold's test part, scored with the fold's models (which saw neither text).
    rng = np.random.default_rng(random_state)
    human_idx = np.flatnonzero(labels == HUMAN)
    teacher_idx = np.flatnonzero(labels == TEACHER)
    # (train, test, pasted pages by share, test human texts, stage 1, the pasted teacher texts)
    fold_parts: list[
        tuple[np.ndarray, np.ndarray, dict[float, list[str]], np.ndarray, Stage1, np.ndarray]
    ] = []

    def on_fold(train_idx: np.ndarray, test_idx: np.ndarray, stage1: Stage1) -> None:
        test_human = np.intersect1d(test_idx, human_idx)
        guests = np.intersect1d(test_idx, teacher_idx)
        hosts = [int(rng.choice(test_human)) if test_human.size else -1 for _ in guests]
        pages = {
            share: [
                _embed(texts[h], texts[g], share) if h >= 0 else texts[g]
                for h, g in zip(hosts, guests, strict=True)
            ]
            for share in EMBED_SHARES
        }
        fold_parts.append((train_idx, test_idx, pages, test_human, stage1, guests))

    oof_rows = clf.fit_with_oof(texts, labels, groups, weight, on_fold=on_fold)
    oof = np.zeros((len(labels), len(clf.classes_)))
    fold_models = []
    window_labels = labels[oof_rows.window_owner]
    for train_idx, test_idx, _, _, stage1, _ in fold_parts:
        fold_clf = copy.copy(clf)
        fold_clf.stage1_ = stage1.model
        fold_clf.stage1_nb_weights_, fold_clf.stage1_nb_intercepts_ = stage1.nb_weights, stage1.nb_intercepts
        train_windows = np.isin(oof_rows.window_owner, train_idx)
        with _one_thread():
            fold_clf.stage2_ = clf._new_stage2().fit(oof_rows.documents[train_idx], labels[train_idx])
            fold_clf.stage2_window_ = clf._new_stage2().fit(
                oof_rows.windows[train_windows], window_labels[train_windows]
            )
        oof[test_idx] = fold_clf.predict_proba_stacked(oof_rows.documents[test_idx])
        fold_models.append(fold_clf)
    metrics = evaluate_scores(labels, oof, clf.classes_, sources)
    metrics["segment_operating_point"], metrics["segment_rules"] = _measure_segment_rules(
        fold_models, fold_parts, texts, clf.segment_rule, metrics["operating_point"]["threshold"]
    )
    threshold = metrics["operating_point"]["threshold"]
    segment_threshold = metrics["segment_operating_point"]["threshold"]
    metrics["segment_threshold"] = segment_threshold
    metrics["model_format"] = MODEL_FORMAT
    n_folds = len(fold_parts)
    fold_models.clear()
    fold_parts.clear()
    metrics["n_train"] = {str(c): int(np.sum(labels == c)) for c in clf.classes_}
    metrics["n_train_sources"] = {
        str(c): dict(Counter(_source_family(s) for s, lab in zip(sources, labels, strict=True) if lab == c))
        for c in clf.classes_
    }
    metrics["shared_texts_dropped"] = shared_dropped
    metrics["cv"] = {"scheme": "GroupKFold on prompt_id (no prompt_id: own group)", "n_folds": n_folds}
    metrics["min_words"] = MIN_WORDS
    metrics["train_seconds"] = round(time.perf_counter() - started, 1)
    metrics["params"] = {k: _jsonable(v) for k, v in clf.get_params().items()}
    metrics["versions"] = {"scikit-learn": sklearn.__version__, "python": platform.python_version()}
    metrics["trained_at"] = _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")
    model = TeacherModel(
        classifier=clf,
        threshold=threshold,
        llm_threshold=metrics["llm_operating_point"]["threshold"],
        segment_threshold=segment_threshold,
        metrics=metrics,
    )
    save_model(model, out_dir)
    return metrics


def _jsonable(value: object) -> object:
    if isinstance(value, tuple):
        return list(value)
    if isinstance(value, np.generic):
        return value.item()
    return value


# --- persistence -----------------------------------------------------------------------------------

# Every type a model file may contain besides skops' own defaults. Loading refuses anything else.
TRUSTED_TYPES: frozenset[str] = frozenset(
    {
        "detectors.classifier.TeacherClassifier",
        "detectors.features.NgramHasher",
        "sklearn.linear_model._stochastic_gradient.SGDClassifier",
        "sklearn.ensemble._hist_gradient_boosting.gradient_boosting.HistGradientBoostingClassifier",
        "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
        "sklearn.ensemble._hist_gradient_boosting.binning._BinMapper",
        "sklearn._loss.loss.HalfMultinomialLoss",
        "sklearn._loss.loss.HalfBinomialLoss",
        "sklearn._loss.link.MultinomialLogit",
        "sklearn._loss.link.LogitLink",
        "sklearn._loss.link.Interval",
        "sklearn._loss._loss.CyHalfMultinomialLoss",
        "sklearn._loss._loss.CyHalfBinomialLoss",
        "sklearn.linear_model._sgd_fast.Log",
        "sklearn.linear_model._sgd_fast.CyHalfBinomialLoss",
        "sklearn.utils._bunch.Bunch",
        "collections.OrderedDict",
        "builtins.float",
        "builtins.int",
        "builtins.tuple",
        "numpy.float32",
        "numpy.float64",
        "numpy.int64",
        "numpy.dtype",
        "numpy.ndarray",
        "numpy.random._generator.Generator",
        "numpy.random.mtrand.RandomState",
    }
)


def model_card(metrics: dict) -> str:
    """MODEL_CARD.md text: training data, metrics, per-source false-positive rates, limits."""
    op, llm_op, seg = (
        metrics["operating_point"],
        metrics["llm_operating_point"],
        metrics["segment_operating_point"],
    )
    lines = [
        "# Teacher-text classifier: model card",
        "",
        f"- model file: `{MODEL_FILE}` (skops), feature version `{metrics['feature_version']}`",
        f"- trained: {metrics.get('trained_at', '?')}, scikit-learn {metrics['versions']['scikit-learn']}, "
        f"{metrics.get('train_seconds', '?')} s",
        "- model: hashed word 1-2-grams + character n-grams -> multinomial logistic model (SGD) and "
        "binary logistic models on naive-Bayes-scaled features (teacher vs human, teacher vs other "
        "LLM); their out-of-fold log-probabilities and margins + a stylometric block -> "
        "HistGradientBoosting (calibrated by log-loss training); a second HistGradientBoosting, "
        "trained on paragraph windows, scores passages (windows and the run of paragraphs most "
        "likely pasted teacher text). Training weighted so every class weighs the same and, inside "
        "a class, a source family weighs sqrt(its size).",
        "",
        "## Training data",
        "",
        "| class | documents | source families |",
        "|---|---:|---|",
    ]
    for cls, n in metrics["n_train"].items():
        fams = ", ".join(f"{k} ({v})" for k, v in sorted(metrics["n_train_sources"][cls].items()))
        lines.append(f"| {cls} | {n} | {fams} |")
    dropped = metrics.get("shared_texts_dropped") or {}
    if any(dropped.values()):
        lines += [
            "",
            "Texts given under two classes, dropped from both before training: "
            + ", ".join(f"{cls} {n}" for cls, n in dropped.items()),
        ]
    lines += [
        "",
        f"## Metrics ({metrics['cv']['n_folds']}-fold cross-validation, {metrics['cv']['scheme']})",
        "",
        f"- teacher vs human ROC-AUC: {metrics['roc_auc']:.4f}",
        f"- TPR at 1% / 5% FPR: {metrics['tpr_at_fpr']['0.01']:.3f} / {metrics['tpr_at_fpr']['0.05']:.3f}",
        f"- operating threshold (1% FPR on human): teacher_prob >= {op['threshold']:.4f} "
        f"(TPR {op['tpr']:.3f}, FPR {op['fpr']:.4f})",
        f"- any-LLM threshold: llm_prob >= {llm_op['threshold']:.4f} (TPR {llm_op['tpr']:.3f}, "
        f"FPR {llm_op['fpr']:.4f})",
        f"- Brier score {metrics['brier']:.4f}, expected calibration error {metrics['ece']:.4f}",
    ]
    if "roc_auc_teacher_vs_other_llm" in metrics:
        lines.append(
            f"- teacher vs other LLMs ROC-AUC: {metrics['roc_auc_teacher_vs_other_llm']:.4f}; other-LLM "
            f"texts flagged as teacher: {metrics['other_llm_flagged_as_teacher']:.3f}"
        )
    pairwise = metrics.get("pairwise", {})
    if "teacher_vs_human" in pairwise:
        th = pairwise["teacher_vs_human"]
        lines.append(
            f"- one-vs-one (P(teacher) / (P(teacher) + P(other class)), as a binary model would be "
            f"measured): teacher vs human ROC-AUC {th['roc_auc']:.4f}, TPR at 1% / 5% FPR "
            f"{th['tpr_at_fpr']['0.01']:.3f} / {th['tpr_at_fpr']['0.05']:.3f}"
            + (
                f"; teacher vs other LLMs ROC-AUC {pairwise['teacher_vs_other_llm']['roc_auc']:.4f}"
                if "teacher_vs_other_llm" in pairwise
                else ""
            )
            + ". The figures above are for teacher_prob among all three classes, which is what "
            "`detect` flags."
        )
    lines += [
        f"- pasted-in teacher text: page score teacher_prob_max_segment (segment rule "
        f"`{seg.get('rule', '?')}`) >= {seg['threshold']:.4f} flags {seg['tpr']:.3f} of human pages "
        f"carrying it as ~25% of their characters and {seg.get('tpr_50pct') or 0:.3f} at ~50% "
        f"(FPR on human pages {seg['fpr']:.4f})",
    ]
    by_length = [row for row in seg.get("tpr_by_pasted_length", []) if row["tpr"] is not None]

    def chars(row: dict) -> str:  # bins are [min_chars, max_chars)
        low, high = row["min_chars"], row["max_chars"]
        return f"{low:,}-{high - 1:,}" if high else f"{low:,}+"

    if by_length:
        lines.append(
            "- ~25% pasted pages flagged, by the pasted text's length: "
            + ", ".join(f"{chars(row)} chars {row['tpr']:.2f} (n={row['pages']})" for row in by_length)
        )
    lines += [
        "",
        "## False-positive rate per human source at the operating threshold",
        "",
        "| source | n | FPR |",
        "|---|---:|---:|",
    ]
    lines += [f"| {row['source']} | {row['n']} | {row['fpr']:.3f} |" for row in metrics["per_source_fpr"]]
    lines += [
        "",
        "## Limits",
        "",
        "- Error rates are measured on the training sources. Unseen genres shift them: formal human "
        "writing (encyclopaedic articles, Q&A answers, human answers to instructions, abstracts) is "
        "flagged far more often than the 1% average; see the table above.",
        "- Unseen teacher versions and other LLMs trained on the teacher's outputs can look alike; "
        "teacher_prob separates styles, it does not prove provenance.",
        f"- Texts with fewer than {MIN_WORDS} words get score 0.0 (not assessable). Short texts "
        "(< ~300 characters) are less reliable than long ones.",
        "- Probabilities are calibrated on the training mix of classes; a crawl with another mix "
        "needs the estimator's correction (it uses the TPR/FPR above), not a plain average.",
        "",
    ]
    return "\n".join(lines)


def save_model(model: TeacherModel, out_dir: str | Path) -> Path:
    """Write model.skops, metrics.json and MODEL_CARD.md into ``out_dir`` (each atomically)."""
    import skops.io as sio

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    model.classifier.feature_version_ = FEATURE_VERSION
    model.classifier.model_format_ = MODEL_FORMAT
    payload = sio.dumps(model.classifier)
    untrusted = set(sio.get_untrusted_types(data=payload))
    unexpected = sorted(untrusted - TRUSTED_TYPES)
    if unexpected:
        raise RuntimeError(f"model contains types outside the load allow-list: {unexpected}")
    atomic_write_bytes(out / MODEL_FILE, payload)
    metrics = dict(model.metrics)
    metrics["segment_threshold"] = model.segment_threshold
    metrics["model_format"] = MODEL_FORMAT
    metrics["model_id"] = model_fingerprint(payload)
    atomic_write_json(out / METRICS_FILE, metrics)
    atomic_write_text(out / CARD_FILE, model_card(metrics))
    model.model_id = metrics["model_id"]
    model.metrics = metrics
    return out


def model_fingerprint(payload: bytes) -> str:
    """The model's id: a SHA-256 of the skops file's content, independent of how it was written.

    skops names each stored object and array file by the Python ``id()`` it had when saved, so
    two trainings of the same data and seed give the same model in different bytes (and a hash of
    the bytes refused a baseline scored by the identical retrained model). The ids are renumbered
    in order of appearance and each array file is replaced by the hash of its bytes.
    """
    with zipfile.ZipFile(io.BytesIO(payload)) as archive:
        names = set(archive.namelist())
        renumbered: dict[object, int] = {}

        def canonical(node: object) -> object:
            if isinstance(node, dict):
                out = {}
                for key, value in node.items():
                    if key == "__id__":
                        out[key] = renumbered.setdefault(value, len(renumbered))
                    elif key == "file" and isinstance(value, str) and value in names:
                        out[key] = hashlib.sha256(archive.read(value)).hexdigest()
                    else:
                        out[key] = canonical(value)
                return out
            if isinstance(node, list):
                return [canonical(item) for item in node]
            return node

        schema = canonical(json.loads(archive.read("schema.json")))
    return hashlib.sha256(json.dumps(schema, sort_keys=True).encode("utf-8")).hexdigest()


def load_model(model_dir: str | Path) -> TeacherModel:
    """Load a model directory written by :func:`train_model`, refusing unsafe or stale files.

    Raises :class:`ModelLoadError` for a missing file, a pickle (or anything that is not a skops
    archive), a skops file holding types outside :data:`TRUSTED_TYPES`, another feature version, or
    another model format (:data:`MODEL_FORMAT`: e.g. a model saved before the window stage 2).
    """
    import zipfile

    import skops.io as sio

    root = Path(model_dir)
    path = root / MODEL_FILE
    if not path.is_file():
        pickles = sorted(p.name for p in root.glob("*") if p.suffix in {".pkl", ".pickle", ".joblib"})
        hint = f" (found {pickles}: pickle files are never loaded)" if pickles else ""
        raise ModelLoadError(f"no {MODEL_FILE} in {root}{hint}")
    payload = path.read_bytes()
    if not zipfile.is_zipfile(io.BytesIO(payload)):
        kind = "a pickle" if payload[:1] == b"\x80" else "not a skops archive"
        raise ModelLoadError(
            f"{path} is {kind}; refusing to load it (models are loaded from skops files only)"
        )
    untrusted = set(sio.get_untrusted_types(data=payload))
    unexpected = sorted(untrusted - TRUSTED_TYPES)
    if unexpected:
        raise ModelLoadError(f"{path} contains types outside the allow-list, refusing to load: {unexpected}")
    metrics_path = root / METRICS_FILE
    try:
        metrics = json.loads(metrics_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelLoadError(f"cannot read {metrics_path}: {exc}") from exc
    version = metrics.get("feature_version")
    if version != FEATURE_VERSION:
        raise ModelLoadError(
            f"model in {root} was trained with feature version {version!r}, this code computes "
            f"{FEATURE_VERSION!r}; retrain it with `distill-audit train`"
        )
    model_format = metrics.get("model_format")
    if model_format != MODEL_FORMAT:
        raise ModelLoadError(
            f"model in {root} has model format {model_format!r} (saved by another version of the "
            f"classifier), this code needs {MODEL_FORMAT!r}; retrain it with "
            "`distill-audit train`"
        )
    classifier = load_arrays(lambda: sio.loads(payload, trusted=sorted(untrusted)))
    if (
        not isinstance(classifier, TeacherClassifier)
        or getattr(classifier, "feature_version_", None) != version
        or getattr(classifier, "model_format_", None) != MODEL_FORMAT
        or not hasattr(classifier, "stage2_window_")
        or not hasattr(classifier, "stage1_nb_weights_")
    ):
        raise ModelLoadError(
            f"{path} does not hold a TeacherClassifier of feature version {FEATURE_VERSION} and model "
            f"format {MODEL_FORMAT}; retrain it with `distill-audit train`"
        )
    return TeacherModel(
        classifier=classifier,
        threshold=float(metrics["operating_point"]["threshold"]),
        llm_threshold=float(metrics["llm_operating_point"]["threshold"]),
        segment_threshold=float(metrics.get("segment_threshold", metrics["operating_point"]["threshold"])),
        metrics=metrics,
        model_id=model_fingerprint(payload),
        feature_version=version,
    )
