"""Preclinical in vivo cell doses beside trial doses, on one human scale.

Each in vivo item that states cells per injection and names its host species (mouse, rat) is
translated to a 70 kg human equivalent dose (body-surface area, FDA 2005 Km factors; and body
weight) by :func:`mscatlas.trials.dose_translation.translate_dose`. Each trial's structured dose
becomes cells per administration for a 70 kg adult (cells/kg x 70, or the stated total). Both
are set against the effective intravenous range reported for MSC trials (Kabat et al. 2020).
Items whose host species is not recorded are counted, not guessed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from mscatlas.kb.enums import CurationStatus, Setting
from mscatlas.kb.models import Dataset
from mscatlas.trials.dose_translation import (
    ADULT_KG,
    KABAT_2020_IV_RANGE,
    DoseTranslationError,
    translate_dose,
)

__all__ = ["DoseComparison", "dose_comparison"]


@dataclass(frozen=True)
class DoseComparison:
    preclinical: list[dict[str, Any]] = field(default_factory=list)  # id, species, cells, hed_bsa, hed_bw
    trials: list[dict[str, Any]] = field(default_factory=list)  # nct_id, low, high (cells per dose, 70 kg)
    skipped_no_host: int = 0
    kabat_range: tuple[float, float] = KABAT_2020_IV_RANGE

    def to_dict(self) -> dict[str, Any]:
        return {
            "preclinical": self.preclinical,
            "trials": self.trials,
            "skipped_no_host": self.skipped_no_host,
            "kabat_2020_iv_range": list(self.kabat_range),
        }


def dose_comparison(dataset: Dataset) -> DoseComparison:
    preclinical, skipped = [], 0
    for item in dataset.evidence:
        if item.setting is not Setting.in_vivo or item.curation_status is not CurationStatus.accepted:
            continue
        for cells in item.dose.cells_per_injection:
            if item.host is None or item.host.species not in ("mouse", "rat"):
                skipped += 1
                continue
            try:
                t = translate_dose(item.host.species, cells=cells)
            except DoseTranslationError:
                skipped += 1
                continue
            preclinical.append(
                {
                    "id": item.id,
                    "species": item.host.species,
                    "cells": cells,
                    "direction": item.direction.value,
                    "hed_total_70kg_bsa": t.hed_total_70kg,
                    "hed_total_70kg_bw": t.hed_total_70kg_bw,
                }
            )
    trials = []
    for trial in dataset.trials:
        cells = None if trial.dose is None else trial.dose.per_kg_range(ADULT_KG)
        if cells is None:  # no dose, or a vesicle dose: not on the cell axis
            continue
        low, high = cells
        trials.append(
            {
                "nct_id": trial.nct_id,
                "low": low * ADULT_KG,
                "high": high * ADULT_KG,
                "purpose": trial.purpose.value,
            }
        )
    return DoseComparison(preclinical, trials, skipped)
