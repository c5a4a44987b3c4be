"""Blind second reading of trial doses (issue 13): the sample, and the agreement with the curation.

Run from the repository root:

    python docs/double-read/trial_doses.py sample
        prints the sample: ids and titles only, so that the second reader sees nothing else of the
        curated records; also says whether a fresh draw on today's data still gives the frozen sample.
    python docs/double-read/trial_doses.py compare [READINGS.yaml] [--json]
        compares the second reading (default: trial_doses_second.yaml beside this file) field by field
        with the curated trial records and prints the agreement and every disagreement.

The sample is 20% of the trials with a structured ``dose`` (at least 8), drawn with
``random.Random(2026)`` over the sorted ids. Other curators keep adding doses, so a later draw on the
grown registry gives another sample; the sample read is frozen in ``SAMPLE`` (drawn at commit e38cd46,
40 trials with a dose) and ``compare`` always uses it.

Hand-written comparison (no library does this): the fields are the dose amount's unit and values, the
number of doses, the route (normalised to a few classes, because registries word the same route many
ways), the donor and the tissue source. A field that both readings leave empty counts as agreement;
one left empty by only one reader counts as a disagreement of kind ``missing_first`` or
``missing_second``, so the table shows where a reader found nothing rather than something else.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import sys
from pathlib import Path

import yaml

from mscatlas.kb.records import RecordFileError, validate_paths
from mscatlas.kb.shipped import shipped_files
from mscatlas.kb.trial_dose import AMOUNT_UNITS

HERE = Path(__file__).resolve().parent
SEED = 2026
FRACTION = 0.20
MINIMUM = 8
# Drawn on 2026-12-03 at commit e38cd46 from the 40 trials that then had a structured dose.
SAMPLE = (
    "NCT00366145",
    "NCT00447460",
    "NCT01589549",
    "NCT02270307",
    "NCT02592213",
    "NCT03874572",
    "NCT04489732",
    "NCT06012604",
)
FIELDS = ("amount_unit", "amount_values", "n_doses", "route", "donor", "msc_source")
# Route wording -> class; the first class whose keyword occurs in the lower-cased wording wins.
ROUTE_CLASSES = (
    ("intraglandular", ("gland", "parotid", "submandibular")),
    ("local_axilla", ("axilla", "lipotransfer", "fat graft")),
    ("intravenous", ("intravenous", "i.v.", "infusion", "infused", "venous")),
)


def load_trials() -> dict:
    """The curated trials, by id, read from the shipped trial files only.

    Reading only the trial files keeps the comparison independent of other curators' evidence files;
    an invalid trial file raises :class:`RecordFileError` naming the file, record and field.
    """
    files = [f for f in shipped_files() if f.name == "trials.yaml" or f.parent.name == "trials"]
    dataset, errors = validate_paths(files)
    if dataset is None:
        raise RecordFileError(errors)
    return {t.nct_id: t for t in dataset.trials}


def sample_size(n: int) -> int:
    return min(n, max(MINIMUM, math.ceil(FRACTION * n)))


def draw(ids) -> list[str]:
    """The sample: ``sample_size`` ids drawn by ``random.Random(SEED)`` from the sorted ids, sorted."""
    ordered = sorted(ids)
    return sorted(random.Random(SEED).sample(ordered, sample_size(len(ordered))))


def route_class(route: str | None) -> str | None:
    if route is None or not str(route).strip():
        return None
    text = str(route).lower()
    for name, words in ROUTE_CLASSES:
        if any(w in text for w in words):
            return name
    return text.strip()


def first_reading(trial) -> dict:
    """The curated record's values of the compared fields."""
    dose = trial.dose
    amounts = {name: list(getattr(dose, name)) for name in AMOUNT_UNITS if dose and getattr(dose, name)}
    return {
        "amounts": amounts,
        "n_doses": dose.n_doses if dose else None,
        "route": trial.route,
        "route_class": route_class(trial.route),
        "donor": trial.donor,
        "msc_source": sorted(s.value for s in trial.msc_source if s.value != "unspecified"),
    }


def second_reading(row: dict) -> dict:
    amount = row.get("amount") or None
    return {
        "unit": amount["unit"] if amount else None,
        "values": [float(v) for v in amount["values"]] if amount else None,
        "n_doses": row.get("n_doses"),
        "route": row.get("route"),
        "route_class": route_class(row.get("route")),
        "donor": row.get("donor"),
        "msc_source": sorted(row.get("msc_source") or []),
    }


def _same_values(a: list[float] | None, b: list[float] | None) -> bool:
    if a is None or b is None:
        return a is b
    return len(a) == len(b) and all(math.isclose(x, y, rel_tol=1e-9) for x, y in zip(a, b, strict=True))


