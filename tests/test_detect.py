"""The detect step on real dev text: scores dataset, flags, _detectors.json, atomic re-runs."""

from __future__ import annotations

import json
from collections import Counter

import numpy as np
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest

from bench.scenarios import pool_of, write_corpus
from pipeline.detect import (
    DETECTORS_FILE,
    FLAG_MINHASH,
    DetectError,
    detect,
    place_text,
    read_scores,
)
from pipeline.schema import SCORES_SCHEMA
from pipeline.storage import SCORES_OUTPUT, output_kind


def _rows(records, source, prefix):
    rows = []
    for r in records:
        rows.append({"doc_id": f"{prefix}-{r['id']}", "source": source, "domain": f"{source}.example",
                     "url": None, "crawl_date": None, "text": r["text"], "n_chars": len(r["text"]),
                     "content_sha1": "0", "format": "jsonl", "meta": None})
    return rows


@pytest.fixture(scope="session")
def small_index(tmp_path_factory, dev_openai):
    """A MinHash index of a deterministic slice of the train pool's teacher outputs."""
    from detectors.minhash import ReferenceIndex

    refs = [r for r in dev_openai if pool_of(r) == "train" and len(r["text"]) > 400][::20][:300]
    index_dir = tmp_path_factory.mktemp("index") / "index"
    ReferenceIndex().fit([r["text"] for r in refs], [r["id"] for r in refs]).save(index_dir)
    return index_dir, refs


@pytest.fixture(scope="session")
def small_corpus(tmp_path_factory, small_index, dev_human, dev_openai):
    _, refs = small_index
    humans = [r for r in dev_human if pool_of(r) == "scenario"][::40][:150]
    fresh = [r for r in dev_openai if pool_of(r) == "scenario"][::40][:60]
    rows = (_rows(humans, "crawl", "h") + _rows(refs[:40], "qa-dump", "copy")
            + _rows(fresh, "qa-dump", "fresh"))
    return write_corpus(rows, tmp_path_factory.mktemp("corpus") / "corpus"), rows


def test_detect_with_an_index_flags_copies_and_writes_the_scores_schema(tmp_path, small_index, small_corpus):
    index_dir, refs = small_index
    corpus_dir, rows = small_corpus
    seen = []
    info = detect(corpus_dir, tmp_path / "scores", index_dir=index_dir, batch_size=64, progress=seen.append)
    assert info["documents"] == len(rows) and seen[-1] == len(rows) and len(seen) > 1
    table, det = read_scores(tmp_path / "scores")
    assert table.schema.names == SCORES_SCHEMA.names
    assert sorted((tmp_path / "scores").glob("source=*")) == [tmp_path / "scores" / "source=crawl",
                                                               tmp_path / "scores" / "source=qa-dump"]
    assert det["index"]["format_version"] == info["index"]["format_version"] and det["model"] is None
    ids = table.column("doc_id").to_pylist()
    reasons = table.column("flag_reasons").to_pylist()
    matched = table.column("matched_reference_id").to_pylist()
    copies = [i for i, d in enumerate(ids) if d.startswith("copy-")]
    humans = [i for i, d in enumerate(ids) if d.startswith("h-")]
    hit = sum(FLAG_MINHASH in reasons[i] and matched[i] == ids[i].removeprefix("copy-") for i in copies)
    assert hit >= 0.95 * len(copies)
    assert sum(FLAG_MINHASH in reasons[i] for i in humans) <= 0.01 * len(humans) + 1
    # no classifier: its columns are null, and the decision only uses what ran
    assert table.column("teacher_prob").null_count == table.num_rows
    assert pc.all(pc.equal(table.column("flagged"), pc.greater(pc.list_value_length(
        table.column("flag_reasons")), 0))).as_py()
    sizes = table.column("cluster_size").to_numpy()
    assert (sizes >= 1).all()
    # re-running gives the same rows
    detect(corpus_dir, tmp_path / "scores", index_dir=index_dir)
    again, _ = read_scores(tmp_path / "scores")
    assert again.equals(table)


def test_detect_refuses_bad_inputs(tmp_path, small_index):
    with pytest.raises(DetectError, match="does not exist"):
        detect(tmp_path / "missing", tmp_path / "out", index_dir=small_index[0])
    empty = write_corpus([], tmp_path / "empty")
    with pytest.raises(DetectError, match="nothing to detect with"):
        detect(empty, tmp_path / "out")
    with pytest.raises(DetectError, match="not a scores directory"):
        read_scores(tmp_path)


def test_empty_corpus_gives_an_empty_readable_scores_dataset(tmp_path, small_index):
    empty = write_corpus([], tmp_path / "empty")
    info = detect(empty, tmp_path / "scores", index_dir=small_index[0])
    assert info["documents"] == 0
    table, det = read_scores(tmp_path / "scores")
    assert table.num_rows == 0
    assert json.loads((tmp_path / "scores" / DETECTORS_FILE).read_text())["index"] == det["index"]
    assert pq.read_table(tmp_path / "scores").num_rows == 0  # still a dataset, with the schema


def test_scores_dir_reads_as_a_parquet_dataset_with_pyarrow_defaults(tmp_path, small_index, small_corpus):
    """What a data team does first: open SCORES_DIR itself as a dataset; the sidecar must not break it."""
    corpus_dir, rows = small_corpus
    scores = tmp_path / "scores"
    detect(corpus_dir, scores, index_dir=small_index[0])
    assert (scores / DETECTORS_FILE).is_file() and not (scores / "detectors.json").exists()
    expected = Counter(r["source"] for r in rows)
    for table in (pq.read_table(scores), ds.dataset(scores, partitioning="hive").to_table()):
        assert table.num_rows == len(rows)
        assert Counter(table.column("source").to_pylist()) == expected
        assert set(SCORES_SCHEMA.names) <= set(table.column_names)
    assert sorted(pq.read_table(scores).column("doc_id").to_pylist()) == sorted(r["doc_id"] for r in rows)


def test_scores_dir_of_the_earlier_layout_is_read_and_replaced(tmp_path, small_index, small_corpus):
    """Scores written when the sidecar was ``detectors.json`` still report, are skipped as an
    output when walking inputs, and a re-run of detect replaces them with the new layout."""
    corpus_dir, rows = small_corpus
    old = tmp_path / "scores"
    detect(corpus_dir, old, index_dir=small_index[0])
    table, info = read_scores(old)
    (old / DETECTORS_FILE).rename(old / "detectors.json")
    assert output_kind(old) is SCORES_OUTPUT
    again, info_again = read_scores(old)
    assert again.equals(table) and info_again == info
    detect(corpus_dir, old, index_dir=small_index[0])
    assert sorted(p.name for p in old.iterdir() if not p.name.startswith("source=")) == [DETECTORS_FILE]
    assert pq.read_table(old).num_rows == len(rows)


def test_place_text_embeds_at_the_requested_share(dev_openai, dev_human):
    rng = np.random.default_rng(0)
    hosts = [r["text"] for r in dev_human[:200] if len(r["text"]) > 300]
    teacher = next(r["text"] for r in dev_openai if 800 < len(r["text"]) < 3000)
    for _ in range(20):
        page, share = place_text("embedded", teacher, hosts[:4] * 3, rng)
        assert teacher in page
        assert 0.15 <= share <= 0.6
    short, share = place_text("short", teacher, hosts[:4] * 3, rng)
    assert share < 1.0 and len(short) > 150
    assert place_text("whole", teacher, hosts, rng) == (teacher, 1.0)
    with pytest.raises(ValueError, match="unknown placement kind"):
        place_text("sideways", teacher, hosts, rng)
