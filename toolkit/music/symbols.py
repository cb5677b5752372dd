"""What the symbols of an ABC tune body look like: the one scanner both readers use.

An ABC body line is a run of symbols: notes (``^f'2``), rests, bar lines (``|`` ``:|`` ``|]``
``|1``), endings (``[2``), tuplets (``(3``), ties, broken rhythm (``>``), chords (``[CEG]``),
grace notes (``{g}``), inline fields (``[K:G]``), quoted text and decorations.  :data:`SYMBOL`
matches one of them at a position, and names its kind in ``match.lastgroup``; the named groups
hold its parts (a note's ``acc``, ``letter``, ``oct`` and ``len``; a bar's ``barline`` and
``barend``; a tuplet's ``p``, ``q`` and ``r``).

Two readers walk a line with it: the score reader (:mod:`toolkit.music.reader`, every symbol,
for engraving and sound) and the tokenizer (:mod:`toolkit.music.tokens`, the melody only, for
the model), which refuses more than the reader does (a chord keeps its top note; grace notes,
text and decorations are skipped).  A symbol's shape is written here once.

>>> [(m.lastgroup, m.group(0)) for m in scan("|: ^f'2 (3 z/ |1")]
[('bar', '|:'), ('space', ' '), ('note', "^f'2"), ('space', ' '), ('tuplet', '(3'), \
('space', ' '), ('rest', 'z/'), ('space', ' '), ('bar', '|1')]
"""

from __future__ import annotations

import re
from collections.abc import Iterator

__all__ = ["SYMBOL", "LENGTH", "NOTE", "scan"]

#: a written note length: ``2``, ``/``, ``3/2``, ``//`` (digits, slashes, digits)
LENGTH = r"\d*/*\d*"
#: a note: accidental, letter, octave marks and length
NOTE = rf"(?P<acc>\^\^|\^|__|_|=)?(?P<letter>[A-Ga-g])(?P<oct>[',]*)(?P<len>{LENGTH})"

SYMBOL = re.compile(
    rf"""
      (?P<space>[ \t]+)
    | (?P<comment>%.*)
    | (?P<cont>\\\s*$)
    | (?P<field>\[[A-Za-z]:[^\]\n]*\])
    | (?P<bar>(?P<barline>:*\[?\|[|\]]*:*|::+|\.\|)(?P<barend>\[?\d+(?:[,-]\d+)*)?)
    | (?P<ending>\[\d+(?:[,-]\d+)*)
    | (?P<tuplet>\((?P<p>[2-9])(?::(?P<q>[1-9]?))?(?::(?P<r>[1-9]?))?)
    | (?P<slur>\.?\(|\))
    | (?P<tie>\.?-)
    | (?P<grace>\{{/?|\}})
    | (?P<chord>\[)
    | (?P<chordend>\](?P<clen>{LENGTH}))
    | (?P<note>{NOTE})
    | (?P<rest>[zx](?P<rlen>{LENGTH}))
    | (?P<mrest>[ZX](?P<bars>\d*))
    | (?P<broken><{{1,3}}|>{{1,3}})
    | (?P<text>"[^"\n]*")
    | (?P<deco>![^!\s]{{1,30}}!|\+[^+\s]{{1,30}}\+|[.~H-Wh-wy])
    | (?P<misc>[$&`!*])
    """,
    re.VERBOSE,
)


def scan(line: str) -> Iterator[re.Match]:
    """Every symbol of ``line`` in order (stops before the first character no symbol fits)."""
    i = 0
    while i < len(line):
        m = SYMBOL.match(line, i)
        if m is None:
            return
        yield m
        i = m.end()
