"""The whole audit as one Prefect flow: ingest -> index -> train -> detect -> report.

:func:`audit_flow` only orchestrates: every step is a library call (``pipeline.ingest`` through
``flows.ingest.ingest_flow``, ``detectors.minhash``, ``detectors.classifier``,
``pipeline.detect``, ``pipeline.report``). The plain step functions live in
:mod:`pipeline.steps`, which the CLI's single-step commands call too, so ``distill-audit index``
and the audit's index task do exactly the same thing.

Layout of ``OUT`` (see :class:`AuditLayout`)::

    OUT/corpus/            ingested corpus (docs/, rejected/, manifest.json)
    OUT/index/             MinHash index of the teacher references (when --teacher is given)
    OUT/model/             classifier (when trained here; --model points elsewhere)
    OUT/scores/            per-document scores (Parquet, by source) + _detectors.json
    OUT/baseline/corpus/   the baseline inputs, ingested the same way (when --baseline is given)
    OUT/baseline/scores/   ... and scored with the same detectors
    OUT/report/            report.json (and whatever the report step adds)

A re-run into the same ``OUT`` without ``--baseline`` removes the earlier run's ``baseline/``, so
``OUT`` holds no baseline its report did not use (:func:`remove_stale_outputs`). An earlier
``index/`` or ``model/`` stays: they are costly to rebuild, other runs may read them, and the
report names the detectors it used.

The flow publishes three artifacts on its run: a Markdown summary (counts, teacher share with
its interval, verdict), a table (one row per source) and a link to ``report.json``.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flows.runtime import apply_quiet_defaults, task_runner_from_env
from pipeline.markdown import md_escape
from pipeline.steps import (
    REDIS_URL_ENV,
    StepError,
    build_index,
    check_redis,
    detect_step,
    report_step,
    train,
)
from pipeline.storage import (
    CORPUS_OUTPUT,
    INDEX_OUTPUT,
    SCORES_OUTPUT,
    OutputKind,
    check_replaceable,
    remove_output,
)

# No telemetry and quiet logs for scripts that import this flow directly, too (the user's own
# settings win); Prefect reads them at import.
apply_quiet_defaults()

from prefect import flow, task  # noqa: E402
from prefect.artifacts import (  # noqa: E402
    create_link_artifact,
    create_markdown_artifact,
    create_table_artifact,
)
from prefect.cache_policies import NO_CACHE  # noqa: E402
from pydantic import SecretStr  # noqa: E402

SUMMARY_ARTIFACT_KEY = "audit-summary"
SOURCES_ARTIFACT_KEY = "audit-sources"
REPORT_LINK_ARTIFACT_KEY = "audit-report"

# Listeners notified as stages start and end: ``listener(stage, status, detail)`` with status
# "start" | "done" | "skip". The CLI uses this for its progress display; tasks run in threads
# of this process with Prefect's default task runner, so a plain module-level list is enough.
_stage_listeners: list[Callable[[str, str, str], None]] = []


def add_stage_listener(listener: Callable[[str, str, str], None]) -> None:
    _stage_listeners.append(listener)


def remove_stage_listener(listener: Callable[[str, str, str], None]) -> None:
    if listener in _stage_listeners:
        _stage_listeners.remove(listener)


def _notify(stage: str, status: str, detail: str = "") -> None:
    for listener in list(_stage_listeners):
        listener(stage, status, detail)


@dataclass(frozen=True)
class AuditLayout:
    """Where an audit under ``out`` keeps each step's output."""

    out: Path

    @property
    def corpus(self) -> Path:
        return self.out / "corpus"

    @property
    def index(self) -> Path:
        return self.out / "index"

    @property
    def model(self) -> Path:
        return self.out / "model"

    @property
    def scores(self) -> Path:
        return self.out / "scores"

    @property
    def baseline_corpus(self) -> Path:
        return self.out / "baseline" / "corpus"

    @property
    def baseline_scores(self) -> Path:
        return self.out / "baseline" / "scores"

    @property
    def report(self) -> Path:
        return self.out / "report"

    def baseline_outputs(self) -> list[tuple[Path, OutputKind]]:
        """The step directories a run writes only with ``--baseline``, and their kinds."""
        return [(self.baseline_corpus, CORPUS_OUTPUT), (self.baseline_scores, SCORES_OUTPUT)]


