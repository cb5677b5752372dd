"""The Tune: one folk tune as ABC text, with its score, its sound and its files.

A :class:`Tune` is what the generator hands back and what a notebook shows. Its heart is the ABC
text; everything else is derived from it when asked for (the reading by :mod:`toolkit.music.reader`,
the score by :mod:`toolkit.music.render`, the sound by :mod:`toolkit.music.audio`).

    >>> from toolkit.music.tune import Tune
    >>> tune = Tune.from_abc('''X:1
    ... T:The Kesh (first part)
    ... M:6/8
    ... L:1/8
    ... K:Gmaj
    ... |:GAG GAB|ABA ABd|edd gdd|edB dBA:|''')
    >>> tune.title, tune.meter, tune.key
    ('The Kesh (first part)', '6/8', 'Gmaj')
    >>> len(tune.notes), tune.notes[0]
    (24, Note(pitch=67, onset=0.0, duration=0.5))
    >>> tune.length        # in quarter notes: four bars of 6/8
    12.0

In Jupyter a tune shows itself as an engraved score with a play button; in a terminal it prints
its ABC. ``tune.svg()``, ``tune.wav()`` and ``tune.save("out/")`` give the score, the sound and
the files (.abc, .musicxml, .mid, .wav, .svg).
"""

from __future__ import annotations

import html
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from toolkit.music import m21
from toolkit.music.notes import Note
from toolkit.music.reader import (
    ABCError,
    ParsedTune,
    Performance,
    parse_abc,
    performance,
)

__all__ = ["Tune", "EXPORT_FORMATS"]

#: Every format :meth:`Tune.save` can write, in the order it writes them.
EXPORT_FORMATS = ("abc", "musicxml", "mid", "wav", "svg")

_PITCH_TOKEN = re.compile(r"^(\^\^|\^|__|_|=)?[A-Ga-g][',]*$")


def _is_file(name: str) -> bool:
    try:
        return Path(name).is_file()
    except (OSError, ValueError):  # a name too long, a NUL byte...
        return False


