"""Accounts of the web interface, their server-side sessions, and login throttling.

Passwords are kept only as Argon2id hashes. A session is a row holding the SHA-256 of a random
token (the cookie carries the token): logging out deletes the row, so a replayed cookie is
dead; a session expires; changing a password, a role or deactivating an account ends every
session of that account. Failed logins are counted per account and per client address in the
database (so every worker of a deployment shares the count): after ``LOGIN_FREE_FAILURES``
failures within ``LOGIN_WINDOW`` each further failure locks the key for a doubling time
(1 s, 2 s, 4 s, ... up to ``LOGIN_MAX_LOCK``).
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError

from mscatlas.kb.store.core import StoreCore
from mscatlas.kb.store.tables import ROLES, USER_NAME_PATTERN, LoginFailureRow, SessionRow, UserRow

__all__ = [
    "LOGIN_FREE_FAILURES",
    "LOGIN_MAX_LOCK",
    "LOGIN_WINDOW",
    "AccountsMixin",
    "User",
]

LOGIN_FREE_FAILURES = 5
LOGIN_WINDOW = timedelta(minutes=15)  # failures older than this are forgotten
LOGIN_MAX_LOCK = timedelta(minutes=15)
MIN_PASSWORD = 8


@dataclass(frozen=True)
class User:
    """An account as the rest of the code sees it (never the password hash itself)."""

    name: str
    role: str
    active: bool
    created_at: datetime
    password_stamp: str  # changes whenever the password does

    def can(self, role: str) -> bool:
        """Whether this account has at least the rights of ``role``."""
        return self.active and ROLES.index(self.role) >= ROLES.index(role)


def _user(row: UserRow) -> User:
    return User(
        name=row.name,
        role=row.role,
        active=bool(row.active),
        created_at=row.created_at,
        password_stamp=hashlib.sha256(row.password_hash.encode()).hexdigest()[:16],
    )


def _aware(moment: datetime) -> datetime:
    """SQLite gives times back without their zone; every stored time is UTC."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise ValueError(f"a password needs at least {MIN_PASSWORD} characters")


