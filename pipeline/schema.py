"""Arrow schemas of the datasets the pipeline writes, with their versions.

Data flows one way: ingest writes the *corpus* (one row per document), the detect step
writes *scores* (one row per document, keyed by ``doc_id``), and the report step reads
scores. A reader refuses a dataset whose ``schema_version`` metadata it does not know.
"""

from __future__ import annotations

import pyarrow as pa

CORPUS_SCHEMA_VERSION = "1"
SCORES_SCHEMA_VERSION = "1"

# Field metadata key under which the dataset records its schema version.
VERSION_KEY = b"distill_audit_schema_version"
KIND_KEY = b"distill_audit_kind"

CORPUS_SCHEMA = pa.schema(
    [
        pa.field("doc_id", pa.string(), nullable=False),
        pa.field("source", pa.string(), nullable=False),
        pa.field("url", pa.string()),
        pa.field("domain", pa.string()),
        pa.field("crawl_date", pa.timestamp("us", tz="UTC")),
        pa.field("text", pa.large_string(), nullable=False),
        pa.field("n_chars", pa.int64(), nullable=False),
        pa.field("content_sha1", pa.string(), nullable=False),
        pa.field("format", pa.string(), nullable=False),
        pa.field("meta", pa.string()),
    ],
    metadata={VERSION_KEY: CORPUS_SCHEMA_VERSION.encode(), KIND_KEY: b"corpus"},
)

REJECTED_SCHEMA = pa.schema(
    [
        pa.field("reason", pa.string(), nullable=False),
        pa.field("input_path", pa.string(), nullable=False),
        pa.field("position", pa.int64(), nullable=False),
        pa.field("detail", pa.string()),
        pa.field("excerpt", pa.string()),
    ],
    metadata={VERSION_KEY: CORPUS_SCHEMA_VERSION.encode(), KIND_KEY: b"rejected"},
)

SCORES_SCHEMA = pa.schema(
    [
        pa.field("doc_id", pa.string(), nullable=False),
        pa.field("source", pa.string(), nullable=False),
        pa.field("domain", pa.string()),
        pa.field("url", pa.string()),
        pa.field("crawl_date", pa.timestamp("us", tz="UTC")),
        pa.field("n_chars", pa.int64(), nullable=False),
        # classifier (null when the detect step ran without --model)
        pa.field("teacher_prob", pa.float32()),
        pa.field("teacher_prob_max_segment", pa.float32()),
        pa.field("teacher_fraction", pa.float32()),
        pa.field("llm_prob", pa.float32()),
        # MinHash (null when the detect step ran without --index)
        pa.field("minhash_similarity", pa.float32()),
        pa.field("minhash_containment", pa.float32()),
        pa.field("matched_reference_id", pa.string()),
        pa.field("cluster_id", pa.int64()),
        pa.field("cluster_size", pa.int64()),
        # cheap evidence
        pa.field("markers", pa.list_(pa.string())),
        pa.field("structure", pa.string()),
        # decision at the operating thresholds
        pa.field("flagged", pa.bool_()),
        pa.field("flag_reasons", pa.list_(pa.string())),
    ],
    metadata={VERSION_KEY: SCORES_SCHEMA_VERSION.encode(), KIND_KEY: b"scores"},
)


class SchemaMismatchError(ValueError):
    """A dataset was written with a schema (or version) this code does not read."""


def check_schema(found: pa.Schema, expected: pa.Schema, what: str) -> None:
    """Raise :class:`SchemaMismatchError` unless ``found`` carries ``expected``'s kind and version.

    Only the version and kind metadata and the field names/types are compared: Parquet
    datasets partitioned by a column may return it dictionary-encoded, so such fields are
    compared on their value type.
    """
    meta = found.metadata or {}
    exp_meta = expected.metadata or {}
    if meta.get(KIND_KEY) != exp_meta.get(KIND_KEY) or meta.get(VERSION_KEY) != exp_meta.get(VERSION_KEY):
        raise SchemaMismatchError(
            f"{what}: expected a {exp_meta.get(KIND_KEY, b'?').decode()} dataset of schema version "
            f"{exp_meta.get(VERSION_KEY, b'?').decode()}, found kind="
            f"{meta.get(KIND_KEY, b'none').decode()} version={meta.get(VERSION_KEY, b'none').decode()}"
        )
    for field in expected:
        idx = found.get_field_index(field.name)
        if idx < 0:
            raise SchemaMismatchError(f"{what}: column {field.name!r} is missing")
        found_type = found.field(idx).type
        if pa.types.is_dictionary(found_type):
            found_type = found_type.value_type
        if found_type != field.type and not (
            pa.types.is_string(found_type) and pa.types.is_large_string(field.type)
            or pa.types.is_large_string(found_type) and pa.types.is_string(field.type)
        ):
            raise SchemaMismatchError(
                f"{what}: column {field.name!r} has type {found_type}, expected {field.type}"
            )
