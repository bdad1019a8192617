"""MinHash benchmark: signatures docs/s side by side, LSH insert/query and memory of a 100k index.

Run: ``.venv/bin/python -m bench.bench_minhash`` (``--quick`` for a smoke run).

Corpus: the dev OpenAI + other-LLM answers (../shared/data/dev), repeated in file order to
20,000 texts; word 5-grams, 128 permutations. Every contender is pinned to one core
(``os.sched_setaffinity``) and the rounds are interleaved; the median round is printed. The
machine is shared with other jobs, so absolute figures are noisy; compare within one run.

Contenders (all from raw text, tokenising included):
- datasketch naive: ``MinHash()`` per doc (default SHA-1 hash), ``update()`` per shingle string;
- datasketch update_batch: ``MinHash(hashfunc=xxh32 of the shingle string)``, one ``update_batch``;
- ours: :func:`detectors.minhash.minhash_signatures` (bit-identical to datasketch with
  :func:`detectors.shingles.shingle_hash`);
- rensa (bench extra only): ``RMinHash.digest_matrix_from_token_sets`` over shingle strings
  (not datasketch-compatible);
- tokenise + shingle strings only (the Python floor every string-based contender pays).

The 100k-text LSH index is built from pseudo-documents of 8-12 random real sentences (distinct
texts, so buckets are realistic), and queried with 5,000 texts (half indexed texts cut to 70%,
half human texts).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import random
import re
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import psutil
import xxhash
from datasketch import LeanMinHash, MinHash, MinHashLSH

from detectors.minhash import MinHashParams, ReferenceIndex, cluster_documents, minhash_signatures
from detectors.shingles import text_units

SHARED = Path(os.environ.get("DISTILL_AUDIT_SHARED", Path(__file__).resolve().parents[2] / "shared"))
DEV = SHARED / "data" / "dev"
NGRAM = 5


def load_texts(label: str) -> list[str]:
    with (DEV / f"{label}.jsonl").open(encoding="utf-8") as handle:
        return [json.loads(line)["text"] for line in handle if line.strip()]


def shingle_strings(text: str) -> list[str]:
    units = text_units(text)
    if len(units) < NGRAM:
        return []
    return [" ".join(units[i : i + NGRAM]) for i in range(len(units) - NGRAM + 1)]


def xxh32_string(shingle: str) -> int:
    return xxhash.xxh32_intdigest(shingle.encode("utf-8"))


def run_naive(texts: list[str]) -> None:
    for text in texts:
        minhash = MinHash(num_perm=128)
        for shingle in shingle_strings(text):
            minhash.update(shingle.encode("utf-8"))


def run_update_batch(texts: list[str]) -> None:
    for text in texts:
        minhash = MinHash(num_perm=128, hashfunc=xxh32_string)
        minhash.update_batch(shingle_strings(text))


def run_ours(texts: list[str]) -> None:
    minhash_signatures(texts, MinHashParams(num_perm=128, ngram=NGRAM))


def run_shingles_only(texts: list[str]) -> None:
    for text in texts:
        shingle_strings(text)


def make_rensa() -> Callable[[list[str]], None] | None:
    try:
        from rensa import RMinHash
    except ImportError:
        return None

    def run_rensa(texts: list[str]) -> None:
        for start in range(0, len(texts), 2048):
            token_sets = [shingle_strings(t) for t in texts[start : start + 2048]]
            RMinHash.digest_matrix_from_token_sets(token_sets, 128, 1)

    return run_rensa


def pin_to_one_core() -> int:
    core = max(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {core})
    return core


def time_rounds(contenders: dict[str, tuple[Callable, list[str]]], rounds: int) -> dict[str, float]:
    """Median docs/s per contender over interleaved rounds."""
    rates: dict[str, list[float]] = {name: [] for name in contenders}
    for _ in range(rounds):
        for name, (function, texts) in contenders.items():
            gc.collect()
            start = time.perf_counter()
            function(texts)
            rates[name].append(len(texts) / (time.perf_counter() - start))
    return {name: statistics.median(values) for name, values in rates.items()}


def pseudo_documents(n: int, seed: int) -> list[str]:
    sentences = []
    for label in ("openai", "other_llm"):
        for text in load_texts(label):
            sentences.extend(s for s in re.split(r"(?<=[.!?])\s+", text) if len(s) > 30)
    rng = random.Random(seed)
    return [" ".join(rng.sample(sentences, rng.randint(8, 12))) for _ in range(n)]


def rss_mb() -> float:
    return psutil.Process().memory_info().rss / 1e6


_LSH_DATA: dict = {}


def _in_child(function: Callable, *args):
    """Run ``function`` in a forked child so its RSS growth is measured from a clean baseline."""
    import multiprocessing

    with multiprocessing.get_context("fork").Pool(1) as pool:
        return pool.apply(function, args)


def _child_fit() -> dict:
    docs, ids, queries = _LSH_DATA["docs"], _LSH_DATA["ids"], _LSH_DATA["queries"]
    before = rss_mb()
    start = time.perf_counter()
    index = ReferenceIndex(MinHashParams()).fit(docs, ids)
    fit_seconds = time.perf_counter() - start
    grown = rss_mb() - before
    start = time.perf_counter()
    scores = index.score(queries)
    score_seconds = time.perf_counter() - start
    return {
        "bands": f"{index._lsh.b}x{index._lsh.r}",
        "fit": len(docs) / fit_seconds,
        "rss": grown,
        "score": len(queries) / score_seconds,
        "matched": sum(r is not None for r in scores.reference_id),
    }


def _child_lsh(threshold: float) -> dict:
    signatures, query_sigs = _LSH_DATA["signatures"], _LSH_DATA["query_signatures"]
    params = MinHashParams()
    before = rss_mb()
    lsh = MinHashLSH(threshold=threshold, num_perm=params.num_perm)
    start = time.perf_counter()
    with lsh.insertion_session() as session:
        for i, row in enumerate(signatures):
            session.insert(i, LeanMinHash(seed=params.seed, hashvalues=row, scheme="affine32"), False)
    insert_seconds = time.perf_counter() - start
    grown = rss_mb() - before
    queries = [LeanMinHash(seed=params.seed, hashvalues=row, scheme="affine32") for row in query_sigs]
    start = time.perf_counter()
    for minhash in queries:
        lsh.query(minhash)
    query_seconds = time.perf_counter() - start
    return {
        "bands": f"{lsh.b}x{lsh.r}",
        "insert": len(signatures) / insert_seconds,
        "query": len(queries) / query_seconds,
        "rss": grown,
    }


def _child_clusters() -> dict:
    import tempfile

    docs, ids = _LSH_DATA["docs"], _LSH_DATA["ids"]
    before = rss_mb()
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as work_dir:
        cluster_id, cluster_size = cluster_documents(ids, docs, None, MinHashParams(), Path(work_dir))
    seconds = time.perf_counter() - start
    return {
        "rate": len(docs) / seconds,
        "rss": rss_mb() - before,
        "clusters": len(set(cluster_id.tolist())),
        "largest": int(cluster_size.max()),
    }


def bench_lsh(n_index: int, n_query: int) -> list[str]:
    docs = pseudo_documents(n_index, seed=5)
    rng = random.Random(6)
    queries = [d[: int(len(d) * 0.7)] for d in rng.sample(docs, n_query // 2)]
    queries += rng.sample(load_texts("human"), n_query - len(queries))
    params = MinHashParams()
    _LSH_DATA.update(docs=docs, ids=[f"d{i}" for i in range(len(docs))], queries=queries)
    _LSH_DATA["signatures"] = minhash_signatures(docs, params).astype(np.uint32)
    _LSH_DATA["query_signatures"] = minhash_signatures(queries, params).astype(np.uint32)
    fit = _in_child(_child_fit)
    lines = [
        f"ReferenceIndex.fit, {n_index:,} texts (signatures, shingle sets, in-memory LSH {fit['bands']}): "
        f"{fit['fit']:,.0f} docs/s, RSS +{fit['rss']:,.0f} MB",
        f"ReferenceIndex.score (whole doc + windows + exact verification), {len(queries):,} queries "
        f"(half indexed texts cut to 70%, half human): {fit['score']:,.0f} docs/s, "
        f"{fit['matched']:,} matched",
    ]
    for threshold in (params.lsh_threshold, 0.5):
        lsh = _in_child(_child_lsh, threshold)
        lines.append(
            f"datasketch MinHashLSH alone, t={threshold} ({lsh['bands']}), {n_index:,} LeanMinHash: "
            f"insert {lsh['insert']:,.0f} docs/s, query {lsh['query']:,.0f} docs/s, RSS +{lsh['rss']:,.0f} MB"
        )
    clusters = _in_child(_child_clusters)
    lines.append(
        f"cluster_documents, {n_index:,} texts (band files on disk, t={params.cluster_threshold}): "
        f"{clusters['rate']:,.0f} docs/s, RSS +{clusters['rss']:,.0f} MB, {clusters['clusters']:,} clusters "
        f"(largest {clusters['largest']})"
    )
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=20_000)
    parser.add_argument("--slow-docs", type=int, default=3_000, help="docs for the two datasketch loops")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--index-docs", type=int, default=100_000)
    parser.add_argument("--quick", action="store_true", help="small smoke run")
    parser.add_argument("--lsh-only", action="store_true", help="skip the signature contenders")
    parser.add_argument("--no-lsh", action="store_true", help="skip the LSH / index / cluster part")
    args = parser.parse_args(argv)
    if args.quick:
        args.docs, args.slow_docs, args.rounds, args.index_docs = 2_000, 300, 1, 5_000
    if not DEV.is_dir():
        print(f"dev data not found at {DEV}", file=sys.stderr)
        return 2
    core = pin_to_one_core()
    answers = load_texts("openai") + load_texts("other_llm")
    texts = (answers * (args.docs // len(answers) + 1))[: args.docs]
    slow = texts[: args.slow_docs]
    mean_chars = np.mean([len(t) for t in texts])
    mean_words = np.mean([len(text_units(t)) for t in texts])
    print(
        f"# MinHash benchmark: {len(texts):,} real LLM answers (mean {mean_chars:,.0f} chars, "
        f"{mean_words:,.0f} words), word {NGRAM}-grams, 128 permutations, pinned to CPU {core}, "
        f"median of {args.rounds} interleaved rounds"
    )
    contenders: dict[str, tuple[Callable, list[str]]] = {
        "datasketch naive (MinHash() + update() per shingle, SHA-1)": (run_naive, slow),
        "datasketch update_batch (xxh32 hashfunc)": (run_update_batch, slow),
        "ours: minhash_signatures (numpy, bit-identical to datasketch)": (run_ours, texts),
        "tokenise + shingle strings only (Python floor)": (run_shingles_only, texts),
    }
    rensa = make_rensa()
    if rensa is not None:
        contenders["rensa digest_matrix_from_token_sets (not datasketch-compatible)"] = (rensa, texts)
    if args.lsh_only:
        contenders = {}
    rates = time_rounds(contenders, args.rounds) if contenders else {}
    if rates:
        naive = rates["datasketch naive (MinHash() + update() per shingle, SHA-1)"]
        print("| contender | docs | docs/s (1 core) | x naive |")
        print("|---|---:|---:|---:|")
        for name, rate in rates.items():
            print(f"| {name} | {len(contenders[name][1]):,} | {rate:,.0f} | {rate / naive:.1f} |")
        print()
    if not args.no_lsh:
        for line in bench_lsh(args.index_docs, 5_000 if not args.quick else 500):
            print(f"- {line}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
