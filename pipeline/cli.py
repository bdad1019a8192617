"""``distill-audit``: the command line (typer + rich).

Commands: ``ingest``, ``index``, ``train``, ``detect``, ``report`` (one step each), ``audit``
(all steps as one Prefect flow) and ``demo`` (``audit`` on ``sample_data/``).

Errors the user can act on (a missing path, an unknown format, a step that cannot run with
the inputs given) end with exit code 1 and one line ``error: <reason>`` on stderr, never a
traceback; usage mistakes end with click's usage message and exit code 2. Set
``DISTILL_AUDIT_DEBUG=1`` to see tracebacks (and Prefect's own failure logs) as well.

Prefect is imported lazily, after :func:`flows.runtime.apply_quiet_defaults`, because it
reads its settings at import time. ``ingest`` and ``audit`` run as Prefect flows (on the
temporary local server unless ``PREFECT_API_URL`` points at one); the other single-step
commands call the library directly and need no server.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import sys
import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import typer
from rich.console import Console

from flows.runtime import apply_quiet_defaults

EXIT_ERROR = 1

app = typer.Typer(
    name="distill-audit",
    help="Audit web-crawled corpora for text written by a named teacher model.",
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)

F = TypeVar("F", bound=Callable[..., Any])

PROJECT_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_SAMPLE_DIR = PROJECT_ROOT / "sample_data"


class CliError(Exception):
    """A one-line, user-facing reason to stop."""


def _stdout() -> Console:
    return Console(highlight=False, soft_wrap=True)


def _stderr() -> Console:
    return Console(stderr=True, highlight=False, soft_wrap=True)


def _debug() -> bool:
    return bool(os.environ.get("DISTILL_AUDIT_DEBUG"))


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text


def _user_errors() -> tuple[type[BaseException], ...]:
    """Exception types whose message is meant for the user (from modules that exist so far)."""
    kinds: list[type[BaseException]] = [CliError, FileNotFoundError, NotADirectoryError, PermissionError]
    for module, name in [
        ("pipeline.storage", "OutputExistsError"),
        ("pipeline.readers", "InputError"),
        ("pipeline.schema", "SchemaMismatchError"),
        ("pipeline.detect", "DetectError"),
        ("pipeline.report", "ReportError"),
        ("detectors.classifier", "TrainingDataError"),
        ("detectors.classifier", "ModelLoadError"),
        ("detectors.minhash", "MinHashIndexError"),
        ("pipeline.steps", "StepError"),
        ("flows.runtime", "DaskUnavailableError"),
    ]:
        try:
            kinds.append(getattr(__import__(module, fromlist=[name]), name))
        except (ImportError, AttributeError):
            continue
    return tuple(kinds)


def _fail(message: str) -> NoReturn:
    _stderr().print(f"error: {message}", markup=False)
    raise typer.Exit(EXIT_ERROR)


def one_line_errors(fn: F) -> F:
    """Turn any exception into ``error: <reason>`` and exit code 1 (traceback only when debugging)."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except (typer.Exit, typer.Abort, SystemExit):
            raise
        except KeyboardInterrupt:
            _stderr().print("error: interrupted", markup=False)
            raise typer.Exit(130) from None
        except ModuleNotFoundError as exc:
            if _debug():
                traceback.print_exc()
            _fail(f"missing dependency {exc.name}: reinstall with `make install` (or pip install -e .)")
        except Exception as exc:
            if _debug():
                traceback.print_exc()
            if isinstance(exc, _user_errors()):
                _fail(_one_line(exc))
            _fail(f"{type(exc).__name__}: {_one_line(exc)} (set DISTILL_AUDIT_DEBUG=1 for the traceback)")

    return wrapper  # type: ignore[return-value]


@contextmanager
def _flow_runtime() -> Iterator[None]:
    apply_quiet_defaults()
    from flows.runtime import embedded_prefect

    with embedded_prefect():
        yield


def _is_tty() -> bool:
    return sys.stdout.isatty()


# --------------------------------------------------------------------------------------------
# Progress: a rich display on a terminal, nothing (then a plain summary) otherwise
# --------------------------------------------------------------------------------------------


