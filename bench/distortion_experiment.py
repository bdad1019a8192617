"""Topic-free "text distortion" n-grams (Stamatatos 2017) in stage 1: do they help unseen families?

Run (one core; each variant's leave-one-family-out is ~2-3 min per family, its dev CV ~3-4 min)::

    OMP_NUM_THREADS=1 taskset -c 0 .venv/bin/python -m bench.distortion_experiment \\
        --variants a,b,c --lofo l2r,outfox,hai_corpus,so_chatgpt,hc3plus --cv --speed

Distortion (``DistortionHasher``, a subclass of :class:`detectors.features.NgramHasher`): the
``distort_top_k`` word tokens with the highest document frequency in the *training* texts are kept
(lower-cased, as the word block hashes them; learned in ``fit``, so in leave-one-family-out the
held-out family never chooses them), punctuation tokens are kept, and every other word token is
replaced by its shape: ``D`` (starts with a digit), ``C`` (a CJK ideograph or kana, one token per
character as in the word block), ``X`` (starts upper-case), ``x`` (anything else). Word n-grams of
``distort_ngram_range`` over that sequence are hashed into a third block (``n_features_distort``
columns, log1p TF, l2 per block like the others). The block goes into the same stage-1 SGD and the
naive-Bayes-scaled members, i.e. it is an extra stage-1 *feature block*, not a separate member.

Variants:

* ``a``: the shipped :class:`TeacherClassifier` (reference);
* ``b``: + the distortion block (word 1-2 + char 4 + distortion 1-3);
* ``c``: the distortion block instead of char 4-grams (word 1-2 + distortion 1-3);
* ``e``: the distortion block alone in stage 1 (no word, no char n-grams; style still in stage 2):
  is a topic-free stage 1 on its own more stable across families?
* ``f``: ``b`` with distortion word 1-4-grams and only the 100 most frequent words kept;
* ``d``: ``b`` with stage-1 regularisation x10 (SGD ``alpha`` 1e-4, NB members' ``nb_alpha`` 3e-5).

Measured:

* ``--lofo FAMILIES``: the protocol of ``bench.classifier_breakdown --leave-out`` (fit on every other
  family, ROC-AUC inside the held-out one: teacher vs human and teacher vs other LLMs, P(teacher) and
  one-vs-one), plus the mean of the teacher-vs-human rows;
* ``--cv``: the documents part of ``train_model``'s prompt-grouped 5-fold CV
  (``fit_with_oof`` + a stage 2 per fold on the out-of-fold rows, as in
  ``bench.classifier_breakdown``; no embedded pages): AUC t/h, TPR@1% FPR, AUC t/other, one-vs-one;
* ``--speed``: ``TeacherModel.score_documents`` on 2,000 2 KB documents (``bench.bench_classifier``'s
  documents) with a model fitted on 300 texts per class, best of 3, one thread.

Results (2026-11-29, core 0 only, load 1-2; (a) reproduces ``classifier_breakdown --leave-out`` and
the session-3 dev CV exactly). Commands: ``--variants a,b,c --lofo l2r,outfox,hai_corpus,so_chatgpt,hc3plus``,
``--variants a,b,c --speed --cv``, ``--variants d --lofo ... --cv``, ``--variants a,b,c --lofo alpaca_eval``,
``--variants e --lofo ...,alpaca_eval --cv``, ``--variants f --lofo ...``.

LOFO, AUC teacher vs human inside the held-out family, P(teacher) / one-vs-one:

| variant | l2r | outfox | hai_corpus | so_chatgpt | hc3plus | mean (5) |
|---|---|---|---|---|---|---|
| a shipped | .808/.810 | .899/.901 | .682/.760 | .855/.975 | .576/.578 | .764/.805 |
| b + distortion 1-3 | .806/.811 | .886/.888 | .694/.773 | .879/.980 | .545/.547 | .762/.800 |
| c distortion instead of char 4 | .796/.801 | .876/.878 | .697/.772 | .881/.979 | .562/.565 | .763/.799 |
| d b, alpha x10 | .806/.809 | .903/.904 | .669/.749 | .867/.981 | .466/.468 | .742/.782 |
| e distortion only | .790/.795 | .834/.835 | .688/.779 | .867/.978 | .480/.485 | .732/.775 |
| f + distortion 1-4, top 100 | .804/.808 | .856/.858 | .697/.773 | .876/.982 | .460/.463 | .739/.777 |

Teacher vs other LLMs (P(t) / one-vs-one): l2r a .532/.616, b .531/.616, c .523/.609, d .528/.611,
e .486/.572, f .529/.613; outfox a .853/.653, b .854/.673, c .842/.720, d .844/.640, e .768/.608,
f .822/.727; alpaca_eval a .600/.641, b .612/.648, c .619/.654, e .600/.653.

Dev CV (documents): AUC t/h, TPR@1%, AUC t/other, ECE, one-vs-one AUC t/h, TPR@1%, AUC t/other:
a .9754 .623 .9134 .0079 .9853 .765 .9401; b .9758 .617 .9157 .0090 .9857 .765 .9418;
c .9755 .608 .9163 .0086 .9852 .754 .9412; d .9734 .604 .9118 .0068 .9840 .745 .9396;
e .9602 .491 .8917 .0069 .9741 .649 .9292.
Speed (score_documents, 2,000 2 KB docs, best of 3): a 2,300, b 1,962 (0.85x), c 3,147 (1.37x) docs/s.

Reading: no variant moves the unseen-family mean beyond noise (b/c -0.001/-0.002, d/e/f worse);
per family the distortion block trades so_chatgpt/hai_corpus (+0.01-0.02) against outfox and
Chinese hc3plus (-0.01 to -0.11). Not adopted. (c) is dev-neutral in AUC (TPR@1% -0.015) and 1.4x
faster: a speed option, not a generalisation one.

Uses private helpers of ``detectors.features`` (``_Batch``, ``_ngram_hashes``, ...): bench only.
"""

