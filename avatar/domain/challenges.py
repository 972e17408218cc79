"""Server-issued liveness challenges: a random ordered set of actions with time windows, a random
6-digit code and the consent statement that contains it. The client only displays them."""
from __future__ import annotations

import json
import math
import random
import secrets

from avatar.domain import DomainError

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
# Time to read the statement aloud: about 17 words (~27 syllables, 5.5-7.5 s at 3.5-5 syllables a
# second) and the 6 digits (the 25 readers of shared/data/digits_read take 0.40-0.91 s a digit, median
# 0.65: 2.4-5.5 s), after ~0.7 s to react. A median reader needs ~10.5 s, a slow one ~13 s; with
# RECORD_TAIL the recording runs 13 s past the prompt (8 s cut the last digits of most real readers).
STATEMENT_SECONDS = 12.0
# A busy browser shows a prompt late. The page reports when each one appeared on the recording's own
# timeline; the server moves that step's window later by as much, up to this bound (an earlier time
# than planned moves nothing: a forged timeline gains at most this slack, never a reordering).
MAX_PROMPT_LAG = 1.5
RECORD_TAIL = 1.0  # the page keeps recording this long after the statement's time (the last digit)
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


def prompt_times(raw: str | None, plan: dict) -> list[float] | None:
    """The page's report of when each prompt appeared (seconds into the recording: one per action,
    then the statement), checked; None when the client sent none. DomainError (400) when malformed."""
    if raw is None or raw == "":
        return None
    if len(raw) > 400:  # a dozen numbers; nothing longer is parsed (deep nesting)
        raise DomainError("prompt_times is too long.")
    try:
        times = json.loads(raw)
    except ValueError:
        raise DomainError("prompt_times is not JSON.") from None
    n = len(plan["actions"]) + 1
    if (not isinstance(times, list) or len(times) != n
            or not all(isinstance(t, (int, float)) and not isinstance(t, bool) and math.isfinite(t) for t in times)):
        raise DomainError(f"prompt_times must be a list of {n} numbers (each action's prompt, then the statement).")
    if any(b < a for a, b in zip(times, times[1:])) or times[0] < 0 or times[-1] > plan["duration"] + 60:
        raise DomainError("prompt_times must increase, from the start of the recording.")
    return [round(float(t), 3) for t in times]


def shown_schedule(plan: dict, shown: list[float] | None) -> dict:
    """The plan as the page showed it: each prompt from when it appeared (its planned start plus a
    lag in [0, MAX_PROMPT_LAG]) until the next one appeared. Without a report, the plan itself."""
    if not shown:
        return plan
    lags = [min(max(t - p, 0.0), MAX_PROMPT_LAG) for t, p in
            zip(shown, [s["start"] for s in plan["actions"]] + [plan["statement"]["start"]])]
    steps = [{**step, "start": step["start"] + lag, "end": step["end"] + nxt}
             for step, lag, nxt in zip(plan["actions"], lags, lags[1:])]
    st = plan["statement"]
    return {**plan, "actions": steps, "statement": {"start": st["start"] + lags[-1], "end": st["end"] + lags[-1]},
            "duration": plan["duration"] + lags[-1], "prompt_lags": [round(x, 3) for x in lags]}


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
