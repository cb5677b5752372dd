"""ABC text <-> tokens: one token per musical symbol (folk-rnn style).

A tune becomes a short list of readable tokens::

    <s> M:6/8 K:maj S:irish |: G 2 A B c d ... :| </s>

* conditioning: ``M:6/8`` (meter), ``K:maj`` (mode), ``S:irish`` (style); ``M:?``, ``K:?`` and
  ``S:?`` stand for "not given" (the model is trained with them, which gives classifier-free
  guidance its unconditional predictions);
* pitches exactly as ABC writes them in the key signature of the tune's mode on the tonic **C**:
  ``G``, ``^F``, ``_B``, ``c'``, ``A,``.  Every tune is transposed to tonic C when encoded, and
  back to a display key of your choice (``D`` by default, a fiddle key) when decoded;
* durations as separate tokens in units of an eighth note (``L:1/8``): ``2``, ``3``, ``/2``,
  ``3/2``;  no token means one eighth;
* rest ``z``, broken rhythm ``>`` ``<``, tuplets ``(3``, tie ``-``, bar lines ``|`` ``||`` ``|]``,
  repeats ``|:`` ``:|`` ``::``, endings ``[1`` ``[2``; ``<s>`` and ``</s>`` start and end a tune.

What the encoder drops on purpose (the melody is what we keep): titles and other header fields,
lyrics, chord symbols in quotes, grace notes ``{}``, slurs ``()``, decorations (``~ . !trill!``
``H L M O P S T u v``), line continuations, and the lower notes of a chord ``[CEG]`` (the highest
one stays).  A tie ``-`` is kept only between two notes of the same pitch: O'Neill's collection uses
``-`` as a phrasing mark between different notes.

>>> encode("X:1\\nM:6/8\\nL:1/8\\nK:D\\n|: d2e fed :|")
['<s>', 'M:6/8', 'K:maj', 'S:?', '|:', 'c', '2', 'd', 'e', 'd', 'c', ':|', '</s>']
>>> print(decode(encode("X:1\\nM:6/8\\nL:1/8\\nK:D\\n|: d2e fed :|")).splitlines()[-1])
|: d2e fed :|
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import NamedTuple

from toolkit.music.symbols import LENGTH, NOTE, SYMBOL

__all__ = [
    "ABCSyntaxError", "Event", "UnknownTokenError", "BOS", "EOS", "MODES", "UNKNOWN_METER",
    "UNKNOWN_MODE", "UNKNOWN_STYLE", "SLOTS", "conditioning_of", "bar_length", "check_fragment",
    "decode", "display_key",
    "encode",
    "encode_fragment", "events", "Clock", "START", "advance",
    "is_bar", "is_duration", "is_pitch", "midi_pitch", "parse_duration", "parse_key",
    "duration_token", "split_tunes",
    "transpose_pitch", "tune_body", "token_labels",
]

BOS, EOS = "<s>", "</s>"
UNKNOWN_METER, UNKNOWN_MODE, UNKNOWN_STYLE = "M:?", "K:?", "S:?"
#: The conditioning slots of a tune's opening tokens and the prefix of each slot's tokens.
SLOTS = {"meter": "M:", "mode": "K:", "style": "S:"}
UNIT = Fraction(1, 8)  # every tune is written with L:1/8

# mode name -> (token suffix, fifths relative to the major key on the same tonic)
MODES = {"maj": 0, "min": -3, "dor": -2, "mix": -1, "lyd": 1, "phr": -4, "loc": -5}
_MODE_ALIASES = {
    "": "maj", "maj": "maj", "major": "maj", "ion": "maj", "ionian": "maj",
    "m": "min", "min": "min", "minor": "min", "aeo": "min", "aeolian": "min",
    "dor": "dor", "dorian": "dor", "mix": "mix", "mixolydian": "mix",
    "lyd": "lyd", "lydian": "lyd", "phr": "phr", "phrygian": "phr", "loc": "loc", "locrian": "loc",
}
_LETTERS = "CDEFGAB"
#: semitones above C of each natural note
NATURAL_SEMITONE = {"C": 0, "D": 2, "E": 4, "F": 5, "G": 7, "A": 9, "B": 11}
_NATURAL_SEMITONE = NATURAL_SEMITONE
#: sharps (+) or flats (-) in the major key on each natural tonic
MAJOR_FIFTHS = {"C": 0, "G": 1, "D": 2, "A": 3, "E": 4, "B": 5, "F": -1}
_MAJOR_FIFTHS = MAJOR_FIFTHS
_SHARP_ORDER, _FLAT_ORDER = "FCGDAEB", "BEADGCF"
#: ABC accidental -> semitones
ACCIDENTALS = {"^^": 2, "^": 1, "=": 0, "_": -1, "__": -2}
_ACCIDENTALS = ACCIDENTALS
_ACC_TEXT = {v: k for k, v in _ACCIDENTALS.items()}

PITCH_RE = re.compile(r"^(\^\^|\^|__|_|=)?([A-Ga-g])([',]*)$")
DURATION_RE = re.compile(r"^(\d*)(/\d*)?$")
BARS = ("|", "||", "|]", "|:", ":|", "::")
ENDINGS = ("[1", "[2", "[3")
BROKEN = {">": (Fraction(3, 2), Fraction(1, 2)), "<": (Fraction(1, 2), Fraction(3, 2)),
          ">>": (Fraction(7, 4), Fraction(1, 4)), "<<": (Fraction(1, 4), Fraction(7, 4))}


class ABCSyntaxError(ValueError):
    """ABC text the tokenizer cannot read; ``line`` and ``column`` are 1-based."""

    def __init__(self, message: str, line: int | None = None, column: int | None = None):
        where = f" (line {line}, column {column})" if line is not None else ""
        super().__init__(message + where)
        self.line, self.column = line, column


class UnknownTokenError(ValueError):
    """A token the model does not know; ``position`` is its index in the token list.

    For a student's ABC opening, ``line`` and ``column`` say where in their text it is, and
    ``token`` is the symbol as they wrote it.
    """

    def __init__(self, token: str, position: int, suggestion: str | None = None, *,
                 line: int | None = None, column: int | None = None):
        hint = f"; did you mean {suggestion!r}?" if suggestion else ""
        where = f"at line {line}, column {column}" if line is not None \
            else f"at position {position}"
        kind = "the model does not know the symbol" if line is not None else "unknown token"
        super().__init__(f"{kind} {token!r} {where}{hint}")
        self.token, self.position, self.suggestion = token, position, suggestion
        self.line, self.column = line, column


# --------------------------------------------------------------------------------------------
# token kinds

@functools.lru_cache(maxsize=8192)
def is_pitch(token: str) -> bool:
    """True for a pitch token such as ``G``, ``^F`` or ``c'``."""
    return PITCH_RE.match(token) is not None


