"""The calibration job: fit the shared factors on a knowledge base, validate, write the file.

:func:`calibrate_knowledge_base` fits (:mod:`mscatlas.sim.fit`), runs the honest
leave-one-study-out replay (:mod:`mscatlas.sim.replay`) and returns the calibration with its
validation; :func:`write_calibration` writes it (``mscatlas sim calibrate --out FILE``). This
module sits above replay and sweep, which need only the :class:`Calibration` type
(:mod:`mscatlas.sim.calibration`), so the imports run one way.

Regenerate the shipped file with :data:`SHIPPED_COMMAND` (the shipped data files, seed 0);
``python -m mscatlas.sim.check_shipped`` regenerates it and fails on any difference.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from mscatlas import __version__
from mscatlas.kb.errors import RecordFileError
from mscatlas.kb.models import EvidenceItem
from mscatlas.kb.records import validate_paths
from mscatlas.kb.shipped import shipped_files
from mscatlas.sim.calibration import (
    Calibration,
    calibration_text,
    default_calibration,
    items_digest,
    load_calibration,
    out_of_sample,
)
from mscatlas.sim.fit import (
    DIRECTIONS,
    N_STARTS,
    PRIOR_SD_CLASS,
    PRIOR_SD_SOURCE,
    TEMPERATURE,
    Surfaces,
    Target,
    compute_surfaces,
    direction_probabilities,
    fit,
    predict_z,
    targets_from_items,
)
from mscatlas.sim.hierarchical import N_QUAD, fit_hierarchical, predictive_probabilities
from mscatlas.sim.replay import moderator_check
from mscatlas.sim.tasks import run_tasks
from mscatlas.sim.validation import (
    BOOTSTRAP_SEED,
    baseline_probabilities,
    compare,
    scores,
    study_folds,
    verdict,
)

SHIPPED_SETTINGS = {"seed": 0, "n_starts": 1, "n_folds": 5}
"""The settings of the shipped calibration: five folds by study and one start (the assumed values)
per fit, not one fold per study and six starts: on the 179 studies of the field-scale base that
would take many hours on the shared two-core machine the file was made on. The held-out studies
are still never seen by the fit that predicts them."""
SHIPPED_COMMAND = (
    "mscatlas sim calibrate --shipped --out src/mscatlas/sim/data/calibrated.yaml"
    " --seed 0 --starts 1 --folds 5"
)
"""How ``data/calibrated.yaml`` is made: from the shipped data files, never a user's store."""

__all__ = [
    "SHIPPED_COMMAND",
    "SHIPPED_SETTINGS",
    # The calibration's type and file, re-exported for callers of this module's older home.
    "Calibration",
    "calibrate_knowledge_base",
    "calibration_text",
    "compare_out_of_sample",
    "default_calibration",
    "items_digest",
    "load_calibration",
    "out_of_sample",
    "shipped_evidence",
    "write_calibration",
]


def _fold_probabilities(
    fold: int, targets: Sequence[Target], groups: Sequence[int], surfaces: Surfaces, seed: int, n_starts: int
) -> tuple[list[str], np.ndarray, np.ndarray, dict[str, float]]:
    """Fit both calibrations without fold ``fold``'s studies; their probabilities for its items."""
    train = [tg for tg, g in zip(targets, groups, strict=True) if g != fold]
    held = [tg for tg, g in zip(targets, groups, strict=True) if g == fold]
    flat = fit(train, surfaces, seed=seed, n_starts=n_starts).calibration
    hier = fit_hierarchical(train, surfaces, seed=seed, n_starts=n_starts)
    return (
        [tg.item_id for tg in held],
        predictive_probabilities(held, surfaces, flat),
        predictive_probabilities(held, surfaces, hier.calibration),
        hier.sd,
    )


