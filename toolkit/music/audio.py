"""Sound: a tune played on a plucked string, synthesised offline with numpy into a WAV file.

    >>> from toolkit.music.tune import Tune
    >>> tune = Tune.from_abc("X:1\\nM:4/4\\nL:1/8\\nK:D\\nDEFG ABcd|]")
    >>> data = wav(tune)                  # WAV file bytes: mono, 22.05 kHz, 16 bit
    >>> data[:4], duration(data)          # four quarter notes at 1/4=120: two seconds
    (b'RIFF', 2.0)
    >>> tune = Tune.from_abc("X:1\\nM:4/4\\nL:1/8\\nK:D\\n|:DEFG ABcd:|]")
    >>> duration(wav(tune)), duration(wav(tune, repeats=False, tempo="1/2=60"))
    (4.0, 2.0)

The instrument is a Karplus-Strong plucked string, computed in the frequency domain so that
every pitch is exactly in tune: a short burst of noise (the pluck) circulates in a delay line of
one period with a gentle low-pass filter, so the high partials die away first, as on a harp or
a nylon-strung guitar. Each pitch is computed once (~1 ms) and kept.

Every note is damped at its end with a 25 ms fade (no clicks), the first note of each bar is
played a little louder (the lilt), the whole is normalised to a peak of 0.89 (no clipping) and
its mean is taken away (no DC offset). The same tune always gives the same bytes.

Tempo: the ``tempo`` argument, else the tune's ``Q:`` field, else :data:`DEFAULT_TEMPO`
(1/4=120, which is 3/8=80 in a jig: quavers at 240 a minute in every meter). The tune is
played as a musician would, like the MIDI file: each repeated section twice, the first ending
the first time and the second ending the second time (``repeats=False``: once through as
written).

When FluidSynth and a General MIDI soundfont are installed (``fluidsynth`` on the PATH and a
``.sf2`` in a standard place such as ``/usr/share/sounds/sf2/FluidR3_GM.sf2``, or the file named
by ``$FOLK_SAMPLER_SOUNDFONT``), they play the tune instead on a nylon-string guitar; if
anything goes wrong there the numpy string plays, silently.
"""

from __future__ import annotations

import functools
import io
import math
import os
import shutil
import struct
import subprocess
import tempfile
import wave
from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from toolkit.music.notes import Note
from toolkit.music.reader import tempo_qpm

if TYPE_CHECKING:
    from toolkit.music.tune import Tune

__all__ = ["wav", "synthesize", "pluck", "encode_wav", "decode_wav", "duration", "quarter_bpm",
           "soundfont", "SAMPLE_RATE", "DEFAULT_TEMPO", "MAX_SECONDS"]

#: Samples a second: 22.05 kHz is plenty for a melody and keeps the files small.
SAMPLE_RATE = 22050
_BLOCK = 1 << 16  # samples converted to 16-bit at a time
#: The tempo when neither the call nor the tune's ``Q:`` field gives one.
DEFAULT_TEMPO = "1/4=120"
#: The longest audio made (longer asks are a mistake, and would fill the memory).
MAX_SECONDS = 600

_PEAK = 0.89  # about -1 dBFS
_FADE_OUT = 0.025  # seconds of damping at the end of every note
_FADE_IN = 0.002  # seconds: the pluck starts softly enough not to click
_DOWNBEAT, _OFFBEAT = 1.0, 0.78  # loudness of a bar's first note and of the others
_PLUCK_SECONDS = 2**15 / 22050  # each pitch is computed this long (~1.5 s), cut to size
_SOUNDFONTS = (
    "/usr/share/sounds/sf2/FluidR3_GM.sf2",
    "/usr/share/sounds/sf2/default-GM.sf2",
    "/usr/share/soundfonts/FluidR3_GM.sf2",
    "/usr/share/soundfonts/default.sf2",
    "/usr/local/share/soundfonts/default.sf2",
    "/opt/homebrew/share/soundfonts/default.sf2",
)
_GM_PROGRAM = 24  # General MIDI "Acoustic Guitar (nylon)", counted from 0


# ---------------------------------------------------------------------------------------------
# Tempo
# ---------------------------------------------------------------------------------------------


