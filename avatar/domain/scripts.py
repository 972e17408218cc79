"""Screening of the text a person's avatar is asked to say.

A length limit, clean text, and the purpose matters: content that reads as political or as
advertising needs consent for that purpose, and a script may not deny being synthetic."""
from __future__ import annotations

import re
import unicodedata

from avatar.domain import DomainError

MAX_CHARS = 1000  # about a minute of speech
MIN_CHARS = 2
TOPICS = {
    "political": r"\b(vote|votes|voting|voter|elect|re-?elect|election|elections|ballot|candidate|referendum|"
                 r"parliament|senate|congress|political party|democrats?|republicans?)\b",
    "marketing": r"\b(buy|buy now|discount|promo code|coupon|order now|limited time|free trial|sponsored|"
                 r"\d+ ?% off|best price)\b",
}
DENIALS = re.compile(r"\b(not|never|isn'?t|no)\b.{0,20}\b(ai|a\.i\.|synthetic|generated|deepfake|fake|clone)\b|"
                     r"\bthis is (really|truly|actually) me\b|\bi am (a )?real( person)?\b", re.I)


class ScriptRefused(DomainError):
    status = 422


def screen(script: str, purpose: str) -> str:
    """The cleaned script, or ScriptRefused with the reason."""
    text = unicodedata.normalize("NFC", script or "")
    text = "".join(ch for ch in text if ch in "\n\t" or unicodedata.category(ch)[0] != "C")
    text = re.sub(r"[ \t]+", " ", text).strip()
    if len(text) < MIN_CHARS or not re.search(r"\w", text):
        raise ScriptRefused("The script is empty.")
    if len(text) > MAX_CHARS:
        raise ScriptRefused(f"The script is {len(text)} characters long; the limit is {MAX_CHARS}.")
    if DENIALS.search(text):
        raise ScriptRefused("A script may not claim that the output is real or not AI-generated.")
    for topic, pattern in TOPICS.items():
        if topic != purpose and re.search(pattern, text, re.I) and not (topic == "marketing" and purpose == "political"):
            raise ScriptRefused(f"This script reads as {topic} content; it needs consent for the {topic} purpose.")
    return text