def compare_out_of_sample(
    targets: Sequence[Target],
    surfaces: Surfaces,
    *,
    seed: int = 0,
    n_starts: int = N_STARTS,
    n_folds: int | None = None,
    scheduler: str = "synchronous",
    workers: int | None = None,
    progress: bool = False,
) -> dict[str, Any]:
    """Held-out scores of the assumed, flat and hierarchical parameters, vs the majority baseline.

    Studies are held out whole: one at a time (``n_folds=None``, leave-one-study-out) or dealt
    into ``n_folds`` folds (:func:`~mscatlas.sim.validation.study_folds`); each fold refits both
    calibrations, the hierarchical one with its pooling sds re-estimated, from the same starts
    (the assumed parameters are not fitted). Held-out probabilities are read from the surrogate
    grids the fits use. Each model is compared with the majority baseline of the training folds
    by a paired bootstrap over studies (:mod:`mscatlas.sim.validation`). ``probabilities`` keeps
    each item's held-out probabilities.
    """
    ids = [tg.item_id for tg in targets]
    observed = [tg.observed for tg in targets]
    studies = [tg.study for tg in targets]
    fold_of = study_folds(studies, n_folds)
    groups = [fold_of[s] for s in studies]
    baseline = baseline_probabilities(observed, [str(g) for g in groups])
    assumed = direction_probabilities(predict_z(targets, surfaces, Calibration({}, {})))
    results = run_tasks(
        _fold_probabilities,
        [(f, targets, groups, surfaces, seed, n_starts) for f in sorted(set(groups))],
        scheduler=scheduler,
        workers=workers,
        progress=progress,
        description="held-out refits",
    )
    held_flat: dict[str, np.ndarray] = {}
    held_hier: dict[str, np.ndarray] = {}
    fold_sds = []
    for fold_ids, p_flat, p_hier, sd in results:
        held_flat.update(zip(fold_ids, p_flat, strict=True))
        held_hier.update(zip(fold_ids, p_hier, strict=True))
        fold_sds.append(sd)
    models = {
        "assumed": assumed,
        "flat": np.vstack([held_flat[i] for i in ids]),
        "hierarchical": np.vstack([held_hier[i] for i in ids]),
    }
    out: dict[str, Any] = {
        "n_scored": len(targets),
        "n_studies": len(set(studies)),
        "scheme": "leave-one-study-out"
        if len(set(groups)) == len(set(studies))
        else f"{len(set(groups))}-fold cross-validation by study (seed {BOOTSTRAP_SEED})",
        "n_folds": len(set(groups)),
        "baseline": scores(baseline, observed),
        "models": {},
        "fold_pooling_sd": {
            g: [round(min(sd[g] for sd in fold_sds), 4), round(max(sd[g] for sd in fold_sds), 4)]
            for g in fold_sds[0]
        },
        "probabilities": {
            name: dict(zip(ids, probs.round(6).tolist(), strict=True)) for name, probs in models.items()
        },
    }
    for name, probs in models.items():
        comparison = compare(probs, baseline, observed, studies, seed=BOOTSTRAP_SEED)
        calls = Counter(DIRECTIONS[k] for k in probs.argmax(axis=1))
        out["models"][name] = {
            **comparison["model"],
            "vs_baseline": comparison["difference"],
            "verdict": verdict(comparison),
            "calls": {d: calls.get(d, 0) for d in DIRECTIONS},
            "bootstrap": comparison["bootstrap"],
        }
    return out


