"""Run the protocol of a knowledge-base evidence item, and replay every in vitro item.

:func:`run_protocol` reads an item's delivery, ratios, CM percentages or dilutions, conditioning
cells, vesicle amounts and exposure times, fills what the item does not state from the
``protocol`` defaults of the parameter file (and lists every default it used), simulates, and
calls the direction from the read-out that matches the item's endpoint. Where an item tests
several doses, each is simulated and the prediction is the one at the highest dose (the dose
the harmonised view places the item at).

Honesty note on :func:`replay`: no parameter of the model is fitted to the knowledge base in this
version. Every per-source and per-class value comes from ``data/parameters.yaml`` (literature
numbers or openly assumed values; the per-source scales all sit at the neutral 1.0). Leaving a
study out therefore changes no parameter, and the leave-one-study-out accuracy equals the plain
accuracy; the report says so in ``parameters_fitted`` and ``loo_note``. The assumed values were
nevertheless chosen by a developer who had read the review the knowledge base comes from, so
the agreement is not a blind test either.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from mscatlas.kb.enums import CurationStatus, Setting
from mscatlas.kb.models import EvidenceItem
from mscatlas.sim.parameters import ParameterTable, load_parameters
from mscatlas.sim.protocol import Conditioning, Outcome, Protocol, call_direction, run

if TYPE_CHECKING:
    from mscatlas.sim.calibrate import Calibration

__all__ = ["MODELLED_ENDPOINTS", "ProtocolRun", "ReplayReport", "replay", "run_protocol"]

MODELLED_ENDPOINTS = frozenset({"proliferation", "viability", "apoptosis", "cell_cycle"})
"""Endpoints with a read-out in the model; others are called from the viable count."""

_SIMULATED = {"direct_coculture", "transwell", "conditioned_medium", "cell_extract", "extracellular_vesicles"}


@dataclass(frozen=True)
class ProtocolRun:
    """One item's protocol, simulated: the prediction and how it was obtained."""

    item_id: str
    study: str
    endpoint: str
    delivery: str
    observed: str
    predicted: str
    doses: tuple[dict[str, Any], ...]  # per simulated dose: the dose, read-out, predicted direction
    hours: float
    defaults_used: tuple[str, ...]
    notes: tuple[str, ...]
    outcome: Outcome = field(repr=False, compare=False)

    @property
    def endpoint_modelled(self) -> bool:
        return self.endpoint in MODELLED_ENDPOINTS

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.item_id,
            "study": self.study,
            "endpoint": self.endpoint,
            "delivery": self.delivery,
            "observed": self.observed,
            "predicted": self.predicted,
            "agree": self.observed == self.predicted,
            "endpoint_modelled": self.endpoint_modelled,
            "hours": self.hours,
            "doses": list(self.doses),
            "defaults_used": list(self.defaults_used),
            "notes": list(self.notes),
        }


def _ev_ug_per_ml(value: float, unit: str, table: ParameterTable, volume: float) -> float | None:
    u = unit.replace("μ", "µ").replace("ug", "µg").lower()
    if u == "µg/ml":
        return value
    if u == "ng/ml":
        return value / 1000.0
    if u == "mg/ml":
        return value * 1000.0
    if u == "µg":
        return value / volume
    if u == "particles/ml":
        return value / table.value("ev", "particles_per_ug")
    return None


def _doses(
    item: EvidenceItem, table: ParameterTable, defaults: list[str], notes: list[str]
) -> list[dict[str, Any]]:
    """The protocols' dose keyword arguments, one per tested dose, lowest first."""
    dose = item.dose
    delivery = item.delivery.value
    if delivery in ("direct_coculture", "transwell"):
        ratios = sorted({r.msc_per_cancer for r in dose.ratios if r.msc > 0})
        if not ratios and dose.msc_cells_per_well:
            cancer = (dose.cancer_cells_per_well or [table.cancer[item.cancer_class]["seed_cells"].value])[0]
            ratios = sorted({m / cancer for m in dose.msc_cells_per_well})
            notes.append("ratio from MSCs per well over cancer cells per well")
        if not ratios:
            ratios = [table.value("protocol", "default_ratio")]
            defaults.append("default_ratio")
        return [{"msc_per_cancer": r} for r in ratios]
    if delivery in ("conditioned_medium", "cell_extract"):
        percents = sorted({p for p in dose.cm_percent if p > 0} | {d.percent for d in dose.cm_dilutions})
        if not percents:
            percents = [table.value("protocol", "default_cm_percent")]
            defaults.append("default_cm_percent")
        if dose.conditioning_cells is None:
            defaults.append("conditioning_cells")
        return [{"cm_percent": p} for p in percents]
    volume = table.cancer[item.cancer_class]["well_volume"].value
    amounts = []
    for a in dose.ev_amounts:
        converted = _ev_ug_per_ml(a.value, a.unit, table, volume)
        if converted is None:
            notes.append(f"EV unit '{a.unit}' not convertible; ignored")
        else:
            amounts.append(converted)
    if not amounts:
        amounts = [table.value("protocol", "default_ev_dose")]
        defaults.append("default_ev_dose")
    return [{"ev_ug_per_ml": a} for a in sorted(set(amounts))]