@functools.lru_cache(maxsize=8192)
def is_duration(token: str) -> bool:
    """True for a duration token such as ``2``, ``/2`` or ``3/2``."""
    return bool(token) and token[0] in "0123456789/" and DURATION_RE.match(token) is not None


def is_bar(token: str) -> bool:
    """True for a bar line or repeat sign."""
    return token in BARS


def parse_duration(text: str) -> Fraction:
    """ABC length text -> multiple of the unit: ``''`` 1, ``'3'`` 3, ``'/'`` 1/2, ``'3/2'`` 3/2."""
    m = DURATION_RE.match(text)
    if m is None:
        raise ValueError(f"not a duration: {text!r}")
    num = int(m.group(1)) if m.group(1) else 1
    if m.group(2) is None and num > 0:
        return Fraction(num)
    den = int(m.group(2)[1:]) if m.group(2) and len(m.group(2)) > 1 else 2
    if den == 0 or num == 0:
        raise ValueError(f"not a duration: {text!r}")
    return Fraction(num, den)


def duration_token(d: Fraction) -> str | None:
    """Multiple of the eighth note -> token (None for exactly one eighth)."""
    if d == 1:
        return None
    if d.denominator == 1:
        return str(d.numerator)
    num = "" if d.numerator == 1 else str(d.numerator)
    return f"{num}/{d.denominator}"


# --------------------------------------------------------------------------------------------
# keys and transposition

@dataclass(frozen=True)
class Key:
    """A key: tonic letter, tonic alteration (-1 flat, +1 sharp) and mode (``maj``, ``dor``...)."""

    letter: str
    alter: int
    mode: str

    @property
    def fifths(self) -> int:
        """Sharps (> 0) or flats (< 0) in the key signature."""
        return _MAJOR_FIFTHS[self.letter] + 7 * self.alter + MODES[self.mode]

    def signature(self) -> dict[str, int]:
        """Letter -> alteration implied by the key signature."""
        f = self.fifths
        sig = dict.fromkeys(_LETTERS, 0)
        for i in range(abs(f)):  # beyond 7 the same letters get a second sharp or flat
            if f > 0:
                sig[_SHARP_ORDER[i % 7]] += 1
            else:
                sig[_FLAT_ORDER[i % 7]] -= 1
        return sig

    @property
    def name(self) -> str:
        return self.letter + {1: "#", -1: "b", 0: ""}.get(self.alter, "") + self.mode


def display_key(key: str, mode: str = "maj", pitches: tuple[str, ...] = ()) -> Key:
    """The key a tune is shown in: tonic ``key`` (``"D"``, ``"Bb"``, ``"F#"``) in ``mode``.

    Raises ValueError naming ``key`` when it is not a tonic, or when one of ``pitches`` (tokens,
    written in C) cannot be spelled in it: in B# major, ``^d`` would need a triple sharp.

    >>> display_key("B#", pitches=("C", "^d"))  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: key 'B#' cannot spell the note ^d of tonic C in B#maj; choose a key such as ...
    """
    return _display_key(str(key), mode, tuple(pitches))


@functools.lru_cache(maxsize=256)
def _display_key(key: str, mode: str, pitches: tuple[str, ...]) -> Key:
    try:
        dst = parse_key(key + mode)
    except ValueError:
        raise ValueError(f"key must be a tonic such as 'D', 'G', 'Bb' or 'F#', got {key!r}") \
            from None
    src = Key("C", 0, mode)
    steps = _steps_to(src, dst.letter)
    for tok in pitches:
        try:
            transpose_pitch(tok, src, dst, steps)
        except ValueError:
            raise ValueError(f"key {key!r} cannot spell the note {tok} of tonic C in "
                             f"{dst.name}; choose a key such as 'C' or 'D'") from None
    return dst