from __future__ import annotations

import argparse
import os
import time
import warnings

import numpy as np
from threadpoolctl import threadpool_limits

from bench.bench_classifier import _load, _subsample, _two_kb_docs
from bench.classifier_breakdown import _family, family_aucs, out_of_fold_proba
from bench.scenarios import DEV_DIR, load_dev_records
from detectors import features as F
from detectors.classifier import (
    HUMAN,
    OTHER_LLM,
    TEACHER,
    TeacherClassifier,
    TeacherModel,
    balanced_weights,
    evaluate_scores,
    pairwise_metrics,
    training_arrays,
)

# shape tokens: constants far from the hashes of single characters (punctuation tokens)
_SHAPE_x, _SHAPE_X, _SHAPE_D, _SHAPE_C = (F._H(0xD15C0001 + 7919 * k) for k in range(4))


def _token_starts(batch: F._Batch) -> np.ndarray:
    """First code point of each token, in the order of ``batch.tokens(punctuation=True)``."""
    word = batch.flag(F._WORD)
    cjk = batch.flag(F._CJK)
    run = word & ~cjk
    single = (~word & ~batch.flag(F._WS)) | cjk
    return np.flatnonzero((run & ~batch.prev(run)) | single)


class DistortionHasher(F.NgramHasher):
    """:class:`NgramHasher` plus a block of hashed n-grams of the distorted token sequence."""

    def __init__(
        self,
        word_ngram_range: tuple[int, int] = (1, 2),
        char_ngram_range: tuple[int, int] | None = (4, 4),
        n_features_word: int = 2**20,
        n_features_char: int = 2**20,
        distort_ngram_range: tuple[int, int] | None = (1, 3),
        n_features_distort: int = 2**20,
        distort_top_k: int = 200,
        word_block: bool = True,
    ) -> None:
        super().__init__(word_ngram_range, char_ngram_range, n_features_word, n_features_char)
        self.word_block = word_block
        self.distort_ngram_range = distort_ngram_range
        self.n_features_distort = n_features_distort
        self.distort_top_k = distort_top_k

    def fit(self, texts, y=None) -> DistortionHasher:
        texts = F.check_texts(texts)
        self._check_params()
        self.n_blocks_ = (
            self.word_block + (self.char_ngram_range is not None) + (self.distort_ngram_range is not None)
        )
        self.kept_ = np.zeros(0, dtype=F._H)
        if self.distort_ngram_range is not None:
            # document frequency of each word token (hash) over the training texts
            uniques, counts = [], []
            for lo, hi in F._chunks(texts):
                hashes, rows = F._Batch(texts[lo:hi]).tokens(punctuation=False)
                keys = np.unique(rows.astype(np.uint64) << np.uint64(32) | hashes.astype(np.uint64))
                u, c = np.unique((keys & np.uint64(0xFFFFFFFF)).astype(F._H), return_counts=True)
                uniques.append(u)
                counts.append(c)
            u, inverse = np.unique(np.concatenate(uniques), return_inverse=True)
            df = np.bincount(inverse, weights=np.concatenate(counts))
            top = np.argsort(-df, kind="stable")[: self.distort_top_k]
            self.kept_ = np.sort(u[top])
        return self

    def _distort_keys(self, batch: F._Batch) -> np.ndarray:
        hashes, rows = batch.tokens(punctuation=True)
        is_word = batch._tokens[2]
        starts = _token_starts(batch)
        cls = batch.cls[starts]
        shape = np.where(
            (cls & F._DIGIT) != 0,
            _SHAPE_D,
            np.where((cls & F._CJK) != 0, _SHAPE_C, np.where((cls & F._UPPER) != 0, _SHAPE_X, _SHAPE_x)),
        ).astype(F._H)
        where = np.minimum(np.searchsorted(self.kept_, hashes), max(len(self.kept_) - 1, 0))
        kept = self.kept_[where] == hashes if len(self.kept_) else np.zeros(hashes.size, dtype=bool)
        units = np.where(is_word & ~kept, shape, hashes).astype(F._H)
        low, high = self.distort_ngram_range
        return np.concatenate(
            [
                F._bucket_keys(*F._ngram_hashes(units, rows, n), batch.n, self.n_features_distort)
                for n in range(low, high + 1)
            ]
        )

    def _counts(self, texts, with_style):
        self._check_params()
        blocks: list[list] = [[], [], []]
        styles = []
        for lo, hi in F._chunks(texts):
            batch = F._Batch(texts[lo:hi])
            if self.word_block:
                blocks[0].append(F._count_matrix(self._word_keys(batch), batch.n, self.n_features_word))
            if self.char_ngram_range is not None:
                blocks[1].append(F._count_matrix(self._char_keys(batch), batch.n, self.n_features_char))
            if self.distort_ngram_range is not None:
                blocks[2].append(F._count_matrix(self._distort_keys(batch), batch.n, self.n_features_distort))
            if with_style:
                styles.append(F._style_counts_batch(batch))
        import scipy.sparse as sp

        out = [parts[0] if len(parts) == 1 else sp.vstack(parts, format="csr") for parts in blocks if parts]
        return out, (np.vstack(styles) if with_style else None)


