"""export -> load into an empty store -> export gives the same records, in every format."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mscatlas.kb.dose import CellRatio, Dose, EVAmount
from mscatlas.kb.enums import (
    CancerClass,
    Delivery,
    Direction,
    Endpoint,
    EvidenceLevel,
    MscSource,
    MscSpecies,
    Setting,
)
from mscatlas.kb.export import export_text
from mscatlas.kb.models import Dataset, EvidenceItem, Flag, Provenance, Study
from mscatlas.kb.records import validate_paths
from mscatlas.kb.store import Store

FORMATS = ["json", "yaml", "csv"]
SUFFIX = {"json": ".json", "yaml": ".yaml", "csv": ".csv"}


def roundtrip(dataset: Dataset, fmt: str, tmp_path: Path, tag: str) -> str:
    first = export_text(dataset, fmt)
    path = tmp_path / f"export-{tag}{SUFFIX[fmt]}"
    path.write_text(first, encoding="utf-8")
    loaded, errors = validate_paths([path])
    assert not errors, [str(e) for e in errors]
    store = Store(f"sqlite:///{tmp_path / f'rt-{tag}.sqlite'}")
    store.load(loaded)
    second = export_text(store.dataset(), fmt)
    store.close()
    return first, second


@pytest.mark.parametrize("fmt", FORMATS)
def test_mini_roundtrip(fmt: str, tmp_path: Path, mini_path: Path) -> None:
    dataset, _ = validate_paths([mini_path])
    store = Store(f"sqlite:///{tmp_path / 'a.sqlite'}")
    store.load(dataset)
    first, second = roundtrip(store.dataset(), fmt, tmp_path, "mini")
    assert first == second


text = (
    st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), min_size=1, max_size=30)
    .map(str.strip)
    .filter(bool)
)
ratio = st.builds(CellRatio, msc=st.integers(0, 100).map(float), cancer=st.integers(1, 100).map(float))
dose = st.builds(
    Dose,
    text=st.none() | text,
    ratios=st.lists(ratio, max_size=3),
    cm_percent=st.lists(st.integers(0, 100).map(float), max_size=3),
    cells_per_injection=st.lists(st.integers(1, 10**8).map(float), max_size=2),
    ev_amounts=st.lists(
        st.builds(EVAmount, value=st.integers(1, 500).map(float), unit=st.just("µg/mL")), max_size=1
    ),
)


@st.composite
def evidence_items(draw: st.DrawFn, index: int) -> EvidenceItem:
    setting = draw(st.sampled_from(list(Setting)))
    deliveries = (
        [
            Delivery.direct_coculture,
            Delivery.transwell,
            Delivery.conditioned_medium,
            Delivery.extracellular_vesicles,
        ]
        if setting is Setting.in_vitro
        else [Delivery.cell_injection, Delivery.co_injection, Delivery.extracellular_vesicles]
    )
    cancer = draw(
        st.sampled_from(
            [("breast carcinoma", CancerClass.solid), ("chronic myeloid leukemia", CancerClass.hematological)]
        )
    )
    return EvidenceItem(
        id=f"ev-029-{index}",
        study="ref29",
        refs=[29, *draw(st.lists(st.integers(24, 80), max_size=2))],
        msc_species=draw(st.sampled_from(list(MscSpecies))),
        msc_source=draw(st.lists(st.sampled_from(list(MscSource)), min_size=1, max_size=2, unique=True)),
        source_detail=draw(st.none() | text),
        cancer_type=cancer[0],
        cancer_class=cancer[1],
        delivery=draw(st.sampled_from(deliveries)),
        setting=setting,
        dose=draw(dose),
        endpoint=draw(st.sampled_from(list(Endpoint))),
        direction=draw(st.sampled_from(list(Direction))),
        dose_dependent=draw(st.none() | st.booleans()),
        evidence_level=EvidenceLevel.preclinical_in_vitro
        if setting is Setting.in_vitro
        else EvidenceLevel.preclinical_in_vivo,
        provenance=Provenance(review_location=draw(text), summary=draw(text)),
        flags=draw(st.lists(st.builds(Flag, code=st.just("unverified"), note=text), max_size=1)),
        notes=draw(st.none() | text | st.sampled_from(["[bracketed]", "true", '"quoted"', "{x}", "a,b\nc"])),
    )


@st.composite
def datasets(draw: st.DrawFn) -> Dataset:
    n = draw(st.integers(1, 4))
    study = Study(id="ref29", ref=29, authors=[draw(text)], title=draw(text), journal=draw(text), year=2009)
    return Dataset(studies=[study], evidence=[draw(evidence_items(i)) for i in range(n)])


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(dataset=datasets(), fmt=st.sampled_from(FORMATS))
def test_generated_roundtrip(dataset: Dataset, fmt: str, tmp_path: Path) -> None:
    import uuid

    first, second = roundtrip(dataset, fmt, tmp_path, uuid.uuid4().hex)
    assert first == second