def parse_key(text: str) -> Key:
    """Read a ``K:`` field: ``G``, ``Gm``, ``ADor``, ``E Minor``, ``Bb``, ``F#mix`` ...

    >>> parse_key("A Dorian")
    Key(letter='A', alter=0, mode='dor')
    """
    m = re.match(r"^\s*([A-Ga-g])([#b]?)\s*([A-Za-z]*)\s*$", text)
    if m is None:
        raise ValueError(f"key {text.strip()!r} is not a tonic and a mode (e.g. 'D', 'Ador')")
    mode = _MODE_ALIASES.get(m.group(3).lower())
    if mode is None:
        raise ValueError(f"unknown mode {m.group(3)!r} in key {text.strip()!r}; "
                         f"known: {', '.join(sorted(MODES))}")
    return Key(m.group(1).upper(), {"#": 1, "b": -1, "": 0}[m.group(2)], mode)


def _octave_number(letter: str, marks: str) -> int:
    """Diatonic step number: C (middle C) = 28, c = 35, c' = 42, C, = 21."""
    base = 28 if letter.isupper() else 35
    return base + _LETTERS.index(letter.upper()) + 7 * (marks.count("'") - marks.count(","))


def _pitch_text(step: int, alter: int | None) -> str:
    octave, idx = divmod(step, 7)
    letter = _LETTERS[idx]
    if octave >= 5:
        text = letter.lower() + "'" * (octave - 5)
    else:
        text = letter + "," * (4 - octave)
    return (_ACC_TEXT[alter] if alter is not None else "") + text


def transpose_pitch(token: str, src: Key, dst: Key, steps: int) -> str:
    """Move a pitch token ``steps`` diatonic steps from key ``src`` to key ``dst`` (same mode).

    Notes without an accidental stay without one (the key signature moves with them); an
    explicit accidental keeps its distance from the key signature.
    """
    m = PITCH_RE.match(token)
    if m is None:
        raise ValueError(f"not a pitch token: {token!r}")
    acc, letter, marks = m.groups()
    step = _octave_number(letter, marks) + steps
    if acc is None:
        return _pitch_text(step, None)
    relative = _ACCIDENTALS[acc] - src.signature()[letter.upper()]
    alter = dst.signature()[_LETTERS[step % 7]] + relative
    if alter not in _ACC_TEXT:
        raise ValueError(f"cannot write {token!r} in {dst.name}: alteration {alter}")
    return _pitch_text(step, alter)


def _steps_to(src: Key, tonic: str) -> int:
    """Diatonic steps from src's tonic to ``tonic``, the nearer way (-3..3)."""
    d = (_LETTERS.index(tonic) - _LETTERS.index(src.letter)) % 7
    return d - 7 if d > 3 else d


def midi_pitch(token: str, signature: dict[str, int]) -> int:
    """MIDI number of a pitch token under a key signature (no accidental carried in the bar).

    >>> midi_pitch("c", Key("C", 0, "maj").signature()), midi_pitch("^F,", {})
    (72, 54)
    """
    acc, letter, marks = PITCH_RE.match(token).groups()
    alter = _ACCIDENTALS[acc] if acc else signature.get(letter.upper(), 0)
    octave, idx = divmod(_octave_number(letter, marks), 7)
    return 12 * (octave + 1) + _NATURAL_SEMITONE[_LETTERS[idx]] + alter


# --------------------------------------------------------------------------------------------
# splitting a file into tunes, and a tune into header and body

def split_tunes(text: str) -> list[str]:
    """Split the text of an ABC file into tunes, one per ``X:`` header."""
    parts = re.split(r"(?m)^(?=X:)", text)
    return [p for p in parts if p.startswith("X:")]


_FIELD_RE = re.compile(r"^([A-Za-z]):(.*)$")


@dataclass
class _Header:
    meter: str | None = None
    unit: Fraction | None = None
    key: Key | None = None


def _meter_token(value: str) -> str:
    v = value.strip().replace(" ", "")
    if v == "C":
        return "M:4/4"
    if v == "C|":
        return "M:2/2"
    if v.lower() == "none":
        raise ABCSyntaxError("free meter (M:none): bars have no fixed length")
    if not re.match(r"^\d+/\d+$", v):
        raise ABCSyntaxError(f"meter {value.strip()!r} is not a fraction like 6/8")
    return "M:" + v


def default_unit(bar: Fraction | None) -> Fraction:
    """ABC's default unit length (when a tune has no ``L:``): 1/16 when a bar is shorter than
    3/4 of a whole note, else 1/8. ``bar`` is the bar's length in quarter notes (None: free).

    >>> default_unit(Fraction(2)), default_unit(Fraction(3)), default_unit(None)
    (Fraction(1, 16), Fraction(1, 8), Fraction(1, 8))
    """
    return Fraction(1, 16) if bar is not None and bar / 4 < Fraction(3, 4) else UNIT


def _default_unit(meter: str | None) -> Fraction:
    if meter is None:
        return UNIT
    num, den = meter[2:].split("/")
    return default_unit(4 * Fraction(int(num), int(den)))


# --------------------------------------------------------------------------------------------
# the lexer: one tune body -> tokens

_DECORATION_CHARS = set(".~HLMOPSTuvJRk")
_SKIP_CHARS = set(" \t\\`$y)")


