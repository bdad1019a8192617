"""Teacher classifier benchmark: grouped-CV quality on the dev data, scoring speed, training time.

    .venv/bin/python -m bench.bench_classifier                    # full dev data, default model
    .venv/bin/python -m bench.bench_classifier --variants         # + speed/quality trade-off table
    .venv/bin/python -m bench.bench_classifier --per-class 3000   # faster, stratified subsample

Quality: ``train_model`` on the dev data (prompt-grouped 5-fold CV inside). Speed: documents of
~2 KB (dev texts, concatenated/trimmed) scored with ``TeacherModel.score_documents`` (windows
included), one process, OpenMP/BLAS limited to one thread. Prints a markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import tempfile
import time
from pathlib import Path

from threadpoolctl import threadpool_limits

from detectors.classifier import TeacherClassifier, load_model, train_model

DEV = (
    Path(os.environ.get("DISTILL_AUDIT_SHARED", Path(__file__).resolve().parents[2] / "shared"))
    / "data"
    / "dev"
)

VARIANTS = {
    "word1-2 + char3-5 (default)": {},
    "word1-2 + char3-4": {"char_ngram_range": (3, 4)},
    "word1-2 + char4": {"char_ngram_range": (4, 4)},
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
    for name, params in VARIANTS.items() if variants else [("word1-2 + char3-5 (default)", {})]:
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
        rows.append(
            {
                "variant": name,
                "n_train": sum(metrics["n_train"].values()),
                "auc_teacher_human": metrics["roc_auc"],
                "tpr_at_1pct_fpr": metrics["tpr_at_fpr"]["0.01"],
                "tpr_at_5pct_fpr": metrics["tpr_at_fpr"]["0.05"],
                "auc_teacher_other": metrics.get("roc_auc_teacher_vs_other_llm"),
                "ece": metrics["ece"],
                "embedded_25pct_flagged": seg["tpr"],
                "train_model_s": round(train_s, 1),
                "docs_per_s_2kb": round(speed, 1),
                "per_source_fpr_top": metrics["per_source_fpr"][:6],
            }
        )
        print(json.dumps(rows[-1]), flush=True)
    return rows


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
    args = parser.parse_args()
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
        print(f"\nTeacherClassifier.fit on 10,000 dev documents: {_fit_time_10k():.1f} s")


if __name__ == "__main__":
    main()