@dataclass(frozen=True)
class ItemSetup:
    """What an item's protocol is, before any simulation: one :class:`Protocol` per tested dose."""

    protocols: tuple[Protocol, ...]  # lowest dose first; the prediction is read at the last one
    dose_kwargs: tuple[dict[str, Any], ...]
    hours: float
    msc_source: str
    cancer_class: str
    engineering: tuple[tuple[str, str], ...]
    defaults_used: tuple[str, ...]
    notes: tuple[str, ...]


def item_setup(item: EvidenceItem, table: ParameterTable | None = None) -> ItemSetup:
    """The protocols of ``item`` (its doses, hours, conditioning), with the defaults filled in."""
    t = table or load_parameters()
    if item.setting is not Setting.in_vitro:
        raise ValueError(f"{item.id} is an in vivo item; run_protocol replays in vitro protocols")
    if item.delivery.value not in _SIMULATED:
        raise ValueError(f"{item.id}: delivery '{item.delivery.value}' has no in vitro model")
    defaults: list[str] = []
    notes: list[str] = []
    if item.duration and item.duration.hours:
        hours = max(item.duration.hours)
    else:
        hours = t.value("protocol", "default_hours")
        defaults.append("default_hours")
    if len(item.msc_source) > 1:
        notes.append(f"pooled sources {[s.value for s in item.msc_source]}: first one simulated")
    if item.endpoint.value not in MODELLED_ENDPOINTS:
        notes.append(f"endpoint '{item.endpoint.value}' has no model read-out: called from the viable count")
    dose_kwargs = _doses(item, t, defaults, notes)
    conditioning = None
    if item.dose.conditioning_cells is not None:
        conditioning = Conditioning(
            item.dose.conditioning_cells,
            t.value("protocol", "conditioning_volume"),
            t.value("protocol", "conditioning_hours"),
        )
    cancer_cells = item.dose.cancer_cells_per_well[0] if item.dose.cancer_cells_per_well else None
    protocols = tuple(
        Protocol(
            item.delivery.value,  # type: ignore[arg-type]
            hours,
            conditioning=conditioning,
            cancer_cells=cancer_cells,
            **kwargs,
        )
        for kwargs in dose_kwargs
    )
    return ItemSetup(
        protocols=protocols,
        dose_kwargs=tuple(dose_kwargs),
        hours=hours,
        msc_source=item.msc_source[0].value,
        cancer_class=item.cancer_class.value,
        engineering=tuple((e.kind, e.detail) for e in item.engineering),
        defaults_used=tuple(dict.fromkeys(defaults)),
        notes=tuple(notes),
    )


def run_protocol(
    item: EvidenceItem, table: ParameterTable | None = None, calibration: Calibration | None = None
) -> ProtocolRun:
    """Simulate the in vitro protocol of ``item`` and predict the direction of its effect.

    ``calibration`` (see :mod:`mscatlas.sim.calibrate`) applies fitted per-source and per-class
    factors; ``None`` runs the values of the parameter file as they are.
    """
    t = table or load_parameters()
    setup = item_setup(item, t)
    notes = list(setup.notes)
    per_dose: list[dict[str, Any]] = []
    outcome: Outcome | None = None
    predicted = "no_effect"
    for kwargs, proto in zip(setup.dose_kwargs, setup.protocols, strict=True):
        outcome = run(
            proto,
            setup.msc_source,
            setup.cancer_class,
            engineering=setup.engineering,
            table=t,
            calibration=calibration,
        )
        predicted = call_direction(outcome, item.endpoint.value, t)
        per_dose.append({**kwargs, **outcome.final(), "predicted": predicted})
    assert outcome is not None
    notes.extend(outcome.notes)
    return ProtocolRun(
        item_id=item.id,
        study=item.study,
        endpoint=item.endpoint.value,
        delivery=item.delivery.value,
        observed=item.direction.value,
        predicted=predicted,
        doses=tuple(per_dose),
        hours=setup.hours,
        defaults_used=setup.defaults_used,
        notes=tuple(notes),
        outcome=outcome,
    )


