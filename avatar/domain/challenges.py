"""Server-issued liveness challenges: a random ordered set of actions with time windows, a random
6-digit code and the consent statement that contains it. The client only displays them."""
from __future__ import annotations

import random
import secrets

ACTIONS = ("turn_left", "turn_right", "look_up", "blink_twice", "open_mouth", "smile")
PROMPTS = {
    "turn_left": "Turn your head to your left",
    "turn_right": "Turn your head to your right",
    "look_up": "Look up",
    "blink_twice": "Blink twice",
    "open_mouth": "Open your mouth wide",
    "smile": "Smile",
}
LEAD_SECONDS = 1.0  # "get ready" before the first prompt
ACTION_SECONDS = 2.0  # each prompt is shown this long
STATEMENT_SECONDS = 8.0  # time to read the statement aloud
CONSENT_TEXT_VERSION = "2026-11-v1"
PURPOSES_LABELS = {"personal": "Personal videos and messages", "marketing": "Marketing and advertising",
                   "political": "Political content"}


def statement_text(full_name: str, service: str, code: str) -> str:
    return (f"I, {full_name}, consent to {service} creating a digital avatar and a synthetic voice of me. "
            f"Code {' '.join(code)}.")


def schedule(actions: list[str]) -> dict:
    """When each prompt is shown, in seconds from the start of the recording."""
    steps, t = [], LEAD_SECONDS
    for a in actions:
        steps.append({"action": a, "prompt": PROMPTS[a], "start": t, "end": t + ACTION_SECONDS})
        t += ACTION_SECONDS
    return {"actions": steps, "statement": {"start": t, "end": t + STATEMENT_SECONDS},
            "duration": t + STATEMENT_SECONDS}


def draw(rng: random.Random | None = None) -> tuple[list[str], str]:
    """3–4 distinct actions in random order, and a 6-digit code (first digit may be 0).
    Turns to both sides are never adjacent (a quick left-right swing would satisfy both)."""
    rng = rng or secrets.SystemRandom()
    while True:
        actions = rng.sample(ACTIONS, rng.choice([3, 4]))
        if not any({a, b} == {"turn_left", "turn_right"} for a, b in zip(actions, actions[1:])):
            break
    code = "".join(str(rng.randrange(10)) for _ in range(6))
    return actions, code
