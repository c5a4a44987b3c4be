"""Print the field moderator model's out-of-sample comparison (issue 12 part 2) as JSON.

Opt-in (a minute or so): two leave-one-study-out runs on the shipped knowledge base, a paired
bootstrap over studies (seed mscatlas.stats.moderators.SEED) and the separability table.

    python validation/field_moderators.py > field_moderators.json
"""

from __future__ import annotations

import json
import sys

from mscatlas.kb.shipped import shipped_dataset
from mscatlas.stats.field_model import compare_field_models


def main() -> int:
    dataset = shipped_dataset()
    result = compare_field_models(dataset.evidence, dataset.studies).to_dict()
    json.dump(result, sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
