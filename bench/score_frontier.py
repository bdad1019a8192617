"""Can one teacher score meet both targets, teacher vs human and teacher vs other LLMs? (issue #4)

Run: ``OMP_NUM_THREADS=1 .venv/bin/python -m bench.score_frontier`` (about 2 minutes on one core).

The shipped classifier's out-of-fold class probabilities (the same prompt-grouped 5 folds as
``bench.stage1_members``) are combined into candidate ``teacher_prob`` scores: P(teacher), the two
one-vs-one ratios, ``t / (t + h + lambda * o)`` between them, and products and minimum of the
one-vs-one ratios. Printed per score: ROC-AUC and TPR at 1% FPR against human texts, ROC-AUC
against other LLMs' texts, and the share of other LLMs' texts above the 1%-FPR threshold (texts
that would be counted as the teacher's). The issue's targets are AUC >= 0.985 and TPR >= 0.80
against human texts and AUC >= 0.93 against other LLMs, for one score.
"""

from __future__ import annotations

import warnings

import numpy as np
from threadpoolctl import threadpool_limits

from bench.stage1_members import _auc, cv_stage2, fit_reference
from detectors.classifier import HUMAN, OTHER_LLM, TARGET_FPR, TEACHER, TeacherClassifier, _tpr_at_fpr


def main() -> None:
    warnings.filterwarnings("ignore")
    fit = fit_reference(TeacherClassifier(random_state=0))
    with threadpool_limits(limits=1):
        proba = cv_stage2(fit, fit.rows.documents)
    t, h, o = (proba[:, fit.classes.index(c)] for c in (TEACHER, HUMAN, OTHER_LLM))
    is_t, is_h, is_o = (fit.labels == c for c in (TEACHER, HUMAN, OTHER_LLM))
    tiny = 1e-12
    one_h, one_o = t / (t + h + tiny), t / (t + o + tiny)
    scores = {
        "P(teacher) (shipped)": t,
        "one-vs-one t/h": one_h,
        "one-vs-one t/o": one_o,
        **{f"t / (t + h + {lam} o)": t / (t + h + lam * o + tiny) for lam in (0.05, 0.1, 0.25, 0.5)},
        "(t/h) x (t/o)": one_h * one_o,
        "(t/h) x (t/o)^2": one_h * one_o**2,
        "min(t/h, t/o)": np.minimum(one_h, one_o),
    }
    print("\n| score | AUC t/h | TPR@1% | AUC t/other | other LLMs above the threshold |")
    print("|---|---:|---:|---:|---:|")
    for name, score in scores.items():
        threshold = np.quantile(score[is_h], 1.0 - TARGET_FPR)
        print(
            f"| {name} | {_auc(score[is_t], score[is_h]):.4f} | "
            f"{_tpr_at_fpr(score[is_t], score[is_h], TARGET_FPR):.3f} | "
            f"{_auc(score[is_t], score[is_o]):.4f} | {np.mean(score[is_o] > threshold):.3f} |"
        )


if __name__ == "__main__":
    main()
