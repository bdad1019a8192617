"""Experiments for the next teacher classifier (measures variants; does not change the shipped model).

    .venv/bin/python -m bench.experiments_classifier --per-class 3000
    .venv/bin/python -m bench.experiments_classifier --per-class 3000 --only baseline,win12
    .venv/bin/python -m bench.experiments_classifier --per-class 3000 --loso baseline,win12
    .venv/bin/python -m bench.experiments_classifier --per-class 3000 --page-rules c4_b1,c35_b1

Same data sampling as ``bench.bench_classifier`` (``--per-class`` random documents per class, seeds
1/2/3), same prompt-grouped folds (``TeacherClassifier.folds``: GroupKFold on ``prompt_id``,
shuffled, ``random_state=0``), same sample weights (``balanced_weights``) and the same protocol as
``train_model``: stage 1 is fitted per fold, its out-of-fold outputs + the stylometric block make
the stage-2 rows, stage 2 is fitted per fold on the training rows and scores the fold's test rows.

Every variant reuses ``detectors.features`` (``NgramHasher``, ``stylometric_matrix``),
``detectors.segments.segment_spans`` and ``detectors.classifier`` (``evaluate_scores``,
``balanced_weights``, ``_embed``, ``score_texts`` for the speed figure). Documents and windows are
hashed once per n-gram configuration (a document's counts = the sum of its windows' counts, as in
``score_texts``) and reused by all variants that share it.

Embedded rate: in each fold, every held-out teacher text is pasted as ~25% of a random held-out
human page (``_embed``, as in ``train_model`` and tests/test_classifier.py); the fold's models score
every window; a page is flagged when its best window reaches the threshold that gives 1% FPR on the
held-out human pages' best windows.

Variants (``--only`` takes a comma-separated list of names):

* ``baseline``: the committed model (SGD stage 1 on documents, HGB stage 2 on documents).
* ``win1`` / ``win2`` / ``win12``: paragraph windows of multi-window documents (labelled, grouped and
  weighted by their document: a document's windows share its weight) added to the training rows of
  stage 1 / stage 2 / both.
* ``winsep``: a second stage-2 model trained only on windows (every document's windows, labelled
  by the document) scores the windows; the document model is the baseline's (``win1_winsep``: with
  window rows in stage 1 too; ``split_win1_winsep``: and separate word/char stage-1 models).
  Scoring cost is unchanged (one stage-2 predict per row either way).
* ``lr_c*``: multinomial ``LogisticRegression`` (lbfgs) with the given C instead of SGD.
* ``split``: separate word and char stage-1 SGD models, both log-probability sets into stage 2.
* ``split_win12``: ``split`` + ``win12``.
* ``c4_base`` / ``c4_18_base`` / ``w_18_base``: cheaper n-grams (char 4 only at 2^20 / 2^18 hash
  bits; word only at 2^18), otherwise the baseline; ``c4_win1_winsep`` / ``c4_winsep``: char 4
  with ``win1_winsep`` / ``winsep``.

``--loso`` trains the listed variants with one source family held out entirely (all its classes),
and reports AUC teacher/human and teacher/other inside the unseen family plus its human FPR at the
threshold chosen on the other families (1% FPR, out-of-fold).

``--page-rules c4_b1,...`` runs the production ``train_model`` (window stage 2, paragraph pieces,
every segment rule measured on held-out human pages, pages with pasted teacher text at 25% and 50%
and the teacher texts alone) for the named parameter sets in ``PAGE_RULE_VARIANTS``.

Timings are noisy (2 shared cores); quality figures are deterministic for a given ``--per-class``.
"""

from __future__ import annotations

import argparse
import copy
import json
import re
import time
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp
from sklearn.linear_model import LogisticRegression, SGDClassifier
from sklearn.metrics import roc_auc_score
from threadpoolctl import threadpool_limits

from bench.bench_classifier import _load, _subsample, _two_kb_docs
from detectors.classifier import (
    HUMAN,
    OTHER_LLM,
    TARGET_FPR,
    TEACHER,
    TeacherClassifier,
    _embed,
    _one_thread,
    _source_family,
    _threshold_at_fpr,
    balanced_weights,
    evaluate_scores,
    is_assessable,
    score_texts,
    training_arrays,
)
from detectors.classifier import Stage1 as ScoringStage1
from detectors.features import NgramHasher, stylometric_matrix
from detectors.segments import segment_spans

