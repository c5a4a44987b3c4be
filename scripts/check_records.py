"""Interim record checker for curators: python scripts/check_records.py FILE [KIND].

KIND is evidence (default), study or trial. Prints one line per invalid record.
(`mscatlas validate` supersedes this once the CLI lands.)
"""
import sys

import yaml
from pydantic import ValidationError

from mscatlas.kb.models import ClinicalTrial, EvidenceItem, Study

kind = sys.argv[2] if len(sys.argv) > 2 else "evidence"
model = {"evidence": EvidenceItem, "study": Study, "trial": ClinicalTrial}[kind]
records = yaml.safe_load(open(sys.argv[1], encoding="utf-8")) or []
bad = 0
for i, rec in enumerate(records, 1):
    try:
        model.model_validate(rec)
    except ValidationError as e:
        bad += 1
        for err in e.errors():
            loc = ".".join(str(x) for x in err["loc"])
            print(f"record {i} ({rec.get('id') or rec.get('nct_id')}): {loc}: {err['msg']}")
print(f"{len(records)} records, {bad} invalid")
