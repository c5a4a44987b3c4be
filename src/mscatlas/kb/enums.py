"""Closed value sets of the data model.

These are part of the export contract (schema version 1): renaming a member needs a schema
version bump and a reader for the old version.
"""

from __future__ import annotations

from enum import StrEnum


class MscSpecies(StrEnum):
    human = "human"
    rat = "rat"
    mouse = "mouse"
    other = "other"
    unspecified = "unspecified"  # the source read does not say; never inferred


class MscSource(StrEnum):
    """Tissue an MSC product was isolated from. Each maps to an UBERON term (vocab/tissues.yaml)."""

    bone_marrow = "bone_marrow"
    adipose_tissue = "adipose_tissue"
    umbilical_cord = "umbilical_cord"
    wharton_jelly = "wharton_jelly"
    umbilical_cord_blood = "umbilical_cord_blood"
    placenta = "placenta"
    amniotic_membrane = "amniotic_membrane"
    amniotic_fluid = "amniotic_fluid"
    palatine_tonsil = "palatine_tonsil"
    lung = "lung"
    dental_pulp = "dental_pulp"
    peripheral_blood = "peripheral_blood"
    skeletal_muscle = "skeletal_muscle"
    hair_follicle = "hair_follicle"
    endometrium = "endometrium"
    decidua = "decidua"
    chorion = "chorion"
    gingiva = "gingiva"
    periodontal_ligament = "periodontal_ligament"
    synovium = "synovium"
    dermis = "dermis"
    liver = "liver"
    induced_pluripotent = "induced_pluripotent"
    tumor_associated = "tumor_associated"
    unspecified = "unspecified"


class Delivery(StrEnum):
    """How the MSC product reached the cancer cells."""

    direct_coculture = "direct_coculture"
    transwell = "transwell"
    conditioned_medium = "conditioned_medium"
    extracellular_vesicles = "extracellular_vesicles"
    cell_extract = "cell_extract"
    cell_injection = "cell_injection"
    co_injection = "co_injection"


class Setting(StrEnum):
    in_vitro = "in_vitro"
    in_vivo = "in_vivo"


class CancerClass(StrEnum):
    solid = "solid"
    hematological = "hematological"


class Endpoint(StrEnum):
    proliferation = "proliferation"
    viability = "viability"
    apoptosis = "apoptosis"
    cell_cycle = "cell_cycle"
    migration = "migration"
    invasion = "invasion"
    angiogenesis = "angiogenesis"
    tumor_growth = "tumor_growth"
    metastasis = "metastasis"
    drug_resistance = "drug_resistance"
    tumor_markers = "tumor_markers"


class Direction(StrEnum):
    """Effect of the MSC product on the cancer (not on the measured quantity).

    More apoptosis of cancer cells is ``inhibits``; more drug resistance is ``promotes``.
    """

    inhibits = "inhibits"
    promotes = "promotes"
    no_effect = "no_effect"
    mixed = "mixed"


class EvidenceLevel(StrEnum):
    """CIViC-like level: where the finding was made."""

    preclinical_in_vitro = "preclinical_in_vitro"
    preclinical_in_vivo = "preclinical_in_vivo"
    clinical = "clinical"


class CurationStatus(StrEnum):
    submitted = "submitted"
    accepted = "accepted"
    rejected = "rejected"


class Change(StrEnum):
    """How a mechanism (gene, pathway, process) changed in the cancer cells or tumour."""

    up = "up"
    down = "down"
    activated = "activated"
    inhibited = "inhibited"
    induced = "induced"
    unchanged = "unchanged"


class MechanismKind(StrEnum):
    gene = "gene"
    pathway = "pathway"
    process = "process"


class Phase(StrEnum):
    """ClinicalTrials.gov API v2 phase enum."""

    EARLY_PHASE1 = "EARLY_PHASE1"
    PHASE1 = "PHASE1"
    PHASE2 = "PHASE2"
    PHASE3 = "PHASE3"
    PHASE4 = "PHASE4"
    NA = "NA"


class TrialPurpose(StrEnum):
    anti_tumor = "anti_tumor"
    transplant_support = "transplant_support"
    side_effect_mitigation = "side_effect_mitigation"
    other = "other"


class EngineeringKind(StrEnum):
    """How a trial's MSC product was modified (none for native cells)."""

    gene_modified = "gene_modified"
    virus_loaded = "virus_loaded"
    sirna_loaded = "sirna_loaded"
