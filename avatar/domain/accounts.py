"""Accounts: registration, authentication with lockout, roles, first admin."""
from __future__ import annotations

import re
import secrets
from datetime import timedelta

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from avatar.domain import Conflict, DomainError, TooManyAttempts, throttle
from avatar.domain.actor import Actor, audit
from avatar.domain.passwords import check_strength, hash_password, needs_rehash, verify_password
from avatar.store.db import utcnow
from avatar.store.models import Role, User

_EMAIL_RE = re.compile(r"^[^@\s<>\"']{1,64}@[A-Za-z0-9.-]{1,253}\.[A-Za-z]{2,}$")
_NAME_RE = re.compile(r"^[^\x00-\x1f<>]{2,120}$")


def normalize_email(email: str) -> str:
    email = (email or "").strip().lower()
    if not _EMAIL_RE.match(email):
        raise DomainError("Enter a valid email address.")
    return email


def validate_name(name: str) -> str:
    name = " ".join((name or "").split())
    if not _NAME_RE.match(name):
        raise DomainError("Enter your full name (2–120 characters, no angle brackets).")
    return name


def register(session: Session, email: str, full_name: str, password: str, role: Role = Role.USER) -> User:
    """Creates an account. Validates the email is well-formed and not taken, the name and the
    password strength; stores only an argon2id hash of the password."""
    email = normalize_email(email)
    full_name = validate_name(full_name)
    check_strength(password, email, full_name)
    password_hash = hash_password(password)  # before the lookup: a taken email answers in the same time
    if session.scalar(sa.select(User.id).where(User.email == email)) is not None:
        raise Conflict("An account with this email already exists.")
    user = User(email=email, full_name=full_name, password_hash=password_hash, role=role.value,
                pseudonym=secrets.token_hex(8))
    session.add(user)
    try:
        session.flush()
    except IntegrityError as exc:  # a concurrent registration won the race
        session.rollback()
        raise Conflict("An account with this email already exists.") from exc
    return user


def authenticate(session: Session, email: str, password: str, address: str = "", max_failures: int = 5,
                 lock_minutes: int = 15) -> User:
    """Returns the user for a correct email/password. Failures are throttled per account and
    address, per address and per account (domain.throttle); known and unknown emails get the same
    answers in the same time (a password is hashed on every path). Raises DomainError with one
    message for unknown email and wrong password alike, TooManyAttempts while throttled."""
    keys = throttle.rules(email, address, max_failures, lock_minutes)
    wait = throttle.locked_for(session, keys)
    if wait is not None:
        verify_password(None, password)
        raise TooManyAttempts(f"Too many failed log-ins. Try again in {_minutes(wait)}.")
    try:
        user = session.scalar(sa.select(User).where(User.email == normalize_email(email)))
    except DomainError:
        user = None
    ok = verify_password(user.password_hash if user else None, password)
    if user is None or not ok or not user.is_active:
        if throttle.record_failure(session, keys):
            raise TooManyAttempts(f"Too many failed log-ins. Try again in {_minutes(throttle.locked_for(session, keys))}.")
        raise DomainError("Wrong email or password.")
    throttle.record_success(session, keys)
    user.last_login_at = utcnow()
    if needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
    session.flush()
    return user


def _minutes(wait: timedelta | None) -> str:
    n = max(1, int(((wait or timedelta()).total_seconds() + 59) // 60))
    return "1 minute" if n == 1 else f"{n} minutes"


def change_password(session: Session, user: User, current: str, new: str, *, by: Actor) -> None:
    """Needs the current password; the new one passes the strength rules. Ends every session
    of the account (the caller renews the one that asked). Audited."""
    if not verify_password(user.password_hash, current):
        raise DomainError("The current password is not right.")
    check_strength(new, user.email, user.full_name)
    if verify_password(user.password_hash, new):
        raise DomainError("Choose a password other than the current one.")
    user.password_hash = hash_password(new)
    user.end_sessions()
    session.flush()
    audit(session, by, "account.password_changed", target_type="user", target_id=user.id)


def set_role(session: Session, user: User, role: str, *, by: Actor) -> None:
    """Gives the account a role (audited); its sessions end, since each carries its old role."""
    try:
        new = Role(role).value
    except ValueError as exc:
        raise DomainError(f"Unknown role {role!r}.") from exc
    old = user.role
    if new != old:
        user.role = new
        user.end_sessions()  # a session carries what its role allowed when it began
    session.flush()
    audit(session, by, "admin.role_changed", target_type="user", target_id=user.id, details={"from": old, "to": new})


def ensure_admin(session: Session, email: str, password: str | None) -> tuple[User | None, str | None]:
    """Creates the first admin if no admin exists. Returns (user, generated_password_or_None);
    (None, None) when an admin already exists."""
    if session.scalar(sa.select(User.id).where(User.role == Role.ADMIN.value).limit(1)) is not None:
        return None, None
    generated = None
    if not password:
        generated = password = secrets.token_urlsafe(18)
    user = register(session, email, "Administrator", password, role=Role.ADMIN)
    return user, generated
