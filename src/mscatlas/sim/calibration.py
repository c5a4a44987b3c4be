"""The calibrated factors of the in vitro model: the type, its file, and how it fares out of sample.

A :class:`Calibration` holds log-factors multiplying values of ``parameters.yaml``, shared by every
item of an MSC source or of a cancer class (see :mod:`mscatlas.sim.fit` for how they are fitted
and :mod:`mscatlas.sim.calibrate` for the job that writes ``data/calibrated.yaml``). This module
reads and writes the file, chooses the parameters an output uses when none is asked for
(:func:`default_calibration`) and gives every output its validation (:func:`out_of_sample`). It
imports nothing of the simulation beyond the product and parameter types, so the simulation
modules (protocol, replay, sweep) can take a calibration without importing the fit.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import yaml

from mscatlas.kb.enums import CurationStatus, Setting
from mscatlas.kb.models import EvidenceItem

if TYPE_CHECKING:
    from mscatlas.sim.build import Product
    from mscatlas.sim.model import CellParams

__all__ = [
    "CLASS_KEYS",
    "SOURCE_KEYS",
    "Calibration",
    "calibration_text",
    "default_calibration",
    "items_digest",
    "load_calibration",
    "out_of_sample",
    "shipped_validation",
]

SOURCE_KEYS = ("inhibitory", "stimulatory", "contact", "ev_cargo")
CLASS_KEYS = ("inhibitory", "stimulatory")


@dataclass(frozen=True)
class Calibration:
    """Fitted log-factors: ``source[src][key]`` and ``cancer_class[cls][key]`` (0 = assumed).

    A hierarchical calibration (:mod:`mscatlas.sim.hierarchical`) also carries the read-out
    offset of each endpoint (threshold units) and the estimated pooling sds (``source``,
    ``class``, ``endpoint``, ``study``); a flat one leaves both empty.
    """

    source: dict[str, dict[str, float]]
    cancer_class: dict[str, dict[str, float]]
    provenance: dict[str, Any] = field(default_factory=dict, compare=False)
    endpoint_offset: dict[str, float] = field(default_factory=dict)
    pooling_sd: dict[str, float] = field(default_factory=dict)

    @property
    def hierarchical(self) -> bool:
        return bool(self.pooling_sd)

    def _src(self, name: str, key: str) -> float:
        return math.exp(self.source.get(name, {}).get(key, 0.0))

    def _cls(self, name: str, key: str) -> float:
        return math.exp(self.cancer_class.get(name, {}).get(key, 0.0))

    def adjust_product(self, prod: Product) -> Product:
        """The product with its source's fitted secretion, contact and vesicle factors applied."""
        src = prod.msc_source
        secretion = list(prod.secretion)
        secretion[0] *= self._src(src, "inhibitory")
        secretion[1] *= self._src(src, "stimulatory")
        return replace(
            prod,
            secretion=tuple(secretion),
            contact_scale=prod.contact_scale * self._src(src, "contact"),
            ev_cargo_scale=prod.ev_cargo_scale * self._src(src, "ev_cargo"),
        )

    def adjust_params(self, p: CellParams, cancer_class: str) -> CellParams:
        """The cells' fitted sensitivity to the two native signals (EC50 divided by the factor)."""
        ec50 = np.array(p.sig_ec50, dtype=float, copy=True)
        ec50[0] = ec50[0] / self._cls(cancer_class, "inhibitory")
        ec50[1] = ec50[1] / self._cls(cancer_class, "stimulatory")
        return p.with_(sig_ec50=ec50)

    def to_yaml_dict(self) -> dict[str, Any]:
        stamp = self.provenance.get("stamp", "calibrated")
        counts = self.provenance.get("n_items", {})

        def entry(theta: float, name: str) -> dict[str, Any]:
            informed = counts.get(name, 0)
            return {
                "factor": round(math.exp(theta), 6),
                "log_factor": round(theta, 6),
                "n_items": informed,
                "source": stamp if informed else "assumed (no item informs it; prior mode kept)",
            }

        out: dict[str, Any] = {
            "schema_version": 2,
            "provenance": {k: v for k, v in self.provenance.items() if k != "n_items"},
            "msc_sources": {
                src: {k: entry(v, f"source.{src}.{k}") for k, v in keys.items()}
                for src, keys in sorted(self.source.items())
            },
            "cancer_classes": {
                cls: {k: entry(v, f"class.{cls}.{k}") for k, v in keys.items()}
                for cls, keys in sorted(self.cancer_class.items())
            },
        }
        if self.endpoint_offset:
            out["endpoint_offsets"] = {
                e: {"offset": round(v, 6), "n_items": counts.get(f"endpoint.{e}", 0)}
                for e, v in sorted(self.endpoint_offset.items())
            }
        if self.pooling_sd:
            out["pooling_sd"] = {g: round(v, 6) for g, v in self.pooling_sd.items()}
        return out

    @classmethod
    def from_yaml_dict(cls, data: dict[str, Any]) -> Calibration:
        if data.get("schema_version") not in (1, 2):
            raise ValueError("calibration file: unknown schema_version")
        source = {
            s: {k: float(v["log_factor"]) for k, v in keys.items()} for s, keys in data["msc_sources"].items()
        }
        klass = {
            c: {k: float(v["log_factor"]) for k, v in keys.items()}
            for c, keys in data["cancer_classes"].items()
        }
        for keys in source.values():
            if set(keys) - set(SOURCE_KEYS):
                raise ValueError(
                    f"calibration file: unknown source factor(s) {sorted(set(keys) - set(SOURCE_KEYS))}"
                )
        for keys in klass.values():
            if set(keys) - set(CLASS_KEYS):
                raise ValueError(
                    f"calibration file: unknown class factor(s) {sorted(set(keys) - set(CLASS_KEYS))}"
                )
        offsets = {e: float(v["offset"]) for e, v in (data.get("endpoint_offsets") or {}).items()}
        pooling = {g: float(v) for g, v in (data.get("pooling_sd") or {}).items()}
        return cls(source, klass, dict(data.get("provenance", {})), offsets, pooling)