class AccountsMixin(StoreCore):
    """Accounts, sessions and login throttling."""

    def add_user(self, name: str, role: str, password: str) -> User:
        """Create an account; the password is hashed with Argon2id. Refuses a name already taken."""
        from argon2 import PasswordHasher

        if not re.match(USER_NAME_PATTERN, name):
            raise ValueError(
                f"invalid user name {name!r}: 1-64 letters, digits, '.', '_', '@' or '-', "
                "starting with a letter or digit"
            )
        if role not in ROLES:
            raise ValueError(f"unknown role {role!r}; roles: {', '.join(ROLES)}")
        _check_password(password)
        row = UserRow(
            name=name,
            role=role,
            password_hash=PasswordHasher().hash(password),
            active=True,
            created_at=datetime.now(UTC),
        )
        with self.session() as session:
            if session.get(UserRow, name) is not None:
                raise ValueError(f"user {name!r} already exists")
            session.add(row)
        return _user(row)

    def _change_user(self, name: str, **values: object) -> User:
        """Set columns of an account and end every session of it."""
        with self.session() as session:
            row = session.get(UserRow, name)
            if row is None:
                raise KeyError(name)
            for key, value in values.items():
                setattr(row, key, value)
            session.execute(delete(SessionRow).where(SessionRow.user_name == name))
            return _user(row)

    def set_password(self, name: str, password: str) -> User:
        from argon2 import PasswordHasher

        _check_password(password)
        return self._change_user(name, password_hash=PasswordHasher().hash(password))

    def set_role(self, name: str, role: str) -> User:
        if role not in ROLES:
            raise ValueError(f"unknown role {role!r}; roles: {', '.join(ROLES)}")
        return self._change_user(name, role=role)

    def set_active(self, name: str, active: bool) -> User:
        return self._change_user(name, active=active)

    def get_user(self, name: str) -> User | None:
        with self._session() as session:
            row = session.get(UserRow, name)
            return _user(row) if row is not None else None

    def users(self) -> list[User]:
        with self._session() as session:
            return [_user(r) for r in session.scalars(select(UserRow).order_by(UserRow.name))]

    def authenticate(self, name: str, password: str) -> User | None:
        """The active account when ``password`` is its password, else None (same work either way).

        Argon2 takes tens of milliseconds of CPU: the web app calls this in a thread pool.
        """
        from argon2 import PasswordHasher
        from argon2.exceptions import InvalidHashError, VerificationError

        hasher = PasswordHasher()
        with self.session() as session:
            row = session.get(UserRow, name) if len(name) <= 64 else None
            if row is None:
                # Hash anyway, so that a missing account takes as long as a wrong password.
                hasher.hash(password)
                return None
            try:
                hasher.verify(row.password_hash, password)
            except (VerificationError, InvalidHashError):
                return None
            if hasher.check_needs_rehash(row.password_hash):
                row.password_hash = hasher.hash(password)
            return _user(row) if row.active else None

    def secret_key(self) -> str:
        """A random key kept in the store (for signing web cookies), generated on first use."""
        return self.meta_default("web_secret_key", lambda: secrets.token_urlsafe(48))

    # ------------------------------------------------------------ sessions

    def create_session(self, name: str, max_age: timedelta) -> str:
        """A new session of account ``name``; returns its token (kept here only as a digest)."""
        token = secrets.token_urlsafe(32)
        now = datetime.now(UTC)
        with self.session() as session:
            session.execute(delete(SessionRow).where(SessionRow.expires_at < now))
            session.add(
                SessionRow(
                    token_hash=_token_hash(token), user_name=name, created_at=now, expires_at=now + max_age
                )
            )
        return token

    def session_user(self, token: str) -> User | None:
        """The account of a live session (not ended, not expired, account active), else None."""
        with self._session() as session:
            row = session.get(SessionRow, _token_hash(token))
            if row is None or _aware(row.expires_at) <= datetime.now(UTC):
                return None
            user = session.get(UserRow, row.user_name)
            return _user(user) if user is not None and user.active else None

    def end_session(self, token: str) -> None:
        with self.session() as session:
            session.execute(delete(SessionRow).where(SessionRow.token_hash == _token_hash(token)))

    def session_count(self, name: str) -> int:
        with self._session() as session:
            return len(
                list(session.scalars(select(SessionRow.token_hash).where(SessionRow.user_name == name)))
            )

    # ------------------------------------------------------------ throttling

    def login_locked_for(self, keys: list[str]) -> float:
        """Seconds until every one of ``keys`` may try a password again (0: now)."""
        now = datetime.now(UTC)
        with self._session() as session:
            rows = session.scalars(select(LoginFailureRow).where(LoginFailureRow.key.in_(keys)))
            waits = [
                (_aware(r.locked_until) - now).total_seconds() for r in rows if r.locked_until is not None
            ]
        return max([0.0, *waits])

    def record_login_failure(self, keys: list[str]) -> float:
        """Count a failed login against each key; returns the lock it now carries (seconds)."""
        now = datetime.now(UTC)
        longest = 0.0
        for attempt in range(3):  # two workers may insert the same key at once: count again
            try:
                with self.session() as session:
                    longest = 0.0
                    for key in keys:
                        row = session.get(LoginFailureRow, key)
                        if row is None:
                            row = LoginFailureRow(key=key, failures=0, last_at=now, locked_until=None)
                            session.add(row)
                        elif now - _aware(row.last_at) > LOGIN_WINDOW:
                            row.failures, row.locked_until = 0, None
                        row.failures += 1
                        row.last_at = now
                        over = row.failures - LOGIN_FREE_FAILURES
                        if over > 0:
                            lock = min(timedelta(seconds=2 ** (over - 1)), LOGIN_MAX_LOCK)
                            row.locked_until = now + lock
                            longest = max(longest, lock.total_seconds())
                return longest
            except IntegrityError:
                if attempt == 2:
                    raise
        return longest

    def clear_login_failures(self, keys: list[str]) -> None:
        with self.session() as session:
            session.execute(delete(LoginFailureRow).where(LoginFailureRow.key.in_(keys)))