def remove_stale_outputs(layout: AuditLayout, written: list[Path], used: list[str]) -> list[str]:
    """Remove the baseline step directories under ``layout.out`` that this run did not write (not
    in ``written``) and an earlier run did; return their paths.

    A re-run without ``--baseline`` would otherwise leave the earlier run's ``baseline/`` beside a
    report that did not use it, and a reader of ``OUT`` would take it for this report's. Only
    directories recognised as distill-audit outputs of the step's kind are removed
    (:func:`pipeline.storage.remove_output`), never a user's own files, and never one that holds
    a path this run reads (``used``) or one reached through a symbolic link (it lies outside
    ``OUT``). ``index/`` and ``model/`` are not touched: rebuilding them
    is costly, other runs or deployments may read them, and the report names the detectors it
    used.
    """
    reads = [Path(os.path.realpath(p)) for p in used]
    out_real = Path(os.path.realpath(layout.out))
    removed = []
    for path, kind in layout.baseline_outputs():
        real = Path(os.path.realpath(path))
        if real != out_real / path.relative_to(layout.out):
            continue  # a symbolic link on the way (OUT/baseline -> elsewhere): not OUT's to remove
        if path in written or any(r == real or real in r.parents for r in reads):
            continue
        if remove_output(path, kind):
            removed.append(str(path))
    if any(Path(p).parent == layout.out / "baseline" for p in removed):
        with contextlib.suppress(OSError):
            (layout.out / "baseline").rmdir()  # only when nothing else is left in it
    return removed


#: :func:`audit_flow`'s parameters that name files or folders (a path or a list of paths).
PATH_PARAMETERS = ("inputs", "out", "teacher", "human", "other_llm", "model", "index", "baseline")


def _absolute(path: str | os.PathLike[str]) -> str:
    # abspath, not resolve(): a symbolic link stays a link, so --out's checks still see it
    return os.path.abspath(os.fspath(path))


def absolute_parameters(params: dict[str, Any]) -> dict[str, Any]:
    """``params`` of :func:`audit_flow` with every path (:data:`PATH_PARAMETERS`) made absolute
    against this process's working directory.

    Tasks may run elsewhere (Dask workers, a work pool's worker, a served run's subprocess),
    each with its own working directory, so a relative path handed to a flow would name another
    file there; whoever builds the parameters (the CLI, the deployments) calls this first.
    """
    result = dict(params)
    for key in PATH_PARAMETERS:
        value = result.get(key)
        if value == "":
            value = result[key] = None  # "" (a blank form field) is no path, not the working directory
        if value is None:
            continue
        if isinstance(value, (str, os.PathLike)):
            result[key] = _absolute(value)
        else:
            result[key] = [_absolute(p) for p in value]
    return result


def path_values(params: dict[str, Any], keys: tuple[str, ...] = PATH_PARAMETERS) -> list[tuple[str, str]]:
    """``(key, path)`` for every path among ``params[key]`` (a path or a list of paths)."""
    pairs = []
    for key in keys:
        value = params.get(key)
        for path in [value] if isinstance(value, (str, os.PathLike)) else value or []:
            if path:
                pairs.append((key, os.fspath(path)))
    return pairs


def check_deployment_paths(params: dict[str, Any]) -> None:
    """Refuse relative paths in a run of a deployment (raise :class:`StepError`).

    A deployment's stored paths are absolute (:mod:`flows.deployments`), but one given when a run
    is triggered (``prefect deployment run ... --param out=x``, the UI's run form) is relative to
    the worker's working directory, a temporary one that the worker deletes after the run: the
    run would complete and its outputs vanish.
    """
    from prefect.runtime import deployment

    if deployment.id is None:
        return
    for key, path in path_values(params):
        if not os.path.isabs(path):
            raise StepError(f"{key} {path!r} is a relative path in a deployment run, whose working "
                            "directory is temporary: give an absolute path")


