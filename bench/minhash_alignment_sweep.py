"""Sweep of the MinHash alignment check's thresholds on the dev data (issue #3, false matches).

For every document that reaches the set thresholds (similarity >= 0.5 or containment >= 0.4)
against an index of all dev OpenAI texts, the in-order alignment with its best candidate is
measured with detectors.minhash.aligned_overlap on the whole document (the index aligns only
the stretch around the shared shingles) for runs of 2, 3 and 4 units. Documents: every dev
human text (false matches) and a fixed sample of 2,000 OpenAI texts after each edit of
tests/test_minhash_quality.py (recall).
Prints, per (min_run, coverage, purity), the human matches and the recall per edit, plus the
cost of scoring with the check on a corpus where every document is a copy.

Run: ``.venv/bin/python -m bench.minhash_alignment_sweep`` (~2 minutes; needs ../shared/data).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import time

import numpy as np

from bench.bench_minhash import DEV, pin_to_one_core
from detectors.minhash import (
    MATCH_CONTAINMENT_THRESHOLD,
    MATCH_SIMILARITY_THRESHOLD,
    ReferenceIndex,
    aligned_overlap,
)
from detectors.shingles import text_units
from tests.test_minhash_quality import change_surface, delete_words, make_embedder, truncate

MIN_RUNS = (2, 3, 4)
COVERAGES = (0.5, 0.6, 0.75, 0.85)
PURITIES = (0.0, 0.85, 0.9, 0.93, 0.95, 0.97)


def load_dev_texts(label: str) -> list[dict]:
    with (DEV / f"{label}.jsonl").open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def alignment_rows(doc: str, ref: str) -> dict[int, tuple[float, float]]:
    """(coverage, purity) per minimum run length, on the whole document (no stretch cut)."""
    doc_units, ref_units = text_units(doc), text_units(ref)
    return {min_run: aligned_overlap(doc_units, ref_units, min_run) for min_run in MIN_RUNS}


def _passes(row: dict | None, rule: tuple[int, float, float]) -> bool:
    min_run, coverage, purity = rule
    return row is not None and row[min_run][0] >= coverage and row[min_run][1] >= purity


def best_candidate(index: ReferenceIndex, texts: list[str]) -> list[str | None]:
    """The reference each text reaches the set thresholds with (best containment, then similarity)."""
    scores = index.score(texts)
    out: list[str | None] = []
    for i in range(len(texts)):
        reached = scores.containment[i] >= MATCH_CONTAINMENT_THRESHOLD
        if reached or scores.similarity[i] >= MATCH_SIMILARITY_THRESHOLD:
            out.append(scores.reference_id[i] or "?")
        else:
            out.append(None)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sample", type=int, default=2000)
    args = parser.parse_args()
    openai, human = load_dev_texts("openai"), load_dev_texts("human")
    index = ReferenceIndex().fit([r["text"] for r in openai], [r["id"] for r in openai])
    by_id = {r["id"]: r["text"] for r in openai}

    # Candidates that reach the set thresholds, with the reference the index would try first.
    # (score() itself applies the check; re-derive the first candidate without it.)
    import detectors.minhash as minhash_module

    saved = minhash_module.MATCH_ALIGNED_COVERAGE, minhash_module.MATCH_ALIGNED_PURITY
    minhash_module.MATCH_ALIGNED_COVERAGE = minhash_module.MATCH_ALIGNED_PURITY = 0.0
    try:
        human_texts = [h["text"] for h in human]
        human_refs = best_candidate(index, human_texts)
        sample = random.Random(0).sample(openai, args.sample)
        edits = {
            "10% deletions": delete_words,
            "surface": change_surface,
            "first 60%": truncate,
            "embedded 20-30%": make_embedder(human_texts),
        }
        edited = {}
        for seed, (name, edit) in enumerate(edits.items()):
            rng = random.Random(100 + seed)
            texts = [edit(r["text"], rng) for r in sample]
            edited[name] = (texts, best_candidate(index, texts))
    finally:
        minhash_module.MATCH_ALIGNED_COVERAGE, minhash_module.MATCH_ALIGNED_PURITY = saved

    human_rows = [alignment_rows(t, by_id[r]) for t, r in zip(human_texts, human_refs, strict=True) if r]
    edit_rows = {
        name: [alignment_rows(t, by_id[r]) if r else None for t, r in zip(texts, refs, strict=True)]
        for name, (texts, refs) in edited.items()
    }
    print(f"index: {len(index)} OpenAI texts; human texts reaching the set thresholds: {len(human_rows)} "
          f"of {len(human)}; recall sample {args.sample} per edit\n")
    print("| min run | coverage >= | purity >= | human matches | rate | " + " | ".join(edits) + " |")
    print("|---:|---:|---:|---:|---:|" + "---:|" * len(edits))
    for min_run in MIN_RUNS:
        for coverage in COVERAGES:
            for purity in PURITIES:
                rule = (min_run, coverage, purity)
                n_human = sum(_passes(r, rule) for r in human_rows)
                recalls = [np.mean([_passes(r, rule) for r in edit_rows[name]]) for name in edits]
                print(f"| {min_run} | {coverage} | {purity} | {n_human} | {n_human / len(human):.3%} | "
                      + " | ".join(f"{x:.4f}" for x in recalls) + " |")

    # Cost of the check where it runs for every document: a corpus made only of copies.
    pin_to_one_core()
    copies = edited["10% deletions"][0]
    started = time.perf_counter()
    index.score(copies)
    with_check = time.perf_counter() - started
    started = time.perf_counter()
    index.score(human_texts[: len(copies)])
    ordinary = time.perf_counter() - started
    print(f"\nscore(): {len(copies) / with_check:,.0f} docs/s on copies (every one aligned), "
          f"{len(copies) / ordinary:,.0f} docs/s on human texts (load {os.getloadavg()[0]:.1f})")


if __name__ == "__main__":
    main()
