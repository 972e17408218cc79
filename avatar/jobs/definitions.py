"""Imports every module that registers jobs, so any runner knows all of them."""
from avatar.jobs import enrollment, generation, maintenance, webhooks  # noqa: F401
