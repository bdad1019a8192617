"""Which stage-1 members and stage-2 settings add to the classifier (issue #4, session 3).

Run: ``OMP_NUM_THREADS=1 .venv/bin/python -m bench.stage1_members`` (about 12 minutes on one core).

Every figure comes from the same prompt-grouped 5-fold split of the full dev data. The reference is
:class:`detectors.classifier.TeacherClassifier` without naive-Bayes members (``nb_pairs=()``): its
out-of-fold stage-2 rows (stage-1 log-probabilities + style). Each candidate member is fitted per
fold on the same document features, and its out-of-fold outputs are appended to those rows; stage 2
(HistGradientBoosting) is then cross-validated on the same folds. Printed per variant: ROC-AUC and
TPR at 1% FPR of P(teacher) against human texts, ROC-AUC of P(teacher) against other LLMs, and the
same three one-vs-one (P(teacher) / (P(teacher) + P(other class)), see
``detectors.classifier.pairwise_metrics``).
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import SGDClassifier
from sklearn.metrics import roc_auc_score
from sklearn.naive_bayes import ComplementNB
from threadpoolctl import threadpool_limits

from bench.scenarios import DEV_DIR, load_dev_records
from detectors.classifier import (
    HUMAN,
    OTHER_LLM,
    TARGET_FPR,
    TEACHER,
    OutOfFoldRows,
    TeacherClassifier,
    _plan,
    _tpr_at_fpr,
    balanced_weights,
    fit_log_count_ratio_model,
    training_arrays,
)


def _auc(pos: np.ndarray, neg: np.ndarray) -> float:
    return float(roc_auc_score(np.r_[np.ones(len(pos)), np.zeros(len(neg))], np.r_[pos, neg]))


def _row(name: str, labels: np.ndarray, proba: np.ndarray, classes: list[str]) -> str:
    t, h, o = (proba[:, classes.index(c)] for c in (TEACHER, HUMAN, OTHER_LLM))
    is_t, is_h, is_o = labels == TEACHER, labels == HUMAN, labels == OTHER_LLM
    one_h, one_o = t / np.maximum(t + h, 1e-12), t / np.maximum(t + o, 1e-12)

    def tpr(score: np.ndarray) -> float:
        return _tpr_at_fpr(score[is_t], score[is_h], TARGET_FPR)  # as metrics.json computes it

    return (
        f"| {name} | {_auc(t[is_t], t[is_h]):.4f} | {tpr(t):.3f} | {_auc(t[is_t], t[is_o]):.4f} | "
        f"{_auc(one_h[is_t], one_h[is_h]):.4f} | {tpr(one_h):.3f} | {_auc(one_o[is_t], one_o[is_o]):.4f} |"
    )


@dataclass
class ReferenceFit:
    """A classifier fitted with out-of-fold stage-2 rows, its folds and its document features."""

    labels: np.ndarray
    groups: np.ndarray
    weight: np.ndarray
    classes: list[str]
    rows: OutOfFoldRows
    folds: list[tuple[np.ndarray, np.ndarray]]
    features: sp.csr_matrix
    n_word: int


def fit_reference(reference: TeacherClassifier) -> ReferenceFit:
    """Fit ``reference`` on the full dev data (prompt-grouped folds), one thread."""
    human, teacher, other = load_dev_records(DEV_DIR)
    texts, labels, sources, groups = training_arrays({TEACHER: teacher, HUMAN: human, OTHER_LLM: other})
    weight = balanced_weights(labels, sources)
    folds: list[tuple[np.ndarray, np.ndarray]] = []
    with threadpool_limits(limits=1):
        rows = reference.fit_with_oof(
            texts, labels, groups, weight, on_fold=lambda tr, te, _: folds.append((tr, te))
        )
        plan = _plan(texts, require_assessable=False, piece_max_chars=reference.piece_max_chars)
        counts, piece_style = reference.hasher_.counts_and_style(plan.pieces)
        features, _ = reference._features_of(counts, piece_style, plan.doc_ranges)
    return ReferenceFit(labels, np.asarray(groups).astype(str), weight, list(reference.classes_), rows,
                        folds, features,
                        reference.hasher_.n_features_word)


def cv_stage2(
    fit: ReferenceFit, x: np.ndarray, max_iter: int = 100, learning_rate: float = 0.1, leaves: int = 15
) -> np.ndarray:
    """Out-of-fold stage-2 probabilities for input rows ``x`` (the shipped stage-2 settings)."""
    proba = np.zeros((len(fit.labels), len(fit.classes)))
    for train_idx, test_idx in fit.folds:
        model = HistGradientBoostingClassifier(
            max_iter=max_iter,
            learning_rate=learning_rate,
            max_leaf_nodes=leaves,
            min_samples_leaf=40,
            l2_regularization=1.0,
            random_state=0,
        )
        proba[test_idx] = model.fit(x[train_idx], fit.labels[train_idx]).predict_proba(x[test_idx])
    return proba


def main() -> None:
    warnings.filterwarnings("ignore", category=UserWarning)
    warnings.filterwarnings("ignore", message=".*Maximum number of iteration.*")
    started = time.perf_counter()
    fit = fit_reference(TeacherClassifier(nb_pairs=(), random_state=0))
    labels, weight, classes, rows, folds, features = (
        fit.labels, fit.weight, fit.classes, fit.rows, fit.folds, fit.features
    )
    n_word = fit.n_word
    with threadpool_limits(limits=1):
        blocks = {"word": features[:, :n_word].tocsr(), "char": features[:, n_word:].tocsr()}
        print(f"reference fitted, features ready ({time.perf_counter() - started:.0f} s)", flush=True)

        def out_of_fold(fit_predict: Callable[[np.ndarray, np.ndarray], np.ndarray]) -> np.ndarray:
            columns = None
            for train_idx, test_idx in folds:
                part = fit_predict(train_idx, test_idx)
                part = part.reshape(len(test_idx), -1)
                if columns is None:
                    columns = np.zeros((len(labels), part.shape[1]))
                columns[test_idx] = part
            return columns

        def sgd(x: sp.csr_matrix, y: np.ndarray, w: np.ndarray) -> SGDClassifier:
            model = SGDClassifier(loss="log_loss", alpha=1e-5, max_iter=30, tol=1e-4, random_state=0)
            return model.fit(x, y, sample_weight=w)

        def multiclass(x: sp.csr_matrix) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
            return lambda tr, te: sgd(x[tr], labels[tr], weight[tr]).decision_function(x[te])

        def binary(a: str, b: str) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
            def fit_predict(tr: np.ndarray, te: np.ndarray) -> np.ndarray:
                tr = tr[np.isin(labels[tr], [a, b])]
                return sgd(features[tr], labels[tr] == a, weight[tr]).decision_function(features[te])

            return fit_predict

        def nb_member(a: str, b: str, alpha: float) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
            def fit_predict(tr: np.ndarray, te: np.ndarray) -> np.ndarray:
                w, b0 = fit_log_count_ratio_model(features[tr], labels[tr], a, b, weight[tr], alpha=alpha)
                return features[te] @ w + b0

            return fit_predict

        def complement_nb(tr: np.ndarray, te: np.ndarray) -> np.ndarray:
            model = ComplementNB(alpha=0.3).fit(features[tr], labels[tr], sample_weight=weight[tr])
            return model.predict_log_proba(features[te])

        members = {
            "word-only multinomial SGD": multiclass(blocks["word"]),
            "char-only multinomial SGD": multiclass(blocks["char"]),
            "binary SGD teacher/human": binary(TEACHER, HUMAN),
            "binary SGD teacher/other": binary(TEACHER, OTHER_LLM),
            "ComplementNB": complement_nb,
            "NB-scaled teacher/human, alpha 1e-5": nb_member(TEACHER, HUMAN, 1e-5),
            "NB-scaled teacher/human, alpha 3e-6": nb_member(TEACHER, HUMAN, 3e-6),
            "NB-scaled teacher/other, alpha 3e-6": nb_member(TEACHER, OTHER_LLM, 3e-6),
            "NB-scaled any-LLM/human, alpha 3e-6": lambda tr, te: _llm_member(
                features, labels, weight, tr, te
            ),
        }
        extra = {}
        for name, fit_predict in members.items():
            extra[name] = out_of_fold(fit_predict)
            print(f"  member {name} ({time.perf_counter() - started:.0f} s)", flush=True)

        def stage2(x: np.ndarray, **kwargs: float) -> np.ndarray:
            return cv_stage2(fit, x, **kwargs)

        base = rows.documents
        print(
            "\n| stage-2 input / setting | AUC t/h | TPR@1% | AUC t/other | one-vs-one AUC t/h | "
            "one-vs-one TPR@1% | one-vs-one AUC t/other |"
        )
        print("|---|---:|---:|---:|---:|---:|---:|")
        for label, kwargs in (
            ("reference, stage 2 100 trees @ 0.1 (shipped)", {}),
            ("reference, 200 trees @ 0.05 (session 2)", {"max_iter": 200, "learning_rate": 0.05}),
            ("reference, 400 trees @ 0.05", {"max_iter": 400, "learning_rate": 0.05}),
            ("reference, 31 leaves", {"leaves": 31}),
        ):
            print(_row(label, labels, stage2(base, **kwargs), classes), flush=True)
        for name, columns in extra.items():
            print(_row(f"+ {name}", labels, stage2(np.hstack([base, columns])), classes), flush=True)
        both = np.hstack(
            [base, extra["NB-scaled teacher/human, alpha 3e-6"], extra["NB-scaled teacher/other, alpha 3e-6"]]
        )
        print(_row("+ NB-scaled teacher/human and teacher/other (shipped)", labels, stage2(both), classes))
        words_chars = np.hstack(
            [both, extra["word-only multinomial SGD"], extra["char-only multinomial SGD"]]
        )
        print(_row("+ those + word-only and char-only SGD", labels, stage2(words_chars), classes))
    print(f"\n({time.perf_counter() - started:.0f} s)")


def _llm_member(
    features: sp.csr_matrix, labels: np.ndarray, weight: np.ndarray, tr: np.ndarray, te: np.ndarray
) -> np.ndarray:
    """NB-scaled "any LLM vs human": both LLM classes relabelled as one."""
    merged = np.where(labels == HUMAN, HUMAN, TEACHER)
    w, b0 = fit_log_count_ratio_model(features[tr], merged[tr], TEACHER, HUMAN, weight[tr], alpha=3e-6)
    return features[te] @ w + b0


if __name__ == "__main__":
    main()