def quarter_bpm(tempo: float | str | None, q_field: str | None = None,
                unit: Fraction = Fraction(1, 8)) -> float:
    """Quarter notes a minute: from ``tempo``, else the ``Q:`` field, else the default.

    ``tempo`` is a number of quarter notes a minute or a tempo written as in ABC
    (``"3/8=100"``).

    >>> quarter_bpm(None), quarter_bpm(90), quarter_bpm("3/8=100"), quarter_bpm(None, "1/2=80")
    (120.0, 90.0, 150.0, 160.0)
    """
    if tempo is None:
        qpm = tempo_qpm(q_field, unit) if q_field else None
        if qpm is not None and not 20 <= qpm <= 400:  # the score draws it; the sound cannot
            raise ValueError(f"the tune's tempo Q:{q_field} is {qpm:g} quarter notes a minute; "
                             "20 to 400 can be played: give tempo= (quarter notes a minute) "
                             "or change the Q: field")
        return qpm if qpm is not None else float(tempo_qpm(DEFAULT_TEMPO) or 120.0)
    if isinstance(tempo, bool) or not isinstance(tempo, int | float | str):
        raise ValueError(f"tempo={tempo!r}: give quarter notes a minute (20 to 400) or an ABC "
                         "tempo such as '3/8=100'")
    try:
        qpm = tempo_qpm(tempo, unit) if isinstance(tempo, str) else float(tempo)
    except OverflowError:  # an int of hundreds of digits
        qpm = math.inf
    if qpm is None or not np.isfinite(qpm) or not 20 <= qpm <= 400:
        raise ValueError(f"tempo={tempo!r}: give quarter notes a minute (20 to 400) or an ABC "
                         "tempo such as '3/8=100'")
    return qpm