def _accuracy(runs: Sequence[ProtocolRun]) -> float | None:
    return sum(r.observed == r.predicted for r in runs) / len(runs) if runs else None


@dataclass(frozen=True)
class ReplayReport:
    runs: tuple[ProtocolRun, ...]
    skipped: tuple[dict[str, str], ...]
    validation: dict[str, Any] | None = None  # set when the parameters were calibrated

    @property
    def scored(self) -> list[ProtocolRun]:
        """Runs whose observed direction is a single direction (``mixed`` cannot be scored)."""
        return [r for r in self.runs if r.observed != "mixed"]

    @property
    def accuracy(self) -> float | None:
        return _accuracy(self.scored)

    @property
    def majority(self) -> str | None:
        counts = Counter(r.observed for r in self.scored)
        return counts.most_common(1)[0][0] if counts else None

    @property
    def baseline_accuracy(self) -> float | None:
        """Accuracy of always predicting the most frequent observed direction (in sample)."""
        scored = self.scored
        return sum(r.observed == self.majority for r in scored) / len(scored) if scored else None

    @property
    def baseline_loo_accuracy(self) -> float | None:
        """Majority-class baseline with the majority taken from the other studies only."""
        scored = self.scored
        if not scored:
            return None
        hits = 0
        for r in scored:
            others = Counter(o.observed for o in scored if o.study != r.study)
            hits += bool(others) and others.most_common(1)[0][0] == r.observed
        return hits / len(scored)

    def to_dict(self) -> dict[str, Any]:
        scored = self.scored
        modelled = [r for r in scored if r.endpoint_modelled]
        confusion = Counter(f"{r.observed}->{r.predicted}" for r in scored)
        out: dict[str, Any] = {
            "items": [r.to_dict() for r in self.runs],
            "n_items": len(self.runs),
            "n_scored": len(scored),
            "n_studies": len({r.study for r in scored}),
            "accuracy": self.accuracy,
            "loo_accuracy": self.accuracy,
            "parameters_fitted": False,
            "loo_note": (
                "No parameter is fitted to the knowledge base: all values come from "
                "parameters.yaml (literature or assumed; per-source scales neutral at 1.0). "
                "Holding a study out changes nothing, so loo_accuracy equals the in-sample "
                "accuracy. The assumed values were set by a developer who had read the review, "
                "so this is not a blind test."
            ),
            "baseline_accuracy": self.baseline_accuracy,
            "baseline_majority": self.majority,
            "baseline_loo_accuracy": self.baseline_loo_accuracy,
            "accuracy_modelled_endpoints": _accuracy(modelled),
            "n_modelled_endpoints": len(modelled),
            "confusion": dict(sorted(confusion.items())),
            "skipped": list(self.skipped),
        }
        if self.validation is not None:
            loo = self.validation["loo_predicted"]
            for row in out["items"]:
                if row["id"] in loo:
                    row["loo_predicted"] = loo[row["id"]]
            out.update({k: v for k, v in self.validation.items() if k != "loo_predicted"})
            out["baseline_in_sample_accuracy"] = self.baseline_accuracy
            out["baseline_accuracy"] = self.baseline_loo_accuracy
        return out


def replay(
    items: Iterable[EvidenceItem],
    table: ParameterTable | None = None,
    *,
    calibrate: bool = False,
    seed: int = 0,
    n_starts: int = 6,
    scheduler: str = "threads",
    workers: int | None = None,
    progress: bool = False,
    _prepared: tuple[Any, Any, Any] | None = None,
) -> ReplayReport:
    """Run :func:`run_protocol` for every accepted in vitro item (others are skipped and listed).

    ``calibrate=False`` uses the parameter file as it is. ``calibrate=True`` fits the shared
    per-source and per-class factors on these items (:mod:`mscatlas.sim.calibrate`), predicts
    every item with that fit (``accuracy``, in sample), and then, for each study, refits without
    the study and predicts its items (``loo_accuracy``: genuine leave-one-study-out). Beside it:
    the majority class of the training folds (``baseline_accuracy``) and the statistical moderator
    model's leave-one-study-out accuracy on the same items (``moderator_loo_accuracy``; that model
    predicts inhibits / does not inhibit, so compare it with ``loo_accuracy_binary``).
    """
    t = table or load_parameters()
    items = list(items)
    runs: list[ProtocolRun] = []
    skipped: list[dict[str, str]] = []
    chosen: list[EvidenceItem] = []
    for item in items:
        if item.setting is not Setting.in_vitro or item.curation_status is not CurationStatus.accepted:
            continue
        if item.delivery.value not in _SIMULATED:
            skipped.append(
                {"id": item.id, "reason": f"delivery '{item.delivery.value}' has no in vitro model"}
            )
            continue
        chosen.append(item)
    if not calibrate:
        runs = [run_protocol(item, t) for item in chosen]
        return ReplayReport(tuple(runs), tuple(skipped))
    return _calibrated_replay(chosen, skipped, t, seed, n_starts, scheduler, workers, progress, _prepared)


