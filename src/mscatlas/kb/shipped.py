"""The curated dataset shipped inside the package."""

from __future__ import annotations

import hashlib
from functools import cache
from importlib import resources
from pathlib import Path

from mscatlas.kb.models import Dataset
from mscatlas.kb.records import RecordFileError, validate_paths

__all__ = ["shipped_dataset", "shipped_files", "shipped_hash"]


def shipped_files() -> list[Path]:
    """The record files of the shipped dataset: studies, evidence files, trials."""
    root = Path(str(resources.files("mscatlas.kb").joinpath("data")))
    # The review's studies first, then the studies the systematic search added (studies/*.yaml),
    # then every evidence file, then the trials.
    files = [
        root / "studies.yaml",
        *sorted((root / "studies").glob("*.yaml")),
        *sorted((root / "evidence").glob("*.yaml")),
        root / "trials.yaml",
        *sorted((root / "trials").glob("*.yaml")),
    ]
    return [f for f in files if f.exists()]


@cache
def shipped_dataset() -> Dataset:
    """The shipped dataset, validated (raises RecordFileError if a shipped file is invalid)."""
    dataset, errors = validate_paths(shipped_files())
    if dataset is None:
        raise RecordFileError(errors)
    return dataset


def shipped_hash() -> str:
    """A digest of the shipped files, to tell whether a store was seeded from this version."""
    digest = hashlib.sha256()
    for path in shipped_files():
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]
