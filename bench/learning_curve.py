"""Learning curve of the teacher classifier (issue #4, session 6): is it limited by data or by model?

Run: ``OMP_NUM_THREADS=1 .venv/bin/python -m bench.learning_curve [0.25 0.5 1.0]`` (about 15 minutes
on one core for the three shares). Figures in bench/results_classifier.md, "Session 6".

The outer folds are the classifier's own prompt-grouped 5 folds of the full dev data. In each, a
share of the training fold's prompt groups is kept (one seeded generator, drawn fold by fold in
the order the shares are given), :class:`detectors.classifier.TeacherClassifier` is fitted on
them with source-balanced weights, and the fold's held-out texts are scored; each printed row
holds the out-of-fold figures of one share.
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
from threadpoolctl import threadpool_limits

from bench.scenarios import DEV_DIR, load_dev_records
from bench.stage1_members import _row
from detectors.classifier import (
    HUMAN,
    OTHER_LLM,
    TEACHER,
    TeacherClassifier,
    balanced_weights,
    training_arrays,
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("shares", nargs="*", type=float, default=[0.25, 0.5, 1.0],
                        help="shares of each training fold's prompt groups to train on")
    args = parser.parse_args()
    if any(not 0 < share <= 1 for share in args.shares):
        parser.error("shares must lie in (0, 1]")
    warnings.filterwarnings("ignore")
    started = time.perf_counter()
    human, teacher, other = load_dev_records(DEV_DIR)
    texts, labels, sources, groups = training_arrays({TEACHER: teacher, HUMAN: human, OTHER_LLM: other})
    texts, sources = np.asarray(texts, dtype=object), np.asarray(sources)
    groups = np.asarray(groups).astype(str)
    folds = TeacherClassifier(random_state=0).folds(labels, groups)
    rng = np.random.default_rng(0)
    print("| training share | AUC t/h | TPR@1% | AUC t/other | one-vs-one AUC t/h | one-vs-one TPR@1% | "
          "one-vs-one AUC t/other |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    with threadpool_limits(limits=1):
        for share in args.shares:
            proba = np.zeros((len(labels), 3))
            classes: list[str] = []
            for train_idx, test_idx in folds:
                fold_groups = np.unique(groups[train_idx])
                kept = rng.permutation(fold_groups)[: max(1, round(share * len(fold_groups)))]
                train = train_idx[np.isin(groups[train_idx], kept)]
                model = TeacherClassifier(random_state=0).fit(
                    list(texts[train]), labels[train], groups[train],
                    balanced_weights(labels[train], sources[train]),
                )
                classes = list(model.classes_)
                proba[test_idx] = model.predict_proba(list(texts[test_idx]))
            name = f"{share:.2f} ({len(train)} texts in the last fold)"
            print(_row(name, labels, proba, classes), flush=True)
    print(f"\n({time.perf_counter() - started:.0f} s)")


if __name__ == "__main__":
    main()
