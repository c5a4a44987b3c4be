"""The in silico section of the report: dose responses by MSC source, the replay agreement table
and a homing snapshot.

Cheap by design (well under a second or two): the dose-response curves are two small vectorised
sweeps per source with the default parameters (the shipped calibration only where it does better
out of sample), and the agreement table reads the held-out figures stored in
``sim/data/calibrated.yaml`` by the calibration job (refitting takes tens of minutes). When the
knowledge base given differs from the one the calibration was made on (its in vitro items hash
differently), the table says so instead of showing stale figures. The homing snapshot is a small
seeded run of the spatial agent-based model (a few hundred cells, one day, about half a second),
drawn as inline SVG.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np

from mscatlas._svg import figure_to_svg
from mscatlas.kb.enums import Setting
from mscatlas.kb.models import Dataset
from mscatlas.kb.terms import label as term_label

__all__ = ["homing_snapshot", "sim_section_context"]

RATIOS = [0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0]
CM_PERCENTS = [0.0, 10.0, 25.0, 50.0, 75.0, 100.0]
MAX_SOURCES = 6
HOMING_SEED = 0
HOMING_CANCER = 400  # cancer cells seeded in the homing snapshot's small spatial run
HOMING_MSCS = 80
HOMING_DAYS = 1.0


def _curves(sources: list[str], cancer_class: str, calibration: Any) -> dict[str, str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from mscatlas.sim.sweep import sweep

    figures = {}
    for protocol, name, values, label, log in (
        ("coculture", "ratio", RATIOS, "MSC per cancer cell (direct co-culture, 72 h)", True),
        ("cm", "cm_percent", CM_PERCENTS, "conditioned medium, % of the medium (72 h)", False),
    ):
        fig, ax = plt.subplots(figsize=(5.2, 3.4))
        for src in sources:
            rows = sweep(
                {name: values},
                protocol=protocol,
                msc_source=src,
                cancer_class=cancer_class,
                calibration=calibration,
                scheduler="synchronous",
                dt=0.5,
            ).rows
            ax.plot(values, [r["inhibition_percent"] for r in rows], marker="o", ms=3, label=term_label(src))
        ax.axhline(0.0, color="0.6", lw=0.8)
        if log:
            ax.set_xscale("log")
        ax.set_xlabel(label)
        ax.set_ylabel("% inhibition vs control")
        which = "calibrated factors" if calibration is not None else "assumed parameters"
        ax.set_title(f"{cancer_class} cancer cells, {which}", fontsize=9)
        ax.legend(fontsize=7, frameon=False)
        figures[protocol] = figure_to_svg(fig, standalone=False)
    return figures


def homing_snapshot(
    seed: int = HOMING_SEED,
    *,
    n_cancer: int = HOMING_CANCER,
    n_msc: int = HOMING_MSCS,
    days: float = HOMING_DAYS,
) -> dict[str, Any]:
    """A small seeded spatial run: the final tissue and the homing-fraction series, as inline SVG.

    Deterministic for a fixed seed (the agent model is seeded, and the SVG's element ids are
    salted with a constant). About half a second.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from mscatlas.sim.abm import AbmConfig, AbmModel
    from mscatlas.sim.abm.plot import draw_tissue

    config = AbmConfig.from_parameters(n_cancer=n_cancer, n_msc=n_msc)
    hours = 24.0 * days
    result = AbmModel(config, seed=seed).run(hours, snapshot_at=[hours])
    snap = result.snapshots[-1]
    homing = [None if f != f else round(float(f), 6) for f in result.homing_fraction]
    with plt.rc_context({"svg.hashsalt": f"mscatlas-homing-{seed}", "svg.image_inline": True}):
        fig, (left, right) = plt.subplots(1, 2, figsize=(8.4, 3.6), gridspec_kw={"width_ratios": [1, 1.15]})
        draw_tissue(left, snap, config.domain_size, max(float(snap.cxcl12.max()), 1e-12))
        left.legend(loc="upper right", fontsize=6, markerscale=3)
        left.title.set_fontsize(7)
        right.plot(
            result.time_h, [float("nan") if f is None else 100.0 * f for f in homing], color="tab:blue"
        )
        right.set_xlabel("time, h")
        right.set_ylabel("MSCs within the tumour, %")
        right.set_ylim(bottom=0.0)
        right.set_title(f"homing fraction (seed {seed})", fontsize=8)
        fig.tight_layout()
        svg = figure_to_svg(fig, standalone=False)
    final = result.final_counts()
    return {
        "svg": svg,
        "seed": seed,
        "days": days,
        "domain_um": config.domain_size,
        "n_cancer": n_cancer,
        "n_msc": n_msc,
        "time_h": [float(t) for t in result.time_h],
        "homing_fraction": homing,
        "final_homing_percent": None if homing[-1] is None else round(100.0 * homing[-1], 1),
        "final": final,
    }