class DistortionClassifier(TeacherClassifier):
    """:class:`TeacherClassifier` whose hasher adds the distortion block."""

    def __init__(
        self,
        distort_ngram_range: tuple[int, int] | None = (1, 3),
        distort_top_k: int = 200,
        n_features_distort: int = 2**20,
        word_block: bool = True,
        **params,
    ) -> None:
        super().__init__(**params)
        self.word_block = word_block
        self.distort_ngram_range = distort_ngram_range
        self.distort_top_k = distort_top_k

    @classmethod
    def _get_param_names(cls) -> list[str]:
        extra = {"distort_ngram_range", "distort_top_k", "n_features_distort", "word_block"}
        return sorted(set(TeacherClassifier._get_param_names()) | extra)

    def _new_hasher(self) -> DistortionHasher:
        return DistortionHasher(
            word_ngram_range=self.word_ngram_range,
            char_ngram_range=self.char_ngram_range,
            n_features_word=self.n_features,
            n_features_char=self.n_features,
            distort_ngram_range=self.distort_ngram_range,
            n_features_distort=self.n_features_distort,
            distort_top_k=self.distort_top_k,
            word_block=self.word_block,
        )


VARIANTS = {
    "a": ("shipped (word 1-2 + char 4)", lambda: TeacherClassifier(random_state=0)),
    "b": ("+ distortion 1-3 block", lambda: DistortionClassifier(random_state=0)),
    "c": (
        "distortion 1-3 instead of char 4",
        lambda: DistortionClassifier(char_ngram_range=None, random_state=0),
    ),
    "d": (
        "+ distortion 1-3, alpha x10",
        lambda: DistortionClassifier(alpha=1e-4, nb_alpha=3e-5, random_state=0),
    ),
    "e": (
        "distortion 1-3 only (no word, no char block)",
        lambda: DistortionClassifier(char_ngram_range=None, word_block=False, random_state=0),
    ),
    "f": (
        "+ distortion 1-4 block, top 100 words kept",
        lambda: DistortionClassifier(distort_ngram_range=(1, 4), distort_top_k=100, random_state=0),
    ),
}


def lofo(name: str, families: list[str], texts, labels, sources, groups, weight) -> list[tuple]:
    label, factory = VARIANTS[name]
    fam = np.array([_family(s) for s in sources])
    print(
        f"\n#### LOFO, ({name}) {label}\n\n"
        "| held-out family | teacher / human / other texts | AUC t/h, P(t) | "
        "one-vs-one t/h | AUC t/other, P(t) | one-vs-one t/other | s |\n|---|---|---:|---:|---:|---:|---:|",
        flush=True,
    )
    rows = []
    for family in families:
        started = time.perf_counter()
        train, test = np.flatnonzero(fam != family), np.flatnonzero(fam == family)
        clf = factory()
        clf.fit([texts[i] for i in train], labels[train], groups[train], weight[train])
        (nt, nh, no), aucs = family_aucs(clf, [texts[i] for i in test], labels[test])
        row = (family, *aucs)
        rows.append(row)
        print(f"| {family} | {nt} / {nh} / {no} | " + " | ".join(f"{a:.3f}" for a in aucs)
              + f" | {time.perf_counter() - started:.0f} |", flush=True)
    th = [r for r in rows if not np.isnan(r[1])]
    if th:
        print(
            f"| mean of the {len(th)} t/h rows | | {np.mean([r[1] for r in th]):.3f} | "
            f"{np.mean([r[2] for r in th]):.3f} | | | |",
            flush=True,
        )
    return rows


