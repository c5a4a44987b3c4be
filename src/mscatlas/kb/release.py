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

:func:`write_release_from_store` writes the same bytes from a store with memory flat in the
number of records (issue 14 point 3): one pass over the records, a chunk at a time; the JSON file
is written as it goes, while the TSV rows and the sorted-key dumps behind the content digest are
spooled to temporary files (the digest orders the sections evidence, studies, trials: not the
order of the pass).
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import tempfile
from collections.abc import Iterator
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from mscatlas import __version__
from mscatlas.kb.export import SECTIONS, dataset_to_dict, json_list_chunks
from mscatlas.kb.files import replace_directory
from mscatlas.kb.models import SCHEMA_VERSION, Dataset

if TYPE_CHECKING:
    from mscatlas.kb.store import Store

__all__ = [
    "JSON_NAME",
    "MANIFEST_NAME",
    "TSV_NAMES",
    "release_name",
    "verify_release",
    "write_release",
    "write_release_from_store",
]

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


class _Counted:
    """Size and SHA-256 of a file's bytes as they pass to the writer."""

    def __init__(self) -> None:
        self.sha = hashlib.sha256()
        self.bytes = 0

    def through(self, chunks: Iterator[bytes]) -> Iterator[bytes]:
        for chunk in chunks:
            self.sha.update(chunk)
            self.bytes += len(chunk)
            yield chunk


def _read_back(spool: IO[bytes]) -> Iterator[bytes]:
    spool.seek(0)
    while chunk := spool.read(1 << 16):
        yield chunk


class _StreamedRelease:
    """One pass over a store's released records (see the module docstring)."""

    def __init__(self, store: Store, stack: ExitStack) -> None:
        self.store = store
        self.tsv = {kind: stack.enter_context(tempfile.TemporaryFile()) for _, kind in SECTIONS}  # noqa: SIM115 (closed by stack)
        self.sorted = {kind: stack.enter_context(tempfile.TemporaryFile()) for _, kind in SECTIONS}  # noqa: SIM115
        self.counts = dict.fromkeys((kind for _, kind in SECTIONS), 0)

    def _records(self, kind: str) -> Iterator[dict[str, Any]]:
        """Each released record of a kind as exported; its TSV row and sorted dump spooled."""
        text = io.StringIO()
        writer = csv.writer(text, delimiter="\t", lineterminator="\n", quoting=csv.QUOTE_MINIMAL)
        extra = ["dose_description"] if kind == "evidence" else []
        columns: list[str] | None = None
        for model in self.store.iter_records(kind, only_accepted=True):
            record = model.model_dump(mode="json")
            yield record
            sorted_dump = json.dumps(record, sort_keys=True, ensure_ascii=False).encode("utf-8")
            self.sorted[kind].write((b", " if self.counts[kind] else b"") + sorted_dump)
            self.counts[kind] += 1
            if kind == "evidence":
                record = {k: v for k, v in record.items() if k not in ("engineered", "ontology")}
            if columns is None:  # every record of a kind dumps the same keys
                columns = list(record)
                writer.writerow(columns + extra)
            writer.writerow(
                [_cell(record.get(name)) for name in columns] + ([model.dose.describe()] if extra else [])
            )
            if text.tell() > 1 << 16:
                self.tsv[kind].write(text.getvalue().encode("utf-8"))
                text.seek(0)
                text.truncate()
        if columns is None:
            writer.writerow(extra)
        self.tsv[kind].write(text.getvalue().encode("utf-8"))

    def json_chunks(self) -> Iterator[bytes]:
        yield ("{\n" + f'  "schema_version": {json.dumps(SCHEMA_VERSION)},\n').encode("utf-8")
        for i, (section, kind) in enumerate(SECTIONS):
            for chunk in json_list_chunks(section, self._records(kind), last=i == len(SECTIONS) - 1):
                yield chunk.encode("utf-8")
        yield b"}\n"

    def content_sha256(self) -> str:
        """SHA-256 of json.dumps(export, sort_keys=True): its top-level keys in sorted order."""
        sha = hashlib.sha256()
        parts: dict[str, Any] = {
            "evidence": "evidence",
            "schema_version": None,
            "studies": "study",
            "trials": "trial",
        }
        for i, (key, kind) in enumerate(parts.items()):
            sha.update(("{" if i == 0 else ", ").encode() + json.dumps(key).encode() + b": ")
            if kind is None:
                sha.update(json.dumps(SCHEMA_VERSION).encode())
                continue
            sha.update(b"[")
            for chunk in _read_back(self.sorted[kind]):
                sha.update(chunk)
            sha.update(b"]")
        sha.update(b"}")
        return sha.hexdigest()


def write_release_from_store(
    store: Store, out: Path, *, created: datetime | None = None, force: bool = False
) -> dict[str, Any]:
    """:func:`write_release` of the store's dataset, byte for byte, with memory flat in n."""
    created = (created or datetime.now(UTC)).astimezone(UTC)
    with ExitStack() as stack:
        release = _StreamedRelease(store, stack)
        counted = {name: _Counted() for name in (JSON_NAME, *TSV_NAMES.values())}
        manifest: dict[str, Any] = {}

        def manifest_chunks() -> Iterator[bytes]:
            # Runs after every other file is written (files are written in order): the counts,
            # sizes and digests are complete.
            total = store.counts()["evidence"]
            manifest.update(
                {
                    "release": release_name(created),
                    "schema_version": SCHEMA_VERSION,
                    "package_version": __version__,
                    "created": created.isoformat().replace("+00:00", "Z"),
                    "counts": {
                        "studies": release.counts["study"],
                        "evidence": release.counts["evidence"],
                        "trials": release.counts["trial"],
                        "evidence_not_released": total - release.counts["evidence"],
                    },
                    "content_sha256": release.content_sha256(),
                    "files": {
                        name: {"bytes": c.bytes, "sha256": c.sha.hexdigest()} for name, c in counted.items()
                    },
                }
            )
            yield (json.dumps(manifest, indent=2) + "\n").encode("utf-8")

        files: dict[str, Any] = {JSON_NAME: counted[JSON_NAME].through(release.json_chunks())}
        for section, kind in SECTIONS:
            name = TSV_NAMES[section]
            files[name] = counted[name].through(_read_back(release.tsv[kind]))
        files[MANIFEST_NAME] = manifest_chunks()
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
