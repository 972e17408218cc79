"""Conversion toward the enrolled voice by unit and frame selection: the synthetic speech's spectral
envelope and aperiodicity are replaced in large part by those of the person's own enrolled speech.

The enrolled speech is analysed once (WORLD, 5 ms frames) into a bank: per frame its envelope,
aperiodicity, voicing and a matching key (the envelope's mel-cepstrum without its level, with its
change over ±2 frames, normalised over the bank's speech frames); and its phones, found by
transcribing it (Whisper tiny.en) and aligning that text (pocketsphinx, phone level; in parts where
it cannot take the whole text at once: word_alignment.sphinx_phones_in_parts).

- Units: each phone of the speech to convert (its source, aligned to the known text: source_phones)
  takes the envelope of one enrolled stretch of the same phone, stretched to its length, chosen by
  the key distance, by whether the phones before and after are the same (CONTEXT_COST) and by the
  length ratio (DURATION_COST); UNIT_MIX of the frame's log envelope is then the person's. Whole
  phones keep their own transitions, so the words survive where averaged frames lose them.
- Frames no unit covers (pauses, a phone the person never said in the bank, speech that could
  not be aligned): the K nearest bank frames of the same voicing, averaged, MIX of the envelope.
The result is smoothed over time and resynthesised by WORLD with the source's pitch. Each frame's
loudness follows the person's frames it draws on by the same share as its envelope, the rest the
source's (the two brought to one level over the voiced frames): how loud a person says each phone is
part of how they sound. Made as loud as the source's frame instead, the clone scored 0.759 mean
Resemblyzer similarity on bench_clone.py's 5 speakers (AMD EPYC 2 cores; 1998 0.713), now 0.777
(1998 0.722), words lost 13 % -> 5.6 %; with a real utterance's own frame levels in place of
espeak-ng's (its timing and pitch too), 1998's rose 0.69 -> 0.76.
keep_words then listens to it (Whisper tiny.en): the stretches where words of the text are lost are
rendered again with the source's own envelope, and kept if more words are heard (bench_clone.py on
the 5 speakers of voices/, an AMD EPYC 2-core machine: words lost 15 % -> 6.7 %, at most 44 % ->
11 %; similarity mean 0.766 -> 0.755; then, converted from the adapted voice's WORLD parameters
rather than its resynthesis, 3.9 % and 0.752; README).

Frame selection is the idea of kNN-VC (Baas et al., 2023), unit selection that of concatenative
synthesis (Hunt & Black, 1996), both here with cepstra and WORLD instead of neural features and
vocoders, whose weights cannot be installed here. Takes and returns float32 audio at SR."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from avatar.synthesis.speech import ReferenceCache, world

SR = 16000
N_CEP = 24  # mel-cepstral coefficients of the key (c1..c24)
DELTA = 2  # frames each side for the key's change
K = 16  # nearest bank frames averaged
# The share of the converted log envelope that is the bank's, the rest the source's. Frames by
# nearest neighbours: all of it (MIX 1) reached Resemblyzer 0.71-0.82 on the 5 speakers of voices/
# but Whisper lost 70-100 % of the words (frames matched on cepstra across two voices often sound
# another phone); 0.55 keeps them. Whole phones (units): 0.7 gave 0.69-0.82 (mean 0.77) with 10 %
# of the words lost, 0.85 gave 0.71-0.85 with 27 % lost (bench_clone.py, README).
MIX = 0.55
UNIT_MIX = 0.7
CONTEXT_COST = 0.5  # per neighbour phone that differs (the key distance is about 1-3)
DURATION_COST = 0.3  # per unit of |log(unit length / phone length)|
SMOOTH = 5  # frames of the moving average over the converted envelopes (25 ms)
SPEECH_RANGE_DB = 45.0  # bank frames within this of the loud frames (the rest is silence)
MIN_BANK_FRAMES = 400  # 2 s of speech frames at least
CHUNK = 1024  # source frames matched at once (bounds the distance matrix)
FRAME = world.FRAME_MS / 1000
PAUSES = {"SIL", "+NSN+", "+SPN+", "+BREATH+", "+COUGH+", "+UM+", "+UH+", "+SMACK+"}
# espeak-ng's shortest phones are under the 30 ms (3 frames) pocketsphinx gives any phone: a source
# that does not align as it is (espeak-ng's) is aligned slowed down this much (WORLD, pitch and
# envelope kept), its times scaled back. Kokoro's natural speech aligns as it is; slowed, its phones
# land worse ("your name and number" heard as "no name in London" in tests/test_kokoro.py)
ALIGN_SLOWER = 1.5


class ConversionError(ValueError):
    pass


def _keys(sp: np.ndarray) -> np.ndarray:
    """Per frame: mel-cepstrum c1..N_CEP and its change over ±DELTA frames."""
    import pyworld as pw

    cep = pw.code_spectral_envelope(np.ascontiguousarray(sp), SR, N_CEP + 1)[:, 1:]
    pad = np.pad(cep, ((DELTA, DELTA), (0, 0)), mode="edge")
    delta = pad[2 * DELTA:] - pad[: len(cep)]
    return np.hstack([cep, delta]).astype(np.float32)


def _level_db(sp: np.ndarray) -> np.ndarray:
    return 10 * np.log10(sp.sum(axis=1) + 1e-12)


@dataclass(frozen=True)
class PhoneSpan:
    """A phone's frames [start, end) with the phones said before and after it."""
    phone: str
    start: int
    end: int
    before: str
    after: str


