"""Draw the blind double-read sample: 10% of the evidence items of studies found by the search.

Run from the repository root: python docs/double-read/draw.py > docs/double-read/sample.yaml
(the sample committed with the agreement figures was drawn on 2026-12-03 from the data then).
"""

import random
import sys

import yaml

from mscatlas.kb.shipped import shipped_dataset

SEED = 20261203

d = shipped_dataset()
studies = {s.id: s for s in d.studies}
new = sorted(e.id for e in d.evidence if not e.refs)
k = round(len(new) * 0.10)
sample = sorted(random.Random(SEED).sample(new, k))
items = {e.id: e for e in d.evidence}
rows = []
for i in sample:
    e, s = items[i], studies[items[i].study]
    rows.append(
        {"id": i, "study": e.study, "title": s.title, "year": s.year, "pmid": s.pmid, "pmcid": s.pmcid,
         "doi": s.doi, "anchor": {"setting": e.setting.value, "endpoint": e.endpoint.value}}
    )
sys.stdout.write(yaml.safe_dump(rows, sort_keys=False, allow_unicode=True, width=110))
