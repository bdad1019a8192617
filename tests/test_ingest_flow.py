"""The Prefect ingest flow under the session test harness (no separate server)."""

from __future__ import annotations

import errno
from pathlib import Path

import pyarrow as pa
import pytest

from pipeline.ingest import ingest, read_corpus
from tests.test_ingest import assert_accounting
from tests.test_readers import sample, write_jsonl

pytestmark = pytest.mark.prefect


@pytest.fixture(scope="module")
def inputs(tmp_path_factory, dev_other_llm, warc_fixtures) -> list[str]:
    root = tmp_path_factory.mktemp("flow-in")
    shard = write_jsonl(root / "shard.jsonl.gz", sample(dev_other_llm, 300), compress="gzip")
    return [str(shard), *[str(p) for p in warc_fixtures]]


def test_flow_matches_in_process_ingest(prefect_harness, inputs, tmp_path):
    from flows.ingest import ingest_flow

    manifest = ingest_flow(inputs=inputs, out=str(tmp_path / "flow"))
    assert_accounting(manifest)
    reference = ingest(inputs, tmp_path / "direct")
    assert manifest["counts"] == reference["counts"]
    flow_rows = pa.Table.from_batches(list(read_corpus(tmp_path / "flow")))
    assert flow_rows.equals(pa.Table.from_batches(list(read_corpus(tmp_path / "direct"))))
    assert [e["path"] for e in manifest["inputs"]] == inputs
    assert not [p for p in tmp_path.iterdir() if "staging" in p.name]


def test_flow_runs_one_task_per_input_and_publishes_counts(prefect_harness, inputs, tmp_path, monkeypatch):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey
    from prefect.context import TaskRunContext

    import flows.ingest
    from flows.ingest import ingest_flow

    # Task runs reach the API through the server's task-run recorder (events, asynchronously), so
    # reading them back would race the recorder. The real ingest_file is wrapped instead, and
    # each call notes the Prefect task run it runs in, as the task engine gives it.
    seen: list[tuple] = []
    real_ingest_file = flows.ingest.ingest_file

    def recording_ingest_file(spec, staging, options):
        run = TaskRunContext.get().task_run
        seen.append((run.id, run.name, run.flow_run_id, str(spec.path)))
        return real_ingest_file(spec, staging, options)

    monkeypatch.setattr(flows.ingest, "ingest_file", recording_ingest_file)
    state = ingest_flow(inputs=inputs, out=str(tmp_path / "corpus"), source="crawl-x", return_state=True)
    assert state.is_completed(), state
    manifest = state.result()
    run_id = state.state_details.flow_run_id
    assert len(seen) == len(inputs) and len({task_id for task_id, *_ in seen}) == len(inputs)
    assert sorted(path for *_, path in seen) == sorted(inputs)
    assert {flow_run for _, _, flow_run, _ in seen} == {run_id}
    assert sorted(name for _, name, _, _ in seen) == sorted(f"ingest-{Path(p).name}" for p in inputs)
    # artifacts are written through the API while the flow runs: complete once it has returned
    with get_client(sync_client=True) as client:
        key_filter = ArtifactFilter(key=ArtifactFilterKey(any_=["ingest-manifest"]))
        artifacts = client.read_artifacts(artifact_filter=key_filter)
    mine = [a for a in artifacts if a.flow_run_id == run_id]
    assert len(mine) == 1
    counts = manifest["counts"]
    assert f"| {counts['records_read']} | {counts['written']} | {counts['exact_duplicates']} " in mine[0].data
    assert counts["written_by_source"] == {"crawl-x": counts["written"]}


def test_retry_only_on_transient_io_errors():
    from flows.ingest import is_transient_io_error

    assert is_transient_io_error(OSError(errno.EIO, "Input/output error"))
    assert is_transient_io_error(TimeoutError("NFS timed out"))
    assert not is_transient_io_error(FileNotFoundError(errno.ENOENT, "gone"))
    assert not is_transient_io_error(PermissionError(errno.EACCES, "denied"))
    assert not is_transient_io_error(ValueError("bad data"))


def test_flow_refuses_missing_input(prefect_harness, tmp_path):
    from flows.ingest import ingest_flow
    from pipeline.readers import InputError

    with pytest.raises(InputError, match="input not found"):
        ingest_flow(inputs=[str(tmp_path / "nope.jsonl")], out=str(tmp_path / "out"))