def _calibrated_replay(
    chosen: list[EvidenceItem],
    skipped: list[dict[str, str]],
    t: ParameterTable,
    seed: int,
    n_starts: int,
    scheduler: str,
    workers: int | None,
    progress: bool,
    prepared: tuple[Any, Any, Any] | None,
) -> ReplayReport:
    from mscatlas.sim import calibrate as cal_mod
    from mscatlas.stats.harmonize import harmonize
    from mscatlas.stats.moderators import leave_one_study_out as moderator_loso

    if prepared is None:
        targets = cal_mod.targets_from_items(chosen, t)
        surfaces = cal_mod.compute_surfaces(
            targets, t, scheduler=scheduler, workers=workers, progress=progress
        )
        full = cal_mod.fit(targets, surfaces, seed=seed, n_starts=n_starts)
    else:
        targets, surfaces, full = prepared
    runs = [run_protocol(item, t, calibration=full.calibration) for item in chosen]
    folds = cal_mod.leave_one_study_out(
        targets,
        surfaces,
        seed=seed,
        n_starts=n_starts,
        scheduler=scheduler,
        workers=workers,
        progress=progress,
    )
    by_id = {item.id: item for item in chosen}
    loo_predicted: dict[str, str] = {}
    for tg in targets:
        item = by_id[tg.item_id]
        setup = item_setup(item, t)
        outcome = run(
            setup.protocols[-1],
            setup.msc_source,
            setup.cancer_class,
            engineering=setup.engineering,
            table=t,
            calibration=folds[tg.study],
        )
        loo_predicted[tg.item_id] = call_direction(outcome, item.endpoint.value, t)
    scored = [r for r in runs if r.observed != "mixed"]
    n = len(scored)
    loo_hits = sum(loo_predicted[r.item_id] == r.observed for r in scored)
    binary_hits = sum((loo_predicted[r.item_id] == "inhibits") == (r.observed == "inhibits") for r in scored)
    moderator: dict[str, Any] = {}
    scored_ids = {r.item_id for r in scored}
    harmonized = [h for h in harmonize(chosen) if h.id in scored_ids]
    if len({h.study for h in harmonized}) >= 3:
        validation = moderator_loso(harmonized, seed=seed)
        moderator = {
            "moderator_loo_accuracy": validation.accuracy,
            "moderator_n_items": validation.n_items,
            "moderator_note": (
                "Bayesian multilevel logistic moderator model (mscatlas.stats.moderators), "
                "refitted without each study on these same items; it predicts inhibits vs not, "
                "so compare it with loo_accuracy_binary."
            ),
        }
    validation_out: dict[str, Any] = {
        "parameters_fitted": True,
        "loo_accuracy": loo_hits / n if n else None,
        "loo_accuracy_binary": binary_hits / n if n else None,
        "loo_note": (
            f"Shared factors (per MSC source: inhibitory and stimulatory secretion, contact, vesicle "
            f"cargo; per cancer class: sensitivity to each signal) were fitted on all items for "
            f"'predicted' and 'accuracy', and refitted {len(folds)} times, once without each study, "
            f"for 'loo_predicted' and 'loo_accuracy'. baseline_accuracy is the majority direction of "
            f"the training folds."
        ),
        "loo_predicted": loo_predicted,
        "n_folds": len(folds),
        "calibration": {
            "seed": seed,
            "n_starts": n_starts,
            "objective": full.objective,
            "log_factors": full.theta,
        },
        **moderator,
    }
    return ReplayReport(tuple(runs), tuple(skipped), validation_out)
