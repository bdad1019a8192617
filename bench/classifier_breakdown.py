"""Where the teacher classifier misses, and how it does on a source family it never saw (issue #4).

Run: ``OMP_NUM_THREADS=1 .venv/bin/python -m bench.classifier_breakdown`` (about 3 minutes), and
``... -m bench.classifier_breakdown --leave-out l2r,alpaca_eval,hc3plus,outfox,so_chatgpt,hai_corpus``
(about 2 minutes per family).

Default: the prompt-grouped 5-fold out-of-fold probabilities of :class:`TeacherClassifier` on the
full dev data (the same split as ``train_model``'s CV), broken down by teacher source family and by
text length, at the threshold that flags 1% of all human texts, for P(teacher) and for the
one-vs-one score P(teacher) / (P(teacher) + P(human)).

``--leave-out``: for each named family, fit on every other family and measure ROC-AUC inside the held-out
family (teacher vs human, teacher vs other LLMs; P(teacher) and one-vs-one): what a genre or model
family the training data lacks gets. ``--no-nb`` fits without the naive-Bayes members.
"""

from __future__ import annotations

import argparse
import time
import warnings
from collections import Counter

import numpy as np
from sklearn.metrics import roc_auc_score
from threadpoolctl import threadpool_limits

from bench.scenarios import DEV_DIR, load_dev_records
from detectors.classifier import (
    HUMAN,
    OTHER_LLM,
    TARGET_FPR,
    TEACHER,
    TeacherClassifier,
    _threshold_at_fpr,
    balanced_weights,
    training_arrays,
)

LENGTHS = ((0, 200), (200, 500), (500, 1000), (1000, 2000), (2000, None))


def _family(source: str, depth: int = 1) -> str:
    return "/".join(source.split("/")[:depth])


def _auc(pos: np.ndarray, neg: np.ndarray) -> float:
    if not len(pos) or not len(neg):
        return float("nan")
    return float(roc_auc_score(np.r_[np.ones(len(pos)), np.zeros(len(neg))], np.r_[pos, neg]))