class Tune:
    """One tune: its ABC text and, when a model wrote it, the model's tokens and how likely
    the model found each one.

    ``logprobs[i]`` is the natural log of the probability the model gave ``tokens[i]``, or
    ``None`` for a token that was given rather than sampled (the conditioning header, a primer).
    ``settings`` records how the tune was made (sampler, seed, meter, mode, style...).

    Build one from any ABC with :meth:`from_abc`, which checks the text; the generator builds
    them directly, so a tune the model got wrong still exists and can show what went wrong.
    The generator passes ``make_abc`` (a function that writes the text) instead of ``abc``: the
    text is written the first time something reads it, so a batch whose tunes are only scored
    never pays for writing them.
    """

    def __init__(self, abc: str | None = None, tokens: list[str] | None = None,
                 logprobs: list[float | None] | None = None, settings: dict | None = None, *,
                 make_abc: Callable[[], str] | None = None):
        if (abc is None) == (make_abc is None):
            raise TypeError("Tune needs either its ABC text (abc=...) or a function that "
                            "writes it (make_abc=...)")
        self._abc, self._make_abc = abc, make_abc
        self.tokens, self.logprobs = tokens, logprobs
        self.settings = {} if settings is None else settings
        self._memo: dict = {}

    @property
    def abc(self) -> str:
        """The tune's ABC text."""
        if self._abc is None:
            self._abc, self._make_abc = self._make_abc(), None
        return self._abc

    @abc.setter
    def abc(self, text: str) -> None:
        self._abc, self._make_abc = text, None

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Tune):
            return NotImplemented
        return (self.abc, self.tokens, self.logprobs, self.settings) == \
            (other.abc, other.tokens, other.logprobs, other.settings)

    __hash__ = None  # mutable, like the dataclass it once was

    @classmethod
    def from_abc(cls, text: str | bytes) -> Tune:
        """A tune from ABC text, checked: raises :class:`ABCError` naming the line and column
        of the first thing that cannot be read. (A tune with several voices is also read by
        music21, which plays it.)

        >>> Tune.from_abc("X:1\\nK:G\\nGABc d2B2|").title
        ''
        >>> Tune.from_abc("X:1\\nT:Only a header\\nK:G\\n")
        Traceback (most recent call last):
        ...
        toolkit.music.reader.ABCError: the tune has no notes or rests
        """
        if isinstance(text, os.PathLike):
            raise ABCError(f"Tune.from_abc takes ABC text, not a path: "
                           f"Tune.from_abc(Path({str(text)!r}).read_text())")
        try:
            parsed = parse_abc(text)
        except ABCError:
            name = text.strip() if isinstance(text, str) else ""
            if name and "\n" not in name and (name.lower().endswith(".abc") or _is_file(name)):
                raise ABCError(f"{name!r} looks like a file's name, not ABC text: read the file "
                               f"first, Tune.from_abc(Path({name!r}).read_text())",
                               abc=text) from None
            raise
        tune = cls(abc=parsed.text)
        tune._memo[("parsed", tune.abc)] = parsed
        if parsed.voices > 1:
            tune.score  # noqa: B018 -- several voices are played from music21's reading: check it
        return tune

    def _cached(self, what: str, make: Any) -> Any:
        """Work something out once per ABC text (a changed ``abc`` is read afresh)."""
        key = (what, self.abc)
        if key not in self._memo:
            for old in [k for k in self._memo if k[0] == what]:
                del self._memo[old]
            self._memo[key] = make()
        return self._memo[key]

    # -- what the ABC says ---------------------------------------------------------------------
    @property
    def parsed(self) -> ParsedTune:
        """The reading of the ABC text (raises :class:`ABCError` if it cannot be read)."""
        return self._cached("parsed", lambda: parse_abc(self.abc))

    @property
    def title(self) -> str:
        """The first ``T:`` field ('' when there is none)."""
        return self.parsed.title

    @property
    def meter(self) -> str | None:
        """The meter as written in ``M:`` (``"6/8"``, ``"C"``), None for free meter."""
        return self.parsed.meter

    @property
    def key(self) -> str:
        """The key as written in ``K:`` (``"Dmaj"``, ``"Ador"``)."""
        return self.parsed.key

    def token_labels(self, vocab: list[str]) -> list[str]:
        """Names for a model's tokens as this tune's score shows them: pitches in the tune's
        display key and mode, lengths as ``×2``, ``</s>`` as ``end`` (see
        :func:`toolkit.music.tokens.token_labels`)."""
        from toolkit.music.tokens import token_labels

        mode = next((t[2:] for t in (self.tokens or [])[:4] if t.startswith("K:")), "maj")
        return token_labels(vocab, key=self.settings.get("key") or "D", mode=mode)

    @property
    def notes(self) -> list[Note]:
        """The notes that sound, in order: MIDI pitch, onset and length in quarter notes.

        Ties are merged; the notes are in written order, repeats not taken (see
        :meth:`performance` for the tune as played). Tunes with several voices are read by
        music21.
        """
        parsed = self.parsed
        if parsed.voices > 1:
            return self._cached("m21notes", lambda: m21.notes_from_score(self.score))
        return list(parsed.notes)

    @property
    def length(self) -> float:
        """How long the tune is as written, in quarter notes (repeats not taken)."""
        return float(self.parsed.length)

    def performance(self, repeats: bool = True) -> Performance:
        """The tune as played: its notes in time with repeats taken (each section twice, first
        ending then second), how long it lasts in quarter notes, and when each bar starts.

        This is what :meth:`wav` plays and what the MIDI file holds.
        """
        parsed = self.parsed
        if parsed.voices == 1:
            return performance(parsed, repeats)
        return self._cached(f"m21performance{repeats}",
                            lambda: m21.performance_from_score(self.score, repeats))

    @property
    def score(self) -> Any:
        """music21's reading of the tune (a ``music21.stream.Score``), made once on demand.

        music21 takes ~40 ms a tune; the score is what MusicXML and MIDI are written from.
        """
        return self._cached("score", lambda: m21.music21_score(self.parsed))

    def note_probabilities(self) -> list[float | None]:
        """How likely the model found each note and rest, in score order.

        The k-th note or rest of the score is the k-th pitch or rest token; its probability is
        ``exp(logprob)`` of that token, or ``None`` when the token was given, not sampled.

        >>> Tune("X:1\\nK:C\\nC z|", tokens=["C", "z", "|"], logprobs=[-0.1, None, -1.0]
        ...      ).note_probabilities()
        [0.9048374180359595, None]
        """
        import math

        if self.tokens is None or self.logprobs is None:
            raise ValueError("this tune has no token probabilities (tokens and logprobs are "
                             "set only for tunes a model generated)")
        if len(self.tokens) != len(self.logprobs):
            raise ValueError(f"tokens ({len(self.tokens)}) and logprobs ({len(self.logprobs)}) "
                             "must be the same length")
        return [None if lp is None else math.exp(lp)
                for tok, lp in zip(self.tokens, self.logprobs, strict=True)
                if tok == "z" or _PITCH_TOKEN.match(tok)]

    # -- score, sound and files ----------------------------------------------------------------
    def svg(self, *, width: int = 800, key: str | int | None = None,
            color_by_surprisal: bool = False, note_colors: list[str | None] | None = None
            ) -> str:
        """The engraved score as SVG text, ``width`` pixels wide, systems wrapped to fit.

        ``key`` shows the tune in another key: a tonic (``"G"``, ``"Bb"``, ``"-F#"`` to go
        down), an interval (``"+M2"``, ``"-m3"``) or a number of semitones. With
        ``color_by_surprisal`` each note is coloured by the probability the model gave it,
        with a colour key under the score (see :func:`toolkit.render.svg`); ``note_colors``
        paints each note and rest with a colour of your own instead.
        """
        from toolkit.music import render

        return render.svg(self, width=width, key=key, color_by_surprisal=color_by_surprisal,
                          note_colors=note_colors)

    def wav(self, *, tempo: float | str | None = None, repeats: bool = True) -> bytes:
        """The tune played, with its repeats, as WAV file bytes (mono, 22.05 kHz, 16 bit).

        ``tempo`` is quarter notes a minute (``100``) or ABC's form (``"3/8=100"``); by
        default the tune's ``Q:`` field, else 1/4=120 (see :mod:`toolkit.music.audio`). With
        ``repeats=False`` it is played once through as written.
        """
        from toolkit.music import audio

        return audio.wav(self, tempo=tempo, repeats=repeats)

    def save(self, directory: str | Path, formats: tuple[str, ...] | list[str] | str | None = (
            EXPORT_FORMATS), stem: str | None = None) -> list[Path]:
        """Write the tune's files into ``directory`` (made if needed); return their paths.

        ``formats`` picks from ``"abc"``, ``"musicxml"``, ``"mid"``, ``"wav"``, ``"svg"``
        (all by default, or None); ``stem`` names the files (default: the title, made file-safe).

        >>> import tempfile
        >>> tune = Tune.from_abc("X:1\\nT:Saved tune\\nK:G\\nGABc d2B2|")
        >>> [p.name for p in tune.save(tempfile.mkdtemp(), formats=["abc", "mid"])]
        ['Saved_tune.abc', 'Saved_tune.mid']
        """
        from toolkit.music import audio

        if formats is None:
            formats = EXPORT_FORMATS
        if not isinstance(formats, str | list | tuple | set | frozenset):
            raise ValueError(f"formats={formats!r}: give a format or a list of them, from "
                             f"{', '.join(EXPORT_FORMATS)}")
        wanted = [formats] if isinstance(formats, str) else list(formats)
        unknown = [f for f in wanted if f not in EXPORT_FORMATS]
        if unknown or not wanted:
            raise ValueError(f"formats={formats!r}: unknown format {unknown[0]!r}; choose from "
                             f"{', '.join(EXPORT_FORMATS)}" if unknown else
                             f"formats={formats!r} is empty; choose from "
                             f"{', '.join(EXPORT_FORMATS)}")
        if stem is None:
            stem = re.sub(r"[^\w.-]+", "_", self.title).strip("._") or "tune"
        elif not stem or Path(stem).name != stem or stem in (".", ".."):
            raise ValueError(f"stem={stem!r} must be a plain file name, without folders")
        folder = Path(directory)
        folder.mkdir(parents=True, exist_ok=True)
        makers = {
            "abc": lambda: (self.abc if self.abc.endswith("\n") else self.abc + "\n").encode(),
            "musicxml": lambda: m21.musicxml(self.score),
            "mid": lambda: m21.midi(self.score),
            "wav": lambda: audio.wav(self),
            "svg": lambda: self.svg().encode(),
        }
        paths = []
        for fmt in dict.fromkeys(f for f in EXPORT_FORMATS if f in wanted):
            try:
                data = makers[fmt]()
            except ABCError as err:
                err.abc = self.abc if err.abc is None else err.abc
                raise
            path = folder / f"{stem}.{fmt}"
            path.write_bytes(data)
            paths.append(path)
        return paths

    # -- how it shows itself -------------------------------------------------------------------
    def _repr_html_(self) -> str:
        """The engraved score and a play button, as Jupyter shows them.

        Never raises: a tune that cannot be engraved or played shows the problem and its ABC.
        """
        import base64

        parts = ['<div class="folk-sampler-tune">']
        problems = []
        try:
            parts.append(f'<div style="overflow-x:auto">{self.svg()}</div>')
        except Exception as err:  # the display must not raise; it shows what went wrong
            problems.append(f"The score could not be engraved: {err}")
        try:
            data = base64.b64encode(self.wav()).decode("ascii")
            parts.append(f'<audio controls preload="metadata" '
                         f'src="data:audio/wav;base64,{data}"></audio>')
        except Exception as err:  # ditto
            problems.append(f"The tune could not be played: {err}")
        shown = {k: v for k, v in self.settings.items() if v is not None
                 and k in ("sampler", "seed", "meter", "mode", "style", "guidance")}
        if shown:
            text = ", ".join(f"{k} {v}" for k, v in shown.items())
            parts.append(f'<div style="font-size:85%;color:#555">{html.escape(text)}</div>')
        if problems:
            parts.append('<div style="border-left:4px solid #b22;padding:4px 8px;'
                         'background:#fff4f4">')
            parts.extend(f"<p><b>{html.escape(p)}</b></p>" for p in problems)
            parts.append(f"<pre>{html.escape(self.abc)}</pre></div>")
        parts.append("</div>")
        return "\n".join(parts)

    def __repr__(self) -> str:
        return self.abc

    def __str__(self) -> str:
        return self.abc
