"""Detectors for teacher-model text. They take plain texts and know nothing of Prefect."""
