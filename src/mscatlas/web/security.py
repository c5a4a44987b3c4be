"""ASGI middleware: security headers, a request body limit, and blank query parameters dropped.

Written as plain ASGI so that it sees every response (error pages included) and can refuse a
body before any route reads it.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import parse_qsl, urlencode

__all__ = [
    "CONTENT_SECURITY_POLICY",
    "DEFAULT_MAX_BODY_BYTES",
    "SECURITY_HEADERS",
    "SESSION_COOKIE",
    "SecurityMiddleware",
]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

DEFAULT_MAX_BODY_BYTES = 64 * 1024
SESSION_COOKIE = "mscatlas_session"  # responses to requests that carry it are never cached

# Nothing is loaded from anywhere but this server, and the pages run no script at all.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; "
    "base-uri 'none'; frame-ancestors 'none'"
)
SECURITY_HEADERS: dict[str, str] = {
    "content-security-policy": CONTENT_SECURITY_POLICY,
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "same-origin",
    "cross-origin-opener-policy": "same-origin",
    "cross-origin-resource-policy": "same-origin",
}


class SecurityMiddleware:
    """Adds the security headers; answers 413 to a body over ``max_body_bytes``.

    A form submitted with GET sends its empty fields as ``name=``; those are dropped from the
    query string so that an empty select means "any" rather than an invalid value.
    """

    def __init__(self, app: ASGIApp, max_body_bytes: int = DEFAULT_MAX_BODY_BYTES) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        scope = dict(scope)
        scope["query_string"] = _drop_blank(scope.get("query_string", b""))

        has_session = _has_cookie(scope, SESSION_COOKIE)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [
                    (k, v)
                    for k, v in message.get("headers", [])
                    if k.decode().lower() not in SECURITY_HEADERS
                ]
                headers += [(k.encode(), v.encode()) for k, v in SECURITY_HEADERS.items()]
                cookie = SESSION_COOKIE.encode() + b"="
                sets_session = any(k.lower() == b"set-cookie" and v.startswith(cookie) for k, v in headers)
                if has_session or sets_session:
                    # A page of a session (its user, its CSRF token) is never kept by a cache.
                    headers = [(k, v) for k, v in headers if k.lower() != b"cache-control"]
                    headers.append((b"cache-control", b"no-store"))
                message = {**message, "headers": headers}
            await send(message)

        declared = _content_length(scope)
        if declared is not None and declared > self.max_body_bytes:
            await self._too_large(send_with_headers)
            return
        # Read the body up to the limit (a chunked body declares no length), then replay it.
        messages: list[Message] = []
        size = 0
        if scope.get("method", "GET") not in ("GET", "HEAD") or declared:
            while True:
                message = await receive()
                messages.append(message)
                if message["type"] != "http.request":
                    break
                size += len(message.get("body", b""))
                if size > self.max_body_bytes:
                    await self._too_large(send_with_headers)
                    return
                if not message.get("more_body", False):
                    break

        async def replay() -> Message:
            if messages:
                return messages.pop(0)
            return await receive()

        await self.app(scope, replay, send_with_headers)

    async def _too_large(self, send: Send) -> None:
        body = json.dumps({"detail": f"request body larger than {self.max_body_bytes} bytes"}).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


def _has_cookie(scope: Scope, name: str) -> bool:
    prefix = name.encode() + b"="
    for key, value in scope.get("headers", []):
        if key.lower() == b"cookie" and any(part.strip().startswith(prefix) for part in value.split(b";")):
            return True
    return False


def _content_length(scope: Scope) -> int | None:
    for key, value in scope.get("headers", []):
        if key.lower() == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


def _drop_blank(query_string: bytes) -> bytes:
    if not query_string:
        return query_string
    pairs = parse_qsl(query_string.decode("latin-1"), keep_blank_values=True, encoding="utf-8")
    kept = [(k, v) for k, v in pairs if v.strip() != ""]
    if len(kept) == len(pairs):
        return query_string
    return urlencode(kept).encode("ascii")
