"""MinHash match rule: recall of edited teacher copies versus raw false matches on human text.

Run: ``.venv/bin/python -m bench.minhash_threshold_sweep`` (about 20 s; ``--details`` also prints
every human match under the rule in force).

Same set-up as ``tests/test_minhash_quality.py``: the index holds every dev OpenAI text; recall
is measured on the same 2,000-text sample after the same four edits (same seeds); false matches
on all 12,212 dev human texts, *raw* (a human text that a teacher text rewrote counts too).

For every scored document the script keeps every LSH candidate pair with its exact counts:
``shared`` (shingles in common), ``n_ref`` (reference shingles), ``n_doc`` (document shingles).
From these, ``similarity = shared / (n_doc + n_ref - shared)``, ``containment = shared / n_ref``
and ``doc_share = shared / n_doc`` (the share of the document made of the reference). A rule is
a predicate on a pair; a document matches when some pair satisfies it, and the reported
reference is the satisfying pair of highest (containment, similarity), close to what
``ReferenceIndex.score`` does (for the rule in force this reproduces the test's table exactly).
An edited copy is recalled when that reference is the original (or a
shingle-for-shingle identical duplicate of it).

Printed: the score distributions of the human matches and of the edited copies under the rule
in force (``detectors.minhash.is_match``); the frontier: for each rule family the rule with the
fewest raw human matches whose four recalls all stay >= 0.95, plus the exact optimum over any
rule monotone in (containment, doc_share, shared) (:func:`monotone_bound`); then the best
worst-edit recall among swept rules with at most k raw human matches; and whether the target
(raw <= 0.1% with every recall >= 0.95) is met.
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import json
import os
import random
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from detectors import minhash
from detectors.minhash import ReferenceIndex
from detectors.shingles import shingle_hashes

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from tests.test_minhash_quality import (  # noqa: E402  (the test's edits, so both measure the same)
    RECALL_SAMPLE,
    change_surface,
    delete_words,
    make_embedder,
    truncate,
)

SHARED = Path(os.environ.get("DISTILL_AUDIT_SHARED", ROOT.parent / "shared"))
DEV = SHARED / "data" / "dev"
RECALL_TARGET = 0.95
RAW_TARGET = 0.001
EDITS = ["deletions", "surface", "truncated", "embedded"]


def load(label: str) -> list[dict]:
    with (DEV / f"{label}.jsonl").open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


@dataclass
class Pairs:
    """All candidate pairs of one scored set: parallel arrays, one row per (document, reference)."""

    doc: np.ndarray  # document position
    row: np.ndarray  # reference row in the index
    shared: np.ndarray
    n_ref: np.ndarray
    n_doc: np.ndarray
    n_docs: int

    @property
    def similarity(self) -> np.ndarray:
        return self.shared / (self.n_doc + self.n_ref - self.shared)

    @property
    def containment(self) -> np.ndarray:
        return self.shared / self.n_ref

    @property
    def doc_share(self) -> np.ndarray:
        return self.shared / self.n_doc


def candidate_pairs(index: ReferenceIndex, texts: list[str]) -> Pairs:
    """Every LSH candidate of every text with exact shared / reference / document shingle counts."""
    cols: dict[str, list[int]] = {k: [] for k in ("doc", "row", "shared", "n_ref", "n_doc")}
    shingles, offsets_ref = index._shingles, index._offsets
    params = index.params
    for start in range(0, len(texts), 1024):
        chunk = texts[start : start + 1024]
        hashes, offsets = shingle_hashes(chunk, params.shingle, params.ngram)
        for i, rows in enumerate(index._candidates(hashes, offsets)):
            doc = np.unique(hashes[offsets[i] : offsets[i + 1]])
            for row in sorted(rows):
                ref = shingles[offsets_ref[row] : offsets_ref[row + 1]]
                shared = int(np.intersect1d(doc, ref, assume_unique=True).size)
                if shared:
                    for key, value in zip(cols, (start + i, row, shared, len(ref), len(doc)), strict=True):
                        cols[key].append(value)
    arrays = {k: np.asarray(v, dtype=np.int64) for k, v in cols.items()}
    return Pairs(**arrays, n_docs=len(texts))


def build() -> tuple[dict[str, Pairs], dict[str, np.ndarray], list[dict], ReferenceIndex]:
    """Candidate pairs of the human texts and of the four edited samples, and the index."""
    openai, human = load("openai"), load("human")
    index = ReferenceIndex().fit([r["text"] for r in openai], [r["id"] for r in openai])
    row_of = {rid: i for i, rid in enumerate(index.reference_ids)}
    # Rows with identical shingle sets share a group: any of them is the right answer.
    digests: dict[bytes, int] = {}
    group = np.array(
        [
            digests.setdefault(
                hashlib.sha1(index._shingles[index._offsets[r] : index._offsets[r + 1]].tobytes()).digest(),
                len(digests),
            )
            for r in range(len(index))
        ]
    )
    sample = random.Random(0).sample([r for r in openai if r["id"] in row_of], RECALL_SAMPLE)
    expected = np.array([group[row_of[r["id"]]] for r in sample])
    edits: dict[str, Callable] = {
        "deletions": delete_words,
        "surface": change_surface,
        "truncated": truncate,
        "embedded": make_embedder([h["text"] for h in human]),
    }
    pairs = {}
    for seed, (name, edit) in enumerate(edits.items()):
        rng = random.Random(100 + seed)
        pairs[name] = candidate_pairs(index, [edit(r["text"], rng) for r in sample])
    pairs["human"] = candidate_pairs(index, [h["text"] for h in human])
    return pairs, {"group": group, "expected": expected}, human, index


Rule = Callable[[Pairs], np.ndarray]


def chosen(pairs: Pairs, rule: Rule) -> np.ndarray:
    """Per document: the reference row reported under ``rule`` (-1: no match)."""
    ok = rule(pairs)
    out = np.full(pairs.n_docs, -1, dtype=np.int64)
    if not ok.any():
        return out
    doc, row = pairs.doc[ok], pairs.row[ok]
    cont, sim = pairs.containment[ok], pairs.similarity[ok]
    order = np.lexsort((-sim, -cont, doc))  # by doc, then best containment, then similarity
    doc, row = doc[order], row[order]
    first = np.r_[True, doc[1:] != doc[:-1]]
    out[doc[first]] = row[first]
    return out


def evaluate(pairs: dict[str, Pairs], truth: dict[str, np.ndarray], rule: Rule) -> tuple[list[float], int]:
    recalls = []
    for name in EDITS:
        rows = chosen(pairs[name], rule)
        hit = (rows >= 0) & (truth["group"][np.maximum(rows, 0)] == truth["expected"])
        recalls.append(float(hit.mean()))
    human = int((chosen(pairs["human"], rule) >= 0).sum())
    return recalls, human


def rule_current(p: Pairs) -> np.ndarray:
    return (p.similarity >= minhash.MATCH_SIMILARITY_THRESHOLD) | (
        (p.containment >= minhash.MATCH_CONTAINMENT_THRESHOLD)
        & (p.shared >= minhash.MATCH_MIN_SHARED_SHINGLES)
    )


def family_base(sim: float, cont: float, min_shared: int) -> Rule:
    """similarity >= sim, or containment >= cont with >= min_shared shared shingles."""
    return lambda p: (p.similarity >= sim) | ((p.containment >= cont) & (p.shared >= min_shared))


def family_long_ref(sim: float, cont: float, min_shared: int, long_ref: int, cont_long: float) -> Rule:
    """As base, but references of >= long_ref shingles need containment >= cont_long."""

    def rule(p: Pairs) -> np.ndarray:
        need = np.where(p.n_ref >= long_ref, cont_long, cont)
        return (p.similarity >= sim) | ((p.containment >= need) & (p.shared >= min_shared))

    return rule


def family_doc_share(sim: float, cont: float, min_shared: int, share: float, cont_high: float) -> Rule:
    """As base, but containment below cont_high also needs doc_share >= share (whole-document copies)."""

    def rule(p: Pairs) -> np.ndarray:
        contained = (p.containment >= cont_high) | ((p.containment >= cont) & (p.doc_share >= share))
        return (p.similarity >= sim) | (contained & (p.shared >= min_shared))

    return rule


def describe(label: str, p: Pairs, rows: np.ndarray) -> None:
    """Quantiles of the pair reported for each matched document."""
    sel = rows >= 0
    if not sel.any():
        print(f"{label}: no matches")
        return
    key = {(d, r) for d, r in zip(np.flatnonzero(sel), rows[sel], strict=True)}
    mask = np.array([(d, r) in key for d, r in zip(p.doc.tolist(), p.row.tolist(), strict=True)])
    qs = [0.0, 0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 1.0]
    print(f"{label}: {int(sel.sum())} matched documents; quantiles {qs}")
    for name, values in (
        ("similarity", p.similarity[mask]),
        ("containment", p.containment[mask]),
        ("doc_share", p.doc_share[mask]),
        ("shared", p.shared[mask]),
        ("n_ref", p.n_ref[mask]),
        ("n_doc", p.n_doc[mask]),
    ):
        print(f"  {name:<12}" + " ".join(f"{v:8.3f}" for v in np.quantile(values, qs)))


def rule_families() -> dict[str, list[tuple[str, Rule]]]:
    """The rule families swept (each rule named by its thresholds)."""
    families: dict[str, list[tuple[str, Rule]]] = {"base": [], "long_ref": [], "doc_share": []}
    for sim, cont, ms in itertools.product(
        (0.5, 0.6, 0.7, 0.8), (0.4, 0.45, 0.5, 0.55, 0.6, 0.7), (8, 12, 16, 24, 32)
    ):
        families["base"].append((f"sim>={sim} or cont>={cont} & shared>={ms}", family_base(sim, cont, ms)))
    for sim, cont, ms, long_ref, cont_long in itertools.product(
        (0.5, 0.6, 0.7), (0.4, 0.45, 0.5), (8, 16), (50, 100, 200, 300), (0.5, 0.55, 0.6, 0.7)
    ):
        if cont_long > cont:
            families["long_ref"].append(
                (
                    f"sim>={sim} or cont>={cont} (>={cont_long} if n_ref>={long_ref}) & shared>={ms}",
                    family_long_ref(sim, cont, ms, long_ref, cont_long),
                )
            )
    for sim, cont, ms, share, cont_high in itertools.product(
        (0.5, 0.6, 0.7, 0.8),
        (0.4, 0.45, 0.5, 0.55),
        (8, 12, 16),
        (0.5, 0.55, 0.6, 0.65, 0.7, 0.8),
        (0.7, 0.8, 0.9),
    ):
        families["doc_share"].append(
            (
                f"sim>={sim} or (cont>={cont_high} or cont>={cont} & doc_share>={share}) & shared>={ms}",
                family_doc_share(sim, cont, ms, share, cont_high),
            )
        )
    return families


def monotone_bound(
    pairs: dict[str, Pairs], truth: dict[str, np.ndarray], per_length_bin: bool
) -> tuple[int, list[float]]:
    """Fewest raw human matches that any rule monotone in (containment, doc_share, shared) can keep.

    Such a rule (more overlap never un-matches a pair; similarity is itself monotone in
    containment and doc_share) can drop a human match only by also dropping every recalled
    copy whose pair is dominated by it in all three measures; with ``per_length_bin``, a
    separate monotone rule per reference-length bin (n_ref < 20, 40, 80, 160, 320, more), so
    only copies in the same bin are lost. An exact search (depth-first, bit sets) finds the
    largest set of human matches that can be dropped together while every recall stays
    >= 0.95. The rule it describes is a staircase fitted to these very points, so this is an
    optimistic bound on what any threshold rule on these measures can do, not a usable rule.
    It keeps each document's reported pair as under the rule in force.
    """
    bins = np.array([0, 20, 40, 80, 160, 320, np.iinfo(np.int64).max])

    def recalled_features(name: str) -> np.ndarray:
        p, rows = pairs[name], chosen(pairs[name], rule_current)
        docs = np.flatnonzero(rows >= 0)
        if name != "human":
            docs = docs[truth["group"][rows[docs]] == truth["expected"][docs]]
        position = {(d, r): i for i, (d, r) in enumerate(zip(p.doc.tolist(), p.row.tolist(), strict=True))}
        at = np.array([position[(d, rows[d])] for d in docs.tolist()], dtype=np.int64)
        return np.column_stack(
            [p.containment[at], p.doc_share[at], p.shared[at], np.digitize(p.n_ref[at], bins)]
        )

    humans = recalled_features("human")
    copies = {name: recalled_features(name) for name in EDITS}
    n_sample = pairs[EDITS[0]].n_docs
    budget = [len(copies[name]) - int(np.ceil(RECALL_TARGET * n_sample)) for name in EDITS]
    lost_by = []  # per human match: one bit set per edit of the copies dropping it would lose
    for h in humans:
        bits = []
        for name in EDITS:
            mask = np.all(copies[name][:, :3] <= h[:3] + 1e-12, axis=1)
            if per_length_bin:
                mask &= copies[name][:, 3] == h[3]
            bits.append(sum(1 << int(i) for i in np.flatnonzero(mask)))
        lost_by.append(bits)

    def feasible(bits: list[int]) -> bool:
        return all(b.bit_count() <= limit for b, limit in zip(bits, budget, strict=True))

    free = [k for k, bits in enumerate(lost_by) if not any(bits)]
    options = sorted(
        (k for k, bits in enumerate(lost_by) if any(bits) and feasible(bits)),
        key=lambda k: sum(b.bit_count() for b in lost_by[k]),
    )
    best: list = [0, [0] * len(EDITS)]

    def search(start: int, bits: list[int], count: int) -> None:
        if count > best[0]:
            best[:] = [count, bits]
        for j in range(start, len(options)):
            if count + len(options) - j <= best[0]:
                return
            merged = [a | b for a, b in zip(bits, lost_by[options[j]], strict=True)]
            if feasible(merged):
                search(j + 1, merged, count + 1)

    search(0, [0] * len(EDITS), 0)
    recalls = [
        (len(copies[name]) - lost.bit_count()) / n_sample for name, lost in zip(EDITS, best[1], strict=True)
    ]
    return len(humans) - len(free) - best[0], recalls


def sweep(
    pairs: dict[str, Pairs], truth: dict[str, np.ndarray], limits: list[int]
) -> tuple[list[tuple], list[tuple]]:
    """Best feasible rule per family, and the best min-recall reachable at a given human count."""
    results = []
    for family, rules in rule_families().items():
        for name, rule in rules:
            results.append((family, name, *evaluate(pairs, truth, rule)))
    best_per_family = []
    for family in dict.fromkeys(r[0] for r in results):
        feasible = [r for r in results if r[0] == family and min(r[2]) >= RECALL_TARGET]
        if feasible:
            best_per_family.append(min(feasible, key=lambda r: (r[3], -min(r[2]))))
    # Frontier the other way round: the best worst-edit recall among rules with <= k human matches.
    frontier = []
    for limit in limits:
        within = [r for r in results if r[3] <= limit]
        if within:
            frontier.append((limit, max(within, key=lambda r: (min(r[2]), -r[3]))))
    return best_per_family, frontier


def _row(name: str, recalls: list[float], raw: int, n_human: int) -> str:
    return f"| {name} | " + " | ".join(f"{r:.4f}" for r in recalls) + f" | {raw} | {raw / n_human:.2%} |"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--details", action="store_true", help="print every human match under the rule in force"
    )
    args = parser.parse_args(argv)
    pairs, truth, human, index = build()
    n_human = pairs["human"].n_docs

    current = {name: chosen(pairs[name], rule_current) for name in [*EDITS, "human"]}
    describe("human texts matched (rule in force)", pairs["human"], current["human"])
    for name in EDITS:
        describe(f"edited copies recalled: {name}", pairs[name], current[name])
    if args.details:
        p = pairs["human"]
        ids = index.reference_ids
        for d in np.flatnonzero(current["human"] >= 0):
            m = (p.doc == d) & (p.row == current["human"][d])
            print(
                f"  {human[d]['id']:<40} ~ {ids[current['human'][d]]:<40} sim {p.similarity[m][0]:.3f} "
                f"cont {p.containment[m][0]:.3f} doc_share {p.doc_share[m][0]:.3f} shared {p.shared[m][0]} "
                f"n_ref {p.n_ref[m][0]} n_doc {p.n_doc[m][0]}"
            )

    recalls, raw = evaluate(pairs, truth, rule_current)
    allowed = int(RAW_TARGET * n_human)  # 12 of 12,212
    limits = sorted({raw, 40, 26, 20, 16, 14, allowed}, reverse=True)
    best_per_family, frontier = sweep(pairs, truth, limits)
    header = "| rule | " + " | ".join(EDITS) + " | human matched | raw rate |"
    rule_line = "|---" + "|---:" * (len(EDITS) + 2) + "|"
    print("\nBest rule of each family with every recall >= 0.95 (fewest raw human matches):\n")
    print(header + "\n" + rule_line)
    in_force = (
        f"in force: sim>={minhash.MATCH_SIMILARITY_THRESHOLD} or cont>={minhash.MATCH_CONTAINMENT_THRESHOLD}"
        f" & shared>={minhash.MATCH_MIN_SHARED_SHINGLES}"
    )
    print(_row(in_force, recalls, raw, n_human))
    for family, name, recs, matched in best_per_family:
        print(_row(f"{family}: {name}", recs, matched, n_human))
    for per_bin in (False, True):
        matched, recs = monotone_bound(pairs, truth, per_bin)
        label = "bound: best rule monotone in (cont, doc_share, shared)" + (
            ", per n_ref bin" if per_bin else ""
        )
        print(_row(label, recs, matched, n_human))
    print("\nBest worst-edit recall among swept rules with at most k raw human matches:\n")
    print("| k | rule | " + " | ".join(EDITS) + " | human matched | raw rate |")
    print("|---:|---" + "|---:" * (len(EDITS) + 2) + "|")
    for limit, (family, name, recs, matched) in frontier:
        print(f"| {limit} " + _row(f"{family}: {name}", recs, matched, n_human))
    met = [r for r in best_per_family if r[3] <= allowed]
    print(
        f"\nTarget: raw human matches <= {allowed} ({RAW_TARGET:.1%}) with every recall >= {RECALL_TARGET}: "
        + (f"met by {met[0][0]}: {met[0][1]}" if met else "no swept rule meets it")
    )


if __name__ == "__main__":
    main()