def calibrate_knowledge_base(
    items: Sequence[EvidenceItem],
    *,
    seed: int = 0,
    n_starts: int = N_STARTS,
    scheduler: str = "synchronous",
    workers: int | None = None,
    progress: bool = False,
    validate: bool = True,
    n_folds: int | None = None,
    command: str = SHIPPED_COMMAND,
) -> tuple[Calibration, dict[str, Any]]:
    """Fit the flat and the hierarchical calibration on ``items`` and keep the better one.

    With ``validate`` both are scored out of sample (:func:`compare_out_of_sample`) and the one
    with the lower leave-one-study-out log loss is returned, its validation stored in its
    provenance; without, the hierarchical fit is returned unvalidated.
    """
    digest = items_digest(items)
    targets = targets_from_items(items)
    stamp = f"calibrated on knowledge base {__version__} (in vitro items sha256:{digest}), seed {seed}"
    base: dict[str, Any] = {
        "knowledge_base": {"package_version": __version__, "items_sha256": digest},
        "seed": seed,
        "n_starts": n_starts,
        "n_targets": len(targets),
        "n_studies": len({tg.study for tg in targets}),
        "command": command,
    }
    surfaces = compute_surfaces(targets, scheduler=scheduler, workers=workers, progress=progress)
    flat = fit(targets, surfaces, seed=seed, n_starts=n_starts)
    hier = fit_hierarchical(targets, surfaces, seed=seed, n_starts=n_starts)
    objectives = {
        "flat": (
            f"ordered logistic likelihood of the observed direction given the simulated read-out in "
            f"threshold units (temperature {TEMPERATURE}), fixed Gaussian priors on the log-factors "
            f"(sd {PRIOR_SD_SOURCE} per source, {PRIOR_SD_CLASS} per class), L-BFGS-B from {n_starts} starts"
        ),
        "hierarchical": (
            f"the same ordered logistic (temperature {TEMPERATURE}) with an offset per endpoint and a "
            f"study random effect integrated out by {N_QUAD}-node Gauss-Hermite quadrature; per-source, "
            f"per-class and per-endpoint parameters partially pooled, their sds estimated by Laplace EM "
            f"(empirical Bayes), the study sd by marginal likelihood; L-BFGS-B from {n_starts} starts"
        ),
    }
    kind = "hierarchical"
    validation: dict[str, Any] = {}
    if validate:
        comparison = compare_out_of_sample(
            targets,
            surfaces,
            seed=seed,
            n_starts=n_starts,
            n_folds=n_folds,
            scheduler=scheduler,
            workers=workers,
            progress=progress,
        )
        models = comparison["models"]
        kind = min(("hierarchical", "flat"), key=lambda k: models[k]["log_loss"])
        chosen = models[kind]
        held = comparison["probabilities"][kind]
        in_sample = predictive_probabilities(
            targets, surfaces, (hier if kind == "hierarchical" else flat).calibration
        )
        observed = [tg.observed for tg in targets]
        binary = [
            (DIRECTIONS[int(np.argmax(held[tg.item_id]))] == "inhibits") == (tg.observed == "inhibits")
            for tg in targets
        ]
        validation = {
            "model": kind,
            "scheme": comparison["scheme"],
            "n_folds": comparison["n_folds"],
            "n_scored": comparison["n_scored"],
            "n_studies": comparison["n_studies"],
            "accuracy": scores(in_sample, observed)["accuracy"],
            "loo_accuracy": chosen["accuracy"],
            "loo_log_loss": chosen["log_loss"],
            "loo_brier": chosen["brier"],
            "baseline_accuracy": comparison["baseline"]["accuracy"],
            "baseline_log_loss": comparison["baseline"]["log_loss"],
            "baseline_brier": comparison["baseline"]["brier"],
            "accuracy_assumed": models["assumed"]["accuracy"],
            "log_loss_assumed": models["assumed"]["log_loss"],
            "brier_assumed": models["assumed"]["brier"],
            "loo_accuracy_binary": float(np.mean(binary)),
            "vs_baseline": {"calibrated": chosen["vs_baseline"], "assumed": models["assumed"]["vs_baseline"]},
            "models": models,
            "fold_pooling_sd": comparison["fold_pooling_sd"],
            "note": (
                "Held-out probabilities of every model come from refits without the item's study, "
                "read from the surrogate grids the fits use; the baseline is the direction "
                "frequencies of the training folds; intervals are 95% paired bootstraps over studies "
                f"(seed {BOOTSTRAP_SEED}). The calibration shipped is the model with the lower "
                "held-out log loss."
            ),
            **moderator_check(items, {tg.item_id for tg in targets}, seed),
        }
    result = hier if kind == "hierarchical" else flat
    prov = {"stamp": f"{stamp}, {kind}", **base, "objective": objectives[kind]}
    if kind == "hierarchical":
        prov |= {
            "pooling_sd": {k: round(v, 6) for k, v in hier.sd.items()},
            "em_iterations": hier.em_iterations,
        }
    else:
        prov["objective_value"] = round(flat.objective, 6)
    if validation:
        prov["validation"] = validation
    cal = replace(
        result.calibration, provenance={**prov, "n_items": result.calibration.provenance["n_items"]}
    )
    return cal, cal.to_yaml_dict()


def shipped_evidence() -> list[EvidenceItem]:
    """The evidence items of the package's shipped data files (studies and evidence; trials,
    which no calibration reads, are left out, so a trial file being edited cannot stop it)."""
    files = [f for f in shipped_files() if f.parent.name != "trials" and f.name != "trials.yaml"]
    dataset, errors = validate_paths(files)
    if dataset is None:
        raise RecordFileError(errors)
    return dataset.evidence


def write_calibration(
    out: str | Path,
    *,
    db: str | None = None,
    shipped: bool = False,
    seed: int = 0,
    n_starts: int = N_STARTS,
    n_folds: int | None = None,
    scheduler: str = "threads",
    workers: int | None = None,
    progress: bool = True,
    command: str | None = None,
) -> tuple[Path, dict[str, Any]]:
    """Calibrate on the knowledge base in ``db`` (default: the user store) and write ``out``.

    ``shipped=True`` reads the package's shipped data files instead of any store: the shipped
    calibration is always made this way (:data:`SHIPPED_COMMAND`).
    """
    if shipped:
        if db is not None:
            raise ValueError("give either a database or the shipped data, not both")
        items = shipped_evidence()
    else:
        from mscatlas.kb.store import Store

        store = Store.open(db)
        try:
            items = store.dataset().evidence
        finally:
            store.close()
    extra = {} if command is None else {"command": command}
    _, data = calibrate_knowledge_base(
        items,
        seed=seed,
        n_starts=n_starts,
        n_folds=n_folds,
        scheduler=scheduler,
        workers=workers,
        progress=progress,
        **extra,
    )
    path = Path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(calibration_text(data), encoding="utf-8")
    return path, data
