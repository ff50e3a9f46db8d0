"""Portal logins: scrypt password hashes, the demo accounts file, signed session cookies, CSRF tokens.

Pure functions and small classes, no web framework: the app asks them whether a password matches, what a session
cookie says and whether a form's CSRF token is the session's. Accounts and server-side sessions themselves live in
the directory (:mod:`consumers.portal.accounts`).

A password hash reads ``scrypt$<n>$<r>$<p>$<salt hex>$<key hex>``; ``firebus portal --hash-password`` makes one.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from itsdangerous import BadSignature, URLSafeTimedSerializer
from pydantic import ValidationError

from consumers.portal.accounts import Account
from firebus.errors import ConfigurationError

SCRYPT_N = 2**14
SCRYPT_R = 8
SCRYPT_P = 1
_KEY_BYTES = 32
SESSION_MAX_AGE_S = 12 * 60 * 60


def hash_password(password: str, *, salt: bytes | None = None) -> str:
    """A storable scrypt hash of ``password`` with a fresh random salt."""
    salt = salt if salt is not None else secrets.token_bytes(16)
    key = hashlib.scrypt(password.encode(), salt=salt, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P, dklen=_KEY_BYTES)
    return f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${salt.hex()}${key.hex()}"


def verify_password(password: str, stored: str) -> bool:
    """True when ``password`` is the one ``stored`` was made from (constant-time comparison)."""
    try:
        scheme, n, r, p, salt, key = stored.split("$")
        if scheme != "scrypt":
            return False
        expected = bytes.fromhex(key)
        actual = hashlib.scrypt(
            password.encode(), salt=bytes.fromhex(salt), n=int(n), r=int(r), p=int(p), dklen=len(expected)
        )
    except ValueError:
        return False
    return hmac.compare_digest(actual, expected)


_DUMMY_HASH = hash_password("unused", salt=b"\x00" * 16)


def load_accounts(path: Path) -> list[Account]:
    """Read the demo accounts, ``[[accounts]]`` of a TOML file, each marked ``demo``; errors name the file and the
    entry. Only ``firebus up --demo`` seeds them into the directory (see :mod:`consumers.portal.accounts`)."""
    try:
        with path.expanduser().open("rb") as handle:
            raw: dict[str, Any] = tomllib.load(handle)
    except FileNotFoundError:
        raise ConfigurationError(f"portal accounts file {path} does not exist") from None
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigurationError(f"portal accounts file {path}: {exc}") from exc
    accounts = []
    for index, entry in enumerate(raw.get("accounts", [])):
        try:
            accounts.append(Account.model_validate({**entry, "demo": True}))
        except ValidationError as exc:
            first = exc.errors(include_url=False)[0]
            where = ".".join(str(part) for part in first["loc"])
            raise ConfigurationError(f"portal accounts file {path}: accounts[{index}].{where}: {first['msg']}") from exc
    ids = [account.id for account in accounts]
    duplicated = sorted({account_id for account_id in ids if ids.count(account_id) > 1})
    if duplicated:
        raise ConfigurationError(f"portal accounts file {path}: duplicate account ids {', '.join(duplicated)}")
    return accounts


@dataclass(frozen=True)
class Session:
    """What the session cookie carries: the CSRF token of every form and, once logged in, the token of the
    server-side session (the directory says whose it is and whether it still lives; the cookie alone opens nothing).
    """

    csrf: str
    token: str | None = None

    @classmethod
    def anonymous(cls) -> Session:
        return cls(csrf=secrets.token_urlsafe(24))

    def login(self, token: str) -> Session:
        """A new session for the server-side session ``token``, with a new CSRF token (no fixation across login)."""
        return Session(csrf=secrets.token_urlsafe(24), token=token)

    def csrf_ok(self, submitted: str | None) -> bool:
        """True when a form's token is this session's (constant-time comparison)."""
        return submitted is not None and hmac.compare_digest(submitted.encode(), self.csrf.encode())


class SessionCodec:
    """Signs sessions into cookie values and reads them back; a tampered or expired cookie reads as no session."""

    def __init__(self, secret: str, *, max_age_s: int = SESSION_MAX_AGE_S) -> None:
        self._serializer = URLSafeTimedSerializer(secret, salt="firebus-portal-session")
        self.max_age_s = max_age_s

    def dumps(self, session: Session) -> str:
        return self._serializer.dumps({"csrf": session.csrf, "token": session.token})

    def loads(self, cookie: str | None) -> Session | None:
        if not cookie:
            return None
        try:
            data = self._serializer.loads(cookie, max_age=self.max_age_s)
        except BadSignature:
            return None
        if not isinstance(data, dict) or not isinstance(data.get("csrf"), str):
            return None
        token = data.get("token")
        return Session(csrf=data["csrf"], token=token if isinstance(token, str) else None)


def safe_next(target: str | None, default: str = "/") -> str:
    """Where to go after login: a local path only, never another site."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return default
    return target


def password_matches(account: Account | None, password: str) -> bool:
    """True when the account exists, is enabled and ``password`` is its own; a missing account costs a hash too, so
    the answer's timing does not tell which account ids exist."""
    if account is None:
        verify_password(password, _DUMMY_HASH)
        return False
    return verify_password(password, account.password_hash) and not account.disabled
