"""Prompts shown late by a busy browser: the page reports when each appeared on the recording's
timeline; the server moves each window later by that lag, never earlier and never by more than
MAX_PROMPT_LAG, so an honest user on a slow machine passes and a forged timeline gains at most that."""
import json

import pytest

from avatar.analysis.challenge import WINDOW_AFTER, match_actions
from avatar.analysis.liveness import Event
from avatar.domain import DomainError
from avatar.domain.challenges import MAX_PROMPT_LAG, prompt_times, schedule, shown_schedule

PLAN = schedule(["turn_left", "smile", "look_up"])  # prompts at 1, 3, 5 s; statement 7–19 s
EVENT = {"turn_left": "turn_left", "smile": "smile", "look_up": "look_up"}


def answers_after(plan: dict, delays: list[float], held: float = 0.5) -> list[Event]:
    """Each prompt answered `delay` seconds after its planned start, held `held` seconds."""
    return [Event(EVENT[s["action"]], s["start"] + d, s["start"] + d + held, 20.0) for s, d in zip(plan["actions"], delays)]


def test_a_late_page_moves_each_window_by_its_own_lag():
    shown = shown_schedule(PLAN, [1.4, 3.1, 6.2, 7.9])
    assert [t for s in shown["actions"] for t in (s["start"], s["end"])] == pytest.approx([1.4, 3.1, 3.1, 6.2, 6.2, 7.9])
    assert (shown["statement"]["start"], shown["statement"]["end"]) == pytest.approx((7.9, 19.9))
    assert shown["duration"] == pytest.approx(19.9) and shown["prompt_lags"] == pytest.approx([0.4, 0.1, 1.2, 0.9])
    assert shown_schedule(PLAN, None) is PLAN


def test_reported_times_move_windows_only_later_and_only_so_far():
    early = shown_schedule(PLAN, [0.0, 0.5, 1.0, 2.0])  # earlier than planned: nothing moves
    assert [s["start"] for s in early["actions"]] == [1.0, 3.0, 5.0] and early["statement"]["start"] == 7.0
    late = shown_schedule(PLAN, [9.0, 20.0, 30.0, 40.0])  # a forged, very late timeline
    assert [s["start"] for s in late["actions"]] == [1.0 + MAX_PROMPT_LAG, 3.0 + MAX_PROMPT_LAG, 5.0 + MAX_PROMPT_LAG]
    assert late["statement"]["start"] == 7.0 + MAX_PROMPT_LAG


def test_an_honest_slow_page_passes_and_a_forged_timeline_gains_no_more_than_the_bound():
    # a page 1.5 s late at every prompt, a person who takes 1.8 s more to react: outside the planned windows
    delays = [MAX_PROMPT_LAG + 1.8] * 3
    assert 1.0 + delays[0] > PLAN["actions"][0]["end"] + WINDOW_AFTER
    events = answers_after(PLAN, delays)
    assert not match_actions(events, PLAN["actions"])["ok"]
    shown = [s["start"] + MAX_PROMPT_LAG for s in PLAN["actions"]] + [PLAN["statement"]["start"] + MAX_PROMPT_LAG]
    assert match_actions(events, shown_schedule(PLAN, shown)["actions"])["ok"]
    # answers later than any honest lag allows are refused whatever times are claimed
    too_late = answers_after(PLAN, [MAX_PROMPT_LAG + 2 + WINDOW_AFTER + 0.2] * 3)
    forged = shown_schedule(PLAN, [t + 10 for t in shown])
    assert not match_actions(too_late, forged["actions"])["ok"]
    # answers given in another order stay refused under the most generous timeline
    shuffled = [Event("look_up", 1.5, 2.2, 20.0), Event("smile", 3.5, 4.2, 0.5), Event("turn_left", 5.5, 6.2, 20.0)]
    assert not match_actions(shuffled, forged["actions"])["ok"]
    assert not match_actions(shuffled, PLAN["actions"])["ok"]


@pytest.mark.parametrize("raw,message", [
    ("not json", "not JSON"), ("{}", "list of 4 numbers"), ("[1, 2, 3]", "list of 4 numbers"),
    ('[1, 2, "x", 4]', "list of 4 numbers"), ("[1, 2, NaN, 4]", "list of 4 numbers"), ("[1, true, 3, 4]", "numbers"),
    ("[1, 3, 2, 4]", "increase"), ("[-1, 3, 5, 7]", "increase"), ("[1, 3, 5, 1e9]", "increase"),
    ("[" * 300 + "]" * 300, "too long"), (json.dumps([1.0] * 200), "too long"),
])
def test_malformed_prompt_times_are_refused_with_a_message(raw, message):
    with pytest.raises(DomainError, match=message):
        prompt_times(raw, PLAN)


def test_well_formed_prompt_times_are_kept():
    assert prompt_times(None, PLAN) is None and prompt_times("", PLAN) is None
    assert prompt_times("[1.0004, 3, 5.25, 7.5]", PLAN) == [1.0, 3.0, 5.25, 7.5]
