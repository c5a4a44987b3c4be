"""The web interface: evidence and trial explorers, record pages, the conflict map and a JSON API.

``create_app(store)`` builds the FastAPI application; ``mscatlas serve`` runs it with uvicorn.
Pages are rendered on the server and run no script; every value is escaped.
"""

from __future__ import annotations

from mscatlas.web.app import create_app

__all__ = ["create_app"]