def phone_spans(phones: list[tuple[str, float, float]], n_frames: int) -> list[PhoneSpan]:
    """Aligned phones (ARPAbet, seconds) as frame spans of at least 2 frames, pauses left out."""
    spans = []
    for k, (phone, start, end) in enumerate(phones):
        a, b = int(round(start / FRAME)), min(n_frames, int(round(end / FRAME)))
        if phone in PAUSES or b - a < 2:
            continue
        before = phones[k - 1][0] if k else "SIL"
        after = phones[k + 1][0] if k + 1 < len(phones) else "SIL"
        spans.append(PhoneSpan(phone, a, b, before, after))
    return spans


def source_phones(audio: np.ndarray, text: str) -> list[tuple[str, float, float]]:
    """The phones of text in the synthesizer's own speech of it (before adaptation, which keeps its
    timing): aligned as it is, or if that fails slowed down by ALIGN_SLOWER (WORLD) and the times
    scaled back, the whole text at once or else in parts (word_alignment.sphinx_phones_in_parts: 3 of
    9 sentences tried said by espeak-ng would otherwise have no phones, so no units, at all); [] when
    nothing aligns."""
    import pyworld as pw

    from avatar.analysis.word_alignment import sphinx_phones, sphinx_phones_in_parts

    phones = sphinx_phones(audio, text)
    if phones:
        return phones
    f0, sp, ap = world.analysed(audio, SR)  # as adapt() analysed it
    slow = pw.synthesize(f0, sp, ap, SR, frame_period=world.FRAME_MS * ALIGN_SLOWER).astype(np.float32)
    return [(p, start / ALIGN_SLOWER, end / ALIGN_SLOWER) for p, start, end in sphinx_phones_in_parts(slow, text)]


