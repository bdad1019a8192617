"""The pipeline's single steps as plain functions (no Prefect).

``distill-audit index``, ``train``, ``detect`` and ``report`` call these directly, and the
tasks of :func:`flows.audit.audit_flow` call the same functions, so a step run alone and the
same step inside the audit do exactly the same thing. Keeping them here means the single-step
commands never import Prefect.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

#: Environment variable with the Redis URL for the MinHash index's LSH buckets (see detect_step).
REDIS_URL_ENV = "DISTILL_AUDIT_REDIS_URL"


class StepError(Exception):
    """A step cannot run with the inputs given; the message is a one-line reason."""


def read_references(paths: Iterable[str | Path], what: str, text_field: str = "text") -> list[dict]:
    """All usable records of reference/training inputs (JSONL/CSV/TSV/Parquet/text folders)."""
    from pipeline.readers import iter_texts

    records: list[dict] = []
    for path in paths:
        records.extend(iter_texts(path, text_field=text_field))
    if not records:
        raise StepError(f"no usable {what} texts in {', '.join(str(p) for p in paths) or '(no paths)'}")
    return records


def minhash_params(**overrides: Any) -> Any:
    """``MinHashParams`` with the given fields changed (``None`` values keep the default).

    ``threshold`` is the LSH threshold of the reference index (``lsh_threshold``). Invalid
    values raise :class:`StepError` with the dataclass's own message.
    """
    from detectors.minhash import MinHashParams

    names = {f.name for f in dataclasses.fields(MinHashParams)}
    given = {k: v for k, v in overrides.items() if v is not None}
    if "threshold" in given and "threshold" not in names:
        given["lsh_threshold"] = given.pop("threshold")
    unknown = sorted(set(given) - names)
    if unknown:
        raise StepError(f"unknown MinHash parameter(s): {', '.join(unknown)}")
    try:
        return MinHashParams(**given)
    except (TypeError, ValueError) as exc:
        raise StepError(f"invalid MinHash parameters: {exc}") from exc


def build_index(
    teacher: Sequence[str | Path], out: str | Path, params: Any = None, text_field: str = "text"
) -> dict:
    """Fit a MinHash reference index on the teacher texts and save it to ``out``; return describe()."""
    from detectors.minhash import ReferenceIndex
    from pipeline.storage import INDEX_OUTPUT, check_replaceable

    check_replaceable(out, INDEX_OUTPUT)  # before reading the references, not after
    records = read_references(teacher, "teacher", text_field)
    index = ReferenceIndex(params if params is not None else minhash_params())
    index.fit([r["text"] for r in records], [r["id"] for r in records])
    index.save(out)
    return index.describe()


def train(
    teacher: Sequence[str | Path],
    human: Sequence[str | Path],
    other_llm: Sequence[str | Path] | None,
    out: str | Path,
    random_state: int = 0,
    text_field: str = "text",
) -> dict:
    """Train the teacher classifier on reference samples and write it to ``out``; return its metrics."""
    from detectors.classifier import train_model

    teacher_records = read_references(teacher, "teacher", text_field)
    human_records = read_references(human, "human", text_field)
    other_records = read_references(other_llm, "other-LLM", text_field) if other_llm else None
    return train_model(teacher_records, human_records, other_records, out, random_state=random_state)


def calibrate(
    model: str | Path,
    teacher: Sequence[str | Path],
    human: Sequence[str | Path],
    other_llm: Sequence[str | Path] | None = None,
    n_per_kind: int = 300,
    seed: int = 0,
    text_field: str = "text",
) -> dict:
    """Measure the model's detection rates on held-out teacher text placed as it appears in
    crawls and write ``MODEL_DIR/placement.json`` (see :func:`pipeline.detect.calibrate_placement`);
    return the placement summary. ``teacher`` (and ``other_llm``) must be texts the model was not
    trained on, or the rates are optimistic; ``human`` texts are the host pages."""
    from detectors.classifier import MIN_SAMPLES_PER_CLASS
    from pipeline.detect import calibrate_placement

    teacher_records = read_references(teacher, "teacher", text_field)
    hosts = [r["text"] for r in read_references(human, "human", text_field)]
    other = [r["text"] for r in read_references(other_llm, "other-LLM", text_field)] if other_llm else []
    if len(teacher_records) < MIN_SAMPLES_PER_CLASS or len(hosts) < MIN_SAMPLES_PER_CLASS:
        raise StepError(f"placement calibration needs at least {MIN_SAMPLES_PER_CLASS} held-out teacher "
                        f"texts and {MIN_SAMPLES_PER_CLASS} human host texts (got {len(teacher_records)} "
                        f"and {len(hosts)})")
    placement = calibrate_placement(
        model, [r["text"] for r in teacher_records], hosts, other, n_per_kind=n_per_kind, seed=seed,
        teacher_prompts=[r.get("prompt") for r in teacher_records],
    )
    return placement.summary()


def check_redis(redis_url: str) -> None:
    """Raise :class:`StepError` unless ``redis_url`` is a Redis URL whose server answers a PING.

    Called before any work starts, so a Redis that is down fails the run at once rather than
    after ingest and training; the message shows the URL with its password masked.
    """
    import redis

    from detectors.minhash import redacted_url, redis_storage_config

    try:
        config = redis_storage_config(redis_url)
    except ValueError as exc:
        raise StepError(str(exc)) from exc
    try:
        with redis.Redis(**config["redis"]) as client:
            client.ping()
    except redis.RedisError as exc:
        raise StepError(f"cannot use Redis at {redacted_url(redis_url)}: {exc}") from exc


def detect_step(
    corpus: str | Path,
    out: str | Path,
    model: str | Path | None,
    index: str | Path | None,
    progress: Callable[[int], None] | None = None,
    redis_url: str | None = None,
) -> dict:
    """Score a corpus; ``redis_url`` puts the index's LSH buckets in that Redis (shared by workers)."""
    from pipeline.detect import detect

    if model is None and index is None:
        # Only the `detect` command reaches this (the audit flow checks first, and builds an
        # index or model from --teacher/--human), so name only the options `detect` has.
        raise StepError("nothing to detect with: give --model and/or --index")
    storage = None
    # The URL only concerns the MinHash index (it may come from the environment for every run).
    if redis_url and index is not None:
        from detectors.minhash import redacted_url, redis_storage_config

        try:
            storage = redis_storage_config(redis_url)
        except ValueError as exc:
            raise StepError(str(exc)) from exc
    import redis

    try:
        return detect(corpus, out, model_dir=model, index_dir=index, progress=progress, index_storage=storage)
    except redis.RedisError as exc:
        if storage is None:
            raise
        raise StepError(f"cannot use Redis at {redacted_url(redis_url)}: {exc}") from exc


def report_step(
    scores: str | Path,
    out: str | Path,
    baseline_scores: str | Path | None = None,
    seed: int = 0,
    config: Mapping[str, Any] | None = None,
) -> dict:
    """``report.json`` for the scores; ``config`` as :func:`pipeline.report.build_report`'s."""
    from pipeline.report import build_report

    return build_report(scores, out, baseline_scores_dir=baseline_scores, config=config, seed=seed)