def _kind(first, second, same: bool) -> str:
    empty_first = first in (None, [], {})
    empty_second = second in (None, [], {})
    if empty_first and empty_second:
        return "agree"
    if empty_first:
        return "missing_first"
    if empty_second:
        return "missing_second"
    return "agree" if same else "disagree"


def _plain(first: dict, second: dict, field: str) -> tuple[str, object, object]:
    """(kind, first, second) for a field compared as is (the route by its class, shown as worded)."""
    key = "route_class" if field == "route" else field
    return _kind(first[key], second[key], first[key] == second[key]), first[field], second[field]


def compare_one(first: dict, second: dict) -> dict[str, tuple[str, object, object]]:
    """field -> (kind, first value, second value) for one trial."""
    units = sorted(first["amounts"])
    unit = second["unit"]
    unit_same = unit in units
    # Values are compared against the amount of the second reader's unit; a second reading with no
    # stated unit is compared against every curated amount (the number may match under another unit).
    if unit in first["amounts"]:
        first_values = first["amounts"][unit]
    elif len(first["amounts"]) == 1:
        first_values = next(iter(first["amounts"].values()))
    else:
        first_values = first["amounts"] or None
    values_same = (
        any(_same_values(v, second["values"]) for v in first["amounts"].values())
        if unit == "unstated"
        else _same_values(first_values if isinstance(first_values, list) else None, second["values"])
    )
    return {
        "amount_unit": (_kind(units, unit, unit_same), units, unit),
        "amount_values": (_kind(first_values, second["values"], values_same), first_values, second["values"]),
        **{f: _plain(first, second, f) for f in ("n_doses", "route", "donor", "msc_source")},
    }


def agreement(trials: dict, readings: list[dict]) -> dict:
    """Per-field agreement of the second reading with the curated records, and every disagreement."""
    by_id = {r["id"]: r for r in readings}
    missing = [i for i in SAMPLE if i not in by_id]
    if missing:
        raise ValueError(f"readings file has no entry for sampled trial(s) {', '.join(missing)}")
    unknown = [i for i in SAMPLE if i not in trials]
    if unknown:
        raise ValueError(f"sampled trial(s) {', '.join(unknown)} not in the curated trial files")
    compared = [i for i in SAMPLE if str(by_id[i].get("read", "")).strip().lower() != "not found"]
    fields = {f: {"n": 0, "agree": 0, "both_given": 0, "agree_both_given": 0} for f in FIELDS}
    rows = []
    for nct in compared:
        result = compare_one(first_reading(trials[nct]), second_reading(by_id[nct]))
        for f, (kind, a, b) in result.items():
            c = fields[f]
            c["n"] += 1
            c["agree"] += kind == "agree"
            if a not in (None, [], {}) and b not in (None, [], {}):
                c["both_given"] += 1
                c["agree_both_given"] += kind == "agree"
            if kind != "agree":
                rows.append({"id": nct, "field": f, "kind": kind, "first": a, "second": b})
    return {"sample": list(SAMPLE), "compared": compared, "fields": fields, "disagreements": rows}


def _cmd_sample() -> None:
    trials = load_trials()
    with_dose = [i for i, t in trials.items() if t.dose]
    fresh = draw(with_dose)
    print(f"# {len(with_dose)} trials with a dose now; frozen sample of {len(SAMPLE)} (seed {SEED})")
    for nct in SAMPLE:
        title = trials[nct].title if nct in trials else "(no longer in the trial files)"
        print(f"{nct}\t{title}")
    if tuple(fresh) != SAMPLE:
        print(f"# note: a draw on today's {len(with_dose)} trials gives {', '.join(fresh)}; "
              "the frozen sample is the one that was read")


def _cmd_compare(path: Path, as_json: bool) -> None:
    readings = yaml.safe_load(path.read_text(encoding="utf-8"))
    result = agreement(load_trials(), readings)
    if as_json:
        print(json.dumps(result, indent=2, default=str))
        return
    print(f"compared {len(result['compared'])} of {len(result['sample'])} sampled trials")
    for f, c in result["fields"].items():
        print(f"{f:14s} {c['agree']} of {c['n']} agree; {c['agree_both_given']} of {c['both_given']} "
              "where both readers give a value")
    for d in result["disagreements"]:
        print(f"{d['id']}\t{d['field']}\t{d['kind']}\tfirst={json.dumps(d['first'])}\tsecond={json.dumps(d['second'])}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("sample", help="print the sample (ids and titles only)")
    cmp_ = sub.add_parser("compare", help="agreement of a second reading with the curated records")
    cmp_.add_argument("readings", nargs="?", type=Path, default=HERE / "trial_doses_second.yaml")
    cmp_.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    if args.command == "sample":
        _cmd_sample()
    else:
        _cmd_compare(args.readings, args.json)


if __name__ == "__main__":
    sys.exit(main())
