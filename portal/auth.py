"""Sign-in for the portal: password checks, sessions, login throttling and CSRF tokens.

Pure bookkeeping with no HTTP in it, so each part can be tested on its own. It must never
log or keep a password, tell an unknown account from a wrong password, or verify a
password on the event loop (argon2 takes tens of milliseconds by design).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import secrets
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

import argon2
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from portal.settings import UserLike

log = logging.getLogger(__name__)

MAX_USERNAME_CHARS = 200
MAX_PASSWORD_CHARS = 1024


@dataclass(frozen=True, slots=True)
class Session:
    id: str
    user_name: str
    csrf_token: str
    expires_at: datetime


class SessionStore:
    """Server-side sessions in memory: the cookie carries only a random id."""

    def __init__(self, ttl: timedelta) -> None:
        self._ttl = ttl
        self._sessions: dict[str, Session] = {}

    def __len__(self) -> int:
        return len(self._sessions)

    def create(self, user_name: str, now: datetime) -> Session:
        self.purge(now)
        session = Session(
            id=secrets.token_urlsafe(32),
            user_name=user_name,
            csrf_token=secrets.token_urlsafe(32),
            expires_at=now + self._ttl,
        )
        self._sessions[session.id] = session
        return session

    def get(self, session_id: str, now: datetime) -> Session | None:
        session = self._sessions.get(session_id)
        if session is None:
            return None
        if now >= session.expires_at:
            del self._sessions[session_id]
            return None
        return session

    def delete(self, session_id: str) -> None:
        self._sessions.pop(session_id, None)

    def purge(self, now: datetime) -> None:
        expired = [sid for sid, s in self._sessions.items() if now >= s.expires_at]
        for sid in expired:
            del self._sessions[sid]


class LoginThrottle:
    """At most `max_failures` failed sign-ins per account within `window`.

    An attempt is counted *before* its password is checked and forgiven on success, so a
    burst of concurrent guesses cannot slip past the limit while argon2 is busy.
    Unknown account names are counted too, so the throttle does not reveal which exist.
    """

    _PRUNE_ABOVE = 10_000  # accounts tracked before stale entries are dropped

    def __init__(self, max_failures: int, window: timedelta) -> None:
        self._max = max_failures
        self._window = window
        self._failures: dict[str, deque[datetime]] = {}

    @staticmethod
    def _key(account: str) -> str:
        return account.casefold()

    def retry_after(self, account: str, now: datetime) -> timedelta | None:
        """How long until `account` may try again, or None if it may now."""
        recent = self._recent(self._key(account), now)
        if len(recent) < self._max:
            return None
        return recent[0] + self._window - now

    def record_attempt(self, account: str, now: datetime) -> None:
        if len(self._failures) > self._PRUNE_ABOVE:
            for key in list(self._failures):
                self._recent(key, now)
        key = self._key(account)
        self._failures.setdefault(key, deque()).append(now)

    def forgive(self, account: str) -> None:
        self._failures.pop(self._key(account), None)

    def _recent(self, key: str, now: datetime) -> deque[datetime]:
        times = self._failures.get(key)
        if times is None:
            return deque()
        while times and times[0] + self._window <= now:
            times.popleft()
        if not times:
            del self._failures[key]
        return times


class PasswordChecker:
    """Verifies passwords against the configured argon2 hashes, in worker threads."""

    def __init__(self, users: Iterable[UserLike], *, concurrency: int = 4) -> None:
        self._users: dict[str, UserLike] = {}
        for user in users:
            if user.name in self._users:
                raise ValueError(f"duplicate portal user {user.name!r}")
            self._users[user.name] = user
        self._hasher = argon2.PasswordHasher()
        # Each verification holds argon2's memory cost (64 MiB by default): bound them.
        self._slots = asyncio.Semaphore(concurrency)
        self._dummy_hash: str | None = None

    @property
    def users(self) -> Mapping[str, UserLike]:
        return self._users

    async def prepare(self) -> None:
        """Make the hash that unknown accounts are checked against (start-up, in a thread)."""
        if self._dummy_hash is None:
            self._dummy_hash = await asyncio.to_thread(self._make_dummy_hash)

    async def authenticate(self, name: str, password: str) -> UserLike | None:
        """The user if `password` is theirs and the account is enabled, else None.

        Every path does one argon2 verification with the configured cost, so an unknown
        name, a wrong password and a disabled account take about the same time.
        """
        user = self._users.get(name)
        if user is None:
            await self.prepare()
            assert self._dummy_hash is not None
            target = self._dummy_hash
        else:
            target = user.password_hash
        async with self._slots:
            matches = await asyncio.to_thread(self._verify, target, password)
        if user is None or not matches:
            return None
        if user.disabled:
            log.info("login refused: account disabled user=%s", user.name)
            return None
        return user

    def _verify(self, password_hash: str, password: str) -> bool:
        try:
            return self._hasher.verify(password_hash, password)
        except VerifyMismatchError:
            return False
        except (InvalidHashError, VerificationError):
            log.warning("login check failed: stored password hash is not valid argon2")
            return False

    def _make_dummy_hash(self) -> str:
        # Same cost parameters as the real hashes, so unknown accounts are not faster.
        for user in self._users.values():
            try:
                params = argon2.extract_parameters(user.password_hash)
            except InvalidHashError:
                continue
            return argon2.PasswordHasher.from_parameters(params).hash(secrets.token_urlsafe())
        return self._hasher.hash(secrets.token_urlsafe())


class LoginTokens:
    """CSRF tokens for the sign-in form, before any session exists (signed double submit).

    The token goes both into a cookie and into the form; a POST is accepted only when the
    two match and the signature is ours, so another site can neither read nor forge it.
    """

    def __init__(self, key: bytes) -> None:
        self._key = key

    def issue(self) -> str:
        nonce = secrets.token_urlsafe(24)
        return f"{nonce}.{self._sign(nonce)}"

    def is_valid(self, token: str | None) -> bool:
        if not token or token.count(".") != 1:
            return False
        nonce, signature = token.split(".")
        return hmac.compare_digest(signature.encode(), self._sign(nonce).encode())

    def _sign(self, nonce: str) -> str:
        return hmac.new(self._key, nonce.encode(), hashlib.sha256).hexdigest()


def tokens_match(expected: str | None, given: str | None) -> bool:
    if not expected or not given:
        return False
    return hmac.compare_digest(expected.encode(), given.encode())


@dataclass(frozen=True, slots=True)
class Viewer:
    """Who is looking at a page: a live session and the enabled account it belongs to."""

    session: Session
    user: UserLike
