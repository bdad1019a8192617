"""Labelled crawl-like corpora with a known truth, built from ``../shared/data/dev``.

The dev records are split by a hash of ``prompt_id`` (else ``id``) into disjoint pools, so the
same prompt or text never serves two purposes:

- ``train``: detectors (classifier and MinHash references) are trained on it;
- ``placement``: held-out teacher/other-LLM text and human host pages for the placement
  calibration (TPR on teacher text placed as in crawls);
- ``baseline``: human pages of the same genres and domains, dated before November 2022;
- ``scenario``: the audited pages.

From the pools a fixed *universe* of candidate documents is built once (clean crawl pages,
pages carrying a teacher answer placed as in crawls, instruction dumps, human instruction-format
Q/A, pages carrying other LLMs' text, baseline pages), each with a stable ``doc_id``, ``source``
and ``domain``. A scenario for a seed is a seeded selection of universe documents plus its
truth, so the benchmark scores the universe once and reuses the scores for every seed, while
tests write a selection as a real corpus and run ``detect`` on it.

Scenarios: ``clean``, ``incidental`` (1-5% of crawl pages carry a teacher answer, mostly
embedded), ``deliberate`` (one or two dump sources, 40-80% teacher prompt/response pairs with
templated prompts), ``mixed`` (both), ``hard_negative`` (human Q/A in instruction format and
other LLMs' text, no teacher text).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa

from pipeline.detect import place_text
from pipeline.schema import CORPUS_SCHEMA, CORPUS_SCHEMA_VERSION
from pipeline.storage import CORPUS_OUTPUT, atomic_directory, atomic_write_json, write_table

#: the project root and the shared dev data (``DISTILL_AUDIT_SHARED`` overrides ``../shared``)
ROOT = Path(__file__).resolve().parents[1]
DEV_DIR = Path(os.environ.get("DISTILL_AUDIT_SHARED", ROOT.parent / "shared")) / "data" / "dev"
SCENARIOS = ("clean", "incidental", "deliberate", "mixed", "hard_negative")
POOL_SHARES = {"train": 0.40, "placement": 0.10, "baseline": 0.20, "scenario": 0.30}
CRAWL_SOURCE = "crawl"
DUMP_SOURCES = ("qa-dump", "chat-export")
HUMAN_INSTRUCT_SOURCE = "instruct-human"
DOMAIN_SIZE = 120  # large dev sources are split into sites of about this many pages
# contaminated crawl pages: mostly embedded, some whole
INCIDENTAL_KINDS = (("embedded", 0.45), ("short", 0.2), ("whole", 0.2), ("truncated", 0.15))
TEMPLATES = (
    "Below is an instruction that describes a task. Write a response that appropriately completes "
    "the request.\n\n### Instruction:\n{prompt}\n\n### Response:\n{answer}",
    "### Instruction:\nYou are a helpful assistant. Answer the user's question thoroughly.\n{prompt}\n\n"
    "### Response:\n{answer}",
)
CHAT_TEMPLATE = "User: {prompt}\n\nAssistant: {answer}"



def pool_of(record: dict) -> str:
    """The pool a dev record belongs to (stable: a hash of its prompt_id, else its id)."""
    key = record.get("prompt_id") or record["id"]
    h = int.from_bytes(hashlib.sha1(str(key).encode()).digest()[:8], "big") / 2**64
    acc = 0.0
    for name, share in POOL_SHARES.items():
        acc += share
        if h < acc:
            return name
    return "scenario"


def split_pools(records: Sequence[dict]) -> dict[str, list[dict]]:
    pools: dict[str, list[dict]] = {name: [] for name in POOL_SHARES}
    for r in records:
        pools[pool_of(r)].append(r)
    return pools


def crawl_source(dev_source: str) -> str:
    """All crawl pages form one source (a crawl snapshot); genres differ by domain."""
    return CRAWL_SOURCE


def domain_of(record: dict) -> str:
    """A site name for a human page: its dev source, big sources split into several sites."""
    src = record["source"]
    slug = re.sub(r"[^a-z0-9]+", "-", src.lower()).strip("-")
    bucket = int(hashlib.sha1(record["id"].encode()).hexdigest(), 16) % 1000
    return f"{slug}-{bucket % 8}.example" if src in _BIG_SOURCES else f"{slug}.example"


_BIG_SOURCES: set[str] = set()


@dataclass
class Universe:
    """All candidate documents (corpus rows without ``text`` duplication) and their truth."""

    docs: list[dict]  # corpus-schema rows + "kind", "teacher_chars", "pool_role"
    by_role: dict[str, list[int]] = field(default_factory=dict)

    def rows(self, idx: Sequence[int]) -> list[dict]:
        return [self.docs[i] for i in idx]


def _date(rng: np.random.Generator, start: datetime, days: int) -> datetime:
    return start + timedelta(days=int(rng.integers(0, days)))


def _row(doc_id, source, domain, text, date, kind, teacher_chars, role) -> dict:
    return {"doc_id": doc_id, "source": source, "domain": domain, "url": f"https://{domain}/{doc_id}",
            "crawl_date": date, "text": text, "n_chars": len(text),
            "content_sha1": hashlib.sha1(text.encode()).hexdigest(), "format": "jsonl", "meta": None,
            "kind": kind, "teacher_chars": int(teacher_chars), "role": role}


def build_universe(human: list[dict], teacher: list[dict], other_llm: list[dict], seed: int = 0,
                   other_llm_all_scenario: bool = False, teacher_all_scenario: bool = False) -> Universe:
    """The fixed candidate documents (see the module docstring). Deterministic for a seed.

    ``other_llm_all_scenario`` / ``teacher_all_scenario``: every other-LLM / teacher record is
    scenario text (models the detectors were not trained on, :mod:`bench.unseen_llms`), instead
    of only its scenario pool.
    """
    rng = np.random.default_rng(seed)
    sizes: dict[str, int] = {}
    for r in human:
        sizes[r["source"]] = sizes.get(r["source"], 0) + 1
    _BIG_SOURCES.clear()
    _BIG_SOURCES.update(s for s, n in sizes.items() if n > 4 * DOMAIN_SIZE)
    hp = split_pools(human)
    tp, op = ({name: [] for name in POOL_SHARES} | {"scenario": list(records)} if all_scenario
              else split_pools(records)
              for records, all_scenario in ((teacher, teacher_all_scenario),
                                            (other_llm, other_llm_all_scenario)))
    docs: list[dict] = []
    roles: dict[str, list[int]] = {}

    def add(row):
        roles.setdefault(row["role"], []).append(len(docs))
        docs.append(row)

    new = datetime(2024, 3, 1, tzinfo=UTC)
    old = datetime(2021, 1, 1, tzinfo=UTC)
    qa = lambda r: r.get("prompt") and re.search(r"so_chatgpt|dolly|self_instruct", r["source"])  # noqa: E731
    # scenario human pages: crawl pages, hosts for embedded answers, human Q/A
    scen_h = hp["scenario"]
    for r in scen_h:
        dom = domain_of(r)
        if qa(r):
            prompt = r["prompt"]
            tmpl = TEMPLATES[int(rng.integers(len(TEMPLATES)))]
            add(_row(f"hqa-{r['id']}", HUMAN_INSTRUCT_SOURCE, "instruct-human.example",
                     tmpl.format(prompt=prompt, answer=r["text"]), _date(rng, new, 180), "human_qa", 0,
                     "human_qa"))
        add(_row(f"page-{r['id']}", crawl_source(r["source"]), dom, r["text"], _date(rng, new, 180),
                 "human", 0, "page"))
    hosts = [r for r in hp["scenario"] + hp["placement"] if len(r["text"]) > 200 and not qa(r)]
    host_texts = [r["text"] for r in hosts]
    # crawl pages carrying a teacher answer placed as in crawls
    names, probs = zip(*INCIDENTAL_KINDS, strict=True)
    for r in tp["scenario"]:
        kind = str(rng.choice(names, p=probs))
        h = [int(i) for i in rng.choice(len(hosts), size=4, replace=False)]
        text, share = place_text(kind, r["text"], [host_texts[i] for i in h], rng)
        host = hosts[h[0]]
        add(_row(f"cont-{r['id']}", crawl_source(host["source"]), domain_of(host), text, _date(rng, new, 180),
                 f"teacher_{kind}", round(share * len(text)), "contaminated"))
    # instruction dumps: teacher answers to templated prompts (some copies of reference outputs)
    with_prompt = [r for r in tp["scenario"] if r.get("prompt")]
    refs = [r for r in tp["train"] if r.get("prompt")]
    copy_idx = rng.choice(len(refs), size=min(len(refs), len(with_prompt) // 4), replace=False)
    for i, r in enumerate(with_prompt + [refs[int(j)] for j in copy_idx]):
        dump = DUMP_SOURCES[i % 2]
        text = (CHAT_TEMPLATE if dump == "chat-export" else TEMPLATES[i % len(TEMPLATES)]).format(
            prompt=r["prompt"], answer=r["text"])
        burst = datetime(2024, 5, 1, tzinfo=UTC)
        add(_row(f"dump-{r['id']}", dump, f"{dump}.example", text, _date(rng, burst, 20), "teacher_dump",
                 len(r["text"]), f"dump_teacher:{dump}"))
    for r in scen_h:
        if qa(r):
            for dump in DUMP_SOURCES:
                text = (CHAT_TEMPLATE if dump == "chat-export" else TEMPLATES[0]).format(
                    prompt=r["prompt"], answer=r["text"])
                add(_row(f"dumph-{dump}-{r['id']}", dump, f"{dump}.example", text, _date(rng, new, 180),
                         "human_qa", 0, f"dump_human:{dump}"))
    # other LLMs' text: on crawl pages and as instruction-format answers
    for r in op["scenario"]:
        kind = "whole" if rng.random() < 0.5 else "embedded"
        h = [int(i) for i in rng.choice(len(hosts), size=4, replace=False)]
        text, _ = place_text(kind, r["text"], [host_texts[i] for i in h], rng)
        host = hosts[h[0]]
        add(_row(f"oth-{r['id']}", crawl_source(host["source"]), domain_of(host), text, _date(rng, new, 180),
                 f"other_{kind}", 0, "other_llm"))
        if r.get("prompt"):
            add(_row(f"othqa-{r['id']}", HUMAN_INSTRUCT_SOURCE, "instruct-human.example",
                     TEMPLATES[0].format(prompt=r["prompt"], answer=r["text"]), _date(rng, new, 180),
                     "other_qa", 0, "other_qa"))
    # the baseline: the same sites before November 2022 (human only)
    for r in hp["baseline"]:
        if qa(r):
            for dump in (*DUMP_SOURCES, HUMAN_INSTRUCT_SOURCE):
                tmpl = CHAT_TEMPLATE if dump == "chat-export" else TEMPLATES[0]
                add(_row(f"base-{dump}-{r['id']}", dump, f"{dump}.example",
                         tmpl.format(prompt=r["prompt"], answer=r["text"]), _date(rng, old, 600), "human_qa",
                         0, f"baseline_qa:{dump}"))
        # Q/A answers are crawl pages too (as on the scenario side): same genres on both sides
        add(_row(f"base-{r['id']}", crawl_source(r["source"]), domain_of(r), r["text"], _date(rng, old, 600),
                 "human", 0, "baseline"))
    return Universe(docs=docs, by_role=roles)


@dataclass
class Scenario:
    name: str
    seed: int
    corpus: list[int]  # universe indices
    baseline: list[int]
    truth: dict  # {"teacher_share", "teacher_char_share", "sources": {source: {"teacher_share", "verdict"}}}


def build_scenario(name: str, seed: int, universe: Universe, n_pages: int = 2000,
                   n_baseline: int = 1500, incidental_rate: float | None = None) -> Scenario:
    """Select a scenario's documents and baseline from the universe (deterministic per seed).

    ``incidental_rate`` fixes the share of contaminated crawl pages (default: drawn from 1-5%).
    """
    if name not in SCENARIOS:
        raise ValueError(f"unknown scenario {name!r}; choose one of {', '.join(SCENARIOS)}")
    rng = np.random.default_rng([seed, SCENARIOS.index(name)])
    roles = universe.by_role

    def pick(role: str, k: int) -> list[int]:
        pool = roles.get(role, [])
        k = min(k, len(pool))
        return [pool[int(i)] for i in rng.choice(len(pool), size=k, replace=False)] if k else []

    pages = pick("page", n_pages)
    corpus = list(pages)
    if name in ("incidental", "mixed"):
        rate = float(rng.uniform(0.01, 0.05))
        rate = rate if incidental_rate is None else incidental_rate
        k = round(rate * n_pages)
        corpus = pages[k:] + pick("contaminated", k)
    dumps: list[str] = []
    if name == "deliberate":
        dumps = list(DUMP_SOURCES[: int(rng.integers(1, 3))])
    elif name == "mixed":
        dumps = [DUMP_SOURCES[int(rng.integers(0, 2))]]
    for dump in dumps:
        size = int(rng.integers(250, 450))
        frac = float(rng.uniform(0.4, 0.8))
        k = round(size * frac)
        corpus += pick(f"dump_teacher:{dump}", k) + pick(f"dump_human:{dump}", size - k)
    if name == "hard_negative":
        corpus += pick("human_qa", 300) + pick("other_qa", 60)
        k = round(float(rng.uniform(0.02, 0.05)) * n_pages)
        corpus = corpus[k:] + pick("other_llm", k)
    baseline = pick("baseline", n_baseline)
    for src in dumps + ([HUMAN_INSTRUCT_SOURCE] if name == "hard_negative" else []):
        baseline += pick(f"baseline_qa:{src}", 150)
    corpus.sort()
    baseline.sort()
    return Scenario(name, seed, corpus, baseline, scenario_truth(universe, corpus, dumps))


def scenario_truth(universe: Universe, corpus: Sequence[int], dumps: Sequence[str]) -> dict:
    rows = universe.rows(corpus)
    n = len(rows)
    teacher = [r["kind"].startswith("teacher") for r in rows]
    chars = sum(r["n_chars"] for r in rows)
    sources: dict[str, dict] = {}
    for r, t in zip(rows, teacher, strict=True):
        s = sources.setdefault(r["source"], {"documents": 0, "teacher": 0})
        s["documents"] += 1
        s["teacher"] += int(t)
    for name, s in sources.items():
        s["teacher_share"] = s["teacher"] / s["documents"]
        if name in dumps:
            s["verdict"] = "deliberate-style"
        elif s["teacher"] > 0:
            s["verdict"] = "incidental"
        else:
            s["verdict"] = "clean"
    return {"documents": n, "teacher_share": sum(teacher) / max(n, 1),
            "teacher_char_share": sum(r["teacher_chars"] for r in rows) / max(chars, 1),
            "other_llm_share": sum(r["kind"].startswith("other") for r in rows) / max(n, 1),
            "sources": sources}


def write_corpus(rows: Sequence[dict], corpus_dir: str | Path) -> Path:
    """Write rows as a corpus directory (docs/ partitioned by source, manifest.json), atomically."""
    corpus_dir = Path(corpus_dir)
    cols = {f.name: [r[f.name] for r in rows] for f in CORPUS_SCHEMA}
    table = pa.table(cols, schema=CORPUS_SCHEMA)
    with atomic_directory(corpus_dir, CORPUS_OUTPUT) as tmp:
        sources = sorted(set(cols["source"]))
        for src in sources:
            part = table.filter(pa.compute.equal(table.column("source"), src)).drop_columns(["source"])
            part = part.replace_schema_metadata(CORPUS_SCHEMA.metadata)
            write_table(tmp / "docs" / f"source={src}" / "part-0.parquet", part)
        if not sources:
            write_table(tmp / "docs" / "part-empty.parquet", table)
        (tmp / "rejected").mkdir(exist_ok=True)
        atomic_write_json(tmp / "manifest.json", {"kind": "corpus_manifest",
                                                  "schema_version": CORPUS_SCHEMA_VERSION,
                                                  "documents": len(rows), "sources": sources,
                                                  "generator": "bench.scenarios"})
    return corpus_dir


def load_dev_records(dev_dir: str | Path) -> tuple[list[dict], list[dict], list[dict]]:
    """(human, teacher, other_llm) records of the dev split."""
    out = []
    for label in ("human", "openai", "other_llm"):
        with (Path(dev_dir) / f"{label}.jsonl").open(encoding="utf-8") as fh:
            out.append([json.loads(line) for line in fh if line.strip()])
    return out[0], out[1], out[2]
