"""Screening of the text a person's avatar is asked to say.

A length limit, clean text, and the purpose matters: content that reads as political or as
advertising needs consent for that purpose, and a script may not deny being synthetic.

Matching runs on a folded form of the text, never on what was typed: Unicode compatibility forms
(NFKC), look-alike letters from other scripts mapped to the Latin letter they imitate (Unicode's
confusables data, as shipped by confusable-homoglyphs), accents and invisible characters dropped,
case folded, punctuation and spacing collapsed; a second form also reads digits and symbols used as
letters ("v0te", "$ale"). The patterns list paraphrases, not just keywords: tests/test_scripts.py
holds the paraphrases that must be caught and ordinary messages that must pass."""
from __future__ import annotations

import json
import re
import unicodedata
from functools import lru_cache

from avatar.domain import DomainError

MAX_CHARS = 1000  # about a minute of speech
MIN_CHARS = 2

_W = r"(?:\w+\s+){0,3}"  # up to three words in between
TOPICS = {
    "political": [
        r"\b(vote|votes|voted|voting|voter|voters|elect|re ?elect|election|elections|electoral|ballot|ballots|"
        r"candidate|candidates|referendum|parliament|senate|congress|caucus|manifesto|polling (station|place|day)|"
        r"campaign(ing)? for|political|democrats?|republicans?|(labour|conservative|liberal|green|democratic|"
        r"republican) party|tories|impeach\w*|mp for|president|governor|mayor|senator|congressman|congresswoman)\b",
        rf"\b(put|place|make|mark) (your|a) (cross|x|mark|tick) {_W}(next to|by|for|beside|against)\b",
        r"\b(go|head|get) (down )?to the polls\b", rf"\bsupport {_W}(at|in) the (polls|next \w+)\b",
        r"\b(choose|pick|back|support|elect) \w+ (on|this) (election|polling|voting) day\b",
        r"\belection day\b", r"\bgive (him|her|them) your (vote|support) (on|this|next)\b",
    ],
    "marketing": [
        r"\b(buy|buy now|discount|discounts|promo ?code|coupon|order now|limited time|free trial|sponsored|"
        r"\d+ ?% off|best price|on sale|special offer|shop now|sign up (now|today)|use (my|the) code|"
        r"subscribe (now|today)|deal of the (day|week)|money back|lowest price|for just \$?\d+|affiliate link|"
        r"link in (my|the) (bio|description))\b",
        rf"\b(get|grab|claim) {_W}(\d+ ?%|half) off\b", rf"\b(check out|try) {_W}(products?|brand|store|shop)\b",
    ],
}
_AI = r"(ai|a ?i|artificial intelligence|a computer|a machine|machines?|software|an algorithm|a bot|a robot)"
DENIALS = [
    r"\b(not|never|isn ?t|is not|wasn ?t|no|nothing)\b.{0,30}\b(ai|a ?i|artificial intelligence|synthetic|generated|"
    r"deepfake|deep fake|fake|clone|cloned|computer generated|machine made)\b",
    rf"\b(made|created|generated|produced|written|spoken|voiced|done) (by|with|using) {_AI}\b.{{0,20}}\b(not|never)\b",
    r"\bnothing (here|in this|about this)\b.{0,40}\b(made|created|generated|produced) (by|with|using)\b",
    r"\bthis is (really|truly|actually|genuinely|honestly|definitely)?( the)? real me\b",
    r"\bthis is (really|truly|actually|genuinely|honestly|definitely) me\b",
    r"\bi am (a )?(real|actual|genuine|living)( person| human)?\b",
    r"\b(100 ?%|completely|totally|genuinely|fully|entirely) (real|authentic|genuine|human|unedited)\b",
    r"\b(authentic|genuine|unedited|real|original) (recording|footage|video|voice|message) (of|from) me\b",
    r"\bi (recorded|filmed|made) this (myself|personally|in person)\b",
    r"\b(human|hand) ?made\b", r"\breally (me|myself) (talking|speaking)\b",
    rf"\bno {_AI}\b.{{0,20}}\b(was|were|is)? ?(used|involved|here)\b",
]
LEET = str.maketrans({"0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "7": "t", "@": "a", "$": "s", "!": "i",
                      "|": "l", "+": "t"})


class ScriptRefused(DomainError):
    status = 422


@lru_cache(maxsize=1)
def _latin_lookalikes() -> dict[str, str]:
    """Every character Unicode lists as confusable with an ASCII letter or digit, mapped to it."""
    from pathlib import Path

    import confusable_homoglyphs

    data = json.loads((Path(confusable_homoglyphs.__file__).parent / "confusables.json").read_text("utf-8"))
    out = {}
    for ch, glyphs in data.items():
        if len(ch) != 1 or ord(ch) < 128:
            continue
        ascii_ = [g["c"] for g in glyphs if len(g["c"]) == 1 and g["c"].isascii() and g["c"].isalnum()]
        if ascii_:
            out[ch] = ascii_[0]
    return out


def skeleton(text: str) -> str:
    """The folded form matched against: look-alikes to Latin, no accents or invisible characters,
    lower case, words separated by single spaces (apostrophes and hyphens become spaces)."""
    text = unicodedata.normalize("NFKC", text)
    table = _latin_lookalikes()
    text = "".join(table.get(ch, ch) for ch in text)
    text = "".join(ch for ch in unicodedata.normalize("NFKD", text)
                   if unicodedata.category(ch) not in ("Mn", "Me", "Cf"))
    text = text.casefold().replace("ı", "i")
    text = re.sub(r"[’'`´\-_.·•]+(?=\w)", " ", text)  # "isn't" → "isn t", "re-elect" → "re elect", "A.I." → "a i"
    text = re.sub(r"[^\w%$@!|+]+", " ", text)
    return re.sub(r"\s+", " ", text).strip()


def _forms(text: str) -> list[str]:
    sk = skeleton(text)
    return [sk, re.sub(r"\s+", " ", re.sub(r"[^\w%]", " ", sk.translate(LEET))).strip()]


def _hits(patterns: list[str], forms: list[str]) -> bool:
    return any(re.search(p, f) for p in patterns for f in forms)


def screen(script: str, purpose: str) -> str:
    """The cleaned script, or ScriptRefused with the reason."""
    text = unicodedata.normalize("NFC", script or "")
    text = "".join(ch for ch in text if ch in "\n\t" or unicodedata.category(ch)[0] != "C")
    text = re.sub(r"[ \t]+", " ", text).strip()
    if len(text) < MIN_CHARS or not re.search(r"\w", text):
        raise ScriptRefused("The script is empty.")
    if len(text) > MAX_CHARS:
        raise ScriptRefused(f"The script is {len(text)} characters long; the limit is {MAX_CHARS}.")
    forms = _forms(text)
    if _hits(DENIALS, forms):
        raise ScriptRefused("A script may not claim that the output is real or not AI-generated.")
    for topic, patterns in TOPICS.items():
        if topic != purpose and _hits(patterns, forms) and not (topic == "marketing" and purpose == "political"):
            raise ScriptRefused(f"This script reads as {topic} content; it needs consent for the {topic} purpose.")
    return text
