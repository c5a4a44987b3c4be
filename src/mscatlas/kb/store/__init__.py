"""The knowledge-base store: SQLAlchemy 2 over SQLite (default) or PostgreSQL.

Each record is kept whole as validated JSON beside indexed columns for filtering, so the
store never loses a field the model has. Writing is one transaction: a bad record or a crash
leaves the store as it was. Loading the same records again changes nothing; a changed record
is updated in place and its previous version kept as a revision.

The store is split by job: ``tables`` (the schema), ``migrate`` (Alembic migrations),
``core`` (engine, sessions, meta values), ``loading`` (loads, registry merges, shipped
upgrades), ``queries`` (reading), ``accounts`` (users, web sessions, login throttling) and
``curation`` (the review workflow and proposals). :class:`Store` puts them together.
"""

from __future__ import annotations

from mscatlas.kb.store.accounts import AccountsMixin, User
from mscatlas.kb.store.core import (
    DEFAULT_DB_ENV,
    UNSEEDED,
    CurationError,
    EvidenceFilter,
    LoadResult,
    TrialMergeResult,
    UpgradeReport,
    VersionConflict,
    default_database_url,
)
from mscatlas.kb.store.curation import CurationMixin, FieldChange, Proposal, record_diff
from mscatlas.kb.store.loading import API_OWNED_TRIAL_FIELDS, SEED_AUTHOR, UpdatePolicy
from mscatlas.kb.store.tables import (
    ROLES,
    Base,
    EvidenceRow,
    MetaRow,
    RevisionRow,
    UserRow,
)

__all__ = [
    "API_OWNED_TRIAL_FIELDS",
    "DEFAULT_DB_ENV",
    "ROLES",
    "SEED_AUTHOR",
    "Base",
    "CurationError",
    "EvidenceFilter",
    "EvidenceRow",
    "FieldChange",
    "LoadResult",
    "MetaRow",
    "Proposal",
    "RevisionRow",
    "Store",
    "TrialMergeResult",
    "UpdatePolicy",
    "UpgradeReport",
    "User",
    "UserRow",
    "VersionConflict",
    "default_database_url",
    "record_diff",
]


class Store(CurationMixin, AccountsMixin):
    """A knowledge-base store at a database URL (its schema brought to the current migration)."""

    seed_report: UpgradeReport | None = None

    @classmethod
    def open(cls, url: str | None = None, *, seed: bool = True) -> Store:
        """Open a store (default URL when None).

        A store never filled is filled from the shipped dataset (unless ``seed`` is false,
        which leaves it empty for good); ``seed_report`` says what that did. A store filled from
        an older shipped dataset is left as it is: :meth:`upgrade_shipped` (``mscatlas
        upgrade``) brings it up to date without overwriting anyone's changes, and
        :meth:`shipped_outdated` tells whether it is due.
        """
        store = cls(url or default_database_url())
        if store.get_meta("seed_hash") is None:
            if seed:
                store.seed_report = store.upgrade_shipped()
            else:
                with store.session() as session:
                    session.merge(MetaRow(key="seed_hash", value=UNSEEDED))
        return store