def _secret_value(url: SecretStr | str | None) -> str | None:
    if isinstance(url, SecretStr):
        url = url.get_secret_value()
    return url or None


# --------------------------------------------------------------------------------------------
# Summaries for artifacts and the console
# --------------------------------------------------------------------------------------------


def _pct(value: Any) -> str:
    return "n/a" if value is None else f"{100 * float(value):.1f}%"


def share_text(share: dict | None) -> str:
    """``"3.1% (95% CI 2.6-3.7%, pacc)"`` from a report share block."""
    if not share or share.get("estimate") is None:
        return "n/a"
    method = f", {share['method']}" if share.get("method") else ""
    interval = f"95% CI {_pct(share.get('ci_low'))} to {_pct(share.get('ci_high'))}"
    return f"{_pct(share['estimate'])} ({interval}{method})"


def _cell(value: Any) -> Any:
    """A table artifact cell: text escaped (Prefect renders cells as Markdown), numbers as they are."""
    return md_escape(value) if isinstance(value, str) else value


def source_rows(report: dict) -> list[dict]:
    """One row per source for the table artifact (text cells escaped for Markdown)."""
    rows = []
    for src in report.get("sources", []):
        share = src.get("teacher_share") or {}
        llm = src.get("llm_share") or {}
        verdict = src.get("verdict") or {}
        rows.append(
            {
                "source": src.get("source"),
                "documents": src.get("documents"),
                "teacher_share": _pct(share.get("estimate")),
                "ci_low": _pct(share.get("ci_low")),
                "ci_high": _pct(share.get("ci_high")),
                "flagged_share": _pct(share.get("flagged_share")),
                "llm_share": _pct(llm.get("estimate")),
                "verdict": verdict.get("label"),
                # the share the presence test finds only about half the time (with a baseline)
                "detectable_share": _pct(verdict.get("detectable_share")),
                "reason": verdict.get("reason"),
            }
        )
    return [{key: _cell(value) for key, value in row.items()} for row in rows]


def summary_markdown(report: dict, manifest: dict | None, report_path: Path) -> str:
    """The ``audit-summary`` artifact; every value from the report is escaped (:func:`md_escape`):
    verdict reasons quote source names, which come from the crawl."""
    esc = md_escape
    corpus = report.get("corpus", {})
    verdict = report.get("verdict", {})
    lines = ["# distill-audit summary", ""]
    if manifest:
        counts = manifest.get("counts", manifest)
        lines.append(
            f"- **Ingest**: {esc(counts.get('records_read'))} records read, {esc(counts.get('written'))} "
            f"written, {esc(counts.get('exact_duplicates'))} exact duplicates, "
            f"{esc(_rejected_total(counts.get('rejected')))} rejected"
        )
    lines += [
        f"- **Corpus**: {esc(corpus.get('documents'))} documents, "
        f"{esc(corpus.get('characters'))} characters, {esc(corpus.get('sources'))} sources",
        f"- **Teacher share**: {esc(share_text(report.get('teacher_share')))}",
        f"- **Any-LLM share**: {esc(share_text(report.get('llm_share')))}",
        f"- **Verdict**: {esc(verdict.get('label'))} (score {esc(verdict.get('score'))})"
        + (f": {esc(verdict['reason'])}" if verdict.get("reason") else ""),
        "",
    ]
    evidence = verdict.get("evidence") or []
    if evidence:
        lines += ["| signal | value | threshold | points to |", "|---|---|---|---|"]
        lines += [
            "| " + " | ".join(esc(e.get(k)) for k in ("signal", "value", "threshold", "points_to")) + " |"
            for e in evidence
        ]
        lines.append("")
    lines.append(f"Full report: {esc(report_path)}")
    return "\n".join(lines)


def _rejected_total(rejected: Any) -> Any:
    if isinstance(rejected, dict):
        return sum(int(v) for v in rejected.values())
    return "n/a" if rejected is None else rejected


# --------------------------------------------------------------------------------------------
# Prefect tasks and the flow
# --------------------------------------------------------------------------------------------


@task(name="build-index", cache_policy=NO_CACHE, persist_result=False)
def build_index_task(teacher: list[str], out: str) -> dict:
    return build_index(teacher, out)


