"""When each word of a known text is said in audio that says it: forced alignment, not recognition.
A talking head's mouth follows the words it is given; free recognition of synthetic speech mishears
some ("avatar" heard as "arm") and so puts lips shut on phones nobody said.

Pocketsphinx's HMM aligner (its US English acoustic model and CMU dictionary, inside the wheel; BSD)
places the words. On the 31 GRID clips of shared/data/talking played back to back (92 s, 186
words), against their .align files, word starts are off by 16 ms (median; 56 ms at the 90th
percentile), against 106 ms (344 ms) for Whisper tiny.en's cross-attention timings as they come
(38 ms and 130 ms once trimmed to sound and moved earlier: WHISPER_LAG). Words not in
the dictionary (names, numerals) are spelled from espeak-ng's phones. Where pocketsphinx gives up
before the last word (on some synthetic speech), Whisper's alignment (ctranslate2's Whisper.align)
places the rest: it sees 30 s at a time, so longer audio is aligned window by window, each cut after
a word its free transcript heard and matched to the text (_split_point)."""
from __future__ import annotations

import re
import threading
from difflib import SequenceMatcher

import numpy as np

from avatar.analysis.phones import bare_word, word_phones
from avatar.analysis.speech_recognition import DIGIT_NAMES, SR, model, timed_words

WINDOW_SECONDS = 28.0  # of audio per Whisper alignment (its encoder takes 30 s)
MARGIN_SECONDS = 3.0  # a window is cut at a word that ends at least this long before its end
WORDS_PER_SECOND = 2.5  # where the free transcript matches none of the text
# Whisper's word times lag the speech: against GRID s1's .align files its starts are a median 86 ms
# late, and on the offline voice's speech 130 ms later than pocketsphinx's; they are moved this much
# earlier, after each word is trimmed to where there is sound (SOUND_DB below the loudest 10 ms).
# On GRID s1 (92 s) word starts are then 38 ms off (median; 130 ms at the 90th percentile).
WHISPER_LAG = 0.08
SOUND_DB = 25.0
FRAME = 0.01  # pocketsphinx's frame, seconds
MIN_SECONDS = 0.1  # of audio to align anything in

# espeak-ng's Kirshenbaum phones (phones.word_phones) in the CMU dictionary's ARPAbet
ARPABET = {
    "p": "P", "b": "B", "t": "T", "d": "D", "k": "K", "g": "G", "f": "F", "v": "V", "T": "TH", "D": "DH",
    "s": "S", "z": "Z", "S": "SH", "Z": "ZH", "tS": "CH", "dZ": "JH", "h": "HH", "m": "M", "n": "N", "N": "NG",
    "l": "L", "r": "R", "w": "W", "j": "Y", "t#": "T", "?": "T", "x": "K",
    "a": "AE", "a#": "AH", "A": "AA", "A:": "AA", "aI": "AY", "aU": "AW", "E": "EH", "e": "EY", "eI": "EY",
    "i": "IY", "i:": "IY", "I": "IH", "I#": "IH", "I2": "IH", "0": "AA", "O": "AO", "O:": "AO", "OI": "OY",
    "o": "OW", "oU": "OW", "U": "UH", "u": "UW", "u:": "UW", "V": "AH", "@": "AH", "@2": "AH", "@5": "AH",
    "3": "ER", "3:": "ER", "@L": "AH L", "A@": "AA R", "e@": "EH R", "i@": "IY R", "i@3": "IY R",
    "o@": "AO R", "O@": "AO R", "U@": "UH R", "aI@": "AY ER", "aI3": "AY ER", "aU@": "AW ER",
}

_lock = threading.Lock()
_decoder = None


def text_words(text: str) -> list[str]:
    """The text's words, each with the punctuation around it (a comma's pause stays out of the next word)."""
    return [w for w in text.split() if re.search(r"\w", w)]


def _sphinx():
    """The pocketsphinx decoder, loaded once per process (used under _lock: it is not thread-safe)."""
    global _decoder
    if _decoder is None:
        from pocketsphinx import Decoder

        _decoder = Decoder(lm=None, loglevel="FATAL")
    return _decoder


def arpabet(spelled: list[str]) -> str:
    """espeak-ng phones in ARPAbet (unknown ones left out)."""
    out = []
    for p in spelled:
        q = p.rstrip("-;")
        out.append(ARPABET.get(q) or ARPABET.get(q.rstrip(":#2356")) or "")
    return " ".join(o for o in out if o)


def _sphinx_words(decoder, words: list[str]) -> list[str]:
    """The words as the dictionary knows them, the unknown ones added with espeak-ng's spelling."""
    keys = [bare_word(w).lower().replace("’", "'") for w in words]
    unknown = list(dict.fromkeys(k for k in keys if k and decoder.lookup_word(k) is None))  # each once
    for key, spelled in zip(unknown, word_phones(unknown)):
        phones = arpabet(spelled)
        if phones:
            try:
                decoder.add_word(key, phones, False)
            except RuntimeError:
                pass  # a spelling the dictionary refuses: the word stays unknown, Whisper places the text
    return [k for k in keys if k and decoder.lookup_word(k) is not None]