_EPS = 1e-6


@dataclass(frozen=True)
class Variant:
    name: str
    char_ngram_range: tuple[int, int] | None = (3, 5)
    n_features: int = 2**20
    stage1: str = "sgd"  # "sgd" or "lr"
    lr_c: float = 10.0
    split: bool = False  # separate word / char stage-1 models
    win_stage1: bool = False
    win_stage2: bool = False
    window_stage2: bool = False  # a separate stage-2 model, trained on windows, scores the windows
    note: str = ""

    @property
    def hasher_key(self) -> tuple:
        return (self.char_ngram_range, self.n_features)


def _variants() -> dict[str, Variant]:
    v = [
        Variant("baseline", note="committed model"),
        Variant("win1", win_stage1=True),
        Variant("win2", win_stage2=True),
        Variant("win12", win_stage1=True, win_stage2=True),
        Variant("winsep", window_stage2=True),
        Variant("win1_winsep", win_stage1=True, window_stage2=True),
        Variant("split_win1_winsep", split=True, win_stage1=True, window_stage2=True),
        Variant("lr_c3", stage1="lr", lr_c=3.0),
        Variant("lr_c30", stage1="lr", lr_c=30.0),
        Variant("split", split=True),
        Variant("split_win12", split=True, win_stage1=True, win_stage2=True),
        Variant("c4_base", char_ngram_range=(4, 4)),
        Variant("c4_18_base", char_ngram_range=(4, 4), n_features=2**18),
        Variant("w_18_base", char_ngram_range=None, n_features=2**18),
        Variant("c4_win1_winsep", char_ngram_range=(4, 4), win_stage1=True, window_stage2=True),
        Variant("c4_winsep", char_ngram_range=(4, 4), window_stage2=True),
    ]
    return {x.name: x for x in v}


# --- a TeacherClassifier whose stage 1 may be several models over column blocks ---------------------


class SplitStageClassifier(TeacherClassifier):
    """Stage 1 = one model per column slice (``stage1_slices_``); stage-2 input = all log-probs.

    Only used here, so ``score_texts`` can time the split variant with the production code path."""

    def _stage2_rows(
        self, features: sp.csr_matrix, style: np.ndarray, stage1: ScoringStage1 | None = None
    ) -> np.ndarray:
        # the one place production code builds stage-2 inputs (segment_scores and predict_proba_*)
        slices = self.stage1_slices_
        columns = None if stage1 is None else stage1.columns
        if columns is not None:
            # segment_scores renumbers a batch's columns 0..k-1 in column order (_compact_columns):
            # a slice of the full width is a slice of the new columns
            slices = [slice(*np.searchsorted(columns, [sl.start, sl.stop])) for sl in slices]
        logs = [
            np.log(np.clip(_proba(_on_columns(m, sl, columns), features[:, new], self.classes_), _EPS, 1.0))
            for m, sl, new in zip(self.stage1_, self.stage1_slices_, slices, strict=True)
        ]
        return np.hstack([*logs, style]).astype(np.float32)


def _on_columns(model: object, sl: slice, columns: np.ndarray | None) -> object:
    """``model`` (fitted on the full-width slice ``sl``) restricted to the batch's ``columns``."""
    if columns is None:
        return model
    inside = columns[(columns >= sl.start) & (columns < sl.stop)] - sl.start
    restricted = copy.copy(model)
    restricted.coef_ = model.coef_[:, inside]
    restricted.n_features_in_ = inside.size
    return restricted


def _proba(model: object, x: sp.csr_matrix, classes: np.ndarray) -> np.ndarray:
    proba = model.predict_proba(x)
    if np.array_equal(model.classes_, classes):
        return proba
    out = np.full((x.shape[0], len(classes)), _EPS)
    for j, cls in enumerate(model.classes_):
        out[:, int(np.searchsorted(classes, cls))] = proba[:, j]
    return out


# --- cached material ---------------------------------------------------------------------------------


