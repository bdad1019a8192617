"""Ingest end to end: a mixed folder, de-duplication, re-runs, reading the corpus back."""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline.ingest import IngestOptions, ingest, read_corpus
from pipeline.schema import REJECTED_SCHEMA, SchemaMismatchError
from tests.test_readers import sample, write_csv, write_jsonl, write_parquet


def assert_accounting(manifest: dict) -> None:
    """records_read == written + exact_duplicates + rejected, overall and for every input."""
    counts = manifest["counts"]
    assert counts["records_read"] == counts["written"] + counts["exact_duplicates"] + counts["rejected"]
    assert counts["rejected"] == sum(counts["rejected_by_reason"].values())
    assert counts["written"] == sum(counts["written_by_source"].values())
    for entry in manifest["inputs"]:
        assert entry["records_read"] == entry["written"] + entry["exact_duplicates"] + entry["rejected"]
    for key in ("records_read", "written", "exact_duplicates", "rejected"):
        assert counts[key] == sum(entry[key] for entry in manifest["inputs"])


PLANTED_REPEATS = 20  # OpenAI texts repeated in the Parquet shard with extra white space


def expected_sha1(text: str) -> str:
    """The exact-duplicate key as pipeline/normalize.py documents it, written independently of it:
    NFC, CR/CRLF to LF, control characters other than LF and tab removed, white-space runs to one
    space and line ends trimmed, runs of blank lines to one, the ends stripped; then SHA-1."""
    text = unicodedata.normalize("NFC", text.replace("\r\n", "\n").replace("\r", "\n"))
    text = "".join(c for c in text if c in "\n\t" or unicodedata.category(c) != "Cc")
    text = "\n".join(" ".join(line.split()) for line in text.split("\n"))
    text = re.sub(r"\n{3,}", "\n\n", text).strip()
    return hashlib.sha1(text.encode("utf-8")).hexdigest()


def corpus_table(out: Path) -> pa.Table:
    return pa.Table.from_batches(list(read_corpus(out)))


def rejected_table(out: Path) -> pa.Table:
    return pq.read_table(out / "rejected")


