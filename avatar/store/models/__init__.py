"""Typed SQLAlchemy models. Import from here: `from avatar.store.models import User`."""
from avatar.store.models.accounts import ApiToken, IdempotencyKey, LoginThrottle, Role, User
from avatar.store.models.audit import AuditEvent
from avatar.store.models.enrollment import (
    Consent,
    Enrollment,
    EnrollmentState,
    FaceProfile,
    LivenessSession,
    Review,
    VoiceProfile,
)
from avatar.store.models.generation import Delegation, Generation
from avatar.store.models.jobs import Job, JobState, PeriodicSchedule
from avatar.store.models.media import MediaObject, SubjectKey
from avatar.store.models.protected import ProtectedPerson, ProtectedTemplate
from avatar.store.models.webhooks import WebhookDelivery, WebhookEndpoint

__all__ = [
    "ApiToken", "AuditEvent", "Consent", "Delegation", "Enrollment", "EnrollmentState", "FaceProfile",
    "Generation", "IdempotencyKey", "Job", "JobState", "LivenessSession", "LoginThrottle", "MediaObject", "PeriodicSchedule", "ProtectedPerson", "ProtectedTemplate",
    "Review", "Role",
    "SubjectKey", "User", "VoiceProfile", "WebhookDelivery", "WebhookEndpoint",
]
