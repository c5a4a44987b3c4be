"""Sessions, CSRF tokens and role checks for the web interface.

A session is a signed cookie (itsdangerous, HMAC over the store's secret key or
``MSCATLAS_SECRET_KEY``, so every worker of a deployment reads it) holding a random CSRF
token and, once logged in, the token of a session kept on the server (the store's
``web_session`` table). Logging out deletes that row, so a replayed cookie is no longer a
session; a session expires after ``SESSION_MAX_AGE``; changing a password, a role or
deactivating an account ends every session of that account. The cookie is HttpOnly and
SameSite=Lax, and Secure over https. Every POST carries the session's CSRF token in a form
field; a missing or wrong token is a 403.
"""

from __future__ import annotations

import hmac
import os
import secrets
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qsl, quote, urlsplit

from fastapi import HTTPException, Request
from fastapi.responses import RedirectResponse, Response
from itsdangerous import BadSignature, URLSafeTimedSerializer

from mscatlas.kb.store import Store, User
from mscatlas.web.security import SESSION_COOKIE

__all__ = [
    "CSRF_FIELD",
    "SECRET_ENV",
    "SESSION_COOKIE",
    "SESSION_MAX_AGE",
    "Sessions",
    "WebSession",
    "read_form",
    "safe_next",
]

SECRET_ENV = "MSCATLAS_SECRET_KEY"
SESSION_MAX_AGE = 12 * 3600  # seconds; a session older than this must log in again
CSRF_FIELD = "csrf_token"
MAX_FORM_FIELDS = 50


@dataclass
class WebSession:
    """The session of one request: its CSRF token and the logged-in account, if any."""

    csrf: str
    user: User | None = None
    changed: bool = False  # the cookie must be (re)written on the response
    token: str | None = None  # the server-side session's token while logged in
    extra: dict[str, Any] = field(default_factory=dict)


class Sessions:
    """Reads and writes signed session cookies for one app."""

    def __init__(self, store: Store, secret_key: str | None = None) -> None:
        self.store = store
        secret = secret_key or os.environ.get(SECRET_ENV) or store.secret_key()
        self.serializer = URLSafeTimedSerializer(secret, salt="mscatlas-session")

    def of(self, request: Request) -> WebSession:
        """The request's session (read once per request, then cached on request.state)."""
        cached = getattr(request.state, "web_session", None)
        if cached is not None:
            return cached
        session = self._read(request.cookies.get(SESSION_COOKIE))
        request.state.web_session = session
        return session

    def _read(self, cookie: str | None) -> WebSession:
        if cookie:
            try:
                payload = self.serializer.loads(cookie, max_age=SESSION_MAX_AGE)
            except BadSignature:  # also a session too old (SignatureExpired)
                payload = None
            if isinstance(payload, dict) and isinstance(payload.get("c"), str):
                token = payload.get("s")
                if isinstance(token, str):
                    found = self.store.session_user(token)
                    if found is None:  # logged out, expired, password changed, account deactivated
                        return WebSession(csrf=payload["c"], changed=True)
                    return WebSession(csrf=payload["c"], user=found, token=token)
                return WebSession(csrf=payload["c"])
        return WebSession(csrf=secrets.token_urlsafe(32), changed=True)

    def log_in(self, request: Request, user: User) -> WebSession:
        """A fresh session (new CSRF token) for ``user``, replacing the request's."""
        token = self.store.create_session(user.name, timedelta(seconds=SESSION_MAX_AGE))
        session = WebSession(csrf=secrets.token_urlsafe(32), user=user, changed=True, token=token)
        request.state.web_session = session
        return session

    def log_out(self, request: Request) -> WebSession:
        """End the request's session on the server (its cookie is dead from now on)."""
        token = self.of(request).token
        if token is not None:
            self.store.end_session(token)
        session = WebSession(csrf=secrets.token_urlsafe(32), changed=True)
        request.state.web_session = session
        return session

    def write(self, request: Request, response: Response) -> Response:
        """Set the session cookie on ``response`` when the session changed in this request."""
        session = getattr(request.state, "web_session", None)
        if session is None or not session.changed:
            return response
        payload: dict[str, Any] = {"c": session.csrf}
        if session.token is not None:
            payload["s"] = session.token
        response.set_cookie(
            SESSION_COOKIE,
            self.serializer.dumps(payload),
            max_age=SESSION_MAX_AGE,
            path="/",
            httponly=True,
            samesite="lax",
            secure=request.url.scheme == "https",
        )
        return response

    def require(self, request: Request, role: str) -> User:
        """The logged-in user with at least ``role``; else 403 (or, for a page, a redirect to log in)."""
        user = self.of(request).user
        if user is None:
            if request.method == "GET":
                target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
                raise HTTPException(
                    status_code=303,
                    detail="log in first",
                    headers={"location": f"/login?next={quote(target, safe='')}"},
                )
            raise HTTPException(status_code=403, detail="log in first: writing needs a curator account")
        if not user.can(role):
            raise HTTPException(
                status_code=403, detail=f"this needs the {role} role; {user.name} is a {user.role}"
            )
        return user


async def read_form(
    request: Request, sessions: Sessions, *, max_fields: int = MAX_FORM_FIELDS
) -> dict[str, str]:
    """The fields of a url-encoded form POST, after checking its origin and CSRF token.

    The body was already limited in size by the security middleware; a form may have at most
    ``max_fields`` fields (the structured curation form raises it: one field per record field).
    """
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    body = await request.body()
    if body and content_type != "application/x-www-form-urlencoded":
        raise HTTPException(status_code=415, detail="forms must be sent as application/x-www-form-urlencoded")
    origin = request.headers.get("origin")
    if origin and origin != "null":
        parts = urlsplit(origin)
        if parts.netloc != request.url.netloc:
            raise HTTPException(status_code=403, detail="cross-site form submission refused")
    try:
        pairs = parse_qsl(
            body.decode("utf-8"), keep_blank_values=True, strict_parsing=False, max_num_fields=max_fields
        )
    except (UnicodeDecodeError, ValueError) as exc:
        raise HTTPException(status_code=400, detail=f"unreadable form: {exc}") from exc
    form: dict[str, str] = {}
    for key, value in pairs:
        form.setdefault(key, value)
    expected = sessions.of(request).csrf
    given = form.get(CSRF_FIELD, "")
    if not given or not hmac.compare_digest(given.encode(), expected.encode()):
        raise HTTPException(
            status_code=403,
            detail="missing or wrong CSRF token: reload the form and submit it again",
        )
    return form


def safe_next(target: str | None) -> str:
    """A local path to go to after logging in (never another site)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


def redirect(request: Request, sessions: Sessions, url: str) -> Response:
    """A 303 to ``url`` carrying the session cookie when it changed."""
    return sessions.write(request, RedirectResponse(url, status_code=303))
