"""Prefect flows that orchestrate the pipeline. They hold no detection logic."""