class FrameBank:
    """The enrolled speech's frames (log envelopes, aperiodicities, voicing, normalised keys), the
    speech frames among them, and its phones' spans by phone."""

    def __init__(self, audio: np.ndarray):
        from avatar.analysis.speech_recognition import transcribe
        from avatar.analysis.word_alignment import sphinx_phones_in_parts

        f0, sp, ap = world.analysed(audio, SR)
        level = _level_db(sp)
        speech = level >= np.percentile(level, 95) - SPEECH_RANGE_DB if level.size else np.zeros(0, bool)
        if speech.sum() < MIN_BANK_FRAMES:
            raise ConversionError("the enrolled voice has too little speech to convert toward "
                                  f"(at least {MIN_BANK_FRAMES * 0.005:.0f} s)")
        keys = _keys(sp)
        self.keys = ((keys - keys[speech].mean(axis=0)) / (keys[speech].std(axis=0) + 1e-6)).astype(np.float32)
        self.log_sp = np.log(sp + 1e-12).astype(np.float32)
        self.ap = ap.astype(np.float32)
        self.voiced = f0 > 0
        self.speech = np.flatnonzero(speech)
        self.units: dict[str, list[PhoneSpan]] = {}
        for span in phone_spans(sphinx_phones_in_parts(audio, transcribe(audio).text), len(f0)):
            self.units.setdefault(span.phone, []).append(span)

    @classmethod
    def from_state(cls, keys: np.ndarray, log_sp: np.ndarray, ap: np.ndarray, voiced: np.ndarray,
                   speech: np.ndarray, units: dict[str, list[PhoneSpan]]) -> FrameBank:
        """A bank as analysed before (speech/voice_analysis.py), without analysing again."""
        bank = cls.__new__(cls)
        bank.keys, bank.log_sp, bank.ap = keys, log_sp, ap
        bank.voiced, bank.speech, bank.units = voiced.astype(bool), speech.astype(np.int64), units
        return bank

    @cached_property
    def level_db(self) -> np.ndarray:
        """Each frame's loudness (dB), worked out once per bank (it is kept per process)."""
        return _level_db(np.exp(self.log_sp))

    def nearest(self, keys: np.ndarray, voiced: np.ndarray) -> np.ndarray:
        """Indices (frames × K) of the nearest bank speech frames of the same voicing (either, if
        the bank has too few of that voicing)."""
        out = np.zeros((len(keys), K), int)
        for want in (True, False):
            rows = np.flatnonzero(voiced == want)
            pool = self.speech[self.voiced[self.speech] == want]
            if len(pool) < K:
                pool = self.speech
            bank = self.keys[pool]
            bank_sq = (bank ** 2).sum(axis=1)
            for start in range(0, len(rows), CHUNK):
                q = keys[rows[start:start + CHUNK]]
                dist = bank_sq[None, :] - 2 * q @ bank.T
                out[rows[start:start + CHUNK]] = pool[np.argpartition(dist, K - 1, axis=1)[:, :K]]
        return out

    def unit(self, span: PhoneSpan, keys: np.ndarray) -> np.ndarray | None:
        """Bank frame indices for the span's frames: the best enrolled stretch of its phone,
        stretched to its length (see module); None when the person never said that phone."""
        length = span.end - span.start
        best, chosen = np.inf, None
        for unit in self.units.get(span.phone, ()):
            frames = unit.start + np.round(np.linspace(0, unit.end - unit.start - 1, length)).astype(int)
            cost = float(((keys[span.start:span.end] - self.keys[frames]) ** 2).mean())
            cost += CONTEXT_COST * ((unit.before != span.before) + (unit.after != span.after))
            cost += DURATION_COST * abs(np.log((unit.end - unit.start) / length))
            if cost < best:
                best, chosen = cost, frames
        return chosen


_BANKS: ReferenceCache[FrameBank] = ReferenceCache(FrameBank, keep=8)


def frame_bank(reference: np.ndarray) -> FrameBank:
    """Cached per process by the reference's hash (as offline.voice_model)."""
    return _BANKS.get(reference)


def keep_frame_bank(reference: np.ndarray, bank: FrameBank) -> None:
    """What frame_bank(reference) returns from now on in this process (a stored analysis)."""
    _BANKS.put(reference, bank)


