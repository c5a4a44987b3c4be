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
from mscatlas.sim.protocol import Outcome, call_direction, run
from mscatlas.sim.setup import MODELLED_ENDPOINTS, SIMULATED_DELIVERIES, item_setup

if TYPE_CHECKING:
    from mscatlas.sim.calibration import Calibration

__all__ = ["MODELLED_ENDPOINTS", "ProtocolRun", "ReplayReport", "moderator_check", "replay", "run_protocol"]


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
    inputs: dict[str, dict[str, Any]] = field(default_factory=dict)  # name -> value, origin, basis

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
            "inputs": self.inputs,
            "notes": list(self.notes),
        }


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
        inputs=setup.origins(),
    )


def _accuracy(runs: Sequence[ProtocolRun]) -> float | None:
    return sum(r.observed == r.predicted for r in runs) / len(runs) if runs else None


@dataclass(frozen=True)
class ReplayReport:
    runs: tuple[ProtocolRun, ...]
    skipped: tuple[dict[str, str], ...]
    validation: dict[str, Any] | None = None  # set when the parameters were calibrated
    parameters: str = "assumed"  # without refits: assumed, or a given calibration (in sample)

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
            "loo_accuracy": self.accuracy if self.parameters == "assumed" else None,
            "parameters": self.parameters,
            "parameters_fitted": False,
            "loo_note": (
                "No parameter is fitted to the knowledge base: all values come from "
                "parameters.yaml (literature or assumed; per-source scales neutral at 1.0). "
                "Holding a study out changes nothing, so loo_accuracy equals the in-sample "
                "accuracy. The assumed values were set by a developer who had read the review, "
                "so this is not a blind test."
                if self.parameters == "assumed"
                else "A stored calibration was applied without refitting: accuracy is in sample "
                "(its items trained it). Its out-of-sample figures are the stored validation; "
                "`mscatlas sim replay --refit` refits once per study."
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
    calibration: Calibration | None = None,
    seed: int = 0,
    n_starts: int = 6,
    scheduler: str = "threads",
    workers: int | None = None,
    progress: bool = False,
    prepared: tuple[Any, Any, Any] | None = None,
) -> ReplayReport:
    """Run :func:`run_protocol` for every accepted in vitro item (others are skipped and listed).

    ``calibrate=False`` uses ``calibration`` (``None``: the parameter file as it is) for every
    item, in sample: nothing is refitted. ``calibrate=True`` fits the shared
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
        if item.delivery.value not in SIMULATED_DELIVERIES:
            skipped.append(
                {"id": item.id, "reason": f"delivery '{item.delivery.value}' has no in vitro model"}
            )
            continue
        chosen.append(item)
    if not calibrate:
        runs = [run_protocol(item, t, calibration=calibration) for item in chosen]
        used = "assumed" if calibration is None else "calibrated"
        return ReplayReport(tuple(runs), tuple(skipped), parameters=used)
    return _calibrated_replay(chosen, skipped, t, seed, n_starts, scheduler, workers, progress, prepared)


def moderator_check(items: Sequence[EvidenceItem], scored_ids: set[str], seed: int) -> dict[str, Any]:
    """The statistical moderator model's leave-one-study-out accuracy on the same scored items.

    Empty when fewer than three studies remain. That model predicts inhibits vs not, so it
    compares with the mechanistic model's ``loo_accuracy_binary``.
    """
    from mscatlas.stats.harmonize import harmonize
    from mscatlas.stats.moderators import leave_one_study_out as moderator_loso

    harmonized = [h for h in harmonize(list(items)) if h.id in scored_ids]
    if len({h.study for h in harmonized}) < 3:
        return {}
    validation = moderator_loso(harmonized, seed=seed)
    return {
        "moderator_loo_accuracy": validation.accuracy,
        "moderator_n_items": validation.n_items,
        "moderator_note": (
            "Bayesian multilevel logistic moderator model (mscatlas.stats.moderators), "
            "refitted without each study on these same items; it predicts inhibits vs not, "
            "so compare it with loo_accuracy_binary."
        ),
    }


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
    from mscatlas.sim import fit as cal_mod

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
    moderator = moderator_check(chosen, {r.item_id for r in scored}, seed)
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
