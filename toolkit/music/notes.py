"""The notes a tune's tokens sound: pitch, onset and length, with accidentals that last to the
end of the bar, as ABC says."""

from __future__ import annotations

from collections.abc import Sequence
from fractions import Fraction
from typing import NamedTuple

from toolkit.music.tokens import (
    ACCIDENTALS,
    MODES,
    NATURAL_SEMITONE,
    PITCH_RE,
    Key,
    events,
    is_duration,
    midi_pitch,
    parse_key,
    tune_body,
)

# --------------------------------------------------------------------------------------------
# notes: pitches and onsets read from tokens

class Note(NamedTuple):
    """One sounding note: its MIDI ``pitch`` (60 is middle C), ``onset`` and ``duration`` in
    quarter notes, and ``bar``, the 0-based bar it starts in, where it is known (:func:`notes_of`
    knows it; the ABC reader, which lays bars out itself, leaves it None).

    Tied notes are merged into one; rests are the gaps between notes. The one note type of the
    package: the reader, the renderer, the sound and the metrics all use it.

    >>> Note(pitch=62, onset=1.5, duration=0.5).end
    2.0
    """

    pitch: int
    onset: float
    duration: float
    bar: int | None = None

    @property
    def end(self) -> float:
        """When the note stops, in quarter notes from the start of the tune."""
        return self.onset + self.duration

    def __repr__(self) -> str:
        bar = "" if self.bar is None else f", bar={self.bar}"
        return f"Note(pitch={self.pitch!r}, onset={self.onset!r}, duration={self.duration!r}{bar})"


def notes_of(tokens: Sequence[str], key: str = "C") -> list[Note]:
    """The notes a tune's tokens sound, in the display key ``key`` (ties merged, rests left out).

    Accidentals last until the end of the bar, as ABC says.

    >>> [n.pitch for n in notes_of(['<s>', 'M:2/4', 'K:maj', 'S:?', 'C', '^F', 'F', '|', 'F'])]
    [60, 66, 66, 65]
    """
    mode_tok = next((t for t in tokens[:4] if t.startswith("K:")), "K:maj")
    mode = mode_tok[2:] if mode_tok[2:] in MODES else "maj"
    shift = _semitones_to(key)
    sig = Key("C", 0, mode).signature()
    body = tune_body(tokens)
    out: list[Note] = []
    carried: dict[tuple[str, str], int] = {}
    time = Fraction(0)
    tie_next = False
    for e in events(body):
        if e.kind == "bar":
            carried.clear()
            continue
        start = time
        time += e.duration
        if e.kind == "rest":
            tie_next = False
            continue
        acc, letter, marks = PITCH_RE.match(e.token).groups()
        if acc:
            carried[(letter, marks)] = ACCIDENTALS[acc]
        alter = carried.get((letter, marks), sig[letter.upper()])
        pitch = midi_pitch(letter + marks, {}) + alter + shift
        dur = float(e.duration) / 2
        if tie_next and out and out[-1].pitch == pitch:
            last = out[-1]
            out[-1] = Note(last.pitch, last.onset, last.duration + dur, last.bar)
        else:
            out.append(Note(pitch, float(start) / 2, dur, e.bar))
        nxt = body[e.index + 1:e.index + 3]
        tie_next = "-" in nxt[:2] and (nxt[0] == "-" or is_duration(nxt[0]))
    return out




def _semitones_to(key: str) -> int:
    """Semitones from C up to ``key``'s tonic, the nearer way (-6..5), as decode() moves."""
    k = parse_key(key)
    semis = NATURAL_SEMITONE[k.letter] + k.alter
    steps = "CDEFGAB".index(k.letter)
    return semis - 12 if steps > 3 else semis


