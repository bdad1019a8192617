"""Probe (issue #4, session 6): evidence spread and window consistency as extra stage-2 inputs.

Run: ``OMP_NUM_THREADS=1 .venv/bin/python -m bench.stage2_extras`` (about 3 minutes on one core).
Figures in bench/results_classifier.md, "Session 6". Not adopted: at most +0.003 on any figure.

The reference is the shipped :class:`detectors.classifier.TeacherClassifier` and its out-of-fold
stage-2 rows. Two candidate blocks are appended and stage 2 is cross-validated on the same
prompt-grouped folds (as :mod:`bench.stage1_members` does for members):

- spread: per text and n-gram block (word, char), the mean and standard deviation of the
  naive-Bayes log-count ratios of the n-grams it uses (teacher/human, teacher/other, fitted on the
  fold's training texts) and the shares of its n-grams with ratio > 0, > 1 and < -1;
- windows: min, max and standard deviation of its paragraph windows' out-of-fold stage-1 rows.
"""

from __future__ import annotations

import time
import warnings

import numpy as np
import scipy.sparse as sp
from sklearn.ensemble import HistGradientBoostingClassifier
from threadpoolctl import threadpool_limits

from bench.scenarios import DEV_DIR, load_dev_records
from bench.stage1_members import _row
from detectors.classifier import (
    HUMAN,
    OTHER_LLM,
    TEACHER,
    OutOfFoldRows,
    TeacherClassifier,
    _plan,
    balanced_weights,
    training_arrays,
)


def spread_columns(
    blocks: dict[str, sp.csr_matrix], labels: np.ndarray, folds: list[tuple[np.ndarray, np.ndarray]]
) -> np.ndarray:
    """Out-of-fold spread statistics of the n-grams' log-count ratios (20 columns)."""
    used = {name: np.maximum(np.asarray(b.sum(axis=1)).ravel(), 1.0) for name, b in blocks.items()}
    columns = np.zeros((len(labels), 20))
    for train_idx, test_idx in folds:
        parts = []
        for positive, negative in ((TEACHER, HUMAN), (TEACHER, OTHER_LLM)):
            for name, present in blocks.items():
                train = present[train_idx]
                n_columns = present.shape[1]
                p = np.bincount(train[labels[train_idx] == positive].indices, minlength=n_columns) + 1.0
                q = np.bincount(train[labels[train_idx] == negative].indices, minlength=n_columns) + 1.0
                ratio = np.log(p / p.sum()) - np.log(q / q.sum())
                test, n_used = present[test_idx], used[name][test_idx]
                mean = test @ ratio / n_used
                second = test @ (ratio * ratio) / n_used
                parts += [
                    mean,
                    np.sqrt(np.maximum(second - mean**2, 0.0)),
                    test @ (ratio > 0).astype(float) / n_used,
                    test @ (ratio > 1).astype(float) / n_used,
                    test @ (ratio < -1).astype(float) / n_used,
                ]
        columns[test_idx] = np.column_stack(parts)
    return columns


def window_columns(rows: OutOfFoldRows) -> np.ndarray:
    """Min, max and standard deviation of each text's window rows (its own row when it has none)."""
    n_docs, width = rows.documents.shape
    columns = np.column_stack([rows.documents, rows.documents, np.zeros((n_docs, width))])
    order = np.argsort(rows.window_owner, kind="stable")
    owners, windows = rows.window_owner[order], rows.windows[order]
    starts = np.searchsorted(owners, np.arange(n_docs))
    ends = np.searchsorted(owners, np.arange(n_docs), side="right")
    for doc in np.flatnonzero(ends > starts):
        block = windows[starts[doc]:ends[doc]]
        columns[doc] = np.r_[block.min(axis=0), block.max(axis=0), block.std(axis=0)]
    return columns


def main() -> None:
    warnings.filterwarnings("ignore")
    started = time.perf_counter()
    human, teacher, other = load_dev_records(DEV_DIR)
    texts, labels, sources, groups = training_arrays({TEACHER: teacher, HUMAN: human, OTHER_LLM: other})
    weight = balanced_weights(labels, sources)
    reference = TeacherClassifier(random_state=0)
    folds: list[tuple[np.ndarray, np.ndarray]] = []
    with threadpool_limits(limits=1):
        rows = reference.fit_with_oof(
            texts, labels, groups, weight, on_fold=lambda tr, te, _: folds.append((tr, te))
        )
        classes = list(reference.classes_)
        plan = _plan(texts, require_assessable=False, piece_max_chars=reference.piece_max_chars)
        counts, piece_style = reference.hasher_.counts_and_style(plan.pieces)
        features, _ = reference._features_of(counts, piece_style, plan.doc_ranges)
        present = features.tocsr(copy=True)
        present.data[:] = 1.0
        n_word = reference.hasher_.n_features_word
        blocks = {"word": present[:, :n_word].tocsr(), "char": present[:, n_word:].tocsr()}
        spread = spread_columns(blocks, labels, folds)
        windows = window_columns(rows)
        print(f"inputs ready ({time.perf_counter() - started:.0f} s)", flush=True)

        def stage2(x: np.ndarray) -> np.ndarray:
            proba = np.zeros((len(labels), len(classes)))
            for train_idx, test_idx in folds:
                model = HistGradientBoostingClassifier(
                    max_iter=100, learning_rate=0.1, max_leaf_nodes=15, min_samples_leaf=40,
                    l2_regularization=1.0, random_state=0,
                )
                proba[test_idx] = model.fit(x[train_idx], labels[train_idx]).predict_proba(x[test_idx])
            return proba

        base = rows.documents
        print(
            "\n| stage-2 input | AUC t/h | TPR@1% | AUC t/other | one-vs-one AUC t/h | "
            "one-vs-one TPR@1% | one-vs-one AUC t/other |"
        )
        print("|---|---:|---:|---:|---:|---:|---:|")
        for name, x in (
            ("shipped", base),
            ("+ spread", np.hstack([base, spread])),
            ("+ windows", np.hstack([base, windows])),
            ("+ spread + windows", np.hstack([base, spread, windows])),
        ):
            print(_row(name, labels, stage2(x), classes), flush=True)
    print(f"\n({time.perf_counter() - started:.0f} s)")


if __name__ == "__main__":
    main()
