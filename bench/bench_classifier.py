"""Teacher classifier benchmark: grouped-CV quality on the dev data, scoring speed, training time.

    .venv/bin/python -m bench.bench_classifier                    # full dev data, default model
    .venv/bin/python -m bench.bench_classifier --variants         # + speed/quality trade-off table
    .venv/bin/python -m bench.bench_classifier --per-class 3000   # faster, stratified subsample
    .venv/bin/python -m bench.bench_classifier --speed-only       # speed table only (small model)

Quality: ``train_model`` on the dev data (prompt-grouped 5-fold CV inside). Speed: documents of
~2 KB (dev texts, concatenated/trimmed) scored with ``TeacherModel.score_documents`` (windows
included), one process pinned to one core (``--cpu``), OpenMP/BLAS limited to one thread; the load
average is printed beside every timing (the machine is shared). Prints markdown tables.

``--speed-only`` trains a small model (``--per-class``, default 300) and times, on the
same 2 KB documents and their paragraph windows, ``score_documents`` and each feature part, new
(this tree) against the feature code of ``--baseline`` (a git revision; default: the last commit
with scikit-learn's ``HashingVectorizer``), loaded from git into a temporary module. The fitted
stages' iteration counts are printed (scoring time grows with the HGB iterations; with early
stopping a model trained on more data may stop sooner).
"""

from __future__ import annotations

import argparse
import cProfile
import importlib.util
import json
import os
import pstats
import random
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

from threadpoolctl import threadpool_limits

from detectors import features
from detectors.classifier import TeacherClassifier, load_model, train_model
from detectors.segments import segment_spans

DEV = (
    Path(os.environ.get("DISTILL_AUDIT_SHARED", Path(__file__).resolve().parents[2] / "shared"))
    / "data"
    / "dev"
)

DEFAULT_VARIANT = "word1-2 + char4 (default)"
VARIANTS = {
    DEFAULT_VARIANT: {},
    "word1-2 + char3-5": {"char_ngram_range": (3, 5)},
    "word1-2 + char3-4": {"char_ngram_range": (3, 4)},
    "word1-2 only": {"char_ngram_range": None},
}


def _load(label: str) -> list[dict]:
    with (DEV / f"{label}.jsonl").open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def _subsample(records: list[dict], n: int | None, seed: int) -> list[dict]:
    if n is None or n >= len(records):
        return records
    return random.Random(seed).sample(records, n)


def _two_kb_docs(records: list[dict], n: int, size: int = 2048) -> list[str]:
    rng = random.Random(7)
    texts = [r["text"] for r in records]
    docs = []
    while len(docs) < n:
        parts, length = [], 0
        while length < size:
            t = rng.choice(texts)
            parts.append(t)
            length += len(t) + 2
        docs.append("\n\n".join(parts)[:size])
    return docs


def run(per_class: int | None, variants: bool, n_speed: int) -> list[dict]:
    teacher, human, other = _load("openai"), _load("human"), _load("other_llm")
    teacher = _subsample(teacher, per_class, 1)
    human = _subsample(human, per_class, 2)
    other = _subsample(other, per_class, 3)
    docs = _two_kb_docs(teacher + human, n_speed)
    rows = []
    for name, params in VARIANTS.items() if variants else [(DEFAULT_VARIANT, {})]:
        with tempfile.TemporaryDirectory() as tmp, threadpool_limits(limits=1):
            started = time.perf_counter()
            metrics = train_model(teacher, human, other, tmp, classifier=TeacherClassifier(**params))
            train_s = time.perf_counter() - started
            model = load_model(tmp)
            model.score_documents(docs[:200])  # warm-up
            started = time.perf_counter()
            model.score_documents(docs)
            speed = len(docs) / (time.perf_counter() - started)
        seg = metrics["segment_operating_point"]
        pairwise = metrics["pairwise"]  # one-vs-one: P(t) / (P(t) + P(other class))
        rows.append(
            {
                "variant": name,
                "n_train": sum(metrics["n_train"].values()),
                "auc_teacher_human": metrics["roc_auc"],
                "tpr_at_1pct_fpr": metrics["tpr_at_fpr"]["0.01"],
                "tpr_at_5pct_fpr": metrics["tpr_at_fpr"]["0.05"],
                "auc_teacher_other": metrics.get("roc_auc_teacher_vs_other_llm"),
                "pairwise_auc_teacher_human": pairwise["teacher_vs_human"]["roc_auc"],
                "pairwise_tpr_at_1pct_fpr": pairwise["teacher_vs_human"]["tpr_at_fpr"]["0.01"],
                "pairwise_auc_teacher_other": pairwise.get("teacher_vs_other_llm", {}).get("roc_auc"),
                "ece": metrics["ece"],
                "embedded_25pct_flagged": seg["tpr"],
                "embedded_25pct_by_pasted_length": [
                    (row["min_chars"], row["pages"], round(row["tpr"], 3))
                    for row in seg["tpr_by_pasted_length"] if row["tpr"] is not None
                ],
                "train_model_s": round(train_s, 1),
                "docs_per_s_2kb": round(speed, 1),
                "per_source_fpr_top": metrics["per_source_fpr"][:6],
            }
        )
        print(json.dumps(rows[-1]), flush=True)
    return rows