@task(name="train-classifier", cache_policy=NO_CACHE, persist_result=False)
def train_task(
    teacher: list[str], human: list[str], other_llm: list[str] | None, out: str, seed: int
) -> dict:
    return train(teacher, human, other_llm, out, random_state=seed)


@task(name="detect", cache_policy=NO_CACHE, persist_result=False)
def detect_task(
    corpus: str, out: str, model: str | None, index: str | None, redis_url: SecretStr | None = None
) -> dict:
    # The Redis URL is a task parameter, so it reaches the worker that runs this task (a Dask
    # worker has neither the CLI's environment nor its options); a SecretStr, so it shows as
    # '**********' wherever Prefect prints or stores it (it may hold a password).
    return detect_step(corpus, out, model, index, redis_url=_secret_value(redis_url))


@task(name="report", cache_policy=NO_CACHE, persist_result=False)
def report_task(scores: str, out: str, baseline_scores: str | None, seed: int,
                config: dict[str, Any] | None = None) -> dict:
    return report_step(scores, out, baseline_scores, seed, config)


@task(name="publish-artifacts", cache_policy=NO_CACHE, persist_result=False)
def publish_artifacts(report: dict, manifest: dict | None, report_path: str) -> None:
    path = Path(report_path).resolve()
    create_markdown_artifact(
        key=SUMMARY_ARTIFACT_KEY,
        markdown=summary_markdown(report, manifest, path),
        description="Teacher share, interval and verdict",
    )
    create_table_artifact(
        key=SOURCES_ARTIFACT_KEY,
        table=source_rows(report) or [{"source": "(none)"}],
        description="Teacher share and verdict per source",
    )
    create_link_artifact(
        key=REPORT_LINK_ARTIFACT_KEY,
        link=path.as_uri(),
        link_text="report.json",
        description="The full report",
    )


