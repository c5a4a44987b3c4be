"""Serving the app: an app factory for multi-worker servers and a slow-header timeout.

``uvicorn --workers N --factory mscatlas.web.server:app_from_environment`` (or gunicorn with
uvicorn workers) starts N processes that each open the store named by
``MSCATLAS_DATABASE_URL``. Sessions are signed with one key (``MSCATLAS_SECRET_KEY``, else the
key kept in the store) and kept in the store, so a session started on one worker is valid on
every other.

Uvicorn closes an idle keep-alive connection after ``timeout_keep_alive`` but waits forever
for the headers of a request: a client that sends them a byte at a time keeps a connection
(and a file descriptor) for as long as it likes. :class:`HeaderTimeoutProtocol` closes a
connection whose request headers are not complete ``HEADER_TIMEOUT_S`` seconds after the
connection opened or the previous response ended. Pass it to uvicorn as
``--http mscatlas.web.server:HeaderTimeoutProtocol``; ``mscatlas serve`` does.
"""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import FastAPI
from uvicorn.protocols.http.h11_impl import H11Protocol

from mscatlas.kb.store import Store

__all__ = ["HEADER_TIMEOUT_S", "PROTOCOL", "HeaderTimeoutProtocol", "app_from_environment"]

HEADER_TIMEOUT_S = 10.0
PROTOCOL = "mscatlas.web.server:HeaderTimeoutProtocol"  # uvicorn's --http value


class HeaderTimeoutProtocol(H11Protocol):
    """uvicorn's h11 protocol, closing connections whose request headers arrive too slowly."""

    header_timeout: float = HEADER_TIMEOUT_S
    _header_deadline: asyncio.TimerHandle | None = None

    def _arm(self) -> None:
        self._disarm()
        self._waiting_for = self.cycle
        self._header_deadline = self.loop.call_later(self.header_timeout, self._headers_too_slow)

    def _disarm(self) -> None:
        if self._header_deadline is not None:
            self._header_deadline.cancel()
            self._header_deadline = None

    def _headers_too_slow(self) -> None:
        self._header_deadline = None
        if self.cycle is self._waiting_for and not self.transport.is_closing():
            self.transport.close()  # no request started since the timer was armed

    def connection_made(self, transport: Any) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def handle_events(self) -> None:
        super().handle_events()
        if self._header_deadline is not None and self.cycle is not self._waiting_for:
            self._disarm()  # a request's headers are complete

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing():
            self._arm()  # the next request's headers get the same time

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)


def app_from_environment() -> FastAPI:
    """The app over the store at MSCATLAS_DATABASE_URL (the factory each worker calls)."""
    from mscatlas.web import create_app

    return create_app(Store.open())