class Conversion:
    """One speech's conversion toward the bank, worked out once (see module) and rendered by
    render(): as planned, or with some stretches left as the source said them."""

    def __init__(self, f0: np.ndarray, sp: np.ndarray, ap: np.ndarray, bank: FrameBank,
                 phones: list[tuple[str, float, float]] | None = None):
        """f0, sp, ap: the speech's WORLD parameters (world.analyse, or offline.adapted_world);
        phones: its aligned phones (source_phones), without which only frames are selected."""
        self.f0, self.sp, self.ap = f0, sp, ap
        raw = _keys(self.sp)
        keys = (raw - raw.mean(axis=0)) / (raw.std(axis=0) + 1e-6)  # each side normalised over its own frames
        idx = bank.nearest(keys, self.f0 > 0)
        self.target_sp = bank.log_sp[idx].mean(axis=1)
        self.target_level = bank.level_db[idx].mean(axis=1)  # dB, of the person's frames drawn on
        self.target_ap = bank.ap[idx].mean(axis=1)
        self.share = np.full(len(self.f0), MIX, np.float32)
        self.units = 0
        for span in phone_spans(phones or [], len(self.f0)):
            frames = bank.unit(span, keys)
            if frames is None:
                continue
            cut = slice(span.start, span.end)
            self.target_sp[cut] = bank.log_sp[frames]
            self.target_level[cut] = bank.level_db[frames]
            same_voicing = (self.f0[cut] > 0) == bank.voiced[frames]  # a voiced frame keeps its own breath otherwise
            self.target_ap[cut] = np.where(same_voicing[:, None], bank.ap[frames], self.ap[cut])
            self.share[cut] = UNIT_MIX
            self.units += 1

    def level(self, share: np.ndarray) -> np.ndarray:
        """Each frame's loudness (dB): the person's frames drawn on, by share, the rest the source's;
        the person's brought to the source's level over its voiced frames (see module)."""
        from scipy.ndimage import uniform_filter1d

        source = _level_db(self.sp)
        voiced = self.f0 > 0
        offset = float(np.median(source[voiced]) - np.median(self.target_level[voiced])) if voiced.any() else 0.0
        person = uniform_filter1d(self.target_level + offset, SMOOTH, mode="nearest")
        return share * person + (1 - share) * source

    def render(self, as_said: Sequence[tuple[float, float]] = ()) -> np.ndarray:
        """The converted speech; the stretches in as_said (seconds) keep the source's own envelope
        (see keep_words)."""
        import pyworld as pw
        from scipy.ndimage import uniform_filter1d

        share = self.share.copy()
        for start, end in as_said:
            share[int(start / FRAME): int(np.ceil(end / FRAME))] = 0.0
        share = uniform_filter1d(share, SMOOTH, mode="nearest")[:, None]
        log_sp = share * self.target_sp + (1 - share) * np.log(self.sp + 1e-12)
        new_ap = share * self.target_ap + (1 - share) * self.ap
        if SMOOTH > 1:
            log_sp = uniform_filter1d(log_sp, SMOOTH, axis=0, mode="nearest")
            new_ap = uniform_filter1d(new_ap, SMOOTH, axis=0, mode="nearest")
        gain = (self.level(share[:, 0]) - _level_db(np.exp(log_sp))) * (np.log(10) / 10)
        new_sp = np.exp(log_sp + gain[:, None]).astype(np.float64)
        y = pw.synthesize(self.f0, np.ascontiguousarray(new_sp),
                          np.ascontiguousarray(np.clip(new_ap, 0, 1), np.float64), SR, frame_period=world.FRAME_MS)
        peak = np.max(np.abs(y)) if y.size else 0.0
        return (y / peak * 0.95 if peak > 0.95 else y).astype(np.float32)


def convert(audio: np.ndarray, bank: FrameBank, phones: list[tuple[str, float, float]] | None = None) -> np.ndarray:
    """The speech with each frame's envelope and aperiodicity drawn from the bank (see module);
    phones: the speech's aligned phones (source_phones), without which only frames are selected."""
    return Conversion(*world.analyse(audio, SR), bank, phones).render()


def keep_words(conversion: Conversion, text: str) -> np.ndarray:
    """The conversion rendered so that it still says text: where the recognizer (Whisper tiny.en)
    misses words of the converted speech, those stretches are rendered again as the source said
    them, and that rendering is kept if fewer of the words are missed in it. A person's stretch of
    a phone sometimes sounds like another phone in this context (its neighbours, the source's
    pitch), and the word is lost; the source, a synthesizer's clear speech, keeps it."""
    from avatar.analysis.speech_recognition import unheard_spans

    converted = conversion.render()
    spans, missed = unheard_spans(converted, text)
    if not missed or not conversion.units:
        return converted
    again = conversion.render(spans)
    return again if unheard_spans(again, text)[1] < missed else converted
