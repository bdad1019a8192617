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
from threadpoolctl import threadpool_limits

from bench.stage1_members import _row, cv_stage2, fit_reference
from detectors.classifier import HUMAN, OTHER_LLM, TEACHER, OutOfFoldRows, TeacherClassifier


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
    fit = fit_reference(TeacherClassifier(random_state=0))
    present = fit.features.tocsr(copy=True)
    present.data[:] = 1.0
    blocks = {"word": present[:, :fit.n_word].tocsr(), "char": present[:, fit.n_word:].tocsr()}
    spread = spread_columns(blocks, fit.labels, fit.folds)
    windows = window_columns(fit.rows)
    print(f"inputs ready ({time.perf_counter() - started:.0f} s)", flush=True)
    base = fit.rows.documents
    print(
        "\n| stage-2 input | AUC t/h | TPR@1% | AUC t/other | one-vs-one AUC t/h | "
        "one-vs-one TPR@1% | one-vs-one AUC t/other |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|")
    with threadpool_limits(limits=1):
        for name, x in (
            ("shipped", base),
            ("+ spread", np.hstack([base, spread])),
            ("+ windows", np.hstack([base, windows])),
            ("+ spread + windows", np.hstack([base, spread, windows])),
        ):
            print(_row(name, fit.labels, cv_stage2(fit, x), fit.classes), flush=True)
    print(f"\n({time.perf_counter() - started:.0f} s)")


if __name__ == "__main__":
    main()
