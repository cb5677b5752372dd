"""Sound: the numpy plucked string, WAV files, tempo, repeats, and the FluidSynth fallback."""

from __future__ import annotations

import io
import wave

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from toolkit import audio
from toolkit.music.notes import Note
from toolkit.music.tune import Tune

JIG = """X:1
T:Jig
M:6/8
L:1/8
Q:3/8=100
K:D
|:A|dfa afd|gfe fdB|AFA dFA|1 B2c d2:|2 B2c d3||
"""
REEL = "X:1\nT:Reel\nM:4/4\nL:1/8\nK:G\nGABG EDEG|DEGA BAGB|cBAG FGAF|G2B2 G4|]\n"


def samples(data: bytes) -> np.ndarray:
    return audio.decode_wav(data)[0]


def test_the_wav_is_mono_22khz_16bit():
    with wave.open(io.BytesIO(Tune.from_abc(REEL).wav()), "rb") as w:
        assert (w.getnchannels(), w.getframerate(), w.getsampwidth()) == (1, 22050, 2)


@pytest.mark.parametrize(("abc", "tempo", "seconds"), [
    (REEL, None, 16 / 120 * 60),           # 16 quarter notes at the default 1/4=120
    (REEL, 90, 16 / 90 * 60),              # quarter notes a minute
    (REEL, "1/2=60", 16 / 120 * 60),       # an ABC tempo: 60 half notes = 120 quarters
    (JIG, None, (0.5 + 9 + 3 + 9 + 3) / 150 * 60),  # Q:3/8=100 is 150 quarters; repeats
])
def test_the_wav_lasts_the_tune_at_its_tempo(abc, tempo, seconds):
    data = Tune.from_abc(abc).wav(tempo=tempo)
    assert audio.duration(data) == pytest.approx(seconds, rel=0.01)


def test_repeats_can_be_left_out():
    tune = Tune.from_abc(JIG)
    once = audio.duration(tune.wav(repeats=False))
    assert once == pytest.approx(tune.length / 150 * 60, rel=0.01)  # 15 quarter notes
    assert audio.duration(tune.wav()) == pytest.approx(24.5 / 150 * 60, rel=0.01)


def test_no_clipping_and_no_dc_offset():
    for abc in (REEL, JIG):
        x = samples(Tune.from_abc(abc).wav())
        assert np.max(np.abs(x)) <= 1.0
        assert np.max(np.abs(x)) == pytest.approx(0.89, abs=0.01)  # normalised, not clipped
        assert abs(float(np.mean(x))) < 1e-4


def test_the_same_tune_gives_the_same_bytes():
    first = Tune.from_abc(JIG).wav()
    audio.pluck.cache_clear()
    assert Tune.from_abc(JIG).wav() == first


def test_no_clicks_between_notes():
    """Every note is faded out as the next begins: at each boundary the sound is near zero."""
    tune = Tune.from_abc(REEL)
    x = samples(tune.wav())
    rate = audio.SAMPLE_RATE
    boundaries = {round(n.onset * 0.5 * rate) for n in tune.notes[1:]}
    assert max(abs(x[b]) for b in boundaries) < 0.02
    # and no sample-to-sample jump beyond what the (softened) pluck of a high note makes
    assert np.max(np.abs(np.diff(x))) < 0.75


def test_the_pitch_is_in_tune():
    """A long A4 sounds at 440 Hz: the strongest partial near the fundamental is at 440 Hz."""
    x = samples(Tune.from_abc("X:1\nL:1/4\nK:C\nA4|]").wav(tempo=60))  # four seconds
    second = x[: audio.SAMPLE_RATE]
    spectrum = np.abs(np.fft.rfft(second * np.hanning(second.size)))
    freqs = np.fft.rfftfreq(second.size, 1 / audio.SAMPLE_RATE)
    band = (freqs > 300) & (freqs < 600)
    assert freqs[band][np.argmax(spectrum[band])] == pytest.approx(440, abs=1.5)