@pytest.fixture(scope="module")
def mixed_folder(tmp_path_factory, dev_openai, dev_human, dev_other_llm):
    """JSONL (gzip), CSV, Parquet and a text sub-folder of real dev records, with overlaps."""
    root = tmp_path_factory.mktemp("mixed") / "crawl"
    (root / "pages").mkdir(parents=True)
    openai, human, other = sample(dev_openai, 200), sample(dev_human, 200), sample(dev_other_llm, 100)
    write_jsonl(root / "a_openai.jsonl.gz", openai, compress="gzip")
    write_csv(root / "b_human.csv", human)
    # The Parquet shard repeats 20 OpenAI texts with extra white space: exact duplicates after normalisation.
    repeats = [{**r, "text": "  " + r["text"].replace(" ", "  ") + "\n"} for r in openai[:PLANTED_REPEATS]]
    write_parquet(root / "c_other.parquet", other + repeats)
    (root / ".DS_Store").write_bytes(b"\x00\x00\x00\x01Bud1")  # hidden: listed in the manifest, not read
    pages = dev_human[1 :: max(1, len(dev_human) // 30)][:30]
    for i, r in enumerate(pages):
        (root / "pages" / f"page{i:03d}.txt").write_text(r["text"], encoding="utf-8")
    # Input order as ingest expands it: sorted files, the folder's text files last.
    ordered = ([("jsonl", r) for r in openai] + [("csv", r) for r in human]
               + [("parquet", r) for r in other + repeats] + [("text", r) for r in pages])
    return root, ordered


@pytest.fixture(scope="module")
def mixed_corpus(mixed_folder, tmp_path_factory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("corpus") / "corpus"
    return out, ingest([mixed_folder[0]], out)


def test_mixed_folder_counts_add_up(mixed_folder, mixed_corpus):
    _, ordered = mixed_folder
    out, manifest = mixed_corpus
    assert_accounting(manifest)
    counts = manifest["counts"]
    assert counts["records_read"] == len(ordered)
    # the planted white-space repeats are caught, whatever else dev holds
    assert counts["exact_duplicates"] >= PLANTED_REPEATS
    unique = {expected_sha1(r["text"]) for _, r in ordered}
    assert counts["written"] == len(unique)
    assert counts["exact_duplicates"] == len(ordered) - len(unique)
    assert counts["rejected"] == 0
    assert [e["format"] for e in manifest["inputs"]] == ["jsonl", "csv", "parquet", "text"]
    assert manifest["ignored_files"] == [str(mixed_folder[0] / ".DS_Store")]
    for entry in manifest["inputs"]:
        for info in entry.get("files", [entry]):
            assert info["size"] == Path(info["path"]).stat().st_size and len(info["sha256"]) == 64
    assert manifest["inputs"][-1]["size"] == sum(f["size"] for f in manifest["inputs"][-1]["files"])
    table = corpus_table(out)
    assert table.num_rows == counts["written"]
    assert len(set(table.column("doc_id").to_pylist())) == table.num_rows
    assert len(set(table.column("content_sha1").to_pylist())) == table.num_rows


def test_first_occurrence_is_kept(mixed_folder, mixed_corpus):
    _, ordered = mixed_folder
    out, _ = mixed_corpus
    table = corpus_table(out).to_pylist()
    first_format: dict[str, str] = {}
    for fmt, record in ordered:
        first_format.setdefault(expected_sha1(record["text"]), fmt)
    assert {row["content_sha1"]: row["format"] for row in table} == first_format


def test_sources_partitions_and_meta(mixed_corpus):
    out, manifest = mixed_corpus
    partitions = sorted(p.name for p in (out / "docs").iterdir())
    assert all(name.startswith("source=") for name in partitions)
    table = corpus_table(out)
    sources = set(table.column("source").to_pylist())
    assert sources == set(manifest["counts"]["written_by_source"])
    # Text files take the folder input's name; JSONL/CSV/Parquet records name their own source.
    assert manifest["inputs"][-1]["default_source"] == "crawl" and "crawl" in sources
    row = next(r for r in table.to_pylist() if r["format"] == "jsonl")
    assert "id" in json.loads(row["meta"])  # the input's own id is kept
    first_file = pq.ParquetFile(next((out / "docs").rglob("*.parquet")))
    assert first_file.metadata.row_group(0).column(0).compression == "ZSTD"
    assert rejected_table(out).schema.names == REJECTED_SCHEMA.names


def test_rerun_gives_identical_dataset(mixed_folder, mixed_corpus):
    out, manifest = mixed_corpus
    before = corpus_table(out)
    files_before = {p.relative_to(out): p.read_bytes() for p in (out / "docs").rglob("*.parquet")}
    again = ingest([mixed_folder[0]], out)
    after = corpus_table(out)
    assert after.equals(before)  # same doc_ids, same rows, same order
    assert {p.relative_to(out): p.read_bytes() for p in (out / "docs").rglob("*.parquet")} == files_before
    assert again["counts"] == manifest["counts"]
    assert not list(out.parent.glob(".corpus*"))  # no staging or temporary directories left behind


def test_source_option_overrides(tmp_path, dev_openai):
    records = sample(dev_openai, 50)
    path = write_jsonl(tmp_path / "shard.jsonl", records)
    manifest = ingest([path], tmp_path / "out", IngestOptions(source="crawl-2024"))
    assert manifest["counts"]["written_by_source"] == {"crawl-2024": manifest["counts"]["written"]}
    assert set(corpus_table(tmp_path / "out").column("source").to_pylist()) == {"crawl-2024"}


def test_read_corpus_columns_and_version_check(mixed_corpus, tmp_path):
    out, manifest = mixed_corpus
    batches = list(read_corpus(out, columns=["doc_id", "source"], batch_size=64))
    assert all(b.schema.names == ["doc_id", "source"] and b.num_rows <= 64 for b in batches)
    assert sum(b.num_rows for b in batches) == manifest["counts"]["written"]
    # A corpus written by another schema version is refused.
    fake = tmp_path / "old"
    (fake / "docs").mkdir(parents=True)
    table = pa.table({"doc_id": ["x"], "text": ["y"]})
    pq.write_table(table.replace_schema_metadata({b"distill_audit_kind": b"corpus",
                                                  b"distill_audit_schema_version": b"0"}),
                   fake / "docs" / "part.parquet")
    (fake / "manifest.json").write_text(json.dumps({"schema_version": "1"}))
    with pytest.raises(SchemaMismatchError):
        list(read_corpus(fake))
