"""Accounts: registration, authentication with lockout, roles, first admin."""
from __future__ import annotations

import re
import secrets
from datetime import timedelta

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from avatar.domain import Conflict, DomainError, TooManyAttempts
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
    if session.scalar(sa.select(User.id).where(User.email == email)) is not None:
        raise Conflict("An account with this email already exists.")
    user = User(email=email, full_name=full_name, password_hash=hash_password(password), role=role.value,
                pseudonym=secrets.token_hex(8))
    session.add(user)
    try:
        session.flush()
    except IntegrityError as exc:  # a concurrent registration won the race
        session.rollback()
        raise Conflict("An account with this email already exists.") from exc
    return user


def authenticate(session: Session, email: str, password: str, max_failures: int = 5,
                 lock_minutes: int = 15) -> User:
    """Returns the user for a correct email/password. After max_failures wrong passwords in a
    row the account is locked for lock_minutes (also against the right password). Raises
    DomainError with one message for unknown email and wrong password alike."""
    try:
        email = normalize_email(email)
    except DomainError:
        verify_password(None, password)
        raise DomainError("Wrong email or password.")
    user = session.scalar(sa.select(User).where(User.email == email))
    now = utcnow()
    if user is not None and user.locked_until and user.locked_until > now:
        minutes = int((user.locked_until - now).total_seconds() // 60) + 1
        raise TooManyAttempts(f"Too many failed logins. Try again in {minutes} minutes.")
    ok = verify_password(user.password_hash if user else None, password)
    if user is None or not ok or not user.is_active:
        if user is not None:
            user.failed_logins += 1
            if user.failed_logins >= max_failures:
                user.locked_until = now + timedelta(minutes=lock_minutes)
                user.failed_logins = 0
                session.flush()
                raise TooManyAttempts(f"Too many failed logins. Try again in {lock_minutes} minutes.")
            session.flush()
        raise DomainError("Wrong email or password.")
    user.failed_logins = 0
    user.locked_until = None
    user.last_login_at = now
    if needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
    session.flush()
    return user


def set_role(session: Session, user: User, role: str) -> None:
    try:
        user.role = Role(role).value
    except ValueError as exc:
        raise DomainError(f"Unknown role {role!r}.") from exc
    session.flush()


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