class _Lexer:
    """Reads the body of one tune, character by character, into tokens in the tune's own key."""

    def __init__(self, unit_factor: Fraction, phrase_breaks_are_bars: bool,
                 bar_len: Fraction | None = None):
        self.factor = unit_factor          # tune's L: divided by 1/8
        self.bar_length = bar_len          # a full bar in eighths
        self.phrase_bars = phrase_breaks_are_bars
        self.tokens: list[str] = []
        self.sources: list[tuple[int, int]] = []  # (line, column) each token was read at
        self.where = (0, 0)
        self.pending_tie = False           # a '-' waiting for the next note
        self.last_pitch: str | None = None

    def _error(self, msg: str, line: int, col: int) -> ABCSyntaxError:
        return ABCSyntaxError(msg, line, col)

    def lex_line(self, s: str, lineno: int, inline_field) -> None:
        """Read one body line, symbol by symbol (:data:`toolkit.music.symbols.SYMBOL`), keeping
        the melody: a chord gives its top note; grace notes, text, slurs and decorations are
        skipped; what the model cannot write (``Z``, ``&``, odd tuplets) is refused."""
        i, n = 0, len(s)
        while i < n:
            ch = s[i]
            col = i + 1
            self.where = (lineno, col)
            if ch in _SKIP_CHARS or ch == ".":  # "." staccato: ".(3", ".|" read on after it
                i += 1
                continue
            if ch in "!+":  # a decoration, whatever it holds, up to its closing mark
                j = s.find(ch, i + 1)
                if j < 0:
                    raise self._error(f"unclosed decoration '{ch}'", lineno, col)
                i = j + 1
                continue
            m = SYMBOL.match(s, i)
            if m is None:
                i = self._unmatched(s, i, lineno)
                continue
            kind, text = m.lastgroup, m.group(0)
            if kind == "comment":
                break
            i = m.end()
            if kind == "field":
                inline_field(text[1], text[3:-1], lineno, col)
            elif kind == "bar":
                i = self._bar(s, col - 1, lineno)
            elif kind == "ending":  # "[1", "[1,3", "[1-2": the first number names it
                self._emit(text[:2])
                while i < n and (s[i].isdigit() or s[i] in ",-"):
                    i += 1
            elif kind == "tuplet":
                p = m.group("p")
                if m.group("q") not in (None, "", _TUPLET_Q.get(p)):
                    raise self._error(f"unsupported tuplet {text!r}", lineno, col)
                self._emit("(" + p)
            elif kind == "slur" and text.endswith("(") and i < n and s[i].isdigit():
                raise self._error(f"unsupported tuplet '({s[i]}'", lineno, col)
            elif kind == "tie":
                self.pending_tie = True
            elif kind == "grace" and text.startswith("{"):  # skipped whole, notes and all
                j = s.find("}", col)
                if j < 0:
                    raise self._error("unclosed grace notes '{'", lineno, col)
                i = j + 1
            elif kind == "chord":
                if re.match(r"\[[A-Za-z]:", s[col - 1:]):
                    raise self._error("unclosed inline field '['", lineno, col)
                i = self._chord(s, col - 1, lineno)
            elif kind == "note":
                self._note(text[:len(text) - len(m.group("len"))], m.group("len"), lineno, col)
            elif kind == "rest":
                self._note("z", m.group("rlen"), lineno, col)
            elif kind == "broken":
                if text not in BROKEN:
                    raise self._error(f"unsupported broken rhythm {text!r}", lineno, col)
                self._emit(text)
            elif kind == "mrest" and ch == "Z":
                raise self._error("multi-bar rest 'Z' is not supported", lineno, col)
            elif text == "&":
                raise self._error("voice overlay '&' is not supported (one melody only)",
                                  lineno, col)
            elif kind in ("slur", "text") or kind == "deco" and text in _DECORATION_CHARS:
                pass
            else:  # "]", "}", "*", "X", decorations the tokenizer does not know
                raise self._error(f"unknown symbol {ch!r}", lineno, col)
        if self.phrase_bars and self.tokens and not _ends_with_bar(self.tokens) \
                and self._bar_is_full():
            self._emit("|")  # Essen: a phrase break at the end of a full bar stands for a bar line

    def _bar_is_full(self) -> bool:
        start = max((i for i, t in enumerate(self.tokens) if t in BARS), default=-1) + 1
        filled = sum(e.duration for e in events(self.tokens[start:]) if e.kind != "bar")
        return self.bar_length is not None and filled == self.bar_length

    def _emit(self, tok: str) -> None:
        self.tokens.append(tok)
        self.sources.append(self.where)

    def _note(self, pitch: str, dur_text: str, lineno: int, col: int) -> None:
        dur_text = re.sub(r"/+", lambda m: "/" + str(2 ** len(m.group(0))) if len(m.group(0)) > 1
                          else "/", dur_text)
        try:
            d = parse_duration(dur_text) * self.factor
        except ValueError:
            raise self._error(f"bad note length {dur_text!r}", lineno, col) from None
        if self.pending_tie:
            if pitch != "z" and self.last_pitch is not None and _same_step(pitch, self.last_pitch):
                self._emit("-")
            self.pending_tie = False
        self._emit(pitch)
        tok = duration_token(d)
        if tok is not None:
            self._emit(tok)
        self.last_pitch = pitch if pitch != "z" else None

    def _chord(self, s: str, i: int, lineno: int) -> int:
        j = s.find("]", i)
        if j < 0:
            raise self._error("unclosed chord '['", lineno, i + 1)
        notes = [(m.group("acc") or "", m.group("letter"), m.group("oct"), m.group("len"))
                 for m in re.finditer(NOTE, s[i + 1:j])]
        if not notes:
            raise self._error("empty chord '[]'", lineno, i + 1)
        top = max(notes, key=lambda t: _octave_number(t[1], t[2]))
        m = re.match(LENGTH, s[j + 1:])
        dur = m.group(0) or top[3]
        self._note(top[0] + top[1] + top[2], dur, lineno, i + 1)
        return j + 1 + len(m.group(0))

    def _unmatched(self, s: str, i: int, lineno: int) -> int:
        """A character no symbol starts with: a stray colon is skipped, the rest refused."""
        ch = s[i]
        if ch == ":":
            return self._bar(s, i, lineno)
        if ch == '"':
            raise self._error("unclosed quote", lineno, i + 1)
        if ch in "^_=":
            raise self._error(f"accidental {ch!r} without a note", lineno, i + 1)
        raise self._error(f"unknown symbol {ch!r}", lineno, i + 1)

    def _bar(self, s: str, i: int, lineno: int) -> int:
        """The bar line starting at ``s[i]`` as a token: the whole run of bar characters is one
        bar line (``|:|`` reads as ``||``), and an ending glued to it (``|1``, ``:|2``) follows;
        returns where reading goes on."""
        m = re.match(r"\[?[|:\]\[]*", s[i:])
        raw = m.group(0)
        # a bracket glued to the bar opens what follows: "|[1" ending, "|[CE]" chord, "|[K:G]"
        if raw.endswith("[") and len(raw) > 1 and i + len(raw) < len(s):
            raw = raw[:-1]
        j = i + len(raw)
        core = raw.replace("[", "")
        if core.startswith(":") and core.endswith(":") and "|" in core or "::" in core:
            tok = "::"
        elif core.startswith(":"):
            tok = ":|"
        elif core.endswith(":"):
            tok = "|:"
        elif core.endswith("]"):
            tok = "|]"
        elif core.count("|") >= 2 or raw.startswith("[|"):
            tok = "||"
        elif core == "|":
            tok = "|"
        elif core == ":" or core == "":
            return max(j, i + 1)  # a stray colon: nothing musical
        else:
            raise self._error(f"unsupported bar line {raw!r}", lineno, i + 1)
        last = self.tokens[-1] if self.tokens else None
        if last in BARS and (tok in ("|", "||") or tok == last):
            pass  # "|\n|", ":| ||", "|] |]": a second bar line with no note between adds nothing
        elif last in ("|", "||"):
            self.tokens[-1] = tok  # "| |:", "|| :|": the plain bar line adds nothing
        else:
            self._emit(tok)
        if j < len(s) and s[j].isdigit():  # "|1" or ":|2"
            self._emit("[" + s[j])
            j += 1
            while j < len(s) and (s[j].isdigit() or s[j] in ",-"):
                j += 1
        return j


