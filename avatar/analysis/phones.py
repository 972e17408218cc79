"""Phones of timed words: espeak-ng's own phoneme spelling of each word (Kirshenbaum ASCII, the
`espeak-ng -x` binary, so its GPL stays at arm's length), spread over the word's time with vowels
taking twice a consonant's share. Enough to know when the lips must close (m, b, p) or round; not a
forced aligner."""
from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass

BILABIAL = {"m", "b", "p"}
LABIODENTAL = {"f", "v"}
_VOWEL = re.compile(r"[aeiouAEIOUV03@]")


@dataclass(frozen=True)
class Phone:
    phone: str
    start: float
    end: float


def is_vowel(phone: str) -> bool:
    return bool(_VOWEL.search(phone))


class EspeakError(RuntimeError):
    pass


def espeak_phonemes(text: str, spelling: list[str], timeout: float = 30) -> str:
    """espeak-ng's phonemes of text (American English, not spoken) in the spelling its options ask
    for (e.g. ["-x", "--sep=_"] or ["--ipa=1"]); run as a program, never linked."""
    exe = shutil.which("espeak-ng")
    if exe is None:
        raise EspeakError("espeak-ng is not installed (Debian package espeak-ng)")
    proc = subprocess.run([exe, "-q", *spelling, "-v", "en-us", "--", text], capture_output=True, timeout=timeout)
    if proc.returncode != 0:
        raise EspeakError(f"espeak-ng failed: {proc.stderr.decode(errors='replace')[:200]}")
    return proc.stdout.decode("utf-8", errors="replace")


def _espeak(text: str) -> str:
    return espeak_phonemes(text, ["-x", "--sep=_"])


def _split(spelled: str) -> list[str]:
    return [p for p in (t.strip("'`,") for t in spelled.split("_")) if p and p not in {"-", "#"}]


def bare_word(word: str) -> str:
    """The word without the punctuation around it (letters, digits, inner apostrophes and hyphens kept)."""
    return re.sub(r"[^\w'’-]", "", word).strip("-'’")


def word_phones(words: list[str]) -> list[list[str]]:
    """Each word's phones. One espeak-ng call for all; where it joins or splits words differently
    (numbers, hyphens), the words are spelled one by one."""
    clean = [bare_word(w) for w in words]
    out = _espeak(" ".join(c for c in clean if c)).split()
    if len(out) == sum(1 for c in clean if c):
        spelled = iter(out)
        return [_split(next(spelled)) if c else [] for c in clean]
    return [_split("".join(_espeak(c).split())) if c else [] for c in clean]


def phone_times(words: list[tuple[str, float, float]]) -> list[Phone]:
    """(word, start, end) seconds → timed phones."""
    phones: list[Phone] = []
    for (_, start, end), spelled in zip(words, word_phones([w for w, _, _ in words])):
        if not spelled or end <= start:
            continue
        weights = [2.0 if is_vowel(p) else 1.0 for p in spelled]
        step, t = (end - start) / sum(weights), start
        for p, w in zip(spelled, weights):
            phones.append(Phone(p, t, t + w * step))
            t += w * step
    return phones