def _load_avg() -> str:
    return "/".join(f"{x:.1f}" for x in os.getloadavg())


def _best_rate(fn: Callable[[], object], n_docs: int, repeats: int) -> tuple[float, str]:
    """Best docs/s over ``repeats`` runs (the least disturbed by other jobs), and the load average."""
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - started)
    return n_docs / best, _load_avg()


def _baseline_features(revision: str) -> ModuleType | None:
    """``detectors/features.py`` as of ``revision``, imported as a separate module (None if git or
    the revision is unavailable)."""
    root = Path(__file__).resolve().parents[1]
    try:
        source = subprocess.run(
            ["git", "show", f"{revision}:detectors/features.py"], cwd=root, capture_output=True, check=True
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        return None
    path = Path(tempfile.mkdtemp(prefix="bench-features-")) / "baseline_features.py"
    path.write_bytes(source)
    spec = importlib.util.spec_from_file_location("baseline_features", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _profile_split(model: object, docs: list[str]) -> list[tuple[str, float]]:
    """Share of ``score_documents`` time (cProfile, cumulative) in the main parts."""
    profile = cProfile.Profile()
    profile.runcall(model.score_documents, docs)
    stats = pstats.Stats(profile).stats
    total = max(v[3] for v in stats.values())
    parts = {
        "n-gram counts (NgramHasher)": ("features.py", "_counts"),
        "style counts": ("features.py", "_style_counts_batch"),
        "style rates (style_from_counts)": ("features.py", "style_from_counts"),
        "windows (segments.py)": ("segments.py", None),
        "weigh (log1p + l2)": ("features.py", "weigh"),
        "stage 1 SGD predict": ("_stochastic_gradient.py", "predict_proba"),
        "stage 2 HGB predict": ("gradient_boosting.py", "predict_proba"),
        "sparse sums (matmul)": ("_base.py", "__matmul__"),
    }
    out = []
    for label, (file_end, func) in parts.items():
        # Cumulative time of the outermost matching calls (a function called by itself counts once).
        times = [v[3] for (f, _, name), v in stats.items() if f.endswith(file_end) and func in (None, name)]
        if func is None:  # a whole module: its top-level functions, i.e. those called from elsewhere
            times = [
                v[3]
                for (f, _, _), v in stats.items()
                if f.endswith(file_end) and not any(c[0].endswith(file_end) for c in v[4])
            ]
        out.append((label, sum(times) / total))
    return out


def run_speed(
    per_class: int, n_docs: int, repeats: int, baseline: str, char_range: tuple[int, int] | None = None
) -> None:
    teacher, human, other = _load("openai"), _load("human"), _load("other_llm")
    docs = _two_kb_docs(teacher + human, n_docs)
    windows = [doc[s:e] for doc in docs for s, e in segment_spans(doc)]
    print(
        f"{n_docs} docs of 2,048 characters, {len(windows)} paragraph windows; "
        f"core {sorted(os.sched_getaffinity(0))}"
    )
    old = _baseline_features(baseline)
    rows: list[tuple[str, str, float, str]] = []

    def add(part: str, variant: str, fn: Callable[[], object], times: int = repeats) -> None:
        rate, load = _best_rate(fn, n_docs, times)
        rows.append((part, variant, rate, load))
        print(f"  {part} | {variant}: {rate:,.0f} docs/s (load {load})", flush=True)

    with threadpool_limits(limits=1):
        for block_range in ((4, 4), (3, 5)):
            hasher = features.NgramHasher(char_ngram_range=block_range).fit(["x"])
            hasher.counts(windows[:50])
            add(
                f"n-gram counts, word 1-2 + char {block_range}, windows",
                "new (numpy)",
                lambda h=hasher: h.counts(windows),
            )
            if old is not None:
                old_hasher = old.NgramHasher(char_ngram_range=block_range).fit(["x"])
                add(
                    f"n-gram counts, word 1-2 + char {block_range}, windows",
                    f"old ({baseline})",
                    lambda h=old_hasher: h.counts(windows),
                    1,
                )
        features.style_counts(windows[:50])
        add(
            "style rows, windows",
            "new: style_counts + style_from_counts",
            lambda: features.stylometric_matrix(windows),
        )
        add("style rows, documents", "new", lambda: features.stylometric_matrix(docs))
        if old is not None:
            add("style rows, windows", f"old ({baseline})", lambda: old.stylometric_matrix(windows), 1)
            add("style rows, documents", f"old ({baseline})", lambda: old.stylometric_matrix(docs), 1)
        hasher = features.NgramHasher().fit(["x"])
        add(
            "n-gram + style counts in one pass, windows",
            "new: counts_and_style, char 4",
            lambda: hasher.counts_and_style(windows),
        )
        with tempfile.TemporaryDirectory() as tmp:
            started = time.perf_counter()
            classifier = None if char_range is None else TeacherClassifier(char_ngram_range=char_range)
            train_model(
                _subsample(teacher, per_class, 1),
                _subsample(human, per_class, 2),
                _subsample(other, per_class, 3),
                tmp,
                classifier=classifier,
            )
            print(f"  (train_model on {3 * per_class} docs: {time.perf_counter() - started:.0f} s)")
            model = load_model(tmp)
            params = model.classifier.get_params()
            stages = {k: v.n_iter_ for k, v in vars(model.classifier).items() if hasattr(v, "n_iter_")}
            print(f"  (iterations of the fitted stages: {stages})")
            model.score_documents(docs[:200])  # warm-up
            add(
                "TeacherModel.score_documents (doc + windows)",
                f"this tree, char {params['char_ngram_range']}",
                lambda: model.score_documents(docs),
            )
            split = _profile_split(model, docs)
    print("\n| part | code | docs/s (2 KB) | ms / 1,000 docs | load (1/5/15 min) |\n|---|---|---:|---:|---|")
    for part, variant, rate, load in rows:
        print(f"| {part} | {variant} | {rate:,.0f} | {1000 * 1000 / rate:,.0f} | {load} |")
    print("\n| share of score_documents time (cProfile, cumulative) | % |\n|---|---:|")
    for label, share in split:
        print(f"| {label} | {100 * share:.0f} |")


def _fit_time_10k() -> float:
    teacher, human, other = _load("openai"), _load("human"), _load("other_llm")
    rng = random.Random(11)
    records = (
        [("teacher", r) for r in teacher] + [("human", r) for r in human] + [("other_llm", r) for r in other]
    )
    sample = rng.sample(records, min(10_000, len(records)))
    with threadpool_limits(limits=1):
        started = time.perf_counter()
        TeacherClassifier().fit([r["text"] for _, r in sample], [c for c, _ in sample])
        return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-class", type=int, default=None, help="subsample each class to N documents")
    parser.add_argument("--variants", action="store_true", help="also measure cheaper n-gram variants")
    parser.add_argument("--speed-docs", type=int, default=3000)
    parser.add_argument("--fit-10k", action="store_true", help="time TeacherClassifier.fit on 10k documents")
    parser.add_argument(
        "--speed-only", action="store_true", help="speed table only (see the module docstring)"
    )
    parser.add_argument("--repeats", type=int, default=3, help="--speed-only: best of N runs")
    parser.add_argument(
        "--baseline", default="714fc07", help="--speed-only: git revision of the old features"
    )
    parser.add_argument("--cpu", type=int, default=None, help="pin to this core (default: the last one)")
    parser.add_argument(
        "--char-ngram-range", default=None, help="--speed-only: e.g. 4,4 (default: TeacherClassifier's)"
    )
    args = parser.parse_args()
    os.sched_setaffinity(0, {args.cpu if args.cpu is not None else max(os.sched_getaffinity(0))})
    print(
        f"pinned to core {sorted(os.sched_getaffinity(0))}; load {_load_avg()}; "
        f"python {sys.version.split()[0]}"
    )
    if args.speed_only:
        char_range = None
        if args.char_ngram_range:
            low, high = (int(x) for x in args.char_ngram_range.split(","))
            char_range = (low, high)
        n_docs = args.speed_docs if args.speed_docs != 3000 else 1000
        run_speed(args.per_class or 300, n_docs, args.repeats, args.baseline, char_range)
        if args.fit_10k:
            print(
                f"\nTeacherClassifier.fit on 10,000 dev documents: {_fit_time_10k():.1f} s "
                f"(load {_load_avg()})"
            )
        return
    rows = run(args.per_class, args.variants, args.speed_docs)
    print(
        "\n| variant | n train | AUC t/h | TPR@1% | TPR@5% | AUC t/other | ECE | 25%-embedded | train s "
        "| docs/s (2 KB) |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(
            f"| {r['variant']} | {r['n_train']} | {r['auc_teacher_human']:.4f} | "
            f"{r['tpr_at_1pct_fpr']:.3f} | "
            f"{r['tpr_at_5pct_fpr']:.3f} | {r['auc_teacher_other']:.4f} | {r['ece']:.4f} | "
            f"{r['embedded_25pct_flagged']:.3f} | {r['train_model_s']} | {r['docs_per_s_2kb']} |"
        )
    if args.fit_10k:
        print(
            f"\nTeacherClassifier.fit on 10,000 dev documents: {_fit_time_10k():.1f} s (load {_load_avg()})"
        )


if __name__ == "__main__":
    main()
