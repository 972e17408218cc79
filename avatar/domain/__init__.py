"""The rules of the product. No Flask here: web handlers call these functions."""


class DomainError(Exception):
    """A rule refused the request; the message is safe to show to the user."""

    status = 400


class NotFound(DomainError):
    status = 404


class Forbidden(DomainError):
    status = 403


class Conflict(DomainError):
    status = 409


class TooManyAttempts(DomainError):
    status = 429
