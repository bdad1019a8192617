"""The detect step: score every corpus document with all detectors and write the scores dataset.

``detect(corpus_dir, out_dir, model_dir, index_dir)`` streams the corpus in batches and, per
document, records the classifier scores (teacher / any-LLM probabilities, best segment, share
of characters in teacher-looking segments), the MinHash match against the reference outputs,
marker names, the prompt/response layout and near-duplicate clusters (of the prompt part when
the document has one, so templated prompts cluster). ``flagged``/``flag_reasons`` record the
decision at the model's and index's operating thresholds. Output (written atomically):

- ``SCORES_DIR/source=<source>/*.parquet`` with :data:`pipeline.schema.SCORES_SCHEMA`;
- ``SCORES_DIR/_detectors.json``: model id, metrics and thresholds, index ``describe()``,
  the placement calibration (TPR on teacher text placed as in crawls) when the model
  directory holds one, the flag rule and library versions. The report step refuses to
  compare scores whose model or index differ. Its leading ``_`` makes Parquet readers skip
  it, so ``pyarrow.parquet.read_table(SCORES_DIR)`` reads the scores with the ``source``
  column. Directories written before it had that name (``detectors.json``) are still read and
  replaced.

The module also holds :func:`place_text` (teacher text placed as in crawls: whole, embedded at
20-50% of a page, truncated, short snippet) and :func:`calibrate_placement`, which measures
the detectors' outcome rates on such placements and writes ``placement.json``.
"""

from __future__ import annotations

import re
import tempfile
from collections.abc import Callable, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from pipeline.estimate import Placement, doc_strata, marked_chars
from pipeline.ingest import read_corpus
from pipeline.schema import SCORES_SCHEMA, SCORES_SCHEMA_VERSION, check_schema
from pipeline.storage import SCORES_OUTPUT, atomic_directory, atomic_write_json, check_replaceable, read_json

DETECTORS_FILE = SCORES_OUTPUT.marker  # "_detectors.json"
PLACEMENT_FILE = "placement.json"
DETECTORS_FORMAT_VERSION = "1"

FLAG_CLASSIFIER = "classifier"
FLAG_SEGMENT = "segment"
FLAG_MINHASH = "minhash_copy"
FLAG_SELF_ID = "self_id_marker"

_CORPUS_COLUMNS = ["doc_id", "source", "domain", "url", "crawl_date", "n_chars", "text"]


class DetectError(Exception):
    """The detect step cannot run on these inputs (one-line, user-facing reason)."""


# ----------------------------------------------------------------------------------------
# loading detectors


def load_detectors(
    model_dir: str | Path | None, index_dir: str | Path | None, index_storage: dict | None = None
):
    """(TeacherModel or None, ReferenceIndex or None, Placement or None).

    ``index_storage``: the LSH storage_config for the index (e.g. Redis shared by several workers;
    see :func:`detectors.minhash.redis_storage_config`); ``None`` keeps it in memory."""
    model = index = placement = None
    if model_dir is not None:
        from detectors.classifier import load_model

        model = load_model(model_dir)
        placement_path = Path(model_dir) / PLACEMENT_FILE
        if placement_path.is_file():
            placement = Placement.from_json(read_json(placement_path))
    if index_dir is not None:
        from detectors.minhash import ReferenceIndex

        index = ReferenceIndex.load(index_dir, storage_config=index_storage)
    return model, index, placement


def _minhash_thresholds() -> tuple[float, float]:
    from detectors import minhash

    return float(minhash.MATCH_SIMILARITY_THRESHOLD), float(minhash.MATCH_CONTAINMENT_THRESHOLD)