def dev_cv(name: str, texts, labels, sources, groups, weight) -> dict:
    label, factory = VARIANTS[name]
    started = time.perf_counter()
    clf = factory()
    proba = out_of_fold_proba(clf, texts, labels, groups, weight)
    m = evaluate_scores(labels, proba, clf.classes_, sources)
    pw = pairwise_metrics(labels, proba, clf.classes_)
    out = {
        "auc_th": m["roc_auc"],
        "tpr1": m["tpr_at_fpr"]["0.01"],
        "auc_to": m["roc_auc_teacher_vs_other_llm"],
        "ece": m["ece"],
        "ovo_auc_th": pw["teacher_vs_human"]["roc_auc"],
        "ovo_tpr1": pw["teacher_vs_human"]["tpr_at_fpr"]["0.01"],
        "ovo_auc_to": pw["teacher_vs_other_llm"]["roc_auc"],
        "s": time.perf_counter() - started,
    }
    print(
        f"| ({name}) {label} | {out['auc_th']:.4f} | {out['tpr1']:.3f} | {out['auc_to']:.4f} | "
        f"{out['ece']:.4f} | "
        f"{out['ovo_auc_th']:.4f} | {out['ovo_tpr1']:.3f} | {out['ovo_auc_to']:.4f} | {out['s']:.0f} |",
        flush=True,
    )
    return out


def speed(names: list[str], n_docs: int = 2000, per_class: int = 300, repeats: int = 3) -> None:
    teacher, human, other = _load("openai"), _load("human"), _load("other_llm")
    docs = _two_kb_docs(teacher + human, n_docs)
    parts = {
        TEACHER: _subsample(teacher, per_class, 1),
        HUMAN: _subsample(human, per_class, 2),
        OTHER_LLM: _subsample(other, per_class, 3),
    }
    texts, labels, sources, groups = training_arrays(parts)
    weight = balanced_weights(labels, sources)
    print(
        f"\n#### Speed: score_documents, {n_docs} docs of 2,048 characters, best of {repeats}; "
        f"core {sorted(os.sched_getaffinity(0))}\n\n"
        "| variant | docs/s | relative to (a) | load |\n|---|---:|---:|---|",
        flush=True,
    )
    base = None
    for name in names:
        label, factory = VARIANTS[name]
        clf = factory().fit(texts, labels, groups, weight)
        model = TeacherModel(classifier=clf, threshold=0.5, llm_threshold=0.5, segment_threshold=0.5)
        model.score_documents(docs[:200])  # warm-up
        best = float("inf")
        for _ in range(repeats):
            started = time.perf_counter()
            model.score_documents(docs)
            best = min(best, time.perf_counter() - started)
        rate = n_docs / best
        base = rate if name == "a" else base
        rel = f"{rate / base:.2f}" if base else ""
        load = "/".join(f"{x:.1f}" for x in os.getloadavg())
        print(f"| ({name}) {label} | {rate:,.0f} | {rel} | {load} |", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variants", default="a,b,c", help="comma-separated, of a,b,c,d")
    parser.add_argument("--lofo", default="", help="comma-separated source families to leave out")
    parser.add_argument("--cv", action="store_true", help="dev prompt-grouped 5-fold CV")
    parser.add_argument("--speed", action="store_true", help="scoring speed, 2,000 2 KB documents")
    args = parser.parse_args()
    warnings.filterwarnings("ignore", message=".*Maximum number of iteration.*")
    names = args.variants.split(",")
    with threadpool_limits(limits=1):
        if args.speed:
            speed(names)
        if args.lofo or args.cv:
            human, teacher, other = load_dev_records(DEV_DIR)
            texts, labels, sources, groups = training_arrays(
                {TEACHER: teacher, HUMAN: human, OTHER_LLM: other}
            )
            weight = balanced_weights(labels, sources)
        if args.lofo:
            for name in names:
                lofo(name, args.lofo.split(","), texts, labels, sources, groups, weight)
        if args.cv:
            print(
                "\n#### Dev prompt-grouped 5-fold CV (documents)\n\n"
                "| variant | AUC t/h | TPR@1% | AUC t/other | ECE | "
                "one-vs-one AUC t/h | one-vs-one TPR@1% | one-vs-one AUC t/other | s |\n"
                "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
                flush=True,
            )
            for name in names:
                dev_cv(name, texts, labels, sources, groups, weight)


if __name__ == "__main__":
    main()