@lru_cache(maxsize=4)
def _load_cached(path: str | None) -> Calibration | None:
    if path is None:
        res = resources.files("mscatlas.sim").joinpath("data/calibrated.yaml")
        if not res.is_file():
            return None
        text = res.read_text(encoding="utf-8")
    else:
        text = Path(path).read_text(encoding="utf-8")
    return Calibration.from_yaml_dict(yaml.safe_load(text))


def load_calibration(path: str | Path | None = None) -> Calibration | None:
    """The shipped calibration (``data/calibrated.yaml``; ``None`` if absent), or the one in ``path``."""
    return _load_cached(None if path is None else str(path))


def default_calibration() -> tuple[Calibration | None, str | None]:
    """The parameters outputs use when none is asked for: whichever is better out of sample.

    With stored log losses (calibration files from the hierarchical job) the shipped calibration
    is the default when its leave-one-study-out log loss is below the assumed parameters'; older
    files carry accuracies only, and there the calibration is the default while it does not lose
    to the majority baseline. Otherwise the default is the assumed parameters (``None``) and the
    second value says why, so no output uses the losing set silently.
    """
    calibration = load_calibration()
    if calibration is None:
        return None, "no calibration file is shipped; parameters.yaml used as is"
    check = out_of_sample("calibrated")
    assumed = out_of_sample("assumed")
    if check.get("log_loss") is not None and assumed.get("log_loss") is not None:
        if check["log_loss"] >= assumed["log_loss"]:
            return None, (
                f"the shipped calibration does no better out of sample than the assumed parameters "
                f"(log loss {check['log_loss']:.3f} vs {assumed['log_loss']:.3f}), so it is not the default"
            )
        return calibration, None
    if check.get("loses_to_baseline"):
        return None, (
            f"the shipped calibration loses to the majority baseline out of sample "
            f"(accuracy {check['accuracy']:.2f} vs {check['baseline_accuracy']:.2f}), "
            "so it is not the default"
        )
    return calibration, None


def shipped_validation() -> dict[str, Any]:
    """Leave-one-study-out figures stored beside the shipped calibration (empty if none)."""
    res = resources.files("mscatlas.sim").joinpath("data/calibrated.yaml")
    if not res.is_file():
        return {}
    data = yaml.safe_load(res.read_text(encoding="utf-8"))
    return dict(data.get("provenance", {}).get("validation", {}))