@dataclass
class Windows:
    """Windows of a list of texts: owner index, per-block counts, style rows, doc-level counts."""

    texts: list[str]
    owner: np.ndarray
    n_per_doc: np.ndarray
    style: np.ndarray
    counts: dict[tuple, list[sp.csr_matrix]] = field(default_factory=dict)

    @classmethod
    def of(cls, docs: list[str]) -> Windows:
        texts, owner = [], []
        for i, text in enumerate(docs):
            if not is_assessable(text):
                continue
            for s, e in segment_spans(text):
                texts.append(text[s:e])
                owner.append(i)
        owner_arr = np.asarray(owner, dtype=np.int64)
        return cls(texts, owner_arr, np.bincount(owner_arr, minlength=len(docs)), stylometric_matrix(texts))

    def block_counts(self, hasher: NgramHasher, key: tuple) -> list[sp.csr_matrix]:
        if key not in self.counts:
            self.counts[key] = hasher.counts(self.texts)
        return self.counts[key]


def _hasher(variant: Variant) -> NgramHasher:
    return NgramHasher(
        char_ngram_range=variant.char_ngram_range,
        n_features_word=variant.n_features,
        n_features_char=variant.n_features,
    ).fit(["x"])


def _doc_counts(win: Windows, blocks: list[sp.csr_matrix], n_docs: int) -> list[sp.csr_matrix]:
    indicator = sp.csr_matrix(
        (np.ones(len(win.owner), dtype=np.float32), (win.owner, np.arange(len(win.owner)))),
        shape=(n_docs, len(win.owner)),
    )
    return [(indicator @ b).tocsr() for b in blocks]


@dataclass
class Data:
    texts: list[str]
    labels: np.ndarray
    groups: np.ndarray
    sources: np.ndarray
    families: np.ndarray
    weight: np.ndarray
    doc_style: np.ndarray
    win: Windows

    @classmethod
    def build(cls, parts: dict[str, list[dict]]) -> Data:
        texts, labels, source_list, groups = training_arrays(parts)
        sources = np.asarray(source_list)
        return cls(
            texts,
            labels,
            groups,
            sources,
            np.asarray([_source_family(s) for s in sources]),
            balanced_weights(labels, list(sources)),
            stylometric_matrix(texts),
            Windows.of(texts),
        )

    def subset(self, idx: np.ndarray) -> Data:
        """Documents ``idx`` (windows and cached counts carried over)."""
        keep = np.isin(self.win.owner, idx)
        remap = np.full(len(self.texts), -1)
        remap[idx] = np.arange(len(idx))
        win = Windows(
            [t for t, k in zip(self.win.texts, keep, strict=True) if k],
            remap[self.win.owner[keep]],
            self.win.n_per_doc[idx],
            self.win.style[keep],
            {k: [b[keep] for b in v] for k, v in self.win.counts.items()},
        )
        labels = self.labels[idx]
        return Data(
            [self.texts[i] for i in idx],
            labels,
            self.groups[idx],
            self.sources[idx],
            self.families[idx],
            balanced_weights(labels, list(self.sources[idx])),
            self.doc_style[idx],
            win,
        )


# --- one variant, grouped CV -------------------------------------------------------------------------


def _new_stage1(variant: Variant) -> object:
    if variant.stage1 == "lr":
        # saga did not converge in 100 epochs on 1-2M hashed columns and was 4-5x slower than SGD at
        # 300 docs/class; liblinear refuses 3 classes in this scikit-learn; lbfgs is multinomial.
        return LogisticRegression(C=variant.lr_c, max_iter=300, random_state=0)
    return SGDClassifier(loss="log_loss", alpha=1e-5, max_iter=30, tol=1e-4, random_state=0)


class Stage1:
    """One or several (``split``) stage-1 models over column slices of the weighted features."""

    def __init__(self, variant: Variant, widths: list[int]) -> None:
        self.variant = variant
        edges = np.cumsum([0, *widths])
        self.slices = (
            [slice(int(a), int(b)) for a, b in zip(edges[:-1], edges[1:], strict=True)]
            if variant.split and len(widths) > 1
            else [slice(0, int(edges[-1]))]
        )

    def fit(self, x: sp.csr_matrix, y: np.ndarray, w: np.ndarray) -> Stage1:
        self.models = [_new_stage1(self.variant).fit(x[:, sl], y, sample_weight=w) for sl in self.slices]
        self.classes_ = np.unique(y)
        return self

    def log_proba(self, x: sp.csr_matrix, classes: np.ndarray) -> np.ndarray:
        return np.hstack(
            [
                np.log(np.clip(_proba(m, x[:, sl], classes), _EPS, 1.0))
                for m, sl in zip(self.models, self.slices, strict=True)
            ]
        )