# ---------------------------------------------------------------------------------------------
# The plucked string
# ---------------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=4)
def _loop_parts(n: int) -> tuple[np.ndarray, np.ndarray]:
    """Frequencies (radians a sample) of an n-point real FFT, and the averaging filter there."""
    omega = 2 * np.pi * np.arange(n // 2 + 1) / n
    return omega, 0.5 * (1 + np.exp(-1j * omega))


@functools.lru_cache(maxsize=128)
def pluck(pitch: int, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """One pluck of a string at MIDI ``pitch``: about 1.5 seconds, peak 1, read-only.

    Karplus-Strong in the frequency domain: a one-period burst of (seeded) noise is passed
    through the string's loop filter ``1 / (1 - g (1 + z^-1)/2 z^-N)``, where the loop delay
    ``N + 1/2`` is exactly one period, so the pitch is exact. ``g`` makes the fundamental die
    away by 60 dB in 1 s at A4 (longer for low notes, up to 1.4 s; shorter for high ones), well
    inside the FFT's length, so the tail does not wrap round. About 2 ms a pitch.

    >>> tone = pluck(69)                        # A4, 440 Hz
    >>> tone.shape, float(abs(tone).max())
    ((32768,), 1.0)
    """
    if not 0 <= pitch <= 127:
        raise ValueError(f"pitch={pitch}: MIDI pitches run from 0 to 127")
    n = 2 ** int(np.ceil(np.log2(_PLUCK_SECONDS * sample_rate)))
    omega, averaging = _loop_parts(n)
    freq = 440.0 * 2.0 ** ((pitch - 69) / 12)
    period = sample_rate / freq
    t60 = float(np.clip((440.0 / freq) ** 0.5, 0.35, 1.4))
    lowpass = np.cos(np.pi * min(freq / sample_rate, 0.49))  # the loop's gain at the pitch
    g = min(0.9999, 10 ** (-3 / (freq * t60)) / lowpass)
    phase = omega * (period - 0.5)
    loop = (g * averaging) * (np.cos(phase) - 1j * np.sin(phase))
    rng = np.random.default_rng(1000 + pitch)  # the same pluck every time
    burst = rng.uniform(-1.0, 1.0, int(np.ceil(period)))
    # a soft finger rather than a pick: smooth the burst over a fifth of a period, which takes
    # the edge off the attack (the highest partials) and keeps the pluck's colour
    width = max(3, round(period / 5))
    burst = np.convolve(np.tile(burst, 3), np.hanning(width + 2)[1:-1], mode="same")[
        burst.size:2 * burst.size]
    burst -= burst.mean()
    tone = np.fft.irfft(np.fft.rfft(burst, n) / (1 - loop), n)
    tone /= np.max(np.abs(tone))
    tone = tone.astype(np.float32)
    tone.flags.writeable = False
    return tone


@functools.lru_cache(maxsize=8)
def _fades(sample_rate: int) -> tuple[np.ndarray, np.ndarray]:
    """The fade-in ramp (0 to 1) and the raised-cosine fade-out (1 to 0) every note gets."""
    fade_in = np.linspace(0.0, 1.0, max(1, round(_FADE_IN * sample_rate)), endpoint=False)
    fade_out = 0.5 + 0.5 * np.cos(np.linspace(0.0, np.pi, max(2, round(_FADE_OUT * sample_rate))))
    return fade_in.astype(np.float32), fade_out.astype(np.float32)


def synthesize(notes: Sequence[Note], qpm: float, length: float, *,
               downbeats: set[float] | frozenset[float] = frozenset(),
               sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Play ``notes`` on the plucked string: float samples in [-1, 1], ``length`` quarter
    notes long at ``qpm`` quarter notes a minute.

    Notes starting at a time in ``downbeats`` are played a little louder.
    """
    seconds_per_quarter = 60.0 / qpm
    total = round(length * seconds_per_quarter * sample_rate)
    if total / sample_rate > MAX_SECONDS:
        raise ValueError(f"the tune lasts {total / sample_rate / 60:.1f} minutes at "
                         f"{qpm:g} quarter notes a minute; audio stops at "
                         f"{MAX_SECONDS // 60} minutes")
    out = np.zeros(total, dtype=np.float32)
    fade_in, fade_out = _fades(sample_rate)
    for note in notes:
        start = round(note.onset * seconds_per_quarter * sample_rate)
        stop = min(round(note.end * seconds_per_quarter * sample_rate), total)
        if stop <= start:
            continue
        tone = pluck(note.pitch, sample_rate)
        loud = _DOWNBEAT if round(note.onset, 6) in downbeats else _OFFBEAT
        segment = tone[: stop - start] * np.float32(loud)  # a new array: the pluck is shared
        n = segment.size
        head = min(fade_in.size, n)
        segment[:head] *= fade_in[:head]
        if n == stop - start:  # damp the string as the note ends (a longer note has died away)
            tail = min(fade_out.size, n // 2)
            segment[n - tail:] *= fade_out if tail == fade_out.size else np.float32(
                0.5 + 0.5 * np.cos(np.linspace(0.0, np.pi, tail)))
        out[start:start + n] += segment
    out -= out.mean(dtype=np.float64)  # no DC offset
    peak = max(float(out.max()), -float(out.min())) if out.size else 0.0  # no |out| copy
    if peak > 0:
        out *= np.float32(_PEAK / peak)  # no clipping
    return out


# ---------------------------------------------------------------------------------------------
# WAV files
# ---------------------------------------------------------------------------------------------


def encode_wav(samples: np.ndarray, sample_rate: int = SAMPLE_RATE) -> bytes:
    """Float samples in [-1, 1] as WAV file bytes: mono, 16-bit PCM.

    Converted a block at a time and written with one copy: a long tune's samples are tens of MB,
    and a kernel on Binder has a few hundred.
    """
    samples = np.asarray(samples)
    pcm = np.empty(samples.size, dtype="<i2")
    for i in range(0, samples.size, _BLOCK):
        block = np.clip(samples[i:i + _BLOCK], -1.0, 1.0)
        block *= 32767
        pcm[i:i + _BLOCK] = np.rint(block, out=block)
    size = 2 * pcm.size
    header = struct.pack("<4sI4s4sIHHIIHH4sI", b"RIFF", 36 + size, b"WAVE", b"fmt ", 16, 1, 1,
                         sample_rate, 2 * sample_rate, 2, 16, b"data", size)
    return b"".join((header, memoryview(pcm).cast("B")))


def decode_wav(data: bytes) -> tuple[np.ndarray, int]:
    """WAV file bytes (16-bit PCM) as (float samples in [-1, 1], mono, and the sample rate)."""
    with wave.open(io.BytesIO(data), "rb") as src:
        if src.getsampwidth() != 2:
            raise ValueError("only 16-bit WAV files can be read")
        channels, rate = src.getnchannels(), src.getframerate()
        pcm = np.frombuffer(src.readframes(src.getnframes()), dtype="<i2")
    samples = pcm.reshape(-1, channels).mean(axis=1) / 32767.0
    return samples, rate


def duration(data: bytes) -> float:
    """How long WAV file bytes play, in seconds."""
    with wave.open(io.BytesIO(data), "rb") as src:
        return src.getnframes() / src.getframerate()


# ---------------------------------------------------------------------------------------------
# FluidSynth, when it is there
# ---------------------------------------------------------------------------------------------


def soundfont() -> Path | None:
    """A General MIDI soundfont for FluidSynth: ``$FOLK_SAMPLER_SOUNDFONT`` or a standard
    place; None when there is none (or no ``fluidsynth`` program)."""
    if shutil.which("fluidsynth") is None:
        return None
    named = os.environ.get("FOLK_SAMPLER_SOUNDFONT")
    for place in ([named] if named else []) + list(_SOUNDFONTS):
        if Path(place).is_file():
            return Path(place)
    return None


def _midi_file(notes: Sequence[Note], qpm: float, downbeats: set[float]) -> bytes:
    """A one-track standard MIDI file of the notes (480 ticks a quarter note)."""
    def varlen(value: int) -> bytes:
        out = [value & 0x7F]
        value >>= 7
        while value:
            out.append(0x80 | (value & 0x7F))
            value >>= 7
        return bytes(reversed(out))

    tempo = round(60_000_000 / qpm)
    events = [(0, 0, b"\xff\x51\x03" + tempo.to_bytes(3, "big")),
              (0, 0, bytes([0xC0, _GM_PROGRAM]))]
    for note in notes:
        velocity = 100 if round(note.onset, 6) in downbeats else 80
        on, off = round(note.onset * 480), round(note.end * 480)
        events.append((on, 2, bytes([0x90, note.pitch, velocity])))
        events.append((off, 1, bytes([0x80, note.pitch, 0])))
    events.sort(key=lambda e: (e[0], e[1]))
    track, now = bytearray(), 0
    for tick, _, message in events:
        track += varlen(tick - now) + message
        now = tick
    track += b"\x00\xff\x2f\x00"
    return (b"MThd" + (6).to_bytes(4, "big") + (0).to_bytes(2, "big") + (1).to_bytes(2, "big")
            + (480).to_bytes(2, "big") + b"MTrk" + len(track).to_bytes(4, "big") + bytes(track))


def _fluidsynth(notes: Sequence[Note], qpm: float, total: int, downbeats: set[float],
                font: Path) -> np.ndarray | None:
    """The notes played by FluidSynth, ``total`` samples long; None if anything fails."""
    try:
        with tempfile.TemporaryDirectory() as folder:
            mid, out = Path(folder) / "tune.mid", Path(folder) / "tune.wav"
            mid.write_bytes(_midi_file(notes, qpm, downbeats))
            subprocess.run(
                ["fluidsynth", "-n", "-i", "-q", "-g", "0.6", "-r", str(SAMPLE_RATE),
                 "-T", "wav", "-O", "s16", "-F", str(out), str(font), str(mid)],
                check=True, capture_output=True, timeout=60)
            samples, rate = decode_wav(out.read_bytes())
    except (OSError, subprocess.SubprocessError, ValueError, EOFError, wave.Error):
        return None
    if rate != SAMPLE_RATE or samples.size == 0:
        return None
    samples = np.concatenate([samples, np.zeros(max(0, total - samples.size))])[:total]
    fade = min(round(_FADE_OUT * SAMPLE_RATE), total)
    if fade:
        samples[total - fade:] *= np.linspace(1.0, 0.0, fade)
    samples = samples - samples.mean()
    peak = float(np.max(np.abs(samples)))
    return samples * (_PEAK / peak) if peak > 0 else None


# ---------------------------------------------------------------------------------------------
# A tune's sound
# ---------------------------------------------------------------------------------------------


def wav(tune: Tune, *, tempo: float | str | None = None, repeats: bool = True,
        synth: str = "auto") -> bytes:
    """The tune played, as WAV file bytes (mono, 22.05 kHz, 16 bit).

    ``tempo`` is quarter notes a minute or an ABC tempo (``"3/8=100"``); by default the tune's
    ``Q:`` field, else 1/4=120. Repeats are taken (each repeated section twice, first ending
    then second) unless ``repeats`` is False. ``synth`` is ``"auto"`` (FluidSynth if
    installed, else numpy), ``"numpy"`` or ``"fluidsynth"`` (which raises if FluidSynth or a
    soundfont is missing).
    """
    if synth not in ("auto", "numpy", "fluidsynth"):
        raise ValueError(f"synth={synth!r}: choose 'auto', 'numpy' or 'fluidsynth'")
    parsed = tune.parsed
    qpm = quarter_bpm(tempo, parsed.tempo, parsed.unit)
    notes, length, downbeats = tune.performance(repeats)
    font = soundfont() if synth != "numpy" else None
    if synth == "fluidsynth" and font is None:
        raise RuntimeError("synth='fluidsynth' needs the fluidsynth program and a General MIDI "
                           "soundfont (.sf2; set $FOLK_SAMPLER_SOUNDFONT to its path)")
    if font is not None:
        total = round(length * 60.0 / qpm * SAMPLE_RATE)
        if total / SAMPLE_RATE <= MAX_SECONDS:
            samples = _fluidsynth(notes, qpm, total, downbeats, font)
            if samples is not None:
                return encode_wav(samples)
        if synth == "fluidsynth":
            raise RuntimeError("FluidSynth could not play this tune")
    return encode_wav(synthesize(notes, qpm, length, downbeats=downbeats))
