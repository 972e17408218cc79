"""The approved likeness of avatar.demo.likeness, with the tests' password."""
from __future__ import annotations

import numpy as np

from avatar.demo import likeness
from tests.conftest import STRONG_PASSWORD


def approved_likeness(services, shared_data, **kw) -> int:
    return likeness.approved_likeness(services, shared_data, password=STRONG_PASSWORD, **kw)


def face_template(shared_data) -> np.ndarray:
    return likeness.references(shared_data)[1]