def _stage2(y: np.ndarray, x: np.ndarray) -> object:
    clf = TeacherClassifier()._new_stage2()
    with _one_thread():
        return clf.fit(x, y)


def _pages(
    data: Data, folds: list[tuple[np.ndarray, np.ndarray]], seed: int = 0
) -> tuple[list[str], np.ndarray]:
    rng = np.random.default_rng(seed)
    human = np.flatnonzero(data.labels == HUMAN)
    teacher = np.flatnonzero(data.labels == TEACHER)
    pages, fold_of = [], []
    for k, (_, test) in enumerate(folds):
        test_human = np.intersect1d(test, human)
        for guest in np.intersect1d(test, teacher):
            pages.append(_embed(data.texts[int(rng.choice(test_human))], data.texts[guest], 0.25))
            fold_of.append(k)
    return pages, np.asarray(fold_of)


def _window_rows(data: Data, idx: np.ndarray) -> np.ndarray:
    """Window indices of the multi-window documents among ``idx`` (one-window docs = the doc)."""
    in_idx = np.zeros(len(data.texts), dtype=bool)
    in_idx[idx] = True
    return np.flatnonzero(in_idx[data.win.owner] & (data.win.n_per_doc[data.win.owner] > 1))


def run_cv(
    variant: Variant,
    data: Data,
    pages: tuple[list[str], np.ndarray, Windows] | None,
    speed_docs: list[str] | None,
    extra: Data | None = None,
) -> dict:
    """Grouped-CV metrics (+ embedded rate, + docs/s) of one variant; ``extra``: also fit on all of
    ``data`` and return the extra documents' P(teacher) (for the leave-one-family-out check)."""
    started = time.perf_counter()
    hasher = _hasher(variant)
    key = variant.hasher_key
    win_counts = data.win.block_counts(hasher, key)
    widths = [b.shape[1] for b in win_counts]
    x_doc = hasher.weigh(_doc_counts(data.win, win_counts, len(data.texts)))
    x_win = hasher.weigh(win_counts)
    y, w = data.labels, data.weight
    classes = np.unique(y)
    y_win = y[data.win.owner]
    w_win = w[data.win.owner] / np.maximum(data.win.n_per_doc[data.win.owner], 1)
    folds = TeacherClassifier(random_state=0).folds(y, data.groups)

    def fit_stage1(train: np.ndarray) -> Stage1:
        x, yy, ww = x_doc[train], y[train], w[train]
        if variant.win_stage1:
            rows = _window_rows(data, train)
            x = sp.vstack([x, x_win[rows]], format="csr")
            yy = np.concatenate([yy, y_win[rows]])
            ww = np.concatenate([ww, w_win[rows]])
        return Stage1(variant, widths).fit(x, yy, ww)

    # stage 1 out of fold, for documents and windows
    stage1_models = []
    n_cols = len(classes) * (len(widths) if variant.split and len(widths) > 1 else 1)
    oof_doc = np.zeros((len(y), n_cols))
    oof_win = np.zeros((len(y_win), n_cols))
    for train, test in folds:
        s1 = fit_stage1(train)
        stage1_models.append(s1)
        oof_doc[test] = s1.log_proba(x_doc[test], classes)
        rows = np.flatnonzero(np.isin(data.win.owner, test))
        oof_win[rows] = s1.log_proba(x_win[rows], classes)
    z_doc = np.hstack([oof_doc, data.doc_style]).astype(np.float32)
    z_win = np.hstack([oof_win, data.win.style]).astype(np.float32)

    def fit_stage2(train: np.ndarray) -> object:
        zz, yy = z_doc[train], y[train]
        if variant.win_stage2:
            rows = _window_rows(data, train)
            zz = np.vstack([zz, z_win[rows]])
            yy = np.concatenate([yy, y_win[rows]])
        return _stage2(yy, zz)

    proba = np.zeros((len(y), len(classes)))
    human_max = np.full(len(y), np.nan)
    emb_hits, emb_n = 0, 0
    fold_models = []
    if pages is not None:
        page_texts, page_fold, page_win = pages
        page_x = hasher.weigh(page_win.block_counts(hasher, key))

    def fit_window_stage2(train: np.ndarray) -> object:
        rows = np.flatnonzero(np.isin(data.win.owner, train))
        return _stage2(y_win[rows], z_win[rows])

    window_models = []
    for train, test in folds:
        s2 = fit_stage2(train)
        fold_models.append(s2)
        s2w = fit_window_stage2(train) if variant.window_stage2 else s2
        window_models.append(s2w)
        with _one_thread():
            proba[test] = s2.predict_proba(z_doc[test])
        if pages is None:
            continue
        # held-out human pages: best window (a one-window page's window is the page)
        test_human = np.intersect1d(test, np.flatnonzero(y == HUMAN))
        rows = np.flatnonzero(np.isin(data.win.owner, test_human))
        with _one_thread():
            p = s2w.predict_proba(z_win[rows])[:, list(classes).index(TEACHER)]
        best = np.full(len(y), -np.inf)
        np.maximum.at(best, data.win.owner[rows], p)
        human_max[test_human] = best[test_human]
    metrics = evaluate_scores(y, proba, classes, list(data.sources))
    cv_seconds = time.perf_counter() - started
    row = {
        "variant": variant.name,
        "n_train": len(y),
        "auc_th": metrics["roc_auc"],
        "tpr1": metrics["tpr_at_fpr"]["0.01"],
        "tpr5": metrics["tpr_at_fpr"]["0.05"],
        "auc_to": metrics.get("roc_auc_teacher_vs_other_llm"),
        "ece": metrics["ece"],
        "worst_human_sources": metrics["per_source_fpr"][:4],
        "threshold": metrics["operating_point"]["threshold"],
    }
    if pages is not None:
        h = human_max[y == HUMAN]
        seg_threshold = _threshold_at_fpr(h[np.isfinite(h)], TARGET_FPR)
        page_best = np.full(len(page_texts), -np.inf)
        for k, s2 in enumerate(window_models):
            rows = np.flatnonzero(page_fold[page_win.owner] == k)
            z = np.hstack([stage1_models[k].log_proba(page_x[rows], classes), page_win.style[rows]])
            with _one_thread():
                p = s2.predict_proba(z.astype(np.float32))[:, list(classes).index(TEACHER)]
            np.maximum.at(page_best, page_win.owner[rows], p)
        emb_hits, emb_n = int(np.sum(page_best >= seg_threshold)), len(page_texts)
        row["embedded"] = emb_hits / max(emb_n, 1)
        row["embedded_n"] = emb_n
    row["cv_s"] = round(cv_seconds, 1)
    if speed_docs:
        row["docs_per_s"] = _speed(
            variant, hasher, stage1_models[0], fold_models[0], classes, widths, speed_docs
        )
    if extra is not None:
        final1 = fit_stage1(np.arange(len(y)))
        final2 = _stage2(y, z_doc) if not variant.win_stage2 else fit_stage2(np.arange(len(y)))
        ex_counts = extra.win.block_counts(hasher, key)
        ex_x = hasher.weigh(_doc_counts(extra.win, ex_counts, len(extra.texts)))
        z = np.hstack([final1.log_proba(ex_x, classes), extra.doc_style]).astype(np.float32)
        with _one_thread():
            row["extra_teacher_prob"] = final2.predict_proba(z)[:, list(classes).index(TEACHER)]
    return row


