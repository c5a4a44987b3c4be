"""mscatlas: mesenchymal stem cell therapy in cancer, made computable.

From Python: ``atlas = mscatlas.open()`` (see :mod:`mscatlas.atlas`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mscatlas.atlas import Atlas

__version__ = "0.1.0"
__all__ = ["__version__", "open"]


def open(db: str | None = None) -> Atlas:  # the entry point, mscatlas.open (shadows the builtin here only)
    """Open the knowledge base at ``db`` (default: MSCATLAS_DATABASE_URL or the user data dir)."""
    from mscatlas.atlas import open_atlas  # imported here so that `import mscatlas` stays light

    return open_atlas(db)