def _validation_rows(validation: dict[str, Any]) -> list[tuple[str, Any, str]]:
    """Rows of the agreement table: every parameter set's held-out accuracy, log loss and Brier
    score beside the majority baseline, with the bootstrap interval of the log-loss difference."""
    if "models" not in validation:  # a calibration file from before the hierarchical job
        return [
            ("mechanistic model, calibrated, in sample", validation.get("accuracy"), "3 directions"),
            ("mechanistic model, leave one study out", validation.get("loo_accuracy"), "3 directions"),
            ("majority class of the training folds", validation.get("baseline_accuracy"), "3 directions"),
        ]
    scheme = validation.get("scheme", "held out by study")
    rows: list[tuple[str, Any, str]] = []
    names = {
        "assumed": "assumed parameters (not fitted)",
        "flat": "flat calibration (fixed priors)",
        "hierarchical": "hierarchical calibration (pooled, study effects)",
    }
    for key, model in validation["models"].items():
        d = model["vs_baseline"]["log_loss"]
        shipped = " [shipped]" if key == validation.get("model") else ""
        rows.append(
            (
                f"{names.get(key, key)}{shipped}, {scheme}",
                model["accuracy"],
                f"3 directions; log loss {model['log_loss']:.3f}, Brier {model['brier']:.3f}; vs baseline "
                f"{d['estimate']:+.3f} (95% CI {d['ci_lb']:+.3f} to {d['ci_ub']:+.3f}): {model['verdict']}; "
                "calls inhibits/promotes/no effect "
                + "/".join(str(model["calls"][k]) for k in ("inhibits", "promotes", "no_effect")),
            )
        )
    rows.append(
        (
            "majority class of the training folds (baseline)",
            validation.get("baseline_accuracy"),
            f"3 directions; log loss {validation['baseline_log_loss']:.3f}, "
            f"Brier {validation['baseline_brier']:.3f}",
        )
    )
    rows.append(("shipped calibration, held out", validation.get("loo_accuracy_binary"), "inhibits or not"))
    if validation.get("moderator_loo_accuracy") is not None:
        rows.append(
            ("moderator model, leave one study out", validation["moderator_loo_accuracy"], "inhibits or not")
        )
    return rows


def sim_section_context(dataset: Dataset) -> dict[str, Any]:
    """Template context of the in silico section (empty when there is no in vitro evidence).

    The curves use the default parameters (the shipped calibration only when it does better out
    of sample than the assumed values) and say which, with their validation line; the table
    gives every parameter set's held-out scores, and a last row what the in vivo evidence offers
    the xenograft model.
    """
    from mscatlas.sim.calibration import default_calibration, items_digest, load_calibration, out_of_sample
    from mscatlas.sim.invivo import tumour_growth_data

    in_vitro = [e for e in dataset.evidence if e.setting is Setting.in_vitro]
    calibration = load_calibration()
    if not in_vitro or calibration is None:
        return {}
    counts = Counter(e.msc_source[0].value for e in in_vitro)
    sources = [s for s, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))][:MAX_SOURCES]
    prov = calibration.provenance
    current = items_digest(dataset.evidence) == prov.get("knowledge_base", {}).get("items_sha256")
    validation = prov.get("validation", {}) if current else {}
    chosen, why_not = default_calibration()
    if chosen is not None:
        used = f"{prov.get('stamp', '')}; {out_of_sample('calibrated')['line']}"
    else:
        used = f"none: the assumed values of parameters.yaml ({why_not}); {out_of_sample('assumed')['line']}"
    rows = _validation_rows(validation) if validation else []
    invivo = tumour_growth_data(dataset.evidence)
    rows.append(("xenograft model, in vivo tumour growth", None, invivo["line"]))
    return {
        "figures": _curves(sources, "solid", chosen),
        "homing": homing_snapshot(),
        "sources": sources,
        "stamp": used,
        "current": current,
        "n_items": validation.get("n_scored"),
        "n_studies": validation.get("n_studies"),
        "rows": [(name, None if v is None else float(np.round(100 * v, 1)), kind) for name, v, kind in rows],
        "xenograft": invivo,
        "sensitivity": _sensitivity(),
    }


def _sensitivity() -> dict[str, Any]:
    """The committed Morris screening (``sim/data/sensitivity.json``): shares and the top factors."""
    from mscatlas.sim.sensitivity import load_shipped

    result = load_shipped()
    if result is None:
        return {}
    return {**result, "top": [row for row in result["factors"] if row["matters"]]}