@contextmanager
def _stage_progress(stages: tuple[str, ...]) -> Iterator[None]:
    """Show the audit's stages as they run (terminal only)."""
    if not _is_tty():
        yield
        return
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    from flows.audit import add_stage_listener, remove_stage_listener

    progress = Progress(
        SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(), transient=False
    )
    ids = {s: progress.add_task(f"[dim]{s}: waiting", total=1, start=False) for s in stages}

    def listener(stage: str, status: str, detail: str) -> None:
        if stage not in ids:
            return
        task_id = ids[stage]
        if status == "start":
            progress.start_task(task_id)
            progress.update(task_id, description=f"{stage}: running")
        elif status == "done":
            progress.update(task_id, completed=1, description=f"[green]{stage}: done")
        else:
            progress.start_task(task_id)
            progress.update(task_id, completed=1, description=f"[dim]{stage}: skipped ({detail})")

    add_stage_listener(listener)
    try:
        with progress:
            yield
    finally:
        remove_stage_listener(listener)


class _TaskCompletions(logging.Handler):
    """Calls ``on_done(task_name)`` for every task run that finishes Completed in this process.

    Prefect logs "Finished in state Completed()" at INFO on ``prefect.task_runs``; the CLI
    lowers that logger to INFO while it watches, and :class:`_ConsoleAtLeast` keeps those
    lines off the console.
    """

    def __init__(self, on_done: Callable[[str], None]) -> None:
        super().__init__(logging.INFO)
        self.on_done = on_done

    def emit(self, record: logging.LogRecord) -> None:
        if record.getMessage().startswith("Finished in state Completed"):
            self.on_done(getattr(record, "task_name", ""))


class _ConsoleAtLeast(logging.Filter):
    def __init__(self, level: int) -> None:
        super().__init__()
        self.level = level

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= self.level or not record.name.startswith("prefect.task_runs")


