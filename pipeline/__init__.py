"""distill-audit pipeline: ingest, storage, estimation, verdict, reports and the CLI."""

__version__ = "0.1.0"
