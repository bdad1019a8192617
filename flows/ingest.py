"""Prefect flow for ingest: one task per input file, then one merge task.

The flow only orchestrates :mod:`pipeline.ingest`: ``ingest_file`` per input (retried on
transient I/O errors only), ``finalize_corpus`` over the staged parts in input order, and
a Markdown artifact with the manifest counts. It needs no Prefect server: without
``PREFECT_API_URL`` Prefect's temporary local server is used (see :mod:`flows.runtime`).
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from prefect import flow, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE
from prefect.task_runners import ThreadPoolTaskRunner

from pipeline.ingest import IngestOptions, InputSpec, finalize_corpus, ingest_file, plan_inputs
from pipeline.markdown import md_escape
from pipeline.readers import left_out_entries
from pipeline.storage import CORPUS_OUTPUT, atomic_write_json, check_replaceable

# Missing or forbidden files do not get better by waiting; other OSErrors (NFS hiccups,
# EIO, timeouts, "too many open files") may.
_PERMANENT_OS_ERRORS = (FileNotFoundError, PermissionError, IsADirectoryError, NotADirectoryError)


def is_transient_io_error(exc: BaseException) -> bool:
    """True for an OSError worth retrying (not a missing/forbidden path)."""
    return isinstance(exc, OSError) and not isinstance(exc, _PERMANENT_OS_ERRORS)


def _retry_on_transient_io(task: Any, task_run: Any, state: Any) -> bool:
    try:
        state.result()
    except BaseException as exc:  # the failed state re-raises the task's exception here
        return is_transient_io_error(exc)
    return False


@task(
    name="ingest-file",
    retries=2,
    retry_delay_seconds=1,
    retry_condition_fn=_retry_on_transient_io,
    cache_policy=NO_CACHE,
    persist_result=False,
)
def ingest_file_task(spec: InputSpec, staging_dir: str, options: IngestOptions) -> dict:
    return ingest_file(spec, Path(staging_dir), options)


@task(name="finalize-corpus", cache_policy=NO_CACHE, persist_result=False)
def finalize_task(results: list[dict], staging_dir: str, out: str, options: IngestOptions,
                  ignored_files: list[str], skipped: list[dict]) -> dict:
    return finalize_corpus(results, Path(staging_dir), Path(out), options, ignored_files, skipped)


def manifest_markdown(manifest: dict, out: str) -> str:
    """The manifest counts as a Markdown summary (the flow's artifact); paths, formats and
    reasons escaped (:func:`pipeline.markdown.md_escape`: a file name may hold ``|`` or HTML)."""
    esc = md_escape
    counts = manifest["counts"]
    lines = [
        f"# Ingest into {esc(out)}",
        "",
        "| records read | written | exact duplicates | rejected |",
        "|---:|---:|---:|---:|",
        f"| {counts['records_read']} | {counts['written']} | {counts['exact_duplicates']} "
        f"| {counts['rejected']} |",
        "",
    ]
    if counts["rejected_by_reason"]:
        lines += ["| rejection reason | records |", "|---|---:|"]
        lines += [f"| {esc(k)} | {v} |" for k, v in counts["rejected_by_reason"].items()]
        lines.append("")
    if counts["warc_records_skipped"]:
        lines += ["| skipped WARC record kind | records |", "|---|---:|"]
        lines += [f"| {esc(k)} | {v} |" for k, v in counts["warc_records_skipped"].items()]
        lines.append("")
    if manifest.get("skipped_outputs"):
        lines += ["| folder left out of the inputs | why |", "|---|---|"]
        lines += [f"| {esc(e['path'])} | {esc(e['reason'])} |" for e in manifest["skipped_outputs"]]
        lines.append("")
    lines += ["| input | format | read | written | duplicates | rejected |", "|---|---|---:|---:|---:|---:|"]
    for entry in manifest["inputs"]:
        lines.append(
            f"| {esc(entry['path'])} | {esc(entry['format'])} | {entry['records_read']} | {entry['written']} "
            f"| {entry['exact_duplicates']} | {entry['rejected']} |"
        )
    return "\n".join(lines) + "\n"


@task(name="publish-ingest-summary", cache_policy=NO_CACHE, persist_result=False)
def publish_summary_task(manifest: dict, out: str) -> None:
    create_markdown_artifact(
        key="ingest-manifest",
        markdown=manifest_markdown(manifest, out),
        description=f"ingest counts for {md_escape(out)}",
    )


# Unbounded by default (sys.maxsize threads): a folder of 1,000 files would read 1,000 files
# at once. Reading is CPU-bound Python, so a few threads are plenty on small machines.
MAX_PARALLEL_INPUTS = max(2, min(8, (os.cpu_count() or 2) * 2))


@flow(name="ingest", log_prints=False, task_runner=ThreadPoolTaskRunner(max_workers=MAX_PARALLEL_INPUTS))
def ingest_flow(
    inputs: list[str],
    out: str,
    source: str | None = None,
    fmt: str | None = None,
    text_field: str = "text",
    max_chars: int = 1_000_000,
) -> dict:
    """Ingest ``inputs`` into the corpus directory ``out``; return the manifest.

    Raises :class:`pipeline.readers.InputError` (one-line message) before any task runs when
    an input is missing, unreadable or of unknown format, and
    :class:`pipeline.storage.OutputExistsError` when ``out`` exists and is not a corpus (nor an
    empty folder). Walking input folders leaves out ``out`` and distill-audit outputs (listed in
    the manifest's ``skipped_outputs``).
    """
    started = time.perf_counter()
    options = IngestOptions(source=source, fmt=fmt, text_field=text_field, max_chars=max_chars)
    check_replaceable(out, CORPUS_OUTPUT)
    specs = plan_inputs(inputs, options, out)
    # listed before this run writes its staging directory next to ``out``
    ignored, skipped = left_out_entries(inputs, out)  # one walk of the input folders
    out_path = Path(out)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    staging = tempfile.mkdtemp(prefix=f".{out_path.name}.staging-", dir=out_path.parent)
    try:
        futures = [
            ingest_file_task.with_options(task_run_name=f"ingest-{spec.path.name}").submit(
                spec, staging, options
            )
            for spec in specs
        ]
        results = [future.result() for future in futures]
        manifest = finalize_task(results, staging, out, options, ignored, skipped)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    manifest["timings"]["total_seconds"] = round(time.perf_counter() - started, 3)
    atomic_write_json(out_path / "manifest.json", manifest)
    publish_summary_task(manifest, out)
    return manifest
