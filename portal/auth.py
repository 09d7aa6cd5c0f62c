"""Accounts and sign-in for the portal: users, password checks, sessions, login
throttling, API tokens and the sign-in form's CSRF tokens.

Users, sessions, tokens and failed sign-ins live in PostgreSQL (migration 007), so a
restart signs nobody out, several portal processes share them, and disabling a user or
changing a password ends that user's sessions at once. Sessions and tokens are random
values held by the client; the database keeps only their SHA-256 digests.

A signed-in page asks for its session on every request, so a session once read is kept
in memory for `session_cache` (5 s): ended at once in this process by sign-out, a new
password or disabling, and within those seconds in any other portal process.

This module must never log or keep a password, a session id or a token in clear, tell an
unknown account from a wrong password, or verify a password on the event loop (argon2
takes tens of milliseconds by design).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import ipaddress
import logging
import secrets
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal, Protocol, TypeGuard

import argon2
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from psycopg.rows import tuple_row

from collector import Database
from kernel.errors import LinkwatchError
from portal.queries import query

log = logging.getLogger(__name__)

MAX_USERNAME_CHARS = 200
MAX_PASSWORD_CHARS = 1024
MIN_PASSWORD_CHARS = 10
Role = Literal["customer", "ops", "billing", "admin"]
ROLES: tuple[Role, ...] = ("customer", "ops", "billing", "admin")
TOKEN_PREFIX = "lw_"  # noqa: S105 - lets scanners and people recognise a Linkwatch token
# A sign-in form left open this long (a tab from the morning) still signs in.
LOGIN_FORM_LIFETIME = timedelta(hours=24)
CLOCK_SKEW = timedelta(minutes=5)


def _digest(secret: str) -> bytes:
    return hashlib.sha256(secret.encode()).digest()


class AccountError(LinkwatchError):
    """A user-management request that cannot be done as asked."""

    exit_code = 2


class ConfiguredUser(Protocol):
    """A user as the config file defines it (`kernel.config.User`)."""

    @property
    def name(self) -> str: ...
    @property
    def role(self) -> str: ...
    @property
    def customer(self) -> str | None: ...
    @property
    def password_hash(self) -> str: ...
    @property
    def disabled(self) -> bool: ...


@dataclass(frozen=True, slots=True)
class Account:
    """A portal user as stored."""

    name: str
    role: Role
    customer: str | None  # the customer id, for role "customer"
    password_hash: str
    disabled: bool
    source: Literal["config", "cli"]
    created_at: datetime
    updated_at: datetime

    @property
    def is_staff(self) -> bool:
        return self.role != "customer"


def _account(row: Sequence[Any]) -> Account:
    return Account(*row)


@dataclass(frozen=True, slots=True)
class Session:
    """A signed-in browser. `id` is what the cookie holds; only its digest is stored."""

    id: str
    user_name: str
    csrf_token: str
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class Viewer:
    """Who is asking: an enabled account, signed in by a session or by an API token."""

    user: Account
    session: Session | None = None  # None for API-token requests


@dataclass(frozen=True, slots=True)
class ApiToken:
    id: int
    user_name: str
    label: str
    prefix: str
    created_at: datetime
    expires_at: datetime | None
    last_used_at: datetime | None
    revoked_at: datetime | None

    def active(self, now: datetime) -> bool:
        return self.revoked_at is None and (self.expires_at is None or self.expires_at > now)


@dataclass(frozen=True, slots=True)
class Throttling:
    """How many sign-in attempts are taken within `window`.

    - `per_account_and_address` on one account from one address: past them, that
      address is refused for that account (and only that one) until the window passes;
    - `per_address` on any accounts from one address (a password spray); it is higher,
      many people may share one address (an office's NAT);
    - past `account_ceiling` on one account from all addresses together, addresses the
      account never signed in from get one attempt per `slow_interval` between them: a
      crowd of guessers is slowed to a crawl, but nobody is locked out, and the account's
      own known addresses (the `known_addresses` it signed in from most recently) are
      not slowed at all, nor held to `per_address`.

    Attempts count until a right password forgives those from its own address. An IPv6
    address counts as its /64, which one subscriber usually has whole.
    """

    per_account_and_address: int = 5
    per_address: int = 50
    account_ceiling: int = 20
    slow_interval: timedelta = timedelta(seconds=30)
    window: timedelta = timedelta(minutes=15)
    known_addresses: int = 10


@dataclass(frozen=True, slots=True)
class Attempts:
    """The recent sign-in attempts an attempt is decided by (see `Throttling`)."""

    from_here: int  # on this account from this address
    first_from_here: datetime | None
    by_address: int  # from this address on any account
    first_by_address: datetime | None
    on_account: int  # on this account from anywhere
    last_on_account: datetime | None
    known_address: bool  # the account signed in from this address before

    def wait(self, limits: Throttling, now: datetime) -> timedelta | None:
        """How long until an attempt is taken, or None if it is taken now."""
        until = []
        if self.from_here >= limits.per_account_and_address and self.first_from_here:
            until.append(self.first_from_here + limits.window)
        if not self.known_address:
            if self.by_address >= limits.per_address and self.first_by_address:
                until.append(self.first_by_address + limits.window)
            if self.on_account >= limits.account_ceiling and self.last_on_account:
                until.append(self.last_on_account + limits.slow_interval)
        latest = max(until, default=now)
        return latest - now if latest > now else None


def address_key(remote: str | None) -> str:
    """The address sign-in attempts are counted by: an IPv4 address as it is, an IPv6
    address as its /64 (counting single IPv6 addresses would give a guesser 2^64 fresh
    ones, and a privacy-extension client a new one every day)."""
    try:
        address = ipaddress.ip_address(remote or "")
    except ValueError:
        return remote or "unknown"
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address)


class Accounts:
    """The portal's accounts on the database. One per process."""

    def __init__(
        self,
        db: Database,
        *,
        session_ttl: timedelta,
        throttling: Throttling = Throttling(),
        verify_concurrency: int = 4,
        session_cache: timedelta = timedelta(seconds=5),
    ) -> None:
        self._db = db
        self._session_ttl = session_ttl
        self._throttling = throttling
        self._hasher = argon2.PasswordHasher()
        # Each verification holds argon2's memory cost (64 MiB by default): bound them.
        self._slots = asyncio.Semaphore(verify_concurrency)
        self._deciding = asyncio.Semaphore(verify_concurrency)
        self._dummy_hash: str | None = None
        self._session_cache_s = session_cache.total_seconds()
        self._sessions: dict[bytes, tuple[float, Viewer]] = {}  # digest -> (read at, viewer)

    @property
    def session_ttl(self) -> timedelta:
        return self._session_ttl

    # --- users ------------------------------------------------------------------------

    async def sync_config_users(self, users: Iterable[ConfiguredUser], now: datetime) -> None:
        """Make the stored config-file users what the file says (start-up). A name the file
        shares with a `linkwatch users add` user is refused, loudly, rather than merged."""
        users = list(users)
        async with self._db.connection() as conn, conn.transaction():
            cur = conn.cursor(row_factory=tuple_row)
            for user in users:
                await cur.execute(
                    query("users_sync_config"),
                    {
                        "name": user.name,
                        "role": user.role,
                        "customer_id": user.customer,
                        "password_hash": user.password_hash,
                        "disabled": user.disabled,
                        "now": now,
                    },
                )
            await cur.execute(query("users_drop_config"), {"names": [u.name for u in users]})
            for (name,) in await cur.fetchall():
                log.info("portal user removed from the config user=%s", name)
            await cur.execute(query("users_select"), {"name": None})
            stored = {account.name: account for account in map(_account, await cur.fetchall())}
        for user in users:
            account = stored.get(user.name)
            if account is not None and account.source == "cli":
                log.warning(
                    "config user ignored: the name belongs to a user made with "
                    "`linkwatch users add` user=%s; rename one of them",
                    user.name,
                )

    async def users(self) -> list[Account]:
        async with self._db.connection() as conn:
            cur = conn.cursor(row_factory=tuple_row)
            await cur.execute(query("users_select"), {"name": None})
            return [_account(row) for row in await cur.fetchall()]

    async def user(self, name: str) -> Account | None:
        async with self._db.connection() as conn:
            cur = conn.cursor(row_factory=tuple_row)
            await cur.execute(query("users_select"), {"name": name})
            row = await cur.fetchone()
        return None if row is None else _account(row)

    async def add_user(
        self, name: str, role: Role, customer: str | None, password: str, now: datetime
    ) -> Account:
        password_hash = await self.hash_password(password)
        async with self._db.connection() as conn:
            cur = conn.cursor(row_factory=tuple_row)
            await cur.execute(
                query("users_insert"),
                {
                    "name": name,
                    "role": role,
                    "customer_id": customer,
                    "password_hash": password_hash,
                    "now": now,
                },
            )
            if await cur.fetchone() is None:
                raise AccountError(f"there is already a portal user {name!r}")
        log.info("portal user added user=%s role=%s", name, role)
        account = await self.user(name)
        assert account is not None
        return account

    async def set_password(self, name: str, password: str, now: datetime) -> None:
        """A new password; every session of the user ends."""
        await self._update(name, now, password_hash=await self.hash_password(password))
        log.info("portal password changed user=%s", name)

    async def set_disabled(self, name: str, disabled: bool, now: datetime) -> None:
        """Disabling ends every session and stops every token of the user at once."""
        await self._update(name, now, disabled=disabled)
        log.info("portal user %s user=%s", "disabled" if disabled else "enabled", name)

    async def _update(
        self,
        name: str,
        now: datetime,
        *,
        password_hash: str | None = None,
        disabled: bool | None = None,
    ) -> None:
        async with self._db.connection() as conn, conn.transaction():
            cur = conn.cursor(row_factory=tuple_row)
            params = {"name": name, "password_hash": password_hash, "disabled": disabled}
            await cur.execute(query("users_update"), {**params, "now": now})
            if await cur.fetchone() is None:
                await cur.execute(query("users_select"), {"name": name})
                found = await cur.fetchone()
                if found is None:
                    raise AccountError(f"there is no portal user {name!r}")
                raise AccountError(
                    f"{name!r} is defined in the config file; change or disable it there "
                    "(users[].password_hash, users[].disabled) and restart"
                )
            await cur.execute(query("sessions_delete_user"), {"name": name})
            await cur.execute(query("login_known_forget"), {"name": name})
        self._forget_sessions_of(name)

    async def hash_password(self, password: str) -> str:
        problem = password_problem(password)
        if problem is not None:
            raise AccountError(problem)
        return await asyncio.to_thread(self._hasher.hash, password)

    # --- passwords ----------------------------------------------------------------------

    async def prepare(self) -> None:
        """Make the hash unknown accounts are checked against (start-up, in a thread)."""
        if self._dummy_hash is None:
            users = await self.users()
            self._dummy_hash = await asyncio.to_thread(self._make_dummy_hash, users)

    async def authenticate(self, name: str, password: str) -> Account | None:
        """The account if `password` is its password and it is enabled, else None.

        Every path does one argon2 verification with the configured cost, so an unknown
        name, a wrong password and a disabled account take about the same time.
        """
        user = await self.user(name)
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

    def _make_dummy_hash(self, users: Sequence[Account]) -> str:
        # Same cost parameters as the real hashes, so unknown accounts are not faster.
        for user in users:
            try:
                params = argon2.extract_parameters(user.password_hash)
            except InvalidHashError:
                continue
            return argon2.PasswordHasher.from_parameters(params).hash(secrets.token_urlsafe())
        return self._hasher.hash(secrets.token_urlsafe())

    # --- throttling ---------------------------------------------------------------------

    async def admit(self, name: str, remote: str | None, now: datetime) -> timedelta | None:
        """Decide a sign-in attempt as `name` from `remote`: None if its password may be
        checked, else how long until an attempt is taken (see `Throttling`).

        An admitted attempt is recorded *before* the password is checked (and forgiven by
        `signed_in`), and attempts on one account or from one address are decided one at
        a time, the count and the record under one lock, so a burst of concurrent guesses
        gets exactly the allowed number checked. Unknown names are decided exactly like
        existing ones, so throttling does not reveal which accounts exist.
        """
        account, key = name.casefold(), address_key(remote)
        limits = self._throttling
        # Only a few attempts at a time hold a connection while they are decided (the
        # rest wait here, holding none): a flood of sign-ins cannot take the pool from
        # the pages.
        async with self._deciding, self._db.connection() as conn, conn.transaction():
            cur = conn.cursor(row_factory=tuple_row)
            # Always the account's lock first: no two attempts can each hold a lock the
            # other is waiting for.
            await cur.execute(query("login_lock"), {"kind": "account", "key": account})
            await cur.execute(query("login_lock"), {"kind": "address", "key": key})
            await cur.execute(
                query("login_attempts_count"),
                {"account": account, "name": name, "remote": key, "since": now - limits.window},
            )
            row = await cur.fetchone()
            assert row is not None
            wait = Attempts(*row).wait(limits, now)
            if wait is None:
                await cur.execute(
                    query("login_failures_insert"), {"now": now, "account": account, "remote": key}
                )
        return wait

    async def signed_in(self, user: Account, name: str, remote: str | None, now: datetime) -> None:
        """`name` (as typed) signed in as `user` from `remote`: its attempts from there are
        forgiven, and the address is one the account is known to sign in from."""
        key = address_key(remote)
        async with self._db.connection() as conn, conn.transaction():
            params = {"user_name": user.name, "remote": key, "now": now}
            await conn.execute(
                query("login_failures_forgive"), {"account": name.casefold(), "remote": key}
            )
            await conn.execute(query("login_known_remember"), params)
            await conn.execute(
                query("login_known_prune"),
                {**params, "keep": self._throttling.known_addresses},
            )

    # --- sessions -----------------------------------------------------------------------

    async def create_session(self, user: Account, now: datetime, remote: str | None) -> Session:
        session = Session(
            id=secrets.token_urlsafe(32),
            user_name=user.name,
            csrf_token=secrets.token_urlsafe(32),
            expires_at=now + self._session_ttl,
        )
        async with self._db.connection() as conn:
            await conn.execute(
                query("sessions_insert"),
                {
                    "digest": _digest(session.id),
                    "user_name": user.name,
                    "csrf_token": session.csrf_token,
                    "now": now,
                    "expires_at": session.expires_at,
                    "remote": remote,
                },
            )
        return session

    async def session(self, session_id: str, now: datetime) -> Viewer | None:
        """The viewer of a live session of an enabled user, or None."""
        if not _is_token_text(session_id, 100):
            return None
        digest = _digest(session_id)
        kept = self._sessions.get(digest)
        if kept is not None:
            read_at, viewer = kept
            assert viewer.session is not None
            if (
                time.monotonic() - read_at < self._session_cache_s
                and now < viewer.session.expires_at
            ):
                return viewer
            del self._sessions[digest]
        async with self._db.connection() as conn:
            cur = conn.cursor(row_factory=tuple_row)
            await cur.execute(query("sessions_select"), {"digest": digest, "now": now})
            row = await cur.fetchone()
        if row is None:
            return None
        csrf_token, _created_at, expires_at, *user = row
        account = _account(user)
        viewer = Viewer(account, Session(session_id, account.name, csrf_token, expires_at))
        if len(self._sessions) > 50_000:
            self._sessions.clear()  # a bound, not a policy: entries live seconds anyway
        self._sessions[digest] = (time.monotonic(), viewer)
        return viewer

    async def end_session(self, session_id: str) -> None:
        if not _is_token_text(session_id, 100):
            return  # never one of ours
        digest = _digest(session_id)
        self._sessions.pop(digest, None)
        async with self._db.connection() as conn:
            await conn.execute(query("sessions_delete"), {"digest": digest})

    def _forget_sessions_of(self, name: str) -> None:
        for digest, (_, viewer) in list(self._sessions.items()):
            if viewer.user.name == name:
                del self._sessions[digest]

    async def purge(self, now: datetime) -> None:
        """Forget expired sessions and failures older than the throttling window."""
        async with self._db.connection() as conn:
            await conn.execute(query("sessions_purge"), {"now": now})
            await conn.execute(
                query("login_failures_purge"), {"before": now - self._throttling.window}
            )

    # --- API tokens ---------------------------------------------------------------------

    async def create_token(
        self, user: Account, label: str, now: datetime, *, expires_at: datetime | None = None
    ) -> tuple[ApiToken, str]:
        """A new token for `user`; the secret is returned once and never stored."""
        label = label.strip()
        if not label or len(label) > 100:
            raise AccountError("name the token (1 to 100 characters), e.g. 'billing export'")
        if expires_at is not None and expires_at <= now:
            raise AccountError("the token's expiry must be in the future")
        secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
        async with self._db.connection() as conn:
            cur = conn.cursor(row_factory=tuple_row)
            await cur.execute(
                query("tokens_insert"),
                {
                    "user_name": user.name,
                    "label": label,
                    "digest": _digest(secret),
                    "prefix": secret[: len(TOKEN_PREFIX) + 6],
                    "now": now,
                    "expires_at": expires_at,
                },
            )
            row = await cur.fetchone()
        assert row is not None
        log.info("api token created user=%s token_id=%d", user.name, row[0])
        return ApiToken(*row), secret

    async def tokens(self, user: Account) -> list[ApiToken]:
        async with self._db.connection() as conn:
            cur = conn.cursor(row_factory=tuple_row)
            await cur.execute(query("tokens_select"), {"user_name": user.name})
            return [ApiToken(*row) for row in await cur.fetchall()]

    async def revoke_token(self, user: Account, token_id: int, now: datetime) -> bool:
        """False when `user` has no such live token (someone else's is no different)."""
        async with self._db.connection() as conn:
            cur = conn.cursor(row_factory=tuple_row)
            await cur.execute(
                query("tokens_revoke"), {"id": token_id, "user_name": user.name, "now": now}
            )
            revoked = await cur.fetchone() is not None
        if revoked:
            log.info("api token revoked user=%s token_id=%d", user.name, token_id)
        return revoked

    async def token_viewer(self, secret: str, now: datetime) -> Viewer | None:
        """The viewer an API token stands for, or None for an unknown, revoked or expired
        token or a disabled user."""
        if not _is_token_text(secret, 100) or not secret.startswith(TOKEN_PREFIX):
            return None
        async with self._db.connection() as conn:
            cur = conn.cursor(row_factory=tuple_row)
            await cur.execute(query("tokens_use"), {"digest": _digest(secret), "now": now})
            row = await cur.fetchone()
        return None if row is None else Viewer(_account(row))


def password_problem(password: str) -> str | None:
    """Why a new password is not acceptable, or None."""
    if len(password) < MIN_PASSWORD_CHARS:
        return f"a password needs at least {MIN_PASSWORD_CHARS} characters"
    if len(password) > MAX_PASSWORD_CHARS:
        return f"a password may have at most {MAX_PASSWORD_CHARS} characters"
    return None


class LoginTokens:
    """CSRF tokens for the sign-in form, the one form of a visitor without a session
    (signed double submit).

    The token goes both into a cookie and into the form; a POST to the sign-in form is
    accepted only when the two match, the signature is ours and the token is younger than
    `lifetime`, so another site can neither read nor forge it. Anyone can fetch one, so it
    proves nothing beyond the sign-in form: every other form carries its session's token.
    """

    def __init__(self, key: bytes, lifetime: timedelta = LOGIN_FORM_LIFETIME) -> None:
        self._key = key
        self.lifetime = lifetime

    def issue(self, now: datetime) -> str:
        nonce = secrets.token_urlsafe(24)
        issued = str(int(now.timestamp()))
        return f"{nonce}.{issued}.{self._sign(nonce, issued)}"

    def age(self, token: str | None, now: datetime) -> timedelta | None:
        """How old a token of ours is, or None for anything else (expired ones included)."""
        if not _is_token_text(token, 200) or token.count(".") != 2:
            return None
        nonce, issued, signature = token.split(".")
        if not hmac.compare_digest(signature, self._sign(nonce, issued)) or not issued.isdigit():
            return None
        age = now - datetime.fromtimestamp(int(issued), now.tzinfo)
        # Portal processes sharing the key may disagree on the time by a little.
        if not -CLOCK_SKEW <= age <= self.lifetime:
            return None
        return age

    def is_valid(self, token: str | None, now: datetime) -> bool:
        return self.age(token, now) is not None

    def _sign(self, nonce: str, issued: str) -> str:
        message = f"login-form.{nonce}.{issued}".encode()
        return hmac.new(self._key, message, hashlib.sha256).hexdigest()


def tokens_match(expected: str | None, given: str | None) -> bool:
    if not _is_token_text(expected, 200) or not _is_token_text(given, 200):
        return False
    return hmac.compare_digest(expected, given)


def _is_token_text(value: str | None, most: int) -> TypeGuard[str]:
    """Whether a value a client sent (a cookie, a header, a form field) can be one of our
    session ids, tokens or CSRF tokens: printable ASCII of a sane length. Header bytes
    that are not UTF-8 reach us as lone surrogates, which must never get as far as
    `.encode()`: such a value is simply not ours."""
    return value is not None and 0 < len(value) <= most and value.isascii() and value.isprintable()
