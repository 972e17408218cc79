"""Password hashing (argon2id) and strength rules."""
from __future__ import annotations

import re
import string
import sys
from functools import lru_cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from avatar.domain import DomainError

PRODUCTION = PasswordHasher()  # argon2id, library defaults (t=3, m=64 MiB, p=4)
_hasher = PRODUCTION
# A hash of a random password, verified against when the user does not exist, so that
# the time of a failed login does not tell whether the email is registered.
_DUMMY_HASH = _hasher.hash("not-a-real-password-0a8f7e")


def use_cheap_hashing_for_tests() -> None:
    """For test suites only (refused outside pytest): argon2id at its least cost, so the suite's
    hundreds of registrations and logins take milliseconds, not minutes. Hashes made at any cost
    still verify (argon2 reads the cost from the hash); tests/test_auth.py checks PRODUCTION."""
    global _hasher, _DUMMY_HASH
    if "pytest" not in sys.modules:
        raise RuntimeError("cheap password hashing is for the test suite only")
    _hasher = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    _DUMMY_HASH = _hasher.hash("not-a-real-password-0a8f7e")


MIN_LENGTH = 12
MAX_LENGTH = 256


@lru_cache(maxsize=1)
def common_passwords() -> frozenset[str]:
    """The 30,000 most common passwords of real leaks (zxcvbn's list, MIT), lower case."""
    from zxcvbn.frequency_lists import FREQUENCY_LISTS

    return frozenset(FREQUENCY_LISTS["passwords"])


def _is_common(password: str) -> bool:
    """A common password itself, or one padded with digits and symbols ("Password2024!")."""
    lowered = password.lower()
    cores = {lowered, lowered.strip(string.digits + string.punctuation + " "),
             re.sub(r"^[\d\W_]+|[\d\W_]+$", "", lowered)}
    return any(c in common_passwords() for c in cores if len(c) >= 3)


class WeakPassword(DomainError):
    pass


def check_strength(password: str, email: str = "", name: str = "") -> None:
    if len(password) < MIN_LENGTH:
        raise WeakPassword(f"Password must be at least {MIN_LENGTH} characters.")
    if len(password) > MAX_LENGTH:
        raise WeakPassword(f"Password must be at most {MAX_LENGTH} characters.")
    lowered = password.lower()
    if _is_common(password) or len(set(password)) < 5:
        raise WeakPassword("Password is too common or repetitive.")
    local = email.split("@")[0].lower()
    if len(local) >= 4 and local in lowered:
        raise WeakPassword("Password must not contain your email address.")
    # the parts of the person's name (and of the email's local part) a guesser tries first
    parts = {w for w in re.split(r"[^\w]+|_", f"{name} {local}".lower()) if len(w) >= 4}
    if any(w in lowered for w in parts):
        raise WeakPassword("Password must not contain your name or email address.")
    classes = sum([any(c.islower() for c in password), any(c.isupper() for c in password),
                   any(c.isdigit() for c in password), any(not c.isalnum() for c in password)])
    if classes < 2 and len(password) < 20:
        raise WeakPassword("Use at least two kinds of characters (letters, digits, symbols), or 20+ characters.")


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    try:
        return _hasher.verify(password_hash or _DUMMY_HASH, password) and password_hash is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    return _hasher.check_needs_rehash(password_hash)
