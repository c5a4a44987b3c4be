"""Build a store exactly as mscatlas 0.1.0 left one: its tables (copied from
src/mscatlas/kb/store.py at commit 88854e5, made by ``create_all``, no Alembic version table),
seeded from a dataset by ``mscatlas-seed``, one item edited on the web by an editor, one user.

Run: ``python tests/data/stores/make_store_0_1_0.py sqlite:///old.sqlite`` (or call
:func:`build`). The records come from tests/data/mini.yaml.
"""

from __future__ import annotations

import hashlib
import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    create_engine,
    insert,
)

MINI = Path(__file__).resolve().parents[1] / "mini.yaml"
SEEDED_AT = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
EDITED_AT = datetime(2026, 11, 2, 9, 30, tzinfo=UTC)
# argon2id of "correct horse battery" (made with argon2-cffi's defaults)
PASSWORD_HASH = (
    "$argon2id$v=19$m=65536,t=3,p=4$3p+nKmp5cEwhoMrBczcsQw$4pdPaV1DX+uUfKQl/D/0I3D4KQ0l4IWW03CADDS2wtE"
)

metadata = MetaData()
study = Table(
    "study", metadata,
    Column("id", String(64), primary_key=True),
    Column("ref", Integer, index=True, nullable=False),
    Column("year", Integer, nullable=False),
    Column("data", JSON, nullable=False),
    Column("content_hash", String(64), nullable=False),
    Column("version", Integer, nullable=False),
)  # fmt: skip
evidence = Table(
    "evidence", metadata,
    Column("id", String(64), primary_key=True),
    Column("study_id", String(64), ForeignKey("study.id"), index=True, nullable=False),
    Column("msc_species", String(16), nullable=False),
    Column("cancer_type", String(128), index=True, nullable=False),
    Column("cancer_class", String(16), nullable=False),
    Column("delivery", String(32), index=True, nullable=False),
    Column("setting", String(16), nullable=False),
    Column("endpoint", String(32), nullable=False),
    Column("direction", String(16), index=True, nullable=False),
    Column("curation_status", String(16), nullable=False),
    Column("data", JSON, nullable=False),
    Column("content_hash", String(64), nullable=False),
    Column("version", Integer, nullable=False),
)  # fmt: skip
evidence_source = Table(
    "evidence_source", metadata,
    Column("evidence_id", String(64), ForeignKey("evidence.id"), primary_key=True),
    Column("source", String(32), primary_key=True, index=True),
)  # fmt: skip
trial = Table(
    "trial", metadata,
    Column("nct_id", String(16), primary_key=True),
    Column("purpose", String(32), nullable=False),
    Column("data", JSON, nullable=False),
    Column("content_hash", String(64), nullable=False),
    Column("version", Integer, nullable=False),
)  # fmt: skip
revision = Table(
    "revision", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("record_kind", String(16), nullable=False),
    Column("record_id", String(64), index=True, nullable=False),
    Column("version", Integer, nullable=False),
    Column("data", JSON, nullable=True),
    Column("changed_at", DateTime(timezone=True), nullable=False),
    Column("changed_by", String(64), nullable=False),
    Column("reason", Text, nullable=False),
)  # fmt: skip
meta = Table(
    "meta", metadata,
    Column("key", String(64), primary_key=True),
    Column("value", Text, nullable=False),
)  # fmt: skip
user = Table(
    "user", metadata,
    Column("name", String(64), primary_key=True),
    Column("role", String(16), nullable=False),
    Column("password_hash", Text, nullable=False),
    Column("active", Boolean, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)  # fmt: skip


def _hash(data: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()


def build(url: str) -> dict[str, Any]:
    """Create the 0.1.0 store at ``url``; returns what it holds (for the test to compare)."""
    mini = yaml.safe_load(MINI.read_text(encoding="utf-8"))
    engine = create_engine(url)
    metadata.create_all(engine)
    with engine.begin() as connection:
        for record in mini["studies"]:
            connection.execute(
                insert(study).values(
                    id=record["id"], ref=record["ref"], year=record["year"], data=record,
                    content_hash=_hash(record), version=1,
                )
            )  # fmt: skip
        for record in mini["evidence"]:
            record = {"curation_status": "accepted", **record}
            connection.execute(
                insert(evidence).values(
                    id=record["id"], study_id=record["study"], msc_species=record["msc_species"],
                    cancer_type=record["cancer_type"], cancer_class=record["cancer_class"],
                    delivery=record["delivery"], setting=record["setting"], endpoint=record["endpoint"],
                    direction=record["direction"], curation_status=record["curation_status"],
                    data=record, content_hash=_hash(record), version=1,
                )
            )  # fmt: skip
            for source in dict.fromkeys(record["msc_source"]):
                connection.execute(insert(evidence_source).values(evidence_id=record["id"], source=source))
        for record in mini["trials"]:
            connection.execute(
                insert(trial).values(
                    nct_id=record["nct_id"], purpose=record["purpose"], data=record,
                    content_hash=_hash(record), version=1,
                )
            )  # fmt: skip
        for kind, key, records in (("study", "id", mini["studies"]), ("trial", "nct_id", mini["trials"])):
            for record in records:
                connection.execute(
                    insert(revision).values(
                        record_kind=kind, record_id=record[key], version=1, data=record,
                        changed_at=SEEDED_AT, changed_by="mscatlas-seed", reason="created: shipped dataset",
                    )
                )  # fmt: skip
        for record in mini["evidence"]:
            record = {"curation_status": "accepted", **record}
            connection.execute(
                insert(revision).values(
                    record_kind="evidence", record_id=record["id"], version=1, data=record,
                    changed_at=SEEDED_AT, changed_by="mscatlas-seed", reason="created: shipped dataset",
                )
            )  # fmt: skip
        # An editor's accepted change to the first item after seeding: version 2.
        first = {
            "curation_status": "accepted",
            **mini["evidence"][0],
            "notes": "checked against the full text",
        }
        connection.execute(
            evidence.update()
            .where(evidence.c.id == first["id"])
            .values(data=first, content_hash=_hash(first), version=2)
        )
        connection.execute(
            insert(revision).values(
                record_kind="evidence", record_id=first["id"], version=2, data=first,
                changed_at=EDITED_AT, changed_by="ed", reason="edited: full text read",
            )
        )  # fmt: skip
        connection.execute(
            insert(user).values(
                name="ed", role="editor", password_hash=PASSWORD_HASH, active=True, created_at=SEEDED_AT
            )
        )
        for key, value in (
            ("schema_version", "1"),
            ("seed_hash", "0123456789abcdef"),
            ("web_secret_key", "k" * 64),
        ):
            connection.execute(insert(meta).values(key=key, value=value))
    engine.dispose()
    return {"mini": mini, "edited": first}


if __name__ == "__main__":
    build(sys.argv[1])