@contextmanager
def _task_progress(description: str, counted: dict[str, int]) -> Iterator[None]:
    """A progress bar advanced by completed task runs (terminal only).

    ``counted`` maps task names to the number of runs expected (e.g. one ``ingest-file`` per
    input and one ``finalize-corpus``).
    """
    if not _is_tty():
        yield
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    task_logger = logging.getLogger("prefect.task_runs")
    consoles = [h for h in logging.getLogger().handlers if type(h).__name__ == "PrefectConsoleHandler"]
    progress = Progress(TextColumn(description), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    bar = progress.add_task(description, total=sum(counted.values()))
    watcher = _TaskCompletions(lambda name: progress.advance(bar) if name in counted else None)
    console_filter = _ConsoleAtLeast(logging.WARNING)
    old_level = task_logger.level
    for handler in consoles:
        handler.addFilter(console_filter)
    task_logger.addHandler(watcher)
    task_logger.setLevel(logging.INFO)
    try:
        with progress:
            yield
    finally:
        task_logger.setLevel(old_level)
        task_logger.removeHandler(watcher)
        for handler in consoles:
            handler.removeFilter(console_filter)


@contextmanager
def _spinner(message: str) -> Iterator[None]:
    if not _is_tty():
        yield
        return
    with _stdout().status(message):
        yield


def _count_progress(description: str) -> tuple[Callable[[int], None] | None, Callable[[], None]]:
    """A callback ``progress(done)`` that shows a live counter on a terminal; and its closer."""
    if not _is_tty():
        return None, lambda: None
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    progress = Progress(
        SpinnerColumn(), TextColumn("{task.description}: {task.completed} documents"), TimeElapsedColumn()
    )
    task_id = progress.add_task(description, total=None)
    progress.start()
    return (lambda done: progress.update(task_id, completed=done)), progress.stop


# --------------------------------------------------------------------------------------------
# Summaries
# --------------------------------------------------------------------------------------------


def _manifest_counts(manifest: dict) -> dict:
    return manifest.get("counts", manifest)


def ingest_summary(manifest: dict, out: Path) -> str:
    counts = _manifest_counts(manifest)
    rejected = counts.get("rejected", 0)
    by_reason = counts.get("rejected_by_reason") or (rejected if isinstance(rejected, dict) else {})
    total_rejected = sum(by_reason.values()) if isinstance(rejected, dict) else rejected
    reasons = ", ".join(f"{k}: {v}" for k, v in sorted(by_reason.items()))
    line = (
        f"ingested {len(manifest.get('inputs', []))} input file(s) into {out}: "
        f"{counts.get('records_read', 0)} records read, {counts.get('written', 0)} written, "
        f"{counts.get('exact_duplicates', 0)} exact duplicates, {total_rejected} rejected"
    )
    if reasons:
        line += f" ({reasons})"
    skipped = counts.get("warc_records_skipped")
    if isinstance(skipped, dict) and skipped:
        line += "; skipped WARC records: " + ", ".join(f"{k}: {v}" for k, v in sorted(skipped.items()))
    outputs = manifest.get("skipped_outputs") or []
    if outputs:
        line += "; left out of the inputs: " + ", ".join(f"{e['path']} ({e['reason']})" for e in outputs)
    return line


def _print_summary_text(report: dict) -> None:
    from pipeline.report import summary_text

    _stdout().print(summary_text(report), markup=False)


# --------------------------------------------------------------------------------------------
# Commands
# --------------------------------------------------------------------------------------------


@app.command()
@one_line_errors
def ingest(
    inputs: list[Path] = typer.Argument(..., help="Files or folders: JSONL/CSV/TSV/Parquet/text/WARC/WET."),
    out: Path = typer.Option(
        ..., "--out", help="Corpus directory to write (docs/, rejected/, manifest.json)."
    ),
    source: str | None = typer.Option(None, "--source", help="Source name for every record."),
    fmt: str | None = typer.Option(None, "--format", help="Override format detection."),
    text_field: str = typer.Option("text", "--text-field", help="Text column of JSONL/CSV/TSV/Parquet."),
    max_chars: int = typer.Option(1_000_000, "--max-chars", help="Longer texts are rejected as too_long."),
) -> None:
    """Ingest crawl files into a Parquet corpus (runs the ingest Prefect flow)."""
    from pipeline.ingest import IngestOptions, plan_inputs
    from pipeline.storage import CORPUS_OUTPUT, check_replaceable

    # Check the inputs and --out before starting Prefect: a missing path, an unknown format or an
    # --out that is not a corpus fails fast.
    check_replaceable(out, CORPUS_OUTPUT)
    specs = plan_inputs(
        [str(p) for p in inputs],
        IngestOptions(source=source, fmt=fmt, text_field=text_field, max_chars=max_chars),
        out,
    )
    with _flow_runtime(), _task_progress("ingest", {"ingest-file": len(specs), "finalize-corpus": 1}):
        from flows.ingest import ingest_flow

        manifest = ingest_flow(
            inputs=[str(p) for p in inputs],
            out=str(out),
            source=source,
            fmt=fmt,
            text_field=text_field,
            max_chars=max_chars,
        )
    counts = _manifest_counts(manifest)
    if not counts.get("written"):
        if not counts.get("records_read"):
            _fail(f"nothing could be read from {', '.join(str(p) for p in inputs)}")
        _fail(f"no document written: {ingest_summary(manifest, out)}")
    _stdout().print(ingest_summary(manifest, out), markup=False)


@app.command()
@one_line_errors
def index(
    teacher: list[Path] = typer.Option(..., "--teacher", help="Teacher reference texts (repeatable)."),
    out: Path = typer.Option(..., "--out", help="Index directory to write."),
    shingle: str | None = typer.Option(None, "--shingle", help="'word' or 'char' n-grams."),
    ngram: int | None = typer.Option(None, "--ngram", help="Shingle length."),
    num_perm: int | None = typer.Option(None, "--num-perm", help="MinHash permutations."),
    threshold: float | None = typer.Option(None, "--threshold", help="LSH Jaccard threshold."),
    text_field: str = typer.Option("text", "--text-field"),
) -> None:
    """Build a MinHash index of teacher reference outputs."""
    from pipeline.steps import build_index, minhash_params

    params = minhash_params(shingle=shingle, ngram=ngram, num_perm=num_perm, threshold=threshold)
    with _spinner(f"indexing teacher references into {out}"):
        info = build_index([str(p) for p in teacher], out, params, text_field=text_field)
    n = info.get("n_references", "?")
    _stdout().print(f"indexed {n} teacher reference texts into {out}", markup=False)


@app.command()
@one_line_errors
def train(
    teacher: list[Path] = typer.Option(..., "--teacher", help="Teacher output samples (repeatable)."),
    human: list[Path] = typer.Option(..., "--human", help="Human-written samples (repeatable)."),
    other_llm: list[Path] | None = typer.Option(
        None, "--other-llm", help="Other LLMs' outputs (repeatable)."
    ),
    out: Path = typer.Option(..., "--out", help="Model directory to write."),
    seed: int = typer.Option(0, "--seed", help="random_state for splits and the model."),
    text_field: str = typer.Option("text", "--text-field"),
) -> None:
    """Train the teacher classifier (writes model.skops, metrics.json, MODEL_CARD.md)."""
    from pipeline.steps import train as train_step

    with _spinner(f"training the classifier into {out}"):
        metrics = train_step(
            [str(p) for p in teacher],
            [str(p) for p in human],
            [str(p) for p in other_llm] if other_llm else None,
            out,
            random_state=seed,
            text_field=text_field,
        )
    dropped = metrics.get("shared_texts_dropped") or {}
    if any(dropped.values()):
        _stdout().print(
            f"dropped {sum(dropped.values())} text(s) given under two classes, from both: "
            + ", ".join(f"{cls} {n}" for cls, n in dropped.items()),
            markup=False,
        )
    op = metrics.get("operating_point", {})
    _stdout().print(
        f"trained model in {out}: ROC-AUC {metrics.get('roc_auc', float('nan')):.3f}, "
        f"TPR {op.get('tpr', float('nan')):.3f} at FPR {op.get('fpr', float('nan')):.3f} "
        f"(threshold {op.get('threshold', float('nan')):.3f})",
        markup=False,
    )


@app.command()
@one_line_errors
def calibrate(
    model: Path = typer.Argument(..., help="Model directory written by `train`."),
    teacher: list[Path] = typer.Option(
        ..., "--teacher", help="Held-out teacher outputs, NOT used to train the model (repeatable)."
    ),
    human: list[Path] = typer.Option(..., "--human", help="Human pages to place them in (repeatable)."),
    other_llm: list[Path] | None = typer.Option(
        None, "--other-llm", help="Held-out other LLMs' outputs (repeatable)."
    ),
    n_per_kind: int = typer.Option(300, "--n-per-kind", help="Documents built per placement kind."),
    seed: int = typer.Option(0, "--seed"),
    text_field: str = typer.Option("text", "--text-field"),
) -> None:
    """Measure detection rates on held-out teacher text placed as in crawls (embedded, truncated,
    short, whole, prompt/response); writes MODEL_DIR/placement.json, which `report` uses."""
    from pipeline.steps import calibrate as calibrate_step

    if not model.is_dir():
        raise CliError(f"model directory does not exist: {model}")
    with _spinner(f"calibrating {model} on placed held-out teacher text"):
        placement = calibrate_step(
            model, [str(p) for p in teacher], [str(p) for p in human],
            [str(p) for p in other_llm] if other_llm else None,
            n_per_kind=n_per_kind, seed=seed, text_field=text_field,
        )
    # strata: MinHash copy, whole-document flag, segment flag, other-LLM only; the first three flag
    flagged = {kind: sum(info["strata"][:3]) / max(info["n"], 1) for kind, info in placement["kinds"].items()}
    _stdout().print(
        f"wrote {model / 'placement.json'}: flagged share per placement "
        + ", ".join(f"{kind} {share:.2f}" for kind, share in flagged.items()),
        markup=False,
    )


@app.command()
@one_line_errors
def detect(
    corpus: Path = typer.Argument(..., help="Corpus directory written by `ingest`."),
    out: Path = typer.Option(..., "--out", help="Scores directory to write."),
    model: Path | None = typer.Option(None, "--model", help="Model directory written by `train`."),
    index: Path | None = typer.Option(None, "--index", help="Index directory written by `index`."),
    redis_url: str | None = typer.Option(
        None, "--redis-url", envvar="DISTILL_AUDIT_REDIS_URL",
        help="Keep the index's LSH buckets in this Redis (redis://host:port/db), shared by workers.",
    ),
) -> None:
    """Score every corpus document with the classifier and/or the MinHash index."""
    from pipeline.steps import detect_step

    progress, stop = _count_progress("scoring")
    try:
        info = detect_step(corpus, out, model, index, progress=progress, redis_url=redis_url)
    finally:
        stop()
    _stdout().print(
        f"scored {info.get('documents', '?')} documents ({info.get('flagged', '?')} flagged) into {out}",
        markup=False,
    )


REPORT_CONFIG_HELP = (
    "JSON file of report settings: method, n_boot, top_domains, estimation_fpr, two_level, verdict {...}, "
    "unseen_models {...} (docs/verdict.md). Recorded in report.json."
)


def read_report_config(path: Path | None) -> dict | None:
    """The report settings in the JSON file at ``path`` (None: defaults), checked."""
    if path is None:
        return None
    from pipeline.report import check_report_config
    from pipeline.storage import read_json

    try:
        config = read_json(path)
    except FileNotFoundError:
        raise CliError(f"report config file not found: {path}") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CliError(f"cannot read report config {path}: {exc}") from None
    if not isinstance(config, dict):
        raise CliError(f"report config {path} must hold a JSON object, not {type(config).__name__}")
    check_report_config(config)
    return config


@app.command()
@one_line_errors
def report(
    scores: Path = typer.Argument(..., help="Scores directory written by `detect`."),
    out: Path = typer.Option(..., "--out", help="Report directory to write (report.json)."),
    baseline: Path | None = typer.Option(None, "--baseline", help="Scores of a pre-LLM baseline crawl."),
    seed: int = typer.Option(0, "--seed", help="Bootstrap seed."),
    config: Path | None = typer.Option(None, "--config", help=REPORT_CONFIG_HELP),
) -> None:
    """Estimate the teacher share with intervals and give a verdict per source."""
    from pipeline.steps import report_step

    result = report_step(scores, out, baseline, seed, read_report_config(config))
    _print_summary_text(result)
    _stdout().print(f"report written to {out / 'report.json'}", markup=False)


def audit_parameters(**params: Any) -> dict[str, Any]:
    """:func:`flows.audit.audit_flow`'s parameters, checked before any work starts.

    Every path is made absolute against the current directory (the flow's tasks may run on
    Dask workers with another working directory), and ``redis_url`` (a str or SecretStr) must
    answer; it is returned as a ``SecretStr``, which Prefect stores masked.
    """
    from pydantic import SecretStr

    from flows.audit import absolute_parameters
    from pipeline.ingest import IngestOptions, plan_inputs

    params = absolute_parameters(params)
    get = params.get
    options = IngestOptions(
        source=get("source"),
        fmt=get("fmt"),
        text_field=get("text_field", "text"),
        max_chars=get("max_chars", 1_000_000),
    )
    plan_inputs(list(params["inputs"]), options)
    if get("baseline"):
        plan_inputs(list(params["baseline"]), options)
    for what, key in [("teacher", "teacher"), ("human", "human"), ("other-LLM", "other_llm")]:
        missing = [p for p in get(key) or [] if not Path(p).exists()]
        if missing:
            raise CliError(f"{what} reference path does not exist: {missing[0]}")
    for key in ("model", "index"):
        if get(key) is not None and not Path(params[key]).is_dir():
            raise CliError(f"{key} directory does not exist: {params[key]}")
    if get("model") is None and get("index") is None and not get("teacher"):
        raise CliError("nothing to detect with: give --teacher (and --human) references, --model or --index")
    redis_url = get("redis_url")
    if isinstance(redis_url, SecretStr):
        redis_url = redis_url.get_secret_value()
    if redis_url:
        if get("index") is not None or get("teacher"):
            from pipeline.steps import check_redis

            check_redis(redis_url)  # before Prefect starts: not after ingest and training
        params["redis_url"] = SecretStr(redis_url)
    else:
        params.pop("redis_url", None)
    return params


def run_audit(**params: Any) -> dict:
    """Check :func:`flows.audit.audit_flow`'s parameters (:func:`audit_parameters`), run it and
    print its summary."""
    params = audit_parameters(**params)
    started = time.monotonic()
    with _flow_runtime():
        from flows.audit import STAGES, audit_flow
        from flows.runtime import api_target

        with _stage_progress(STAGES):
            result = audit_flow(**params)
        target = api_target()
    _print_summary_text(result["report"])
    console = _stdout()
    console.print("", markup=False)
    for name, path in result["paths"].items():
        if path:
            console.print(f"{name:>16}: {path}", markup=False)
    for path in result.get("removed", []):
        console.print(f"{'removed':>16}: {path} (an earlier run's, not used by this report)", markup=False)
    console.print(f"{'prefect runs':>16}: {target}", markup=False)
    console.print(f"{'elapsed':>16}: {time.monotonic() - started:.1f} s", markup=False)
    return result


def _strs(paths: list[Path] | None) -> list[str] | None:
    return [str(p) for p in paths] if paths else None


@app.command()
@one_line_errors
def audit(
    inputs: list[Path] = typer.Argument(..., help="Crawl files or folders to audit."),
    out: Path = typer.Option(
        ..., "--out", help="Output directory (corpus/, index/, model/, scores/, report/)."
    ),
    teacher: list[Path] | None = typer.Option(
        None, "--teacher", help="Teacher reference outputs (repeatable)."
    ),
    human: list[Path] | None = typer.Option(None, "--human", help="Human samples for training (repeatable)."),
    other_llm: list[Path] | None = typer.Option(
        None, "--other-llm", help="Other LLMs' outputs (repeatable)."
    ),
    model: Path | None = typer.Option(
        None, "--model", help="Use this trained model instead of training one."
    ),
    index: Path | None = typer.Option(
        None, "--index", help="Use this MinHash index instead of building one."
    ),
    baseline: list[Path] | None = typer.Option(None, "--baseline", help="Pre-LLM crawl of the same sites."),
    source: str | None = typer.Option(None, "--source", help="Source name for every audited record."),
    fmt: str | None = typer.Option(None, "--format", help="Override format detection."),
    text_field: str = typer.Option("text", "--text-field"),
    max_chars: int = typer.Option(1_000_000, "--max-chars"),
    seed: int = typer.Option(0, "--seed"),
    report_config: Path | None = typer.Option(None, "--report-config", help=REPORT_CONFIG_HELP),
    redis_url: str | None = typer.Option(
        None, "--redis-url", envvar="DISTILL_AUDIT_REDIS_URL",
        help="Keep the MinHash index's LSH buckets in this Redis (redis://host:port/db) while scoring.",
    ),
) -> None:
    """Full audit as one Prefect flow: ingest -> index -> train -> detect -> report."""
    run_audit(
        inputs=[str(p) for p in inputs],
        out=str(out),
        teacher=_strs(teacher),
        human=_strs(human),
        other_llm=_strs(other_llm),
        model=str(model) if model else None,
        index=str(index) if index else None,
        baseline=_strs(baseline),
        source=source,
        fmt=fmt,
        text_field=text_field,
        max_chars=max_chars,
        seed=seed,
        report_config=read_report_config(report_config),
        # checked before any work, then a (masked) flow parameter the detect tasks receive
        redis_url=redis_url,
    )


@app.command()
@one_line_errors
def demo(
    out: Path = typer.Option(Path("build/sample-audit"), "--out", help="Output directory."),
    data: Path = typer.Option(DEFAULT_SAMPLE_DIR, "--data", help="The sample data folder."),
    model: Path | None = typer.Option(
        None, "--model", help="Reuse a model trained on the sample data instead of training one."
    ),
) -> None:
    """Audit the synthetic sample data (what `make audit` runs)."""
    needed = {name: data / name for name in ("crawl", "teacher", "human", "baseline")}
    missing = [str(p) for p in needed.values() if not p.exists()]
    if missing:
        raise CliError(f"sample data missing ({', '.join(missing)}): run `make sample-data`")
    run_audit(
        inputs=[str(needed["crawl"])],
        out=str(out),
        teacher=[str(needed["teacher"])],
        human=[str(needed["human"])],
        baseline=[str(needed["baseline"])],
        model=str(model) if model else None,
    )


def main() -> None:
    """Console-script entry point."""
    app(prog_name="distill-audit")


if __name__ == "__main__":  # pragma: no cover
    main()