def out_of_sample(parameters: str) -> dict[str, Any]:
    """How the parameters a simulation used fare out of sample, for every output that uses them.

    ``parameters`` is ``calibrated`` or ``assumed``. The figures are the leave-one-study-out
    scores stored with the shipped calibration (over the scored in vitro items): direction
    accuracy, log loss and Brier score, beside the majority baseline of the training folds, with
    the paired-bootstrap interval of the log-loss difference where stored. ``loses_to_baseline``
    is judged by log loss where stored (accuracy otherwise); ``verdict`` and ``line`` say so in
    words. (The assumed parameters are not fitted, so their held-out and in-sample scores agree.)
    """
    v = shipped_validation()
    if not v:
        line = "no out-of-sample validation is shipped"
        return {"parameters": parameters, "validated": False, "line": line}
    key = "calibrated" if parameters == "calibrated" else "assumed"
    accuracy = v.get("loo_accuracy") if key == "calibrated" else v.get("accuracy_assumed")
    log_loss = v.get("loo_log_loss") if key == "calibrated" else v.get("log_loss_assumed")
    brier = v.get("loo_brier") if key == "calibrated" else v.get("brier_assumed")
    baseline, baseline_ll = v.get("baseline_accuracy"), v.get("baseline_log_loss")
    if log_loss is not None and baseline_ll is not None:
        loses: bool | None = bool(log_loss >= baseline_ll)
    else:
        loses = None if accuracy is None or baseline is None else bool(accuracy < baseline)
    interval = (v.get("vs_baseline") or {}).get(key, {}).get("log_loss")
    out = {
        "parameters": parameters,
        "validated": accuracy is not None,
        "model": v.get("model") if key == "calibrated" else "assumed parameters (parameters.yaml)",
        "n_items": v.get("n_scored"),
        "n_studies": v.get("n_studies"),
        "scheme": v.get("scheme", "leave-one-study-out"),
        "accuracy": accuracy,
        "baseline_accuracy": baseline,
        "log_loss": log_loss,
        "baseline_log_loss": baseline_ll,
        "brier": brier,
        "baseline_brier": v.get("baseline_brier"),
        "log_loss_difference": interval,
        "loses_to_baseline": loses,
        "verdict": None if loses is None else ("loses to the baseline" if loses else "beats the baseline"),
    }
    if accuracy is None:
        out["line"] = (
            f"validation: {parameters} parameters not validated out of sample; majority baseline "
            f"accuracy {baseline:.2f} on {v.get('n_scored')} in vitro items"
        )
        return out
    verdict = "LOSES TO" if loses else "beats"
    scores = f"direction accuracy {accuracy:.2f}"
    against = f"{baseline:.2f}"
    if log_loss is not None and baseline_ll is not None:
        scores = f"log loss {log_loss:.3f}, accuracy {accuracy:.2f}"
        against = f"{baseline_ll:.3f}, {baseline:.2f}"
    ci = ""
    if interval:
        ci = (
            f"; log-loss difference {interval['estimate']:+.3f} "
            f"(95% CI {interval['ci_lb']:+.3f} to {interval['ci_ub']:+.3f})"
        )
    out["line"] = (
        f"validation: {parameters} parameters, {out['scheme']}: {scores} {verdict} the majority baseline's"
        f" {against} ({v.get('n_scored')} in vitro items, {v.get('n_studies')} studies{ci})"
        + ("; treat the predicted direction as unvalidated" if loses else "")
    )
    return out


def items_digest(items: Iterable[EvidenceItem]) -> str:
    """A short hash of the in vitro items a calibration sees (ids, protocols, directions)."""
    rows = sorted(
        json.dumps(i.model_dump(mode="json", exclude={"provenance", "flags", "notes"}), sort_keys=True)
        for i in items
        if i.setting is Setting.in_vitro and i.curation_status is CurationStatus.accepted
    )
    return hashlib.sha256("\n".join(rows).encode()).hexdigest()[:16]


def calibration_text(data: dict[str, Any]) -> str:
    """The YAML file of a calibration (``Calibration.to_yaml_dict()``), with its header."""
    header = (
        "# Calibrated factors of the in vitro model (mscatlas.sim.calibrate). Written by\n"
        f"#   {data['provenance']['command']}\n"
        "# Each factor multiplies the value of parameters.yaml; do not edit by hand.\n"
    )
    return header + yaml.safe_dump(data, sort_keys=False, allow_unicode=True)