def score_texts(texts: Sequence[str], model=None, index=None) -> dict[str, Any]:
    """All per-document detector outputs for ``texts`` (no clustering, no decision)."""
    n = len(texts)
    # None: the detector did not run (null columns), as opposed to a NaN score
    out: dict[str, Any] = {
        "teacher_prob": None, "teacher_prob_max_segment": None, "teacher_fraction": None, "llm_prob": None,
        "minhash_similarity": None, "minhash_containment": None, "matched_reference_id": [None] * n,
    }
    from detectors.markers import find_markers
    from detectors.structure import detect_structure

    structures = [detect_structure(t) for t in texts]
    if model is not None and n:
        # in a prompt/response document the teacher would have written the response: score that
        scored = [s.response if s.kind != "none" and s.response else t
                  for s, t in zip(structures, texts, strict=True)]
        scores = model.score_documents(scored)
        for key in ("teacher_prob", "teacher_prob_max_segment", "teacher_fraction", "llm_prob"):
            out[key] = np.asarray(scores[key], dtype=np.float32)
        # the response's share of characters, as a share of the whole document's
        scale = np.array([len(x) / max(len(t), 1) for x, t in zip(scored, texts, strict=True)])
        out["teacher_fraction"] = (out["teacher_fraction"] * scale).astype(np.float32)
    if index is not None and n:
        # in a prompt/response document a reference counts as copied only by what the document
        # shares with it beyond its prompt: another model's answer that restates or quotes the
        # prompt is no copy of the teacher's. (Excluding shingles can only remove matches;
        # scoring the response alone also found more short human answers like a reference.)
        mh = index.score(list(texts), exclude=[s.prompt if s.kind != "none" and s.response else None
                                               for s in structures])
        out["minhash_similarity"] = np.asarray(mh.similarity, dtype=np.float32)
        out["minhash_containment"] = np.asarray(mh.containment, dtype=np.float32)
        out["matched_reference_id"] = list(mh.reference_id)
    out["markers"] = [find_markers(t) for t in texts]
    out["structure"] = [s.kind for s in structures]
    out["prompt"] = [s.prompt for s in structures]
    return out


def flag_documents(
    scores: dict[str, Any], rule: dict[str, float | None]
) -> tuple[np.ndarray, list[list[str]]]:
    """The decision per document at the operating thresholds in ``rule`` and its reasons."""
    n = len(scores["markers"])
    reasons: list[list[str]] = [[] for _ in range(n)]
    thr = rule.get("teacher_threshold")
    if thr is not None and scores["teacher_prob"] is not None:
        whole = np.nan_to_num(scores["teacher_prob"], nan=-1.0) >= thr
        seg_thr = rule.get("segment_threshold", thr)
        seg = np.nan_to_num(scores["teacher_prob_max_segment"], nan=-1.0) >= seg_thr
    else:
        whole = seg = np.zeros(n, dtype=bool)
    if rule.get("minhash_similarity_threshold") is not None and scores["minhash_similarity"] is not None:
        # The index decides what is a copy (set thresholds and the alignment check of
        # detectors.minhash): a matched reference id means a copy.
        copy = np.array([ref is not None for ref in scores["matched_reference_id"]], dtype=bool)
    else:
        copy = np.zeros(n, dtype=bool)
    for i in range(n):
        if whole[i]:
            reasons[i].append(FLAG_CLASSIFIER)
        if seg[i]:
            reasons[i].append(FLAG_SEGMENT)
        if copy[i]:
            reasons[i].append(FLAG_MINHASH)
        if any(m.startswith("self_id") for m in scores["markers"][i]):
            reasons[i].append(FLAG_SELF_ID)
    flagged = np.array([bool(r) for r in reasons], dtype=bool)
    return flagged, reasons


