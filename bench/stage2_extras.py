"""Probe (issue #4, session 6): evidence spread and window consistency as extra stage-2 inputs.

Run: ``OMP_NUM_THREADS=1 .venv/bin/python -m bench.stage2_extras`` (about 3 minutes on one core).
Figures in bench/results_classifier.md, "Session 6". Not adopted: at most +0.005 on any figure.

The reference is the shipped :class:`detectors.classifier.TeacherClassifier` and its out-of-fold
stage-2 rows. Three candidate blocks are appended and stage 2 is cross-validated on the same
prompt-grouped folds (as :mod:`bench.stage1_members` does for members):

- spread: per text and n-gram block (word, char), the mean and standard deviation of the
  naive-Bayes log-count ratios of the n-grams it uses (teacher/human, teacher/other, fitted on the
  fold's training texts) and the shares of its n-grams with ratio > 0, > 1 and < -1;
- windows: min, max and standard deviation of its paragraph windows' out-of-fold stage-1 rows;
- pairwise: margins of two linear models fitted on same-prompt differences (a teacher text's
  features minus a human's, or another LLM's, answer to the same prompt; up to 3 pairs per
  prompt), so topic words cancel and the weights go to how the teacher writes.
"""

from __future__ import annotations

import time
import warnings
from collections import defaultdict

import numpy as np
import scipy.sparse as sp
from sklearn.linear_model import SGDClassifier
from threadpoolctl import threadpool_limits

from bench.stage1_members import ReferenceFit, _row, cv_stage2, fit_reference
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


def window_columns(rows: OutOfFoldRows, width: int) -> np.ndarray:
    """Min, max and standard deviation of the stage-1 part (the first ``width`` columns) of each
    text's window rows (its own row when it has none)."""
    n_docs = rows.documents.shape[0]
    own = rows.documents[:, :width]
    columns = np.column_stack([own, own, np.zeros((n_docs, width))])
    order = np.argsort(rows.window_owner, kind="stable")
    owners, windows = rows.window_owner[order], rows.windows[order, :width]
    starts = np.searchsorted(owners, np.arange(n_docs))
    ends = np.searchsorted(owners, np.arange(n_docs), side="right")
    for doc in np.flatnonzero(ends > starts):
        block = windows[starts[doc]:ends[doc]]
        columns[doc] = np.r_[block.min(axis=0), block.max(axis=0), block.std(axis=0)]
    return columns


def pairwise_columns(fit: ReferenceFit, max_pairs: int = 3, alpha: float = 1e-5) -> np.ndarray:
    """Out-of-fold margins of same-prompt contrastive models, teacher/human and teacher/other."""
    rng = np.random.default_rng(0)
    columns = np.zeros((len(fit.labels), 2))
    for k, other in enumerate((HUMAN, OTHER_LLM)):
        for train_idx, test_idx in fit.folds:
            by_prompt: dict[str, dict[str, list[int]]] = defaultdict(lambda: defaultdict(list))
            for i in train_idx:
                if fit.groups[i].startswith("p:") and fit.labels[i] in (TEACHER, other):
                    by_prompt[fit.groups[i]][fit.labels[i]].append(int(i))
            left, right = [], []
            for texts in by_prompt.values():
                combos = [(t, o) for t in texts[TEACHER] for o in texts[other]]
                if len(combos) > max_pairs:
                    combos = [combos[j] for j in rng.choice(len(combos), max_pairs, replace=False)]
                left += [t for t, _ in combos]
                right += [o for _, o in combos]
            diff = (fit.features[left] - fit.features[right]).tocsr()
            model = SGDClassifier(loss="log_loss", alpha=alpha, fit_intercept=False, max_iter=30,
                                  tol=1e-4, random_state=0)
            targets = np.r_[np.ones(diff.shape[0]), np.zeros(diff.shape[0])]
            model.fit(sp.vstack([diff, -diff]).tocsr(), targets)
            columns[test_idx, k] = fit.features[test_idx] @ model.coef_[0]
    return columns


def main() -> None:
    warnings.filterwarnings("ignore")
    started = time.perf_counter()
    reference = TeacherClassifier(random_state=0)
    fit = fit_reference(reference)
    present = fit.features.tocsr(copy=True)
    present.data[:] = 1.0
    blocks = {"word": present[:, :fit.n_word].tocsr(), "char": present[:, fit.n_word:].tocsr()}
    spread = spread_columns(blocks, fit.labels, fit.folds)
    stage1_width = len(fit.classes) + len(reference._nb_pairs_used())  # log-probs, then NB margins
    windows = window_columns(fit.rows, stage1_width)
    with threadpool_limits(limits=1):
        pairwise = pairwise_columns(fit)
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
            ("+ pairwise", np.hstack([base, pairwise])),
        ):
            print(_row(name, fit.labels, cv_stage2(fit, x), fit.classes), flush=True)
    print(f"\n({time.perf_counter() - started:.0f} s)")


if __name__ == "__main__":
    main()
