"""The synthetic demo data: deterministic, readable, and big enough to train on."""

from __future__ import annotations

import json
from pathlib import Path

from fastwarc.warc import ArchiveIterator, WarcRecordType

from sample_data.generate import SAMPLE_DIR, generate


def _read_jsonl(path: Path) -> list[dict]:
    with path.open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle]


def test_regenerating_gives_byte_identical_files(tmp_path: Path) -> None:
    written = generate(tmp_path)
    assert written, "generator wrote nothing"
    for path in written:
        rel = path.relative_to(tmp_path)
        committed = SAMPLE_DIR / rel
        assert committed.is_file(), f"{rel} is not in sample_data/: run `make sample-data` and commit it"
        assert path.read_bytes() == committed.read_bytes(), f"{rel} differs from a fresh regeneration"
    # and a second run into the same place changes nothing
    again = generate(tmp_path)
    assert [p.read_bytes() for p in again] == [
        (SAMPLE_DIR / p.relative_to(tmp_path)).read_bytes() for p in again
    ]


def test_reference_sets_are_large_enough_and_distinct() -> None:
    teacher = _read_jsonl(SAMPLE_DIR / "teacher" / "teacher.jsonl")
    human = _read_jsonl(SAMPLE_DIR / "human" / "human.jsonl")
    assert len(teacher) >= 60 and len(human) >= 60
    assert all(r["text"].strip() and r["prompt"] and r["prompt_id"] for r in teacher)
    assert all(r["text"].strip() for r in human)
    ids = [r["id"] for r in teacher + human]
    assert len(ids) == len(set(ids))
    assert not {r["text"] for r in teacher} & {r["text"] for r in human}


def _warc_records(path: Path) -> list:
    with path.open("rb") as handle:
        return [
            (rec.headers["WARC-Type"], rec.headers.get("WARC-Target-URI"), rec.verify_block_digest())
            for rec in ArchiveIterator(handle, parse_http=False, record_types=WarcRecordType.any_type)
        ]


def test_warcs_parse_with_valid_digests_and_several_sites() -> None:
    teacher_texts = [r["text"] for r in _read_jsonl(SAMPLE_DIR / "teacher" / "teacher.jsonl")]
    for name in ["crawl/web-2024.warc.gz", "baseline/web-2021.warc.gz"]:
        records = _warc_records(SAMPLE_DIR / name)
        assert all(ok for _, _, ok in records), f"{name}: a block digest does not verify"
        kinds = {kind for kind, _, _ in records}
        assert {"warcinfo", "request", "response"} <= kinds
        hosts = {uri.split("/")[2] for kind, uri, _ in records if kind == "response"}
        assert len(hosts) >= 4, hosts
    # The 2024 crawl holds reference copies (whole Q/A pages and embedded ones); the baseline holds none.
    with (SAMPLE_DIR / "crawl/web-2024.warc.gz").open("rb") as handle:
        pages = [
            r.reader.read().decode() for r in ArchiveIterator(handle, record_types=WarcRecordType.response)
        ]
    with (SAMPLE_DIR / "baseline/web-2021.warc.gz").open("rb") as handle:
        old = [
            r.reader.read().decode() for r in ArchiveIterator(handle, record_types=WarcRecordType.response)
        ]
    first_lines = {t.split("\n")[2] for t in teacher_texts}  # first list item of each answer
    assert sum(any(line in p for line in first_lines) for p in pages) >= 5
    assert not any(any(line in p for line in first_lines) for p in old)