def test_the_first_note_of_a_bar_is_louder():
    x = samples(Tune.from_abc("X:1\nM:2/4\nL:1/4\nK:C\nA A|A A|]").wav(tempo=60))
    rate = audio.SAMPLE_RATE
    peaks = [np.max(np.abs(x[i * rate: i * rate + rate // 10])) for i in range(4)]
    assert peaks[0] > 1.15 * peaks[1] and peaks[2] > 1.15 * peaks[3]


@pytest.mark.parametrize("tempo", [0, 19, 1000, -120, "fast", "1/4=5", float("nan"), True, [120],
                                   10**400, "1/4=" + "9" * 400])
def test_a_bad_tempo_is_refused(tempo):
    with pytest.raises(ValueError, match="tempo="):
        Tune.from_abc(REEL).wav(tempo=tempo)


def test_too_long_for_audio():
    tune = Tune.from_abc("X:1\nM:4/4\nL:1/4\nK:C\nZ64|Z64|C|]")
    with pytest.raises(ValueError, match="minutes"):
        tune.wav(tempo=20)


def test_synth_choice():
    tune = Tune.from_abc(REEL)
    with pytest.raises(ValueError, match="synth="):
        audio.wav(tune, synth="organ")
    assert audio.wav(tune, synth="numpy")[:4] == b"RIFF"
    if audio.soundfont() is None:  # no FluidSynth here: "auto" falls back to numpy
        assert audio.wav(tune) == audio.wav(tune, synth="numpy")
        with pytest.raises(RuntimeError, match="fluidsynth"):
            audio.wav(tune, synth="fluidsynth")
    else:
        assert audio.duration(audio.wav(tune, synth="fluidsynth")) == pytest.approx(8.0, rel=0.01)


FAKE_FLUIDSYNTH = """#!{python}
# stands in for the fluidsynth program: writes 10 s of a stereo sine as '-F' asks, or fails
import sys, wave, math, struct
args = sys.argv[1:]
if {fail}:
    sys.exit(1)
out, rate = args[args.index("-F") + 1], int(args[args.index("-r") + 1])
assert args[-1].endswith(".mid") and args[-2].endswith(".sf2"), args
frames = b"".join(struct.pack("<hh", v, v) for v in
                  (int(8000 * math.sin(2 * math.pi * 440 * i / rate)) for i in range(10 * rate)))
with wave.open(out, "wb") as w:
    w.setnchannels(2); w.setsampwidth(2); w.setframerate(rate); w.writeframes(frames)
"""


@pytest.mark.parametrize("fail", [False, True])
def test_fluidsynth_is_used_when_there_and_skipped_silently_when_it_fails(tmp_path, monkeypatch,
                                                                          fail):
    import os
    import sys

    program = tmp_path / "fluidsynth"
    program.write_text(FAKE_FLUIDSYNTH.format(python=sys.executable, fail=fail))
    program.chmod(0o755)
    font = tmp_path / "GM.sf2"
    font.write_bytes(b"sfbk")
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("FOLK_SAMPLER_SOUNDFONT", str(font))
    assert audio.soundfont() == font
    tune = Tune.from_abc(REEL)
    numpy_sound = audio.wav(tune, synth="numpy")
    if fail:
        assert audio.wav(tune) == numpy_sound  # silently the numpy string
        with pytest.raises(RuntimeError, match="FluidSynth could not play"):
            audio.wav(tune, synth="fluidsynth")
        return
    sound = audio.wav(tune)
    assert sound != numpy_sound
    x, rate = audio.decode_wav(sound)
    assert rate == audio.SAMPLE_RATE and audio.duration(sound) == pytest.approx(8.0, rel=0.01)
    assert np.max(np.abs(x)) == pytest.approx(0.89, abs=0.01) and abs(float(x.mean())) < 1e-3


def test_the_midi_file_for_fluidsynth_holds_the_notes(tmp_path):
    from music21 import converter

    tune = Tune.from_abc(JIG)
    played = tune.performance()
    path = tmp_path / "jig.mid"
    path.write_bytes(audio._midi_file(played.notes, 150.0, played.downbeats))
    heard = sorted((int(n.pitch.midi), round(float(n.offset), 3), round(float(n.quarterLength), 3))
                   for n in converter.parse(path).flatten().stripTies().notes)
    assert heard == sorted((n.pitch, round(n.onset, 3), round(n.duration, 3))
                           for n in played.notes)


def test_synthesize_plays_notes_in_time():
    x = audio.synthesize([Note(69, 0.0, 1.0), Note(76, 2.0, 1.0)], qpm=60.0, length=4.0)
    rate = audio.SAMPLE_RATE
    assert x.size == 4 * rate
    loud = [float(np.max(np.abs(x[i * rate:(i + 1) * rate]))) for i in range(4)]
    assert loud[0] > 0.5 and loud[2] > 0.5
    assert loud[1] < 0.05 and loud[3] < 0.05  # the rests are silent


@settings(max_examples=30, deadline=None)
@given(n=st.integers(0, 200_000), seed=st.integers(0, 10**6), rate=st.sampled_from([8000, 22050]))
def test_the_wav_written_a_block_at_a_time_is_the_wave_modules_file(n, seed, rate):
    """encode_wav writes the header itself and converts in blocks (memory); the file must be
    byte for byte what the standard library's wave module writes, clipping included."""
    samples = np.random.default_rng(seed).uniform(-1.2, 1.2, n).astype(np.float32)
    pcm = np.rint(np.clip(samples, -1.0, 1.0) * 32767).astype("<i2")
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(pcm.tobytes())
    assert audio.encode_wav(samples, rate) == buffer.getvalue()