def _pcm(audio: np.ndarray) -> bytes:
    return (np.clip(np.asarray(audio, np.float32), -1, 1) * 32767).astype(np.int16).tobytes()


def _utterance(decoder, pcm: bytes) -> None:
    """One pass over pcm from a fresh front end: its noise removal (remove_noise, on by default) keeps
    the noise floor it estimated from whatever audio came before, which moved a word's start by up to
    50 ms between two alignments of the same audio in one process."""
    decoder.reinit_feat()
    decoder.start_utt()
    decoder.process_raw(pcm, full_utt=True)
    decoder.end_utt()


def _word_pass(decoder, words: list[str], pcm: bytes) -> list[str] | None:
    """Pocketsphinx's word-level alignment of the words over pcm (held under _lock); the words as its
    dictionary knows them, or None when it cannot take the text."""
    keys = _sphinx_words(decoder, words)
    if len(keys) != len(words):
        return None
    try:
        decoder.set_align_text(" ".join(keys))
    except RuntimeError:
        return None
    _utterance(decoder, pcm)
    return keys


def sphinx_phones(audio: np.ndarray, text: str) -> list[tuple[str, float, float]]:
    """(phone, start, end) seconds of the text's phones, ARPAbet without stress ("SIL" where it
    pauses): pocketsphinx's second, phone-level pass over the words its first pass aligned. [] when
    it cannot align the whole text. Each phone lasts at least 3 of its 10 ms frames: speech whose
    phones are shorter (some synthesizers') cannot be aligned unless slowed down first."""
    words = text_words(text)
    if not words or len(audio) < MIN_SECONDS * SR:
        return []
    pcm = _pcm(audio)
    with _lock:
        decoder = _sphinx()
        if _word_pass(decoder, words, pcm) is None or decoder.hyp() is None:
            return []
        try:
            decoder.set_alignment()
            _utterance(decoder, pcm)
            alignment = decoder.get_alignment()
        except RuntimeError:
            return []
        if alignment is None:
            return []
        return [(p.name, p.start * FRAME, (p.start + p.duration) * FRAME) for p in alignment.phones()]


def sphinx_phones_in_parts(audio: np.ndarray, text: str) -> list[tuple[str, float, float]]:
    """sphinx_phones, and where its phone pass cannot take the whole text (its word pass places every
    word but its search ends in no final state: 3 of 9 sentences said by espeak-ng, slowed as
    frame_selection aligns it), the text cut in two halves between the words the word pass placed,
    each aligned the same way, down to single words; a word that will not align is left out. Only the
    words the word pass placed are aligned."""
    phones = sphinx_phones(audio, text)
    if phones:
        return phones
    words = text_words(text)
    timed = sphinx_words(audio, text)
    audio = np.asarray(audio, np.float32)
    if len(timed) < len(words):  # the words the word pass placed may align whole
        return _phones_in_halves(audio, words[: len(timed)], timed, 0.0)
    return _halves(audio, words, timed, 0.0)  # the whole text just failed: split it at once


def _phones_in_halves(audio: np.ndarray, words: list[str], timed: list[tuple[str, float, float]],
                      offset: float) -> list[tuple[str, float, float]]:
    phones = sphinx_phones(audio, " ".join(words)) if words else []
    if phones or len(words) < 2:
        return [(p, offset + start, offset + end) for p, start, end in phones]
    return _halves(audio, words, timed, offset)


def _halves(audio: np.ndarray, words: list[str], timed: list[tuple[str, float, float]],
            offset: float) -> list[tuple[str, float, float]]:
    """_phones_in_halves of each half of the words, cut mid-way between the two words at the middle."""
    if len(words) < 2:
        return []
    half = len(words) // 2
    cut = int(round(0.5 * (timed[half - 1][2] + timed[half][1]) * SR))  # mid-way between the two words
    shift = cut / SR
    return (_phones_in_halves(audio[:cut], words[:half], timed[:half], offset)
            + _phones_in_halves(audio[cut:], words[half:], [(w, a - shift, b - shift) for w, a, b in timed[half:]],
                                offset + shift))


def sphinx_words(audio: np.ndarray, text: str) -> list[tuple[str, float, float]]:
    """Pocketsphinx's alignment of the text's words: all of them, or as many of the first ones as its
    search reached the end of the audio with (it gives up on speech its model fits badly)."""
    words = text_words(text)
    with _lock:
        decoder = _sphinx()
        keys = _word_pass(decoder, words, _pcm(audio))
        if keys is None:
            return []
        segments = [(s.word, s.start_frame * FRAME, (s.end_frame + 1) * FRAME) for s in decoder.seg() or []]
    out = []
    for name, start, end in segments:
        if len(out) < len(keys) and name.split("(")[0] == keys[len(out)]:
            out.append((bare_word(words[len(out)]), start, end))
    return out


