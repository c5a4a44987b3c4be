"""Versioned data releases: the accepted records as JSON and TSV, with a manifest of checksums.

A release is a folder that analyses can cite by its name and verify by its manifest:

- ``mscatlas-kb.json``: the export contract (``schema_version``, ``studies``, ``evidence``,
  ``trials``), readable by ``mscatlas validate`` and ``mscatlas load``;
- ``studies.tsv``, ``evidence.tsv``, ``trials.tsv``: one row per record, lists and objects as
  JSON in their cells, for spreadsheets and R;
- ``manifest.json``: release name, schema and package versions, creation time, record counts,
  a digest of the content, and the size and SHA-256 of every file.

Only accepted evidence items are released; every study and trial is (they carry no curation
status).
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mscatlas import __version__
from mscatlas.kb.export import dataset_to_dict
from mscatlas.kb.files import replace_directory
from mscatlas.kb.models import SCHEMA_VERSION, Dataset

__all__ = ["JSON_NAME", "MANIFEST_NAME", "TSV_NAMES", "release_name", "verify_release", "write_release"]

JSON_NAME = "mscatlas-kb.json"
MANIFEST_NAME = "manifest.json"
TSV_NAMES = {"studies": "studies.tsv", "evidence": "evidence.tsv", "trials": "trials.tsv"}


def release_name(created: datetime) -> str:
    """e.g. ``mscatlas-kb-0.1.0-schema1-20250101T000000Z``."""
    stamp = created.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
    return f"mscatlas-kb-{__version__}-schema{SCHEMA_VERSION}-{stamp}"


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, (list, dict, bool)):
        return json.dumps(value, ensure_ascii=False, sort_keys=isinstance(value, dict))
    return str(value)


def _tsv(records: list[dict[str, Any]], extra: dict[str, list[str]] | None = None) -> str:
    columns: dict[str, None] = {}
    for record in records:
        columns.update(dict.fromkeys(record))
    names = list(columns) + list(extra or {})
    out = io.StringIO()
    writer = csv.writer(out, delimiter="\t", lineterminator="\n", quoting=csv.QUOTE_MINIMAL)
    writer.writerow(names)
    for i, record in enumerate(records):
        row = [_cell(record.get(name)) for name in columns]
        row += [values[i] for values in (extra or {}).values()]
        writer.writerow(row)
    return out.getvalue()


def write_release(
    dataset: Dataset, out: Path, *, created: datetime | None = None, force: bool = False
) -> dict[str, Any]:
    """Write the accepted records of ``dataset`` to the folder ``out`` and return the manifest.

    ``created`` defaults to now (UTC); pass it to make a release reproducible byte for byte.
    The folder ends up holding exactly the release, written all or nothing (an earlier release
    there is replaced; any other non-empty folder, or a symlink without ``force``, is refused
    with :class:`~mscatlas.kb.files.OutputError`).
    """
    created = (created or datetime.now(UTC)).astimezone(UTC)
    accepted = Dataset(
        studies=dataset.studies,
        evidence=[e for e in dataset.evidence if e.curation_status.value == "accepted"],
        trials=dataset.trials,
    )
    data = dataset_to_dict(accepted)
    evidence_rows = [
        {k: v for k, v in e.items() if k not in ("engineered", "ontology")} for e in data["evidence"]
    ]
    files: dict[str, bytes] = {
        JSON_NAME: (json.dumps(data, indent=2, ensure_ascii=False) + "\n").encode("utf-8"),
        TSV_NAMES["studies"]: _tsv(data["studies"]).encode("utf-8"),
        TSV_NAMES["evidence"]: _tsv(
            evidence_rows, {"dose_description": [e.dose.describe() for e in accepted.evidence]}
        ).encode("utf-8"),
        TSV_NAMES["trials"]: _tsv(data["trials"]).encode("utf-8"),
    }
    manifest = {
        "release": release_name(created),
        "schema_version": SCHEMA_VERSION,
        "package_version": __version__,
        "created": created.isoformat().replace("+00:00", "Z"),
        "counts": {
            "studies": len(accepted.studies),
            "evidence": len(accepted.evidence),
            "trials": len(accepted.trials),
            "evidence_not_released": len(dataset.evidence) - len(accepted.evidence),
        },
        "content_sha256": _sha256(json.dumps(data, sort_keys=True, ensure_ascii=False).encode("utf-8")),
        "files": {
            name: {"bytes": len(content), "sha256": _sha256(content)} for name, content in files.items()
        },
    }
    files[MANIFEST_NAME] = (json.dumps(manifest, indent=2) + "\n").encode("utf-8")
    replace_directory(out, files, marker=MANIFEST_NAME, force=force)
    return manifest


def verify_release(folder: Path) -> list[str]:
    """Problems with a release folder (missing or extra files, wrong sizes or checksums); empty if intact."""
    manifest = json.loads((folder / MANIFEST_NAME).read_text(encoding="utf-8"))
    problems = [
        f"{path.name}: not part of the release"
        for path in sorted(folder.iterdir())
        if path.name != MANIFEST_NAME and path.name not in manifest["files"]
    ]
    for name, expected in manifest["files"].items():
        path = folder / name
        if not path.is_file():
            problems.append(f"{name}: missing")
            continue
        content = path.read_bytes()
        if len(content) != expected["bytes"]:
            problems.append(f"{name}: {len(content)} bytes, manifest says {expected['bytes']}")
        if _sha256(content) != expected["sha256"]:
            problems.append(f"{name}: SHA-256 differs from the manifest")
    return problems