def _speed(variant, hasher, s1: Stage1, s2, classes, widths, docs: list[str]) -> float:
    """docs/s of the production scoring path (``score_texts``: document + windows, 2 KB docs)."""
    cls = SplitStageClassifier if len(s1.models) > 1 else TeacherClassifier
    clf = cls(char_ngram_range=variant.char_ngram_range, n_features=variant.n_features)
    clf.hasher_ = hasher
    clf.classes_ = classes
    clf.stage2_ = s2
    # these variants predate the naive-Bayes members: none
    width = hasher.n_features_word + (hasher.n_features_char if hasher.char_ngram_range else 0)
    clf.stage1_nb_weights_ = np.zeros((0, width), np.float32)
    clf.stage1_nb_intercepts_ = np.zeros(0)
    # score_texts scores segments with the window stage 2; here the document model stands in, and
    # the "windows" rule reproduces the scoring cost these variants were measured with.
    clf.stage2_window_ = s2
    clf.segment_rule = "windows"
    if len(s1.models) > 1:
        clf.stage1_ = s1.models
        clf.stage1_slices_ = s1.slices
    else:
        clf.stage1_ = s1.models[0]
    score_texts(clf, docs[:100], 0.5)  # warm-up
    started = time.perf_counter()
    score_texts(clf, docs, 0.5)
    return round(len(docs) / (time.perf_counter() - started), 1)