def _columns(proba: np.ndarray, classes: list[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return tuple(proba[:, classes.index(c)] for c in (TEACHER, HUMAN, OTHER_LLM))


def out_of_fold_proba(clf, texts: list[str], labels: np.ndarray, groups: np.ndarray,
                      weight: np.ndarray) -> np.ndarray:
    """Prompt-grouped out-of-fold class probabilities of ``clf`` (stage 1 out of fold as in
    ``fit_with_oof``, one stage 2 per fold): the documents part of ``train_model``'s CV."""
    folds: list[tuple[np.ndarray, np.ndarray]] = []
    rows = clf.fit_with_oof(texts, labels, groups, weight, on_fold=lambda tr, te, _: folds.append((tr, te)))
    proba = np.zeros((len(labels), len(clf.classes_)))
    for train_idx, test_idx in folds:
        stage2 = clf._new_stage2().fit(rows.documents[train_idx], labels[train_idx])
        proba[test_idx] = stage2.predict_proba(rows.documents[test_idx])
    return proba


def by_family(
    texts: list[str], labels: np.ndarray, sources: list[str], groups: np.ndarray, weight: np.ndarray, nb: bool
) -> None:
    clf = TeacherClassifier(random_state=0, **({} if nb else {"nb_pairs": ()}))
    proba = out_of_fold_proba(clf, texts, labels, groups, weight)
    teacher, human, _ = _columns(proba, list(clf.classes_))
    one_vs_one = teacher / np.maximum(teacher + human, 1e-12)
    is_t, is_h = labels == TEACHER, labels == HUMAN
    # the operating threshold as train_model sets it: 1% of human texts flagged
    flagged = teacher >= _threshold_at_fpr(teacher[is_h], TARGET_FPR)
    flagged_one = one_vs_one >= _threshold_at_fpr(one_vs_one[is_h], TARGET_FPR)
    sub = {"hai_corpus", "detectrl", "hc3plus", "outfox", "fastdetectgpt"}
    fams = np.array([_family(s, 2 if _family(s) in sub else 1) for s in sources])
    print("\n| teacher source family | texts | TPR@1% FPR, P(teacher) | one-vs-one |\n|---|---:|---:|---:|")
    for fam, n in Counter(fams[is_t]).most_common():
        m = is_t & (fams == fam)
        print(f"| {fam} | {n} | {flagged[m].mean():.3f} | {flagged_one[m].mean():.3f} |")
    lengths = np.array([len(t) for t in texts])
    print(
        "\n| length (characters) | teacher texts | TPR@1% P(teacher) | one-vs-one | human texts | "
        "human FPR, P(teacher) |\n|---|---:|---:|---:|---:|---:|"
    )
    for lo, hi in LENGTHS:
        inside = (lengths >= lo) & (lengths < (hi or np.inf))
        mt, mh = is_t & inside, is_h & inside
        print(
            f"| {lo}-{hi or ''} | {mt.sum()} | {flagged[mt].mean():.3f} | {flagged_one[mt].mean():.3f} | "
            f"{mh.sum()} | {flagged[mh].mean():.3f} |"
        )


def family_aucs(clf, texts: list[str], y: np.ndarray) -> tuple[tuple[int, int, int], tuple[float, ...]]:
    """Texts per class and the four ROC-AUCs of a fitted classifier inside a held-out family:
    teacher vs human by P(teacher) and one-vs-one, teacher vs other LLMs by both (NaN where a
    class is missing)."""
    teacher, human, other = _columns(clf.predict_proba(texts), list(clf.classes_))
    t, h, o = y == TEACHER, y == HUMAN, y == OTHER_LLM
    one_h = teacher / np.maximum(teacher + human, 1e-12)
    one_o = teacher / np.maximum(teacher + other, 1e-12)
    return ((int(t.sum()), int(h.sum()), int(o.sum())),
            (_auc(teacher[t], teacher[h]), _auc(one_h[t], one_h[h]),
             _auc(teacher[t], teacher[o]), _auc(one_o[t], one_o[o])))


def leave_out(
    families: list[str],
    texts: list[str],
    labels: np.ndarray,
    sources: list[str],
    groups: np.ndarray,
    weight: np.ndarray,
    nb: bool,
) -> None:
    fam = np.array([_family(s) for s in sources])
    print(
        "\n| held-out family | teacher / human / other texts | AUC t/h, P(t) | one-vs-one t/h | "
        "AUC t/other, P(t) | one-vs-one t/other | s |\n|---|---|---:|---:|---:|---:|---:|"
    )
    for family in families:
        started = time.perf_counter()
        train = np.flatnonzero(fam != family)
        test = np.flatnonzero(fam == family)
        if not test.size:
            print(f"| {family} | no texts | | | | | |")
            continue
        clf = TeacherClassifier(random_state=0, **({} if nb else {"nb_pairs": ()}))
        clf.fit([texts[i] for i in train], labels[train], groups[train], weight[train])
        (nt, nh, no), aucs = family_aucs(clf, [texts[i] for i in test], labels[test])
        print(f"| {family} | {nt} / {nh} / {no} | " + " | ".join(f"{a:.3f}" for a in aucs)
              + f" | {time.perf_counter() - started:.0f} |", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--leave-out", default="", help="comma-separated source families (first path part)")
    parser.add_argument("--no-nb", action="store_true", help="fit without the naive-Bayes members")
    args = parser.parse_args()
    warnings.filterwarnings("ignore", message=".*Maximum number of iteration.*")
    human, teacher, other = load_dev_records(DEV_DIR)
    texts, labels, sources, groups = training_arrays({TEACHER: teacher, HUMAN: human, OTHER_LLM: other})
    weight = balanced_weights(labels, sources)
    with threadpool_limits(limits=1):
        if args.leave_out:
            leave_out(args.leave_out.split(","), texts, labels, sources, groups, weight, not args.no_nb)
        else:
            by_family(texts, labels, sources, groups, weight, not args.no_nb)


if __name__ == "__main__":
    main()
