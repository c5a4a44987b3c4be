"""Per-field agreement between the first curation and the blind second reading.

Run from the repository root:  python docs/double-read/compare.py
Reads the shipped dataset and docs/double-read/second-reading.yaml; writes
docs/double-read/agreement.json and docs/double-read/disagreements.md.

Conventions
- Items compared: every sampled id whose second reading is not 'not found'.
- cancer_type: both sides resolved through vocab/cancer_types.yaml (synonyms), then compared
  case-insensitively; a name the vocabulary does not know is compared as written.
- cell_lines: both sides resolved through vocab/cell_lines.yaml; names the vocabulary does not
  know are left out on both sides (the first curation keeps them in model_detail, not in
  cell_lines), then compared as sets.
- msc_source: compared as sets.
- route, host_species, host_immune_status: in vivo items only (in vitro items carry none).
- dose: present/absent only (first: Dose.text or any structured field; second: dose_text).
- A null on either side is a value: null vs a value is a disagreement.
- Cohen's kappa for direction and delivery over the items where both sides give a value
  (sklearn.metrics.cohen_kappa_score when installed, else computed here).
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import yaml

from mscatlas.kb.records import RecordFileError, validate_paths
from mscatlas.kb.shipped import shipped_dataset, shipped_files
from mscatlas.kb.vocab import load_vocabulary

HERE = Path(__file__).resolve().parent
FIELDS = [
    "msc_species", "msc_source", "engineered", "payload", "cancer_type", "cancer_class", "cell_lines",
    "delivery", "route", "host_species", "host_immune_status", "direction", "dose_present",
]
IN_VIVO_ONLY = {"route", "host_species", "host_immune_status"}


def _val(x):
    return getattr(x, "value", x)


def _cancer(name, vocab):
    if name is None:
        return None
    try:
        return vocab.cancer_types.resolve(name).lower()
    except Exception:
        return str(name).strip().lower()


def _lines(names, vocab):
    out = set()
    for n in names or []:
        try:
            out.add(vocab.cell_lines.resolve(n))
        except Exception:
            continue
    return sorted(out)


def _payload(engineering):
    p = [e.payload for e in engineering if e.payload]
    return "; ".join(p) if p else None


def _norm_payload(p):
    if p is None:
        return None
    return "".join(ch for ch in p.lower() if ch.isalnum())


def _dose_present(dose) -> bool:
    d = dose.model_dump()
    return any(v not in (None, [], {}) for v in d.values())


def first_reading(e, vocab) -> dict:
    return {
        "msc_species": _val(e.msc_species),
        "msc_source": sorted(_val(s) for s in e.msc_source),
        "engineered": bool(e.engineering),
        "payload": _payload(e.engineering),
        "cancer_type": _cancer(e.cancer_type, vocab),
        "cancer_class": _val(e.cancer_class),
        "cell_lines": _lines(e.cell_lines, vocab),
        "delivery": _val(e.delivery),
        "route": e.route,
        "host_species": e.host.species if e.host else None,
        "host_immune_status": e.host.immune_status if e.host else None,
        "direction": _val(e.direction),
        "dose_present": _dose_present(e.dose),
        "_setting": _val(e.setting),
    }


def second_reading(r, vocab) -> dict:
    return {
        "msc_species": r.get("msc_species"),
        "msc_source": sorted(r.get("msc_source") or []),
        "engineered": bool(r.get("engineered")),
        "payload": r.get("payload"),
        "cancer_type": _cancer(r.get("cancer_type"), vocab),
        "cancer_class": r.get("cancer_class"),
        "cell_lines": _lines(r.get("cell_lines"), vocab),
        "delivery": r.get("delivery"),
        "route": r.get("route"),
        "host_species": r.get("host_species"),
        "host_immune_status": r.get("host_immune_status"),
        "direction": r.get("direction"),
        "dose_present": r.get("dose_text") not in (None, ""),
    }


def _same(field, a, b) -> bool:
    if field == "payload":
        return _norm_payload(a) == _norm_payload(b)
    return a == b


def kappa(a: list, b: list) -> float | None:
    if not a:
        return None
    try:
        from sklearn.metrics import cohen_kappa_score

        return float(cohen_kappa_score(a, b))
    except ImportError:  # pragma: no cover - fallback
        n = len(a)
        po = sum(x == y for x, y in zip(a, b, strict=True)) / n
        ca, cb = Counter(a), Counter(b)
        pe = sum(ca[k] * cb[k] for k in set(ca) | set(cb)) / (n * n)
        return 1.0 if pe == 1 else (po - pe) / (1 - pe)


def load_evidence():
    """The shipped dataset's evidence items.

    Other curators add batches to the same working tree; while one of their untracked files is
    mid-edit the whole shipped set may not validate. Then the committed (git-tracked) shipped
    files are read instead, which hold every sampled item (all from finished batches).
    """
    try:
        return shipped_dataset().evidence
    except RecordFileError as err:
        import subprocess

        root = HERE.parent.parent
        tracked = set(subprocess.run(["git", "ls-files"], cwd=root, capture_output=True, text=True,
                                     check=True).stdout.split())
        files = [f for f in shipped_files() if str(f.resolve().relative_to(root)) in tracked]
        dataset, errors = validate_paths(files)
        if dataset is None:
            raise RecordFileError(errors) from err
        print(f"note: shipped set did not validate ({len(str(err).splitlines())} error lines in "
              "untracked files); read the committed shipped files instead")
        return dataset.evidence


def main() -> None:
    vocab = load_vocabulary()
    items = {e.id: e for e in load_evidence()}
    second = yaml.safe_load((HERE / "second-reading.yaml").read_text())
    compared = [
        r for r in second if str(r.get("read", "")).strip().lower() != "not found" and r["id"] in items
    ]
    per_field = {f: {"n": 0, "agree": 0} for f in FIELDS}
    disagreements = []
    pairs = {"direction": ([], []), "delivery": ([], [])}
    for r in compared:
        first = first_reading(items[r["id"]], vocab)
        sec = second_reading(r, vocab)
        in_vivo = first["_setting"] == "in_vivo"
        for f in FIELDS:
            if f in IN_VIVO_ONLY and not in_vivo:
                continue
            per_field[f]["n"] += 1
            if _same(f, first[f], sec[f]):
                per_field[f]["agree"] += 1
            else:
                disagreements.append({"id": r["id"], "field": f, "first": first[f], "second": sec[f]})
        for f in pairs:
            if first[f] is not None and sec[f] is not None:
                pairs[f][0].append(first[f])
                pairs[f][1].append(sec[f])
    for c in per_field.values():
        c["percent"] = round(100 * c["agree"] / c["n"], 1) if c["n"] else None
    result = {
        "sample": len(second),
        "compared": len(compared),
        "fields": per_field,
        "kappa": {f: {"n": len(a), "kappa": None if kappa(a, b) is None else round(kappa(a, b), 3)}
                  for f, (a, b) in pairs.items()},
        "disagreements": len(disagreements),
    }
    (HERE / "agreement.json").write_text(json.dumps(result, indent=2) + "\n")
    lines = [
        "# Double reading: disagreements",
        "",
        f"First curation (shipped dataset) vs blind second reading, {len(compared)} of "
        f"{len(second)} sampled items compared; {len(disagreements)} field disagreements. "
        "Conventions in `compare.py`. The resolution column is filled after re-reading the source "
        "(first | second | ambiguous).",
        "",
        "| id | field | first | second | resolved |",
        "|---|---|---|---|---|",
    ]
    for d in disagreements:
        first, second_value = json.dumps(d["first"]), json.dumps(d["second"])
        lines.append(f"| {d['id']} | {d['field']} | {first} | {second_value} |  |")
    (HERE / "disagreements.md").write_text("\n".join(lines) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