@flow(name="distill-audit", log_prints=False, task_runner=task_runner_from_env())
def audit_flow(
    inputs: list[str],
    out: str,
    teacher: list[str] | None = None,
    human: list[str] | None = None,
    other_llm: list[str] | None = None,
    model: str | None = None,
    index: str | None = None,
    baseline: list[str] | None = None,
    source: str | None = None,
    fmt: str | None = None,
    text_field: str = "text",
    max_chars: int = 1_000_000,
    seed: int = 0,
    report_config: dict[str, Any] | None = None,
    redis_url: SecretStr | None = None,
) -> dict:
    """Audit ``inputs``: returns ``{"paths": {...}, "manifest": ..., "report": ..., "removed": [...]}``
    (``removed``: the earlier runs' step directories under ``out`` it removed, see
    :func:`remove_stale_outputs`).

    ``report_config`` holds the report's settings (estimation method, bootstrap size, verdict
    rules, allowances for unseen models; see :func:`pipeline.report.build_report`); it is
    checked before any work starts.

    The index is built when ``teacher`` references are given and no ``index``; the classifier
    is trained when ``teacher`` and ``human`` references are given and no ``model``. Baseline
    inputs are ingested and scored with the same detectors.

    ``redis_url`` (default: the ``DISTILL_AUDIT_REDIS_URL`` environment variable of the process
    running the flow) keeps the MinHash index's LSH buckets in that Redis while scoring; it is
    handed to the detect tasks as a parameter, so Dask workers use it too. Pass it as a
    ``pydantic.SecretStr``: Prefect stores a flow's parameters, and a SecretStr is stored masked.
    Redis is checked before any work starts. Relative paths are made absolute against this
    process's working directory (:func:`absolute_parameters`).
    """
    from flows.ingest import ingest_flow
    from pipeline.report import check_report_config

    if model is None and index is None and not teacher:
        raise StepError("nothing to detect with: give --teacher (and --human) references, --model or --index")
    check_report_config(report_config)
    check_deployment_paths({"inputs": inputs, "out": out, "teacher": teacher, "human": human,
                            "other_llm": other_llm, "model": model, "index": index, "baseline": baseline})
    paths_given = absolute_parameters(
        {"inputs": inputs, "out": out, "teacher": teacher, "human": human, "other_llm": other_llm,
         "model": model, "index": index, "baseline": baseline}
    )
    inputs, out, baseline = paths_given["inputs"], paths_given["out"], paths_given["baseline"]
    teacher, human, other_llm = paths_given["teacher"], paths_given["human"], paths_given["other_llm"]
    model, index = paths_given["model"], paths_given["index"]
    redis_value = _secret_value(redis_url) or os.environ.get(REDIS_URL_ENV) or None
    if redis_value and (index is not None or teacher):
        check_redis(redis_value)  # before any work: an unreachable Redis would fail only at detect
    redis_secret = SecretStr(redis_value) if redis_value else None
    layout = AuditLayout(Path(out))
    # A step directory under ``out`` that holds something else than that step's earlier output
    # is refused before any work starts (the step would replace it).
    outputs = [(layout.corpus, CORPUS_OUTPUT), (layout.scores, SCORES_OUTPUT)]
    if index is None and teacher:
        outputs.append((layout.index, INDEX_OUTPUT))
    if baseline:
        outputs += [(layout.baseline_corpus, CORPUS_OUTPUT), (layout.baseline_scores, SCORES_OUTPUT)]
    for path, kind in outputs:
        check_replaceable(path, kind)
    paths: dict[str, str | None] = {"corpus": str(layout.corpus)}
    ingest_options = {"source": source, "fmt": fmt, "text_field": text_field, "max_chars": max_chars}

    # 1. ingest (subflows): the audited inputs, then the baseline inputs the same way
    _notify("ingest", "start", f"{len(inputs)} input(s)")
    manifest = ingest_flow(inputs=list(inputs), out=str(layout.corpus), **ingest_options)
    if baseline:
        ingest_flow(inputs=list(baseline), out=str(layout.baseline_corpus), **ingest_options)
        paths["baseline_corpus"] = str(layout.baseline_corpus)
    _notify("ingest", "done")

    # 2. index and classifier: independent, so submitted side by side (parallel on a Dask runner)
    index_dir, model_dir = index, model
    index_future = train_future = None
    if index_dir is None and teacher:
        _notify("index", "start")
        index_future = build_index_task.submit(list(teacher), str(layout.index))
        index_dir = str(layout.index)
    else:
        _notify("index", "skip", "given" if index_dir else "no teacher references")
    if model_dir is None and teacher and human:
        _notify("train", "start")
        train_future = train_task.submit(
            list(teacher), list(human), list(other_llm or []) or None, str(layout.model), seed
        )
        model_dir = str(layout.model)
    else:
        _notify("train", "skip", "given" if model_dir else "no teacher+human references")
    if index_future is not None:
        index_future.result()
        _notify("index", "done")
    if train_future is not None:
        train_future.result()
        _notify("train", "done")
    paths.update(index=index_dir, model=model_dir, scores=str(layout.scores))

    # 3. detect: the audited corpus and the baseline with the same detectors, side by side
    _notify("detect", "start")
    detect_future = detect_task.submit(
        str(layout.corpus), str(layout.scores), model_dir, index_dir, redis_secret
    )
    baseline_scores = None
    if baseline:
        baseline_scores = str(layout.baseline_scores)
        detect_task.submit(
            str(layout.baseline_corpus), baseline_scores, model_dir, index_dir, redis_secret
        ).result()
        paths["baseline_scores"] = baseline_scores
    detect_future.result()
    _notify("detect", "done")

    # 4. report and artifacts
    _notify("report", "start")
    report = report_task(str(layout.scores), str(layout.report), baseline_scores, seed, report_config)
    report_path = layout.report / "report.json"
    paths["report"] = str(report_path)
    publish_artifacts(report, manifest, str(report_path))
    _notify("report", "done")

    # 5. what an earlier run left under ``out`` that this report did not use
    written = [layout.baseline_corpus, layout.baseline_scores] if baseline else []
    used = [path for key, path in path_values(paths_given) if key != "out"]
    removed = remove_stale_outputs(layout, written, used)
    return {"paths": paths, "manifest": manifest, "report": report, "removed": removed}


STAGES = ("ingest", "index", "train", "detect", "report")