def _versions() -> dict[str, str]:
    out = {"scores_schema": SCORES_SCHEMA_VERSION, "detectors_format": DETECTORS_FORMAT_VERSION}
    for dist in ("distill-audit", "scikit-learn", "datasketch", "numpy", "pyarrow"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = "unknown"
    return out


def describe_detectors(model, index, placement: Placement | None) -> dict[str, Any]:
    """The _detectors.json content: everything a report needs to say what produced the scores."""
    rule: dict[str, float | None] = {"teacher_threshold": None, "llm_threshold": None,
                                     "segment_threshold": None,
                                     "minhash_similarity_threshold": None,
                                     "minhash_containment_threshold": None}
    model_info = None
    if model is not None:
        rule["teacher_threshold"] = float(model.threshold)
        rule["llm_threshold"] = float(model.llm_threshold)
        # the best of many windows needs its own threshold for the same false-positive rate
        rule["segment_threshold"] = float(getattr(model, "segment_threshold", model.threshold))
        model_info = {"model_id": model.model_id, "feature_version": model.feature_version,
                      "threshold": float(model.threshold), "llm_threshold": float(model.llm_threshold),
                      "metrics": model.metrics}
    index_info = None
    if index is not None:
        sim, cont = _minhash_thresholds()
        rule["minhash_similarity_threshold"] = sim
        rule["minhash_containment_threshold"] = cont
        index_info = index.describe()
        # Where the LSH buckets live (memory or Redis) does not change any score: keep it out of
        # the index description that a baseline's scores must match.
        index_storage = index_info.pop("storage", None)
    else:
        index_storage = None
    return {"format_version": DETECTORS_FORMAT_VERSION, "model": model_info, "index": index_info,
            "index_storage": index_storage,
            "placement": placement.to_json() if placement is not None else None,
            "flag_rule": rule, "versions": _versions()}


# ----------------------------------------------------------------------------------------
# the detect step

_FLOAT_COLUMNS = ("teacher_prob", "teacher_prob_max_segment", "teacher_fraction", "llm_prob",
                  "minhash_similarity", "minhash_containment")


def _f32(values: np.ndarray | None, n: int) -> pa.Array:
    return pa.nulls(n, pa.float32()) if values is None else pa.array(np.asarray(values, dtype=np.float32))


def detect(
    corpus_dir: str | Path,
    out_dir: str | Path,
    model_dir: str | Path | None = None,
    index_dir: str | Path | None = None,
    batch_size: int = 2048,
    progress: Callable[[int], None] | None = None,
    index_storage: dict | None = None,
) -> dict[str, Any]:
    """Score the corpus at ``corpus_dir`` and write ``out_dir`` (scores dataset + _detectors.json).

    ``progress`` (if given) is called after each batch with the number of documents scored so
    far. Returns the _detectors.json content plus ``documents`` and ``flagged`` counts.
    """
    corpus_dir = Path(corpus_dir)
    if not corpus_dir.exists():
        raise DetectError(f"corpus directory {corpus_dir} does not exist")
    if model_dir is None and index_dir is None:
        raise DetectError("nothing to detect with: give a model directory, an index directory or both")
    check_replaceable(out_dir, SCORES_OUTPUT)  # before the work, not after it
    model, index, placement = load_detectors(model_dir, index_dir, index_storage)
    info = describe_detectors(model, index, placement)
    rule = info["flag_rule"]

    from detectors.minhash import MinHashParams, TemplateClusterer

    params = index.params if index is not None and hasattr(index, "params") else MinHashParams()
    tables: list[pa.Table] = []
    done = 0
    # Clusters are built batch by batch (signatures and band keys on disk), so no text is kept.
    with tempfile.TemporaryDirectory(prefix="distill-audit-clusters-") as work, \
            TemplateClusterer(params, Path(work)) as clusterer:
        for batch in read_corpus(corpus_dir, columns=_CORPUS_COLUMNS, batch_size=batch_size):
            scored, texts, prompts = _score_batch(batch, model, index, rule)
            tables.append(scored)
            # templated dumps share their prompts: cluster on the prompt part when there is one
            clusterer.add(texts, prompts)
            done += len(texts)
            if progress is not None:
                progress(done)
        cluster_id, cluster_size = clusterer.finish()

    table = pa.concat_tables(tables) if tables else SCORES_SCHEMA.empty_table()
    if table.num_rows:
        for name, values in (("cluster_id", cluster_id), ("cluster_size", cluster_size)):
            table = table.set_column(table.schema.get_field_index(name), SCORES_SCHEMA.field(name),
                                     pa.array(values, type=pa.int64()))
    _write_scores(table, Path(out_dir), info)
    flagged_total = int(pc.sum(table.column("flagged")).as_py() or 0) if table.num_rows else 0
    return {**info, "documents": table.num_rows, "flagged": flagged_total}


def _score_batch(batch: pa.RecordBatch, model, index, rule) -> tuple[pa.Table, list[str], list[str | None]]:
    """Score one corpus batch: its scores table (clusters still null), texts and prompt parts."""
    cols = batch.to_pydict()
    texts = cols["text"]
    scores = score_texts(texts, model, index)
    flagged, reasons = flag_documents(scores, rule)
    for key in _FLOAT_COLUMNS:
        scores[key] = _f32(scores[key], len(texts))
    table = pa.table({
        "doc_id": cols["doc_id"], "source": cols["source"], "domain": cols["domain"],
        "url": cols["url"], "crawl_date": batch.column("crawl_date"), "n_chars": cols["n_chars"],
        "teacher_prob": scores["teacher_prob"],
        "teacher_prob_max_segment": scores["teacher_prob_max_segment"],
        "teacher_fraction": scores["teacher_fraction"], "llm_prob": scores["llm_prob"],
        "minhash_similarity": scores["minhash_similarity"],
        "minhash_containment": scores["minhash_containment"],
        "matched_reference_id": scores["matched_reference_id"],
        "cluster_id": pa.nulls(len(texts), pa.int64()), "cluster_size": pa.nulls(len(texts), pa.int64()),
        "markers": scores["markers"], "structure": scores["structure"],
        "flagged": flagged, "flag_reasons": reasons,
    }, schema=SCORES_SCHEMA)
    return table, texts, scores["prompt"]


def _write_scores(table: pa.Table, out_dir: Path, info: dict[str, Any]) -> None:
    """Write the dataset partitioned by source, plus _detectors.json, in one atomic directory."""
    with atomic_directory(out_dir, SCORES_OUTPUT) as tmp:
        if table.num_rows == 0:
            # keep the schema readable: one empty file in an (empty-named) partition, which like
            # every partition's files holds no ``source`` column (the folder name gives it)
            part = tmp / "source=__empty__"
            part.mkdir()
            pq.write_table(SCORES_SCHEMA.empty_table().drop_columns(["source"]), part / "part-0.parquet",
                           compression="zstd")
        else:
            table = table.sort_by([("source", "ascending"), ("doc_id", "ascending")])
            ds.write_dataset(
                table, tmp, format="parquet", schema=SCORES_SCHEMA,
                partitioning=ds.partitioning(pa.schema([SCORES_SCHEMA.field("source")]), flavor="hive"),
                basename_template="part-{i}.parquet", existing_data_behavior="overwrite_or_ignore",
                file_options=ds.ParquetFileFormat().make_write_options(compression="zstd"),
                max_rows_per_group=64_000,
            )
        atomic_write_json(tmp / DETECTORS_FILE, info)


# ----------------------------------------------------------------------------------------
# reading scores back


def read_scores(scores_dir: str | Path) -> tuple[pa.Table, dict[str, Any]]:
    """The scores table (rows in a stable order) and its _detectors.json; checks the schema.

    A scores directory of the earlier layout (``detectors.json``) reads the same way."""
    scores_dir = Path(scores_dir)
    det_path = SCORES_OUTPUT.marker_path(scores_dir)
    if det_path is None:
        raise DetectError(f"{scores_dir} is not a scores directory (no {DETECTORS_FILE} written by "
                          f"distill-audit); run detect first")
    info = read_json(det_path)
    dataset = ds.dataset(str(scores_dir), format="parquet",
                         partitioning=ds.partitioning(pa.schema([pa.field("source", pa.string())]),
                                                      flavor="hive"),
                         exclude_invalid_files=True,
                         ignore_prefixes=[".", "_", *SCORES_OUTPUT.legacy_markers])
    files = dataset.files
    if files:
        file_schema = pq.read_schema(files[0])
        found = file_schema.append(pa.field("source", pa.string())) if "source" not in file_schema.names \
            else file_schema
        check_schema(found.with_metadata(file_schema.metadata), SCORES_SCHEMA, f"scores {scores_dir}")
    table = dataset.to_table()
    if table.num_rows:
        table = table.filter(pc.not_equal(table.column("source"), "__empty__"))
    table = table.select(SCORES_SCHEMA.names).sort_by([("source", "ascending"), ("doc_id", "ascending")])
    return table, info


# ----------------------------------------------------------------------------------------
# teacher text placed as in crawls, and the placement calibration

PLACEMENT_KINDS = ("whole", "embedded", "truncated", "short")
_PROMPT_RESPONSE_TEMPLATE = "### Instruction:\n{prompt}\n\n### Response:\n{answer}"
_SENTENCE_END = re.compile(r"(?<=[.!?\u3002\uff01\uff1f])\s+|\n+")


def _cut_at_sentence(text: str, n_chars: int) -> str:
    """The prefix of ``text`` of about ``n_chars`` characters, ending at a sentence end when possible."""
    if len(text) <= n_chars:
        return text
    head = text[:n_chars]
    ends = [m.end() for m in _SENTENCE_END.finditer(head)]
    cut = ends[-1] if ends and ends[-1] > n_chars * 0.4 else n_chars
    return head[:cut].strip()


def embed_in_page(snippet: str, hosts: Sequence[str], rng: np.random.Generator,
                  share: tuple[float, float] = (0.2, 0.5)) -> tuple[str, float]:
    """Place ``snippet`` inside a human page so it makes up ``share`` of the characters.

    The page is built from ``hosts`` (human texts, used in order, cut at sentence ends) and
    the snippet goes between two paragraphs at a random position. Returns (page, actual share).
    """
    target = float(rng.uniform(*share))
    need = int(len(snippet) * (1 - target) / target)
    parts: list[str] = []
    have = 0
    for host in hosts:
        if have >= need:
            break
        piece = _cut_at_sentence(host, need - have)
        parts.append(piece)
        have += len(piece)
    paragraphs = [p for part in parts for p in part.split("\n\n") if p.strip()] or [""]
    at = int(rng.integers(0, len(paragraphs) + 1))
    page = "\n\n".join([*paragraphs[:at], snippet, *paragraphs[at:]]).strip()
    return page, len(snippet) / max(len(page), 1)


def place_text(kind: str, text: str, hosts: Sequence[str], rng: np.random.Generator) -> tuple[str, float]:
    """Teacher (or other) text ``text`` placed as ``kind`` (see :data:`PLACEMENT_KINDS`).

    Returns (document text, share of its characters that come from ``text``).
    """
    if kind == "whole":
        return text, 1.0
    if kind == "embedded":
        return embed_in_page(text, hosts, rng)
    if kind == "truncated":
        part = _cut_at_sentence(text, int(len(text) * rng.uniform(0.3, 0.7)))
        return part, 1.0
    if kind == "short":
        snippet = _cut_at_sentence(text, int(rng.integers(150, 400)))
        return embed_in_page(snippet, hosts, rng)
    raise ValueError(f"unknown placement kind {kind!r}; expected one of {', '.join(PLACEMENT_KINDS)}")


def calibrate_placement(
    model_dir: str | Path,
    teacher_texts: Sequence[str],
    host_texts: Sequence[str],
    other_llm_texts: Sequence[str] = (),
    n_per_kind: int = 300,
    seed: int = 0,
    write: bool = True,
    teacher_prompts: Sequence[str | None] = (),
) -> Placement:
    """Measure the detector outcomes on held-out teacher text placed as in crawls.

    ``teacher_texts`` and ``other_llm_texts`` must not have been used to train the model;
    ``host_texts`` are human pages. For every kind in :data:`PLACEMENT_KINDS` (and for other
    LLMs' text, whole and embedded) ``n_per_kind`` documents are built and scored; the stratum
    counts, mean scores and the share of the placed characters the detector marks are kept.
    ``teacher_prompts`` (parallel to ``teacher_texts``, None where unknown) adds the kind
    ``prompt_response``: answers that have a prompt, laid out as an instruction-format
    document, as dumps hold them (scored on the response, as :func:`detect` does).
    With ``write`` the result goes to ``MODEL_DIR/placement.json`` (atomically), where
    :func:`detect` picks it up.
    """
    from detectors.classifier import load_model

    model = load_model(model_dir)
    rng = np.random.default_rng(seed)
    kinds: dict[str, dict[str, Any]] = {}
    plans = [(k, teacher_texts) for k in PLACEMENT_KINDS]
    answers = {}  # prompt/response document -> the answer's share of its characters
    for t, p in zip(teacher_texts, teacher_prompts, strict=False):
        if p:
            doc = _PROMPT_RESPONSE_TEMPLATE.format(prompt=p, answer=t)
            answers[doc] = len(t) / max(len(doc), 1)
    prompted = list(answers)
    if prompted:
        plans.append(("prompt_response", prompted))
    if other_llm_texts:
        plans += [("other_llm_whole", other_llm_texts), ("other_llm_embedded", other_llm_texts)]
    for kind, pool in plans:
        if not pool:
            continue
        idx = rng.choice(len(pool), size=min(n_per_kind, len(pool)), replace=False)
        docs, shares = [], []
        for i in idx:
            hosts = [host_texts[j] for j in rng.choice(len(host_texts), size=4, replace=False)]
            base_kind = "whole" if kind == "prompt_response" else kind.removeprefix("other_llm_")
            doc, share = place_text(base_kind, pool[int(i)], hosts, rng)
            if kind == "prompt_response":
                share = answers[doc]
            docs.append(doc)
            shares.append(share)
        scores = score_texts(docs, model, None)
        self_id = np.array([any(m.startswith("self_id") for m in ms) for ms in scores["markers"]])
        strata = doc_strata(scores["teacher_prob"], scores["teacher_prob_max_segment"], scores["llm_prob"],
                            np.zeros(len(docs), dtype=bool), self_id, model.threshold, model.llm_threshold,
                            float(getattr(model, "segment_threshold", model.threshold)))
        counts = np.bincount(strata[strata >= 0].astype(np.int64), minlength=4)[:4]
        share_arr = np.asarray(shares)
        # marked as the estimator marks them (pipeline.estimate.marked_chars), per character
        tfrac = marked_chars(np.ones(len(docs)), scores["teacher_fraction"].astype(np.float64),
                             scores["teacher_prob"].astype(np.float64), model.threshold)
        teacher_score = np.fmax(scores["teacher_prob"], scores["teacher_prob_max_segment"]).astype(np.float64)
        kinds[kind] = {
            "n": len(docs),
            "strata": [int(c) for c in counts],
            "teacher_score_mean": float(np.nanmean(teacher_score)),
            "llm_score_mean": float(np.nanmean(scores["llm_prob"].astype(np.float64))),
            # detected characters, as a share of the placed characters (capped at all of them)
            "char_recall": float(np.mean(np.minimum(tfrac / np.maximum(share_arr, 1e-9), 1.0))),
            # the placed text's share of the document's characters (prompt/response: the answer's)
            "answer_share": float(share_arr.mean()),
            # ... and its characters per document: teacher characters = documents x this
            "teacher_chars_mean": float(np.mean([len(d) * sh for d, sh in zip(docs, shares, strict=True)])),
            # the raw scores, so the estimator can re-count the strata at its own thresholds
            "scores": {"teacher_prob": _rounded(scores["teacher_prob"]),
                       "teacher_prob_max_segment": _rounded(scores["teacher_prob_max_segment"]),
                       "llm_prob": _rounded(scores["llm_prob"]),
                       "self_id": [bool(x) for x in self_id]},
        }
    # held-out human pages: where the estimator may set lower thresholds without fitting them
    # to the very baseline that then measures their false-positive rate
    idx = rng.choice(len(host_texts), size=min(3 * n_per_kind, len(host_texts)), replace=False)
    human = score_texts([host_texts[int(i)] for i in idx], model, None)
    human_scores = {"teacher_prob": _rounded(human["teacher_prob"]),
                    "teacher_prob_max_segment": _rounded(human["teacher_prob_max_segment"])}
    teacher_kinds = [k for k in (*PLACEMENT_KINDS, "prompt_response") if k in kinds]
    placement = Placement(kinds=kinds, teacher_kinds=teacher_kinds,
                          source=f"placement: {len(teacher_texts)} held-out teacher texts, seed {seed}",
                          human_scores=human_scores)
    if write:
        atomic_write_json(Path(model_dir) / PLACEMENT_FILE, placement.to_json())
    return placement


def _rounded(values: np.ndarray) -> list[float | None]:
    return [None if not np.isfinite(v) else round(float(v), 5) for v in np.asarray(values, dtype=np.float64)]


__all__ = [
    "DETECTORS_FILE", "PLACEMENT_FILE", "PLACEMENT_KINDS", "DetectError", "calibrate_placement", "detect",
    "describe_detectors", "embed_in_page", "flag_documents", "load_detectors", "place_text", "read_scores",
    "score_texts",
]
