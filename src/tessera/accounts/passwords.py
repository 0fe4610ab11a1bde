"""Argon2id password hashing (argon2-cffi), with the same cost for unknown accounts.

Every computation runs in a :class:`HashingPool` slot, so a flood of logins answers ``429``
rather than taking every core."""

from __future__ import annotations

from argon2 import PasswordHasher, profiles
from argon2.exceptions import InvalidHashError, VerificationError

from tessera.accounts.hashing_pool import HashingPool, default_workers
from tessera.errors import FieldError, RateLimited, ValidationFailed
from tessera.text import check_clean

MIN_PASSWORD_LENGTH = 10
MAX_PASSWORD_LENGTH = 1024


class Passwords:
    def __init__(self, profile: str = "default", pool: HashingPool | None = None) -> None:
        parameters = profiles.CHEAPEST if profile == "cheapest" else profiles.RFC_9106_LOW_MEMORY
        self._hasher = PasswordHasher.from_parameters(parameters)
        self.pool = pool or HashingPool(default_workers(), queue=8)
        # Verifying against this when the account does not exist makes an unknown email
        # cost the same time as a wrong password.
        self._decoy = self._hasher.hash("decoy: an account that does not exist")

    def hash(self, password: str) -> str:
        check_strength(password)
        with self.pool.slot():
            return self._hasher.hash(password)

    def verify(self, stored: str | None, password: str) -> bool:
        """True only when ``stored`` exists and matches; always one Argon2 computation."""
        try:
            with self.pool.slot():
                matched = self._hasher.verify(stored or self._decoy, password[:MAX_PASSWORD_LENGTH])
        except (VerificationError, InvalidHashError):
            return False
        return matched and stored is not None

    def upgraded(self, stored: str, password: str) -> str | None:
        """A new hash when ``stored`` was made with weaker parameters than today's, else None.

        Called after a successful verification, so deployments that raise the cost move every
        active user to it at their next login. When the pool is full the upgrade waits for a
        later login: the person has proved the password and is not refused for it."""
        if not self._hasher.check_needs_rehash(stored):
            return None
        try:
            with self.pool.slot():
                return self._hasher.hash(password)
        except RateLimited:
            return None


def check_strength(password: str) -> None:
    check_clean(password, "password")
    if len(password) < MIN_PASSWORD_LENGTH:
        raise ValidationFailed(
            f"The password must be at least {MIN_PASSWORD_LENGTH} characters long.",
            errors=[FieldError("password", f"at least {MIN_PASSWORD_LENGTH} characters")],
        )
    if len(password) > MAX_PASSWORD_LENGTH:
        raise ValidationFailed(
            "The password is too long.",
            errors=[FieldError("password", f"at most {MAX_PASSWORD_LENGTH} characters")],
        )
