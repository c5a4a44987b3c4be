"""Build ``kb/data/studies.yaml`` from the review's reference list and the curated overrides.

Usage::

    PYTHONPATH=src python scripts/build_studies.py [REVIEW_TXT] [--check]

The review text (default ``../shared/reference/msc-cancer-review.txt`` beside the repository)
is parsed by :func:`mscatlas.kb.references.parse_reference_list`; every field comes out as
printed. ``kb/data/study_overrides.yaml`` then adds, per reference:

``doi`` / ``pmid``
    identifiers seen in a source during curation (``id_source`` says where; it is appended to
    the record's notes);
``corrections``
    Study fields to replace or add (e.g. a truncated journal name, or the ``risk_of_bias`` and
    ``reporting`` blocks of a study with in vivo evidence); ``review_citation`` is never
    corrected, so the printed entry stays visible next to the corrected fields;
``flags`` / ``notes``
    curator's flags and explanation;
``record_if_missing``
    a complete record for a reference that is cited in the text but absent from the list; it is
    used only when the parser does not find that reference, and the record then gets a
    ``missing_reference`` flag. ``corrections`` and ``flags`` describe the printed entry, so
    they are applied only when the entry is in the text.

The result is validated against :class:`mscatlas.kb.models.Study` before it is written; with
``--check`` the script only reports whether the file on disk is up to date.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import yaml

from mscatlas.kb.models import Study
from mscatlas.kb.references import parse_reference_list

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "src" / "mscatlas" / "kb" / "data"
DEFAULT_REVIEW = ROOT.parent / "shared" / "reference" / "msc-cancer-review.txt"
OVERRIDES = DATA / "study_overrides.yaml"
OUTPUT = DATA / "studies.yaml"
N_REFERENCES = 80

FIELD_ORDER = [
    "id",
    "ref",
    "authors",
    "et_al",
    "title",
    "journal",
    "year",
    "volume",
    "issue",
    "pages",
    "doi",
    "pmid",
    "review_citation",
    "risk_of_bias",
    "reporting",
    "flags",
    "notes",
]
OVERRIDE_KEYS = {
    "ref",
    "doi",
    "pmid",
    "id_source",
    "corrections",
    "flags",
    "notes",
    "record_if_missing",
}


def load_overrides(path: Path) -> dict[int, dict[str, Any]]:
    """Read the overrides file into a dict keyed by reference number, checking its keys."""
    entries = yaml.safe_load(path.read_text(encoding="utf-8")) or []
    result: dict[int, dict[str, Any]] = {}
    for entry in entries:
        unknown = set(entry) - OVERRIDE_KEYS
        if unknown:
            raise ValueError(f"override for ref {entry.get('ref')}: unknown keys {sorted(unknown)}")
        ref = int(entry["ref"])
        if ref in result:
            raise ValueError(f"duplicate override for ref {ref}")
        corrections = entry.get("corrections") or {}
        if "review_citation" in corrections or "id" in corrections or "ref" in corrections:
            raise ValueError(f"override for ref {ref}: id, ref and review_citation are not correctable")
        result[ref] = entry
    return result


def merge(parsed: dict[str, Any] | None, override: dict[str, Any] | None, ref: int) -> dict[str, Any]:
    """Combine one parsed entry with its override into a Study-shaped dict."""
    override = override or {}
    flags: list[dict[str, str]] = []
    if parsed is None:
        base = override.get("record_if_missing")
        if not base:
            raise ValueError(f"reference {ref} is neither in the text nor in the overrides")
        record = {"id": f"ref{ref}", "ref": ref, **base}
        flags.append(
            {
                "code": "missing_reference",
                "note": f"Reference {ref} is cited in the review text but absent from its "
                "reference list; the record was assembled from the curator's sources.",
            }
        )
    else:
        record = dict(parsed)
        record.update(override.get("corrections") or {})
        flags.extend(override.get("flags") or [])
    for key in ("doi", "pmid"):
        if override.get(key):
            record[key] = str(override[key])
    if flags:
        record["flags"] = flags
    notes = [n for n in (override.get("notes"), override.get("id_source")) if n]
    if override.get("id_source"):
        notes[-1] = f"Identifiers: {override['id_source']}"
    if notes:
        record["notes"] = " ".join(n.strip() for n in notes)
    ordered = {k: record[k] for k in FIELD_ORDER if record.get(k) not in (None, [], "")}
    return ordered


def build(review: Path, overrides_path: Path = OVERRIDES) -> list[dict[str, Any]]:
    """Return the validated study records, in reference order."""
    parsed = {r["ref"]: r for r in parse_reference_list(review.read_text(encoding="utf-8"))}
    overrides = load_overrides(overrides_path)
    extra = sorted(set(overrides) - set(range(1, N_REFERENCES + 1)))
    if extra:
        raise ValueError(f"overrides for references outside 1-{N_REFERENCES}: {extra}")
    records = [merge(parsed.get(n), overrides.get(n), n) for n in range(1, N_REFERENCES + 1)]
    for rec in records:
        Study.model_validate(rec)
    return records


def dump(records: list[dict[str, Any]]) -> str:
    header = (
        "# Generated by scripts/build_studies.py from the review's reference list and\n"
        "# study_overrides.yaml. Do not edit by hand: edit the overrides and rebuild.\n"
    )
    body = yaml.safe_dump(records, sort_keys=False, allow_unicode=True, width=100)
    return header + body


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("review", nargs="?", type=Path, default=DEFAULT_REVIEW)
    parser.add_argument("--check", action="store_true", help="only check that the output is current")
    args = parser.parse_args(argv)
    if not args.review.is_file():
        print(f"review text not found: {args.review}", file=sys.stderr)
        return 2
    records = build(args.review)
    text = dump(records)
    if args.check:
        current = OUTPUT.read_text(encoding="utf-8") if OUTPUT.exists() else ""
        if current != text:
            print(f"{OUTPUT} is out of date; run scripts/build_studies.py", file=sys.stderr)
            return 1
        print(f"{OUTPUT} is up to date ({len(records)} records)")
        return 0
    OUTPUT.write_text(text, encoding="utf-8")
    n_doi = sum(1 for r in records if r.get("doi"))
    n_pmid = sum(1 for r in records if r.get("pmid"))
    n_flag = sum(1 for r in records if r.get("flags"))
    print(
        f"wrote {OUTPUT.relative_to(ROOT)}: {len(records)} records, {n_doi} with DOI, "
        f"{n_pmid} with PMID, {n_flag} flagged"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