# --- leave one source family out ----------------------------------------------------------------------


def run_loso(variant: Variant, data: Data, family: str) -> dict:
    held = np.flatnonzero(data.families == family)
    rest = np.flatnonzero(data.families != family)
    train, test = data.subset(rest), data.subset(held)
    row = run_cv(variant, train, None, None, extra=test)
    p = row.pop("extra_teacher_prob")
    yt = test.labels
    out = {
        "variant": variant.name,
        "held_out": family,
        "n_held": {c: int(np.sum(yt == c)) for c in np.unique(yt)},
    }
    th = (yt == TEACHER) | (yt == HUMAN)
    if len(np.unique(yt[th])) == 2:
        out["auc_th"] = float(roc_auc_score(yt[th] == TEACHER, p[th]))
    to = (yt == TEACHER) | (yt == OTHER_LLM)
    if len(np.unique(yt[to])) == 2:
        out["auc_to"] = float(roc_auc_score(yt[to] == TEACHER, p[to]))
    if np.any(yt == HUMAN):
        out["human_fpr"] = float(np.mean(p[yt == HUMAN] >= row["threshold"]))
    if np.any(yt == TEACHER):
        out["teacher_tpr"] = float(np.mean(p[yt == TEACHER] >= row["threshold"]))
    out["cv_auc_th_rest"] = row["auc_th"]
    return out


# --- the production model through train_model: page rules for pasted text -----------------------------

PAGE_RULE_VARIANTS: dict[str, dict] = {
    "c4_b1": {},  # the TeacherClassifier defaults (char 4, segment rule run+windows, run bias 1)
    "c4_b0": {"run_bias": 0.0},
    "c4_b-0.7": {"run_bias": -0.7},  # log-odds of a neutral paragraph under equal class weights
    "c4_b2": {"run_bias": 2.0},
    "c35_b1": {"char_ngram_range": (3, 5)},
}


def run_page_rules(
    names: list[str], parts: dict[str, list[dict]], speed_docs: list[str] | None
) -> list[dict]:
    """``train_model`` (grouped 5-fold CV, held-out embedded pages at 25% and 50%, and the teacher
    texts alone) for each named parameter set; every segment rule is measured from the same
    held-out scores, each at its own page threshold (1% FPR on the held-out human pages)."""
    import tempfile

    from detectors.classifier import SEGMENT_RULES, load_model, train_model

    rows = []
    for name in names:
        with tempfile.TemporaryDirectory() as tmp:
            started = time.perf_counter()
            m = train_model(
                parts[TEACHER],
                parts[HUMAN],
                parts[OTHER_LLM],
                tmp,
                classifier=TeacherClassifier(**PAGE_RULE_VARIANTS[name]),
            )
            train_s = time.perf_counter() - started
            speed = {}
            if speed_docs:
                model = load_model(tmp)
                for rule in SEGMENT_RULES:
                    model.classifier.segment_rule = rule
                    model.score_documents(speed_docs[:100])
                    t0 = time.perf_counter()
                    model.score_documents(speed_docs)
                    speed[rule] = round(len(speed_docs) / (time.perf_counter() - t0), 1)
        for rule, r in m["segment_rules"].items():
            rows.append(
                {
                    "variant": name,
                    "rule": rule,
                    "auc_th": m["roc_auc"],
                    "tpr1": m["tpr_at_fpr"]["0.01"],
                    "tpr5": m["tpr_at_fpr"]["0.05"],
                    "auc_to": m.get("roc_auc_teacher_vs_other_llm"),
                    "ece": m["ece"],
                    "emb25": r["tpr_25pct"],
                    "emb50": r["tpr_50pct"],
                    "alone": r.get("tpr_100pct"),
                    "page_threshold": r["threshold"],
                    "train_s": round(train_s, 1),
                    "docs_per_s": speed.get(rule),
                }
            )
            print(json.dumps(rows[-1]), flush=True)
    _table(
        ["variant", "rule", "AUC t/h", "TPR@1%", "TPR@5%", "AUC t/other", "ECE", "25%-embedded"]
        + ["50%-embedded", "teacher alone", "page threshold", "train_model s", "docs/s (2 KB)"],
        [
            [r["variant"], r["rule"], _fmt(r["auc_th"]), _fmt(r["tpr1"], 3), _fmt(r["tpr5"], 3)]
            + [_fmt(r["auc_to"]), _fmt(r["ece"]), _fmt(r["emb25"], 3), _fmt(r["emb50"], 3)]
            + [_fmt(r["alone"], 3)]
            + [_fmt(r["page_threshold"]), r["train_s"], _fmt(r["docs_per_s"], 0)]
            for r in rows
        ],
    )
    return rows


