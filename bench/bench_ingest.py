"""Ingest throughput and memory on generated JSONL (a benchmark, not a test).

Generates N JSONL documents of about 2 KB each (deterministic synthetic text with url,
date and source fields) in a temporary directory, runs :func:`pipeline.ingest.ingest` on
them in a fresh subprocess per size, and prints docs/s, MB/s and the child's peak RSS.
Several sizes (e.g. ``--docs 20000 200000``) show whether memory stays flat as the input
grows 10x. Figures are written to ``bench/results_ingest.md`` with the command used.

    .venv/bin/python -m bench.bench_ingest                       # 200,000 docs (~400 MB)
    .venv/bin/python -m bench.bench_ingest --docs 20000 200000   # 10x input, compare RSS
    .venv/bin/python -m bench.bench_ingest --docs 20000 --profile
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).with_name("results_ingest.md")
_WORDS = [
    "the", "of", "and", "to", "in", "a", "is", "that", "for", "it", "as", "was", "with", "be",
    "by", "on", "not", "he", "this", "are", "or", "his", "from", "at", "which", "but", "have",
    "an", "they", "you", "were", "her", "she", "there", "been", "one", "all", "we", "their", "has",
    "would", "when", "if", "so", "no", "will", "more", "can", "out", "up", "data", "model",
    "crawl", "page", "text", "answer", "question", "system", "people", "time", "year", "work",
    "world", "life", "day", "state", "school", "report", "study", "result", "number", "group",
    "problem", "fact", "water", "history", "music", "market", "policy", "energy", "health", "city",
]


def generate(path: Path, n_docs: int, doc_chars: int = 2000, seed: int = 0) -> int:
    """Write ``n_docs`` JSONL records of about ``doc_chars`` characters; return the file size."""
    rng = np.random.default_rng(seed)
    vocab = np.array(_WORDS + [f"w{i}" for i in range(5000)])
    words_per_doc = max(1, doc_chars // 6)
    with path.open("w", encoding="utf-8") as handle:
        for start in range(0, n_docs, 2000):
            count = min(2000, n_docs - start)
            ids = rng.integers(0, len(vocab), size=(count, words_per_doc))
            for offset, row in enumerate(vocab[ids]):
                i = start + offset
                text = " ".join(row)
                record = {
                    "id": f"doc-{i}",
                    "url": f"https://www.site{i % 97}.example.co.uk/page/{i}",
                    "date": f"2024-{1 + i % 12:02d}-{1 + i % 28:02d}T12:00:00Z",
                    "source": f"crawl-{i % 4}",
                    "text": f"Document {i}. {text[:doc_chars]}",
                }
                handle.write(json.dumps(record) + "\n")
    return path.stat().st_size


def _child(input_path: str, out: str, profile: bool) -> None:
    """Run in the subprocess: ingest, then print figures as JSON on the last line."""
    import resource

    from pipeline.ingest import ingest

    before = resource.getrusage(resource.RUSAGE_SELF)
    cpu_before = before.ru_utime + before.ru_stime  # imports are not ingest work
    started = time.perf_counter()
    if profile:
        import cProfile
        import pstats

        profiler = cProfile.Profile()
        manifest = profiler.runcall(ingest, [input_path], out)
        pstats.Stats(profiler, stream=sys.stderr).sort_stats("cumulative").print_stats(25)
    else:
        manifest = ingest([input_path], out)
    seconds = time.perf_counter() - started
    usage = resource.getrusage(resource.RUSAGE_SELF)
    print(json.dumps({"seconds": seconds, "cpu_seconds": usage.ru_utime + usage.ru_stime - cpu_before,
                      "peak_rss_mb": usage.ru_maxrss / 1024, "counts": manifest["counts"],
                      "timings": manifest["timings"]}))


def run_one(n_docs: int, workdir: Path, profile: bool = False) -> dict:
    input_path = workdir / f"docs-{n_docs}.jsonl"
    t0 = time.perf_counter()
    size = generate(input_path, n_docs)
    generated = time.perf_counter() - t0
    out = workdir / f"corpus-{n_docs}"
    cmd = [sys.executable, "-m", "bench.bench_ingest", "--child", str(input_path), str(out)]
    if profile:
        cmd.append("--profile")
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False,
                          cwd=Path(__file__).resolve().parents[1])
    if proc.returncode != 0:
        raise SystemExit(f"ingest child failed:\n{proc.stderr[-3000:]}")
    if profile:
        print(proc.stderr[-6000:])
    figures = json.loads(proc.stdout.strip().splitlines()[-1])
    corpus_bytes = sum(p.stat().st_size for p in (out / "docs").rglob("*.parquet"))
    input_path.unlink()
    shutil.rmtree(out, ignore_errors=True)
    counts = figures["counts"]
    assert counts["records_read"] == counts["written"] + counts["exact_duplicates"] + counts["rejected"]
    return {
        "docs": n_docs,
        "input_mb": size / 1e6,
        "generate_s": generated,
        "ingest_s": figures["seconds"],
        "read_s": figures["timings"]["read_seconds"],
        "merge_s": figures["timings"]["finalize_seconds"],
        "docs_per_s": counts["records_read"] / figures["seconds"],
        "docs_per_cpu_s": counts["records_read"] / figures["cpu_seconds"],
        "mb_per_s": size / 1e6 / figures["seconds"],
        "peak_rss_mb": figures["peak_rss_mb"],
        "corpus_mb": corpus_bytes / 1e6,
        "written": counts["written"],
    }


def _table(rows: list[dict]) -> str:
    lines = [
        "| docs | input MB | ingest s (read + merge) | docs/s (wall) | docs per CPU-s | MB/s (wall) "
        "| peak RSS MB | corpus MB (zstd) |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['docs']:,} | {r['input_mb']:,.0f} "
            f"| {r['ingest_s']:.1f} ({r['read_s']:.1f} + {r['merge_s']:.1f}) "
            f"| {r['docs_per_s']:,.0f} | {r['docs_per_cpu_s']:,.0f} | {r['mb_per_s']:.1f} "
            f"| {r['peak_rss_mb']:.0f} "
            f"| {r['corpus_mb']:,.0f} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--docs", type=int, nargs="+", default=[200_000], help="document counts to run")
    parser.add_argument("--profile", action="store_true", help="print a cProfile of the ingest child")
    parser.add_argument("--workdir", type=Path, default=None, help="where to generate (default: a temp dir)")
    parser.add_argument("--no-write", action="store_true", help=f"do not update {RESULTS.name}")
    parser.add_argument("--child", nargs=2, metavar=("INPUT", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        _child(args.child[0], args.child[1], args.profile)
        return
    workdir = Path(tempfile.mkdtemp(prefix="bench-ingest-", dir=args.workdir))
    try:
        rows = []
        for n_docs in args.docs:
            row = run_one(n_docs, workdir, args.profile)
            rows.append(row)
            print(_table([row]).splitlines()[-1], flush=True)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    table = _table(rows)
    print(table)
    if not args.no_write:
        command = ".venv/bin/python -m bench.bench_ingest " + " ".join(
            a for a in (argv if argv is not None else sys.argv[1:])
        )
        load = os.getloadavg()
        RESULTS.write_text(
            "# Ingest benchmark (JSONL, ~2 KB docs)\n\n"
            f"Command: `{command.strip()}`  \n"
            f"Machine: {os.cpu_count()} cores, Python {platform.python_version()}, load average at the end "
            f"{load[0]:.1f} / {load[1]:.1f} (shared with other jobs, so figures are noisy).  \n"
            "One ingest subprocess per size; peak RSS is the child's `ru_maxrss`.\n\n"
            f"{table}\n"
        )


if __name__ == "__main__":
    main()
