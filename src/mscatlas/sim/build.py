"""Turn the parameter file into the numbers of one system: an MSC product on a cancer class.

Parameters are shared per MSC source and per cancer class (never per study). Engineering of the
product enters as multipliers of its secretion (by curated engineering kind) and as payload
channels (TRAIL, IFN-beta, oncolytic virus) recognised in the engineering's wording or named
explicitly.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from mscatlas.kb.enums import CancerClass, MscSource
from mscatlas.sim.model import CellParams, cycle_rates
from mscatlas.sim.parameters import SIGNALS, ParameterTable, load_parameters

__all__ = ["PAYLOADS", "Product", "cell_params", "payloads_in", "product"]

PAYLOADS = ("trail", "ifn_beta", "oncolytic_virus")

_PAYLOAD_WORDS = {
    "trail": re.compile(r"\bTRAIL\b|TNFSF10", re.IGNORECASE),
    "ifn_beta": re.compile(r"IFN[-\s]?(?:β|beta|b)\b|interferon[-\s]?(?:β|beta)", re.IGNORECASE),
    "oncolytic_virus": re.compile(r"oncolytic|adenovir|measles|herpes|HSV|reovir", re.IGNORECASE),
}


def payloads_in(kind: str, detail: str) -> set[str]:
    """Payloads named by one engineering entry (its kind and its wording)."""
    found = {name for name, pattern in _PAYLOAD_WORDS.items() if pattern.search(detail or "")}
    if kind == "virus_loaded":
        found.add("oncolytic_virus")
    return found


@dataclass(frozen=True)
class Product:
    """What an MSC product secretes, after source scales, engineering and payloads.

    ``secretion`` is per 1e6 MSCs per hour for each channel of :data:`SIGNALS`.
    """

    msc_source: str
    engineering: tuple[str, ...]
    payloads: tuple[str, ...]
    secretion: tuple[float, ...]
    contact_scale: float
    ev_cargo_scale: float
    ignored: tuple[str, ...]  # engineering entries the model has no term for


def product(
    msc_source: MscSource | str,
    engineering: Iterable[tuple[str, str]] = (),
    payloads: Iterable[str] = (),
    table: ParameterTable | None = None,
) -> Product:
    """The secretion profile of an MSC product.

    ``engineering`` holds ``(kind, detail)`` pairs as curated in the knowledge base;
    ``payloads`` adds payload channels by name (``trail``, ``ifn_beta``, ``oncolytic_virus``).
    """
    t = table or load_parameters()
    src = MscSource(msc_source)
    scales = t.msc_sources[src]
    inhib = scales["inhibitory_secretion_scale"].value
    stim = scales["stimulatory_secretion_scale"].value
    chosen = set(payloads)
    unknown = chosen - set(PAYLOADS)
    if unknown:
        raise ValueError(f"unknown payload(s) {sorted(unknown)}; known: {', '.join(PAYLOADS)}")
    kinds: list[str] = []
    ignored: list[str] = []
    for kind, detail in engineering:
        kinds.append(kind)
        named = payloads_in(kind, detail)
        chosen |= named
        entry = t.engineering.get(kind)
        if entry is None and not named:
            ignored.append(f"{kind}: {detail}")
            continue
        if entry is not None:
            inhib *= (
                entry["inhibitory_secretion_scale"].value if "inhibitory_secretion_scale" in entry else 1.0
            )
            stim *= (
                entry["stimulatory_secretion_scale"].value if "stimulatory_secretion_scale" in entry else 1.0
            )
    secretion = []
    for name in SIGNALS:
        base = t.signals[name]["secretion"].value
        if name == "inhibitory":
            base *= inhib
        elif name == "stimulatory":
            base *= stim
        elif name in chosen:
            base = t.engineering[name]["secretion"].value
        secretion.append(base)
    return Product(
        msc_source=src.value,
        engineering=tuple(kinds),
        payloads=tuple(p for p in PAYLOADS if p in chosen),
        secretion=tuple(secretion),
        contact_scale=scales["contact_scale"].value,
        ev_cargo_scale=scales["ev_cargo_scale"].value,
        ignored=tuple(ignored),
    )


def cell_params(
    prod: Product,
    cancer_class: CancerClass | str,
    *,
    contact: bool = True,
    table: ParameterTable | None = None,
) -> CellParams:
    """The model's numbers for ``prod`` acting on a culture of ``cancer_class``.

    ``contact=False`` is a transwell: juxtacrine terms and the shared surface drop out.
    """
    t = table or load_parameters()
    c = t.cancer[CancerClass(cancer_class)]
    fractions = (c["g1_fraction"].value, c["s_fraction"].value, c["g2m_fraction"].value)
    death = c["basal_death_rate"].value
    k1, k2, k3 = cycle_rates(c["doubling_time"].value, fractions, death)
    sig = t.signals
    ev = t.ev
    contact_table = t.contact
    return CellParams(
        k_g1=k1,
        k_s=k2,
        k_g2m=k3,
        death=death,
        growth_rate=math.log(2.0) / c["doubling_time"].value,
        clearance=c["apoptotic_clearance_rate"].value,
        capacity=c["carrying_capacity"].value,
        volume=c["well_volume"].value,
        space_share=c["msc_space_share"].value,
        contact=1.0 if contact else 0.0,
        msc_growth=math.log(2.0) / t.msc["doubling_time"].value,
        msc_death=t.msc["death_rate"].value,
        msc_capacity=t.msc["carrying_capacity"].value,
        sig_secretion=np.array(prod.secretion),
        sig_decay=np.array([sig[n]["decay"].value for n in SIGNALS]),
        sig_ec50=np.array([sig[n]["ec50"].value for n in SIGNALS]),
        sig_hill=np.array([sig[n]["hill"].value for n in SIGNALS]),
        sig_arrest=np.array([sig[n]["arrest_max"].value for n in SIGNALS]),
        sig_boost=np.array([sig[n]["boost_max"].value for n in SIGNALS]),
        sig_death=np.array([sig[n]["death_max"].value for n in SIGNALS]),
        contact_ec50=contact_table["ec50_ratio"].value,
        contact_hill=contact_table["hill"].value,
        contact_arrest=min(1.0, contact_table["arrest_max"].value * prod.contact_scale),
        contact_death=contact_table["death_max"].value * prod.contact_scale,
        ev_uptake=ev["uptake_rate"].value,
        ev_decay_out=ev["decay_medium"].value,
        ev_decay_in=ev["decay_internal"].value,
        ev_cargo_inhibitory=ev["inhibitory_cargo"].value * prod.ev_cargo_scale,
        ev_cargo_stimulatory=ev["stimulatory_cargo"].value * prod.ev_cargo_scale,
    )