_TUPLET_Q = {"2": "3", "3": "2", "4": "3", "6": "2", "8": "3"}


def _same_step(a: str, b: str) -> bool:
    pa, pb = PITCH_RE.match(a), PITCH_RE.match(b)
    return pa.group(2) == pb.group(2) and pa.group(3) == pb.group(3)


def _ends_with_bar(tokens: list[str]) -> bool:
    return tokens[-1] in BARS or tokens[-1] in ENDINGS


# --------------------------------------------------------------------------------------------
# encode

def encode(abc: str, style: str | None = None, *,
           phrase_breaks_are_bars: bool = False) -> list[str]:
    """Encode one tune of ABC text (headers and body) into tokens, transposed to tonic C.

    ``style`` adds a style token (``S:irish``); ``phrase_breaks_are_bars`` reads a line break
    without a bar line as a bar line, as the Essen collection writes its phrase ends.
    Raises :class:`ABCSyntaxError` naming the line and column of what it cannot read.
    """
    if not isinstance(abc, str):
        raise TypeError(f"abc must be a str, got {type(abc).__name__}")
    header = _Header()
    lexer: _Lexer | None = None

    def set_field(name: str, value: str, lineno: int, col: int) -> None:
        value = value.split("%")[0]  # a field may end with a comment: "M:9/8 % or 6/8"
        if name == "M":
            tok = _meter_token(value)
            if header.meter is None:
                header.meter = tok
            elif tok != header.meter:
                raise ABCSyntaxError("the meter changes inside the tune", lineno, col)
        elif name == "L":
            try:
                unit = parse_duration(value.strip().replace("1/", "/"))
            except ValueError:
                raise ABCSyntaxError(f"bad unit length L:{value.strip()}", lineno, col) from None
            header.unit = unit
            if lexer is not None:
                lexer.factor = unit / UNIT
        elif name == "K":
            value = value.split("%")[0]
            value = re.sub(r"\b(clef|middle|transpose|octave|stafflines)=\S*", "", value)
            try:
                key = parse_key(value)
            except ValueError as err:
                raise ABCSyntaxError(str(err), lineno, col) from None
            if header.key is None:
                header.key = key
            elif key != header.key:
                raise ABCSyntaxError("the key changes inside the tune", lineno, col)
        elif name == "V":
            raise ABCSyntaxError("several voices (V:) are not supported", lineno, col)

    for lineno, line in enumerate(abc.splitlines(), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith("%"):
            continue
        m = _FIELD_RE.match(stripped)
        is_field = m and (lexer is None or not re.match(r"^[A-Ga-gz]", stripped)
                          or m.group(1) in "MLKVPTW")
        if is_field:
            if m.group(1) in "wW":
                continue
            set_field(m.group(1), m.group(2), lineno, 1)
            if m.group(1) == "K" and lexer is None:
                if header.meter is None:
                    raise ABCSyntaxError("the tune has no meter (M:) before its key (K:)",
                                         lineno, 1)
                unit = header.unit or _default_unit(header.meter)
                header.unit = unit
                lexer = _Lexer(unit / UNIT, phrase_breaks_are_bars, bar_length(header.meter))
            continue
        if lexer is None:
            if stripped.startswith("X:") or _FIELD_RE.match(stripped):
                continue
            raise ABCSyntaxError("music before the key (K:) header", lineno, 1)
        lexer.lex_line(line.rstrip(), lineno, set_field)
    if lexer is None:
        raise ABCSyntaxError("no K: header: every tune needs M: and K: before its music")
    if not any(is_pitch(t) for t in lexer.tokens):
        raise ABCSyntaxError("the tune has no notes")
    key = header.key
    steps = _steps_to(key, "C")
    c_key = Key("C", 0, key.mode)
    try:
        body = [transpose_pitch(t, key, c_key, steps) if is_pitch(t) else t for t in lexer.tokens]
    except ValueError as err:  # e.g. a double sharp on a sharpened degree of K:Fb
        raise ABCSyntaxError(str(err)) from None
    while body and body[0] == "|":  # a leading plain bar line carries nothing
        body.pop(0)
    style_tok = f"S:{style}" if style else UNKNOWN_STYLE
    return [BOS, header.meter, f"K:{key.mode}", style_tok, *body, EOS]


def encode_fragment(text: str, key: str = "D", mode: str = "maj") -> list[str]:
    """Encode a piece of tune body (no headers), written in ``key`` with ``L:1/8``.

    This is how a student's opening becomes a primer: ``encode_fragment("|: d2e fed |")``
    gives the tokens, transposed to tonic C like the training data.
    """
    return _fragment(text, key, mode)[0]


def _fragment(text: str, key: str, mode: str) -> tuple[list[str], list[tuple[int, int]], Key]:
    """:func:`encode_fragment`, plus the (line, column) each token was read at and the key."""
    if not isinstance(text, str):
        raise TypeError(f"prime must be ABC text (a str), got {type(text).__name__}")
    src = display_key(key, mode)
    lexer = _Lexer(Fraction(1), False)
    for lineno, line in enumerate(text.splitlines() or [""], start=1):
        def no_fields(name: str, value: str, ln: int, col: int) -> None:
            raise ABCSyntaxError(f"inline field [{name}:...] is not allowed in a primer", ln, col)
        lexer.lex_line(line, lineno, no_fields)
    c_key = Key("C", 0, src.mode)
    steps = _steps_to(src, "C")
    tokens = [transpose_pitch(t, src, c_key, steps) if is_pitch(t) else t for t in lexer.tokens]
    return tokens, lexer.sources, src


def check_fragment(text: str, known, key: str = "D", mode: str = "maj",
                   nearest=None) -> list[str]:
    """Encode a student's opening and check every symbol against ``known`` tokens.

    An unknown symbol raises :class:`UnknownTokenError` naming it *as the student wrote it*,
    with its line and column in their text and the nearest known symbol, also written in
    ``key`` (``nearest(token)`` finds it in the model's vocabulary, in C).
    """
    tokens, sources, src = _fragment(text, key, mode)
    c_key = Key("C", 0, src.mode)
    back = -_steps_to(src, "C")
    for i, tok in enumerate(tokens):
        if tok in known:
            continue
        line, col = sources[i]
        row = (text.splitlines() or [""])[line - 1]
        m = re.match(r"(\^\^|\^|__|_|=)?[A-Ga-gz][',]*|\S+", row[col - 1:])
        written = m.group(0) if m else tok
        suggestion = nearest(tok) if nearest else None
        if suggestion is not None and is_pitch(suggestion):
            suggestion = transpose_pitch(suggestion, c_key, src, back)
        raise UnknownTokenError(written, i, suggestion, line=line, column=col)
    return tokens


# --------------------------------------------------------------------------------------------
# durations: the bar clock (one token at a time) and the events read off it. The one home of
# the duration arithmetic: the model's bar-clock input, the meter constraint, the grammar,
# decode and the metrics all use it

@dataclass(frozen=True)
class Event:
    """A note or rest (``kind`` 'note'/'rest') or a bar line ('bar'), read from tokens.

    ``index`` is the position of the pitch/rest/bar token; ``duration`` is in eighth notes (after
    broken rhythm and tuplets); ``bar`` is the 0-based bar number; ``onset`` the position in the
    bar.
    """

    kind: str
    index: int
    token: str
    duration: Fraction
    bar: int
    onset: Fraction


class Clock(NamedTuple):
    """The state of the current bar after some tokens (immutable, hashable)."""

    filled: Fraction = Fraction(0)      # eighths so far, the last note's duration included
    last: Fraction | None = None        # length of the last note or rest (None after a bar line)
    after_duration: bool = False        # the last note already has its duration token
    tuplet_left: int = 0                # notes still inside a tuplet
    tuplet_scale: Fraction = Fraction(1)
    broken_next: Fraction | None = None  # the second note of a broken-rhythm pair is scaled
    bar: int = 0                        # bar lines passed (0: still in the first bar)
    full: Fraction | None = None        # a full bar's length, once a meter token has gone by

    def next_scale(self) -> Fraction:
        """What the next note's length is multiplied by (tuplet and broken rhythm)."""
        scale = self.tuplet_scale if self.tuplet_left else Fraction(1)
        return scale * (self.broken_next or 1)


START = Clock()


def advance(clock: Clock, tok: str) -> Clock:
    """The clock after one more token: the duration arithmetic of the whole package."""
    if is_pitch(tok) or tok == "z":
        length = clock.next_scale()
        return clock._replace(filled=clock.filled + length, last=length, after_duration=False,
                              tuplet_left=max(0, clock.tuplet_left - 1), broken_next=None)
    if is_duration(tok):  # a second one multiplies again, as decode() merges them
        if clock.last is None:
            return clock
        d = parse_duration(tok)
        return clock._replace(filled=clock.filled + clock.last * (d - 1), last=clock.last * d,
                              after_duration=True)
    if tok in BROKEN:
        if clock.last is None:
            return clock
        first, second = BROKEN[tok]  # the first note of the pair is now first × as long
        return clock._replace(filled=clock.filled + clock.last * (first - 1),
                              last=clock.last * first, broken_next=second)
    if tok.startswith("(") and tok[1:].isdigit():
        p = int(tok[1:])
        return clock._replace(tuplet_left=p, tuplet_scale=Fraction(int(_TUPLET_Q.get(str(p), "2")),
                                                                   p))
    if tok in BARS:
        return clock._replace(filled=Fraction(0), last=None, after_duration=False,
                              bar=clock.bar + 1)
    if tok.startswith("M:"):
        return clock._replace(full=bar_length(tok))
    return clock


def events(tokens: Sequence[str]) -> Iterator[Event]:
    """Walk tokens, yielding notes, rests and bar lines with their real durations: the
    :class:`Clock` arithmetic, read off note by note (a note's length is what the bar has filled
    when the next note or bar line comes, minus its onset).

    >>> [(e.token, str(e.duration)) for e in events(['G', '2', '>', 'A', '|'])]
    [('G', '3'), ('A', '1/2'), ('|', '0')]
    """
    clock, bar = START, 0
    pending: tuple[str, int, str, Fraction] | None = None   # kind, index, token, onset

    def finished() -> Event:
        kind, index, token, onset = pending
        return Event(kind, index, token, clock.filled - onset, bar, onset)

    for i, tok in enumerate(tokens):
        note = is_pitch(tok) or tok == "z"
        if (note or is_bar(tok)) and pending is not None:
            yield finished()
            pending = None
        if note:
            pending = ("note" if tok != "z" else "rest", i, tok, clock.filled)
        elif is_bar(tok):
            yield Event("bar", i, tok, Fraction(0), bar, clock.filled)
            bar += 1
        clock = advance(clock, tok)
    if pending is not None:
        yield finished()


def conditioning_of(tokens: Sequence[str]) -> dict[str, str | None]:
    """The meter, mode and style a tune's opening tokens state (None where unknown, ``?``).

    >>> conditioning_of(["<s>", "M:6/8", "K:min", "S:?", "A", "</s>"])
    {'meter': '6/8', 'mode': 'min', 'style': None}
    """
    out: dict[str, str | None] = {}
    for slot, prefix in SLOTS.items():
        tok = next((t for t in tokens[:4] if t.startswith(prefix)), None)
        out[slot] = None if tok is None or tok.endswith("?") else tok[len(prefix):]
    return out


def bar_length(meter_token: str) -> Fraction | None:
    """Length of a full bar in eighth notes: ``M:6/8`` -> 6, ``M:3/4`` -> 6; None if unknown."""
    if not meter_token.startswith("M:") or "/" not in meter_token:
        return None
    num, den = meter_token[2:].split("/")
    return Fraction(int(num), int(den)) / UNIT


def _beat(meter_token: str) -> Fraction:
    """Beaming unit in eighths: dotted quarter in compound meters, else the meter's beat."""
    if not meter_token.startswith("M:") or "/" not in meter_token:
        return Fraction(2)
    num, den = (int(x) for x in meter_token[2:].split("/"))
    if den == 8 and num % 3 == 0 and num > 3:
        return Fraction(3)
    return Fraction(8, den)


# --------------------------------------------------------------------------------------------
# decode

def decode(tokens: Sequence[str], key: str = "D", *, title: str = "Folk Sampler tune",
           number: int = 1, tempo: int | None = None, line_bars: int = 4) -> str:
    """Turn tokens back into complete ABC text (X:, T:, M:, L:, K:) in display key ``key``.

    ``key`` is the tonic to show the tune in (``"D"``, ``"G"``, ``"Bb"``...); the mode comes from
    the tune's ``K:`` token.  Notes are beamed by beat and a line holds ``line_bars`` bars.
    """
    tokens = list(tokens)
    meter = next((t for t in tokens if t.startswith("M:") and t != UNKNOWN_METER), "M:4/4")
    mode_tok = next((t for t in tokens if t.startswith("K:")), UNKNOWN_MODE)
    mode = mode_tok[2:] if mode_tok[2:] in MODES else "maj"
    dst = display_key(key, mode)
    src = Key("C", 0, mode)
    steps = _steps_to(src, dst.letter)
    body = [t for t in tokens if t not in (BOS, EOS) and t[:2] not in ("M:", "K:", "S:")]
    durations = {e.index: e for e in events(body) if e.kind != "bar"}
    beat = _beat(meter)
    out: list[str] = []
    bars_on_line = 0
    for i, tok in enumerate(body):
        if is_pitch(tok):
            tok = transpose_pitch(tok, src, dst, steps)
        if i in durations:
            e = durations[i]
            if e.onset > 0 and e.onset % beat == 0 and out and out[-1] not in (" ", "\n") \
                    and not out[-1].lstrip().startswith("("):  # "(3efd", not "(3 efd"
                out.append(" ")
            out.append(tok)
            j, length = i + 1, Fraction(1)  # its duration tokens, merged into one written length
            while j < len(body) and is_duration(body[j]):
                length, j = length * parse_duration(body[j]), j + 1
            if j > i + 1:
                out.append(duration_token(length) or "")
        elif is_duration(tok):
            continue  # written with its note above; a stray one (after a bar line) means nothing
        elif is_bar(tok):
            out.append(" " + tok + " ")
            bars_on_line += 1
            if bars_on_line >= line_bars or tok in ("|]", "||", ":|", "::"):
                out.append("\n")
                bars_on_line = 0
        elif tok in ENDINGS:
            out.append(tok + " ")
        elif tok.startswith("(") and out and out[-1] not in (" ", "\n"):
            out.append(" " + tok)
        elif tok == "-":  # a tie follows its first note at once: "c2-|c", "G->G" (not "G>-G")
            j = len(out)
            while j > 0 and (not out[j - 1].strip()
                             or out[j - 1].strip() in BARS + ENDINGS + tuple(BROKEN)):
                j -= 1
            out.insert(j, tok)
        else:
            out.append(tok)
    text = "".join(out)
    lines = [re.sub(r" +", " ", ln).strip() for ln in text.split("\n")]
    body_text = "\n".join(ln for ln in lines if ln)
    headers = [f"X:{number}", f"T:{title}", f"M:{meter[2:] if meter != UNKNOWN_METER else '4/4'}",
               "L:1/8"]
    if tempo is not None:
        headers.append(f"Q:1/4={tempo}")
    headers.append(f"K:{dst.letter}{ {1: '#', -1: 'b', 0: ''}[dst.alter]}{mode}".replace(" ", ""))
    return "\n".join(headers) + "\n" + body_text + "\n"


def tune_body(tokens: Sequence[str]) -> list[str]:
    """The tune's body: its tokens without ``<s>``, ``</s>`` and the conditioning header.

    >>> tune_body(["<s>", "M:6/8", "K:maj", "S:?", "G", "|", "</s>"])
    ['G', '|']
    """
    return [t for t in tokens if t not in (BOS, EOS) and t[:2] not in ("M:", "K:", "S:")]


_DURATION_NAMES = {"/2": "×½", "/4": "×¼", "3/2": "×1½", "3/4": "×¾"}
_SPECIAL_NAMES = {EOS: "end", "z": "rest", "-": "tie", ">": ">", "<": "<", "(3": "triplet"}


def token_labels(vocab: Sequence[str], *, key: str = "D", mode: str = "maj") -> list[str]:
    """Names for the tokens as the score shows them: pitches in the tune's key, lengths as ×2.

    The model writes every tune with the tonic C; the score shows it in ``key`` (the tune's
    display key, default D). So that a bar labelled ``A`` is the A on the stave, pitch tokens
    are moved to ``key`` in ``mode``. Lengths become
    ``×2``, ``×½``...; ``</s>`` is ``end``, ``z`` is ``rest``.

    >>> token_labels(["C", "E", "2", "/2", "</s>", "z", "|"], key="D", mode="maj")
    ['D', 'F', '×2', '×½', 'end', 'rest', '|']
    """
    mode = mode if mode in MODES else "maj"
    src = Key("C", 0, mode)
    dst = parse_key(key + mode)
    steps = "CDEFGAB".index(dst.letter)
    steps = steps - 7 if steps > 3 else steps  # the nearer way, as the score is written
    out = []
    for tok in vocab:
        if is_pitch(tok):
            try:
                out.append(transpose_pitch(tok, src, dst, steps))
            except ValueError:
                out.append(tok)
        elif tok in _SPECIAL_NAMES:
            out.append(_SPECIAL_NAMES[tok])
        elif tok[:1].isdigit() or tok.startswith("/"):
            out.append(_DURATION_NAMES.get(tok, "×" + tok))
        else:
            out.append(tok)
    return out