def _paste_inline(host: str, guest: str, share: float) -> str:
    """``guest`` pasted *inside* a paragraph of ``host`` (after a sentence end near the middle, its
    own blank lines turned into spaces), so no paragraph break marks where it starts or ends."""
    host = host[: int(len(guest) * (1 - share) / share)]
    ends = [m.end() for m in re.finditer(r"[.!?] ", host[: len(host) // 2 + 1])]
    cut = ends[-1] if ends else len(host) // 2
    return host[:cut] + re.sub(r"\s*\n\s*\n\s*", " ", guest.strip()) + " " + host[cut:]


def run_inline_check(parts: dict[str, list[dict]], share: float = 0.25, **params: object) -> None:
    """One held-out grouped fold: teacher text pasted at a paragraph break (``_embed``, as in
    ``train_model``) vs inside a paragraph; every segment rule at 1% FPR on the fold's human pages."""
    from detectors.classifier import SEGMENT_RULES, segment_scores

    texts, y, sources, groups = training_arrays(parts)
    clf = TeacherClassifier(**params)
    train, test = clf.folds(y, groups)[0]
    clf.fit(
        [texts[i] for i in train],
        y[train],
        groups[train],
        balanced_weights(y[train], [sources[i] for i in train]),
    )
    rng = np.random.default_rng(0)
    humans = [int(i) for i in test if y[i] == HUMAN]
    guests = [int(i) for i in test if y[i] == TEACHER]
    hosts = [humans[int(rng.integers(len(humans)))] for _ in guests]
    human = segment_scores(clf, [texts[i] for i in humans], SEGMENT_RULES)
    at_break = segment_scores(
        clf, [_embed(texts[h], texts[g], share) for h, g in zip(hosts, guests, strict=True)], SEGMENT_RULES
    )
    inline = segment_scores(
        clf,
        [_paste_inline(texts[h], texts[g], share) for h, g in zip(hosts, guests, strict=True)],
        SEGMENT_RULES,
    )
    th = np.asarray(humans + guests)
    auc = roc_auc_score(
        y[th] == TEACHER,
        human.doc_teacher.tolist()
        + list(clf.predict_proba([texts[i] for i in guests])[:, list(clf.classes_).index(TEACHER)]),
    )
    print(
        f"# {params}: held-out fold 0: {len(humans)} human pages, {len(guests)} pages with pasted teacher "
        f"text; document AUC t/h {auc:.4f}"
    )
    rows = []
    for rule in SEGMENT_RULES:
        threshold = _threshold_at_fpr(human.page_score(rule), TARGET_FPR)
        rows.append(
            [rule, _fmt(threshold, 3)]
            + [_fmt(float(np.mean(s.page_score(rule) >= threshold)), 3) for s in (at_break, inline)]
        )
    _table(
        ["rule", "page threshold", f"{share:.0%} at a paragraph break", f"{share:.0%} inside a paragraph"],
        rows,
    )


# --- main --------------------------------------------------------------------------------------------


def _fmt(x: object, nd: int = 4) -> str:
    return "-" if x is None else f"{x:.{nd}f}" if isinstance(x, float) else str(x)


def _table(header: list[str], rows: list[list[object]]) -> None:
    """Print a markdown table (nothing for no rows)."""
    if not rows:
        return
    print("\n| " + " | ".join(header) + " |")
    print("|---|" + "---:|" * (len(header) - 1))
    for row in rows:
        print("| " + " | ".join(str(c) for c in row) + " |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--per-class", type=int, default=None, help="random documents per class (default: all)"
    )
    parser.add_argument("--only", default=",".join(_variants()), help="comma-separated variant names")
    parser.add_argument("--speed-docs", type=int, default=1000, help="2 KB documents for docs/s (0: skip)")
    parser.add_argument("--loso", default="", help="variants for the leave-one-source-family-out check")
    parser.add_argument("--loso-families", default="l2r,outfox,so_chatgpt,hc3plus")
    parser.add_argument(
        "--page-rules", default="", help=f"train_model parameter sets, of {','.join(PAGE_RULE_VARIANTS)}"
    )
    parser.add_argument(
        "--inline-check", action="store_true", help="pasted text at a paragraph break vs inside a paragraph"
    )
    parser.add_argument("--piece-max-chars", type=int, default=0, help="with --inline-check")
    args = parser.parse_args()
    variants = _variants()
    with threadpool_limits(limits=1):
        teacher = _subsample(_load("openai"), args.per_class, 1)
        human = _subsample(_load("human"), args.per_class, 2)
        other = _subsample(_load("other_llm"), args.per_class, 3)
        if args.inline_check:
            params = {"piece_max_chars": args.piece_max_chars} if args.piece_max_chars else {}
            run_inline_check({TEACHER: teacher, HUMAN: human, OTHER_LLM: other}, **params)
            return
        if args.page_rules:
            speed_docs = _two_kb_docs(teacher + human, args.speed_docs) if args.speed_docs else None
            parts = {TEACHER: teacher, HUMAN: human, OTHER_LLM: other}
            run_page_rules(args.page_rules.split(","), parts, speed_docs)
            return
        started = time.perf_counter()
        data = Data.build({TEACHER: teacher, HUMAN: human, OTHER_LLM: other})
        folds = TeacherClassifier(random_state=0).folds(data.labels, data.groups)
        page_texts, page_fold = _pages(data, folds)
        pages = (page_texts, page_fold, Windows.of(page_texts))
        speed_docs = _two_kb_docs(teacher + human, args.speed_docs) if args.speed_docs else None
        print(
            f"# {len(data.texts)} docs, {len(data.win.texts)} windows, {len(page_texts)} embedded pages; "
            f"prep {time.perf_counter() - started:.0f} s",
            flush=True,
        )
        rows = []
        for name in [n for n in args.only.split(",") if n]:
            row = run_cv(variants[name], data, pages, speed_docs)
            rows.append(row)
            print(json.dumps(row), flush=True)
        _table(
            [
                "variant",
                "n",
                "AUC t/h",
                "TPR@1%",
                "TPR@5%",
                "AUC t/other",
                "ECE",
                "25%-embedded",
                "CV s",
                "docs/s",
            ],
            [
                [r["variant"], r["n_train"], _fmt(r["auc_th"]), _fmt(r["tpr1"], 3), _fmt(r["tpr5"], 3)]
                + [_fmt(r["auc_to"]), _fmt(r["ece"]), _fmt(r.get("embedded"), 3), r["cv_s"]]
                + [_fmt(r.get("docs_per_s"), 0)]
                for r in rows
            ],
        )
        loso_rows = []
        for name in [n for n in args.loso.split(",") if n]:
            for family in args.loso_families.split(","):
                r = run_loso(copy.copy(variants[name]), data, family)
                loso_rows.append(r)
                print(json.dumps(r), flush=True)
        _table(
            ["variant", "held-out family", "n held t/h/o", "cv AUC t/h (rest)", "AUC t/h unseen"]
            + ["AUC t/other unseen", "human FPR unseen", "teacher TPR unseen"],
            [
                [
                    r["variant"],
                    r["held_out"],
                    "/".join(str(r["n_held"].get(c, 0)) for c in (TEACHER, HUMAN, OTHER_LLM)),
                ]
                + [_fmt(r["cv_auc_th_rest"]), _fmt(r.get("auc_th")), _fmt(r.get("auc_to"))]
                + [_fmt(r.get("human_fpr"), 3), _fmt(r.get("teacher_tpr"), 3)]
                for r in loso_rows
            ],
        )


if __name__ == "__main__":
    main()