def _align_window(audio: np.ndarray, words: list[str], offset: float) -> list[tuple[str, float, float]]:
    from faster_whisper.audio import pad_or_trim
    from faster_whisper.tokenizer import Tokenizer

    m = model()
    tokenizer = Tokenizer(m.hf_tokenizer, m.model.is_multilingual, task="transcribe", language="en")
    features = m.feature_extractor(np.asarray(audio, np.float32))
    frames = min(features.shape[-1], 3000)
    tokens = tokenizer.encode(" " + " ".join(words))
    aligned = m.find_alignment(tokenizer, [tokens], m.encode(pad_or_trim(features)), frames)[0]
    out = []
    for a in aligned:
        word = bare_word(a["word"])
        if word:
            out.append((word, offset + float(a["start"]), offset + float(a["end"])))
    return out


def match_tokens(word: str) -> list[str]:
    """The word as _split_point compares it: lower case, letters apart from digits, each digit as
    its word (Whisper writes "m four" as "M4", "g zero" as "G0")."""
    out = []
    for part in re.findall(r"[^\W\d_]+|\d", bare_word(word).lower()):
        out.append(DIGIT_NAMES[int(part)] if part.isdigit() else part)
    return out


def _split_point(audio: np.ndarray, words: list[str], end: float) -> tuple[int, float]:
    """How many of `words` a window of audio says up to where it is cut, and the cut (seconds): at the
    last word of its free transcript that ends before the window's last MARGIN_SECONDS and matches a
    word of the text (difflib over the text's next words, both as match_tokens); a match inside a run
    of two or more agreeing tokens is preferred to a lone one (a lone "please" may be another
    sentence's); by the speaking rate if nothing matches."""
    heard = [w for w in timed_words(audio) if w[2] < end - MARGIN_SECONDS]
    heard_tokens = [(tok, w_end) for w, _, w_end in heard for tok in match_tokens(w)]
    upcoming = [(tok, i) for i, w in enumerate(words[:len(heard) + 20]) for tok in match_tokens(w)]
    match = SequenceMatcher(None, [t for t, _ in upcoming], [t for t, _ in heard_tokens], autojunk=False)
    blocks = [b for b in match.get_matching_blocks() if b.size]
    runs = [b for b in blocks if b.size >= 2] or blocks
    if runs:
        last = runs[-1]
        a, b = last.a + last.size - 1, last.b + last.size - 1
        return upcoming[a][1] + 1, heard_tokens[b][1]
    cut = end - MARGIN_SECONDS
    return max(1, int(cut * WORDS_PER_SECOND)), cut


def _sounding(audio: np.ndarray) -> np.ndarray:
    """Per 10 ms frame: is there sound (within SOUND_DB of the loudest, 6 dB over the quiet floor)?"""
    hop = int(FRAME * SR)
    n = len(audio) // hop
    if n == 0:
        return np.zeros(0, bool)
    db = 10 * np.log10((audio[: n * hop].astype(np.float64).reshape(n, hop) ** 2).mean(axis=1) + 1e-10)
    db = np.convolve(db, np.ones(3) / 3, "same")
    return db > max(db.max() - SOUND_DB, np.percentile(db, 10) + 6)


def _trimmed(words: list[tuple[str, float, float]], audio: np.ndarray) -> list[tuple[str, float, float]]:
    """Each word trimmed to its first and last sounding frames, then WHISPER_LAG earlier."""
    sounding = _sounding(audio)
    out = []
    for word, start, end in words:
        a = int(start / FRAME)
        idx = np.flatnonzero(sounding[a: max(a + 1, int(np.ceil(end / FRAME)))])
        if idx.size:
            start, end = (a + idx[0]) * FRAME, (a + idx[-1] + 1) * FRAME
        out.append((word, max(0.0, start - WHISPER_LAG), max(0.0, end - WHISPER_LAG)))
    return out


def whisper_words(audio: np.ndarray, text: str) -> list[tuple[str, float, float]]:
    """Whisper's alignment of the text's words, window by window, trimmed and moved (_trimmed)."""
    words = text_words(text)
    out: list[tuple[str, float, float]] = []
    begin, total = 0.0, len(audio) / SR
    if total < MIN_SECONDS:
        return []
    while words and begin < total:
        window = audio[int(begin * SR): int(min(total, begin + WINDOW_SECONDS) * SR)]
        if begin + WINDOW_SECONDS >= total:
            out += _align_window(window, words, begin)
            break
        n, cut = _split_point(window, words, WINDOW_SECONDS)
        out += _align_window(window[: int(cut * SR)], words[:n], begin)
        words, begin = words[n:], begin + cut
    return _trimmed(out, audio)


def aligned_words(audio: np.ndarray, text: str) -> list[tuple[str, float, float]]:
    """(word, start, end) seconds of each word of `text` in 16 kHz mono audio that says it."""
    words = text_words(text)
    if not words or not len(audio):
        return []
    placed = sphinx_words(audio, text)
    if len(placed) == len(words):
        return placed
    begin = placed[-1][2] if placed else 0.0  # the rest by Whisper, after the last word placed
    rest = whisper_words(audio[int(begin * SR):], " ".join(words[len(placed):]))
    return placed + [(w, begin + start, begin + end) for w, start, end in rest]
