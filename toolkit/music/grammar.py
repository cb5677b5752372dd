"""The grammar of a valid tune, one token at a time: what may come next, and why not.

A tune is valid when every token is allowed after the ones before it.  The rules, in the order
:func:`why_not` checks them:

* **ties** — ``-`` follows a pitched note (or the bar line right after one) and is followed at
  once by the same pitch under the key signature (not ``^F - F``: readers disagree whether the
  accidental carries); never before a rest, a bar line or an ending (``F--``, ``F-|``);
* **tuplets** — ``(3`` is followed by three notes of one length, inside one bar;
* **broken rhythm** — ``>`` / ``<`` stand between two notes of equal length, not chained
  (``c>B>c``), not inside a tuplet, not across a bar line;
* **bars** — every bar lasts exactly one bar of the meter, except a section's first bar (a
  pickup), and a section's last bar, which must complete the pickup (pickup + last bar = one
  bar, as folk tunes are written); a repeated section (``:|``) must, an unrepeated one may also
  end on a full bar; the bar before ``|:`` is full unless it is a pickup;
* **repeats and endings** — ``|:`` never opens while another is open and is closed by ``:|``;
  ``[1`` comes right after a bar line and closes with ``:|``; ``[2`` comes right after that ``:|``;
* **the end** — ``</s>`` only after a complete bar, with nothing left open.

The state is small and immutable (:class:`State`), so a batched sampler step can intern it and
cache a mask per state (:class:`toolkit.lm.sampling.constraints.GrammarConstraint`), and the
checker (:func:`toolkit.music.check.check_tokens`) runs the same rules over a whole tune.
Which pitch a tie joins is not part of the state: :func:`tie_fits` checks it, so that the states
stay few.

>>> s = start("M:2/4")
>>> for tok in ["G", "2", ">", "A"]:
...     s = advance(s, tok)
>>> why_not(s, "|")[1]
'the second note of a broken rhythm must be as long as the first: it needs the duration 2'
>>> why_not(advance(s, "2"), "|") is None
True
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence
from fractions import Fraction
from typing import NamedTuple

from toolkit.music.tokens import (
    BOS,
    BROKEN,
    EOS,
    MODES,
    PITCH_RE,
    Clock,
    Key,
    bar_length,
    duration_token,
    is_duration,
    is_pitch,
    midi_pitch,
    parse_duration,
)
from toolkit.music.tokens import START as CLOCK_START
from toolkit.music.tokens import advance as tick

__all__ = ["State", "start", "advance", "why_not", "tie_fits", "finish", "read", "walk", "RULES",
           "CLOSERS"]

#: the rule each reason belongs to (the checker reports one verdict per rule)
RULES = ("tie", "tuplet", "broken", "bar", "repeat", "end")
CLOSERS = (":|", "::", "||", "|]")  # bar lines that end a section
SHORTEST = Fraction(1, 4)           # the shortest note, in eighths ("/4")


class State(NamedTuple):
    """Where a tune stands after some tokens (immutable and hashable, so it can be interned)."""

    clock: Clock = CLOCK_START      # the bar's arithmetic (bar count kept at 0)
    kind: str = "start"             # last token: start note dur tie broken tuplet bar ending end
    pitched: bool = False           # the last note was a pitch, not a rest (a tie may follow)
    scale: Fraction = Fraction(1)   # what the last note's length was scaled by (tuplet, broken)
    need: Fraction | None = None    # the length the current/next note must have (pair, tuplet)
    tuplet_first: bool = False      # the last note opened a tuplet (its length sets the others')
    tuplet_m: Fraction | None = None  # the length of the open tuplet's notes, once settled
    paired: bool = False            # the last note ends a broken pair or sits in a tuplet
    first_bar: bool = True          # in a section's first bar (it may be a short pickup)
    pickup: Fraction = Fraction(0)  # this section's pickup (0: it opened on a full bar)
    last_pickup: Fraction = Fraction(0)  # the pickup of the section a ':|' just closed
    repeat: bool = False            # a '|:' or '::' is open
    ending: int = 0                 # inside ending [1 or [2
    had_ending: bool = False        # this section has had its [1
    bar_tok: str | None = None      # the bar line just written (kind 'bar')
    after_first: bool = False       # that bar line closed a first ending ([2 may follow)
    notes: bool = False             # a pitch has been written
    tie_across: bool = False        # the open tie crosses a bar line


def start(meter: str) -> State:
    """The state before the first body token of a tune in ``meter`` (a token, ``"M:6/8"``)."""
    full = bar_length(meter)
    if full is None:
        raise ValueError(f"the grammar needs a known meter, got {meter!r}")
    return State(clock=CLOCK_START._replace(full=full))


def _is_note(tok: str) -> bool:
    return tok == "z" or is_pitch(tok)


def _mult(s: State) -> Fraction:
    """The current note's length before scaling (its duration token, or 1)."""
    return s.clock.last / s.scale if s.clock.last is not None else Fraction(1)


def _settle(s: State) -> State:
    """The current note has its length: record it for the rest of its tuplet."""
    if s.kind not in ("note", "dur"):
        return s
    tuplet_m = s.tuplet_m
    if s.tuplet_first:
        tuplet_m = _mult(s)
    if s.clock.tuplet_left == 0:
        tuplet_m = None
    return s._replace(need=None, tuplet_first=False, tuplet_m=tuplet_m)


def _new_section(s: State, **changes) -> State:
    return s._replace(first_bar=True, pickup=Fraction(0), ending=0, had_ending=False,
                      **changes)


def advance(s: State, tok: str) -> State:
    """The state after ``tok`` (any token: a forbidden one moves on as best it can)."""
    return _canonical(_advance(s, tok))


def _canonical(s: State) -> State:
    """Forget what no later rule reads, so that equal situations are one state (fewer states,
    fewer masks to work out)."""
    kind, change = s.kind, {}
    if kind not in ("note", "dur", "broken") and (s.clock.last is not None or s.scale != 1
                                                   or s.clock.after_duration):
        change["clock"] = s.clock._replace(last=None, after_duration=False)
        change["scale"] = Fraction(1)
    if kind != "bar" and (s.bar_tok is not None or s.after_first):
        change["bar_tok"], change["after_first"] = None, False
    if not (s.after_first and kind == "bar") and s.last_pickup:
        change["last_pickup"] = Fraction(0)
    if kind not in ("note", "dur", "bar") and s.pitched:
        change["pitched"] = False
    if kind != "tie" and s.tie_across:
        change["tie_across"] = False
    return s._replace(**change) if change else s


def _advance(s: State, tok: str) -> State:
    if _is_note(tok):
        if s.kind in ("note", "dur"):
            s = _settle(s)
        in_tuplet = s.clock.tuplet_left > 0
        need = s.need if s.kind == "broken" else (s.tuplet_m if in_tuplet else None)
        clock = tick(s.clock, tok)
        return s._replace(clock=clock, kind="note", pitched=tok != "z", scale=s.clock.next_scale(),
                          need=need, tuplet_first=in_tuplet and s.kind == "tuplet",
                          paired=s.kind == "broken" or in_tuplet, notes=s.notes or tok != "z",
                          tie_across=False, bar_tok=None, after_first=False)
    if is_duration(tok):
        if s.kind != "note":
            return s
        s = s._replace(clock=tick(s.clock, tok), kind="dur")
        return _settle(s)
    s = _settle(s)
    if tok == "-":
        return s._replace(kind="tie", tie_across=s.kind == "bar")
    if tok in BROKEN:
        return s._replace(clock=tick(s.clock, tok), kind="broken", need=_mult(s))
    if tok == "(3":
        return s._replace(clock=tick(s.clock, tok), kind="tuplet", tuplet_m=None)
    if tok == EOS:
        return s._replace(kind="end")
    if tok == "[1":
        return s._replace(kind="ending", ending=1, had_ending=True, bar_tok=None)
    if tok == "[2":
        return s._replace(kind="ending", ending=2, first_bar=False, pickup=s.last_pickup,
                          bar_tok=None, repeat=False)
    if tok in (":|", "::", "||", "|]", "|:", "|"):
        filled, full = s.clock.filled, s.clock.full
        clock = tick(s.clock, tok)._replace(bar=0)
        base = dict(clock=clock, kind="bar", bar_tok=tok, after_first=False)
        if tok == "|":
            if s.first_bar and filled:
                pickup = filled if full is not None and filled < full else Fraction(0)
                return s._replace(first_bar=False, pickup=pickup, **base)
            return s._replace(**base)
        if tok in (":|", "::"):
            return _new_section(s, last_pickup=s.pickup, repeat=tok == "::",
                                **{**base, "after_first": s.ending == 1})
        if tok == "|:" and s.first_bar and full is not None and 0 < filled < full:
            # a pickup before the repeat ("G2 |: c4 ..."): the repeated section's last bar
            # completes it
            return _new_section(s, repeat=True, **base)._replace(first_bar=False, pickup=filled)
        return _new_section(s, repeat=tok == "|:", **base)
    return s


def _needs_first(s: State) -> tuple[str, str] | None:
    """Something open that must be completed before a bar line, ending or the end."""
    if s.kind == "tie":
        return "tie", "a tie - must be followed at once by the same note"
    if s.kind == "broken":
        return "broken", "broken rhythm needs its second note"
    if s.clock.tuplet_left > 0:
        return "tuplet", "a (3 triplet needs three notes in the same bar"
    return None


def _fill_after(s: State, tok: str) -> Fraction:
    """The least the bar will hold after a note or rest, ``(3``, ``>`` or ``<``, once what is
    open is complete (the notes still to come, and this one if it may take a duration, at their
    shortest or at the length they must have). Worked out from ``s`` without building the next
    state: these are asked for every new state (``tests/test_grammar.py`` checks it against the
    state built by :func:`advance`)."""
    c = s.clock
    tuplet_m, need = s.tuplet_m, s.need
    if s.kind in ("note", "dur"):  # the current note's length is now final
        if s.tuplet_first:
            tuplet_m = _mult(s)
        if c.tuplet_left == 0:
            tuplet_m = None
        need = None
    if tok in BROKEN:
        first, second = BROKEN[tok]
        return c.filled + c.last * (first - 1) + second * (c.last / s.scale)
    if tok == "(3":
        after = tick(c, tok)
        return after.filled + after.tuplet_left * after.tuplet_scale * SHORTEST
    in_tuplet = c.tuplet_left > 0
    m = need if s.kind == "broken" else (tuplet_m if in_tuplet else None)
    m_now = SHORTEST if m is None else m
    filled = c.filled + c.next_scale() * m_now
    left = c.tuplet_left - 1 if in_tuplet else 0
    if left:
        first_note = s.kind == "tuplet"
        m_t = tuplet_m if tuplet_m is not None else (m_now if first_note else SHORTEST)
        filled += left * c.tuplet_scale * m_t
    return filled


def _fill_with(s: State, d: Fraction) -> Fraction:
    """The same as :func:`_fill_after`, after the current note takes duration ``d``."""
    c = s.clock
    filled = c.filled + c.last * (d - 1)
    if c.tuplet_left:
        m = s.tuplet_m if s.tuplet_m is not None else (d if s.tuplet_first else SHORTEST)
        filled += c.tuplet_left * c.tuplet_scale * m
    return filled


def _close_target(s: State) -> tuple[Fraction, ...]:
    """The lengths the bar may have when a section closes here (the last bar)."""
    full = s.clock.full
    if s.first_bar or not s.pickup:
        return (full,)
    return (full, full - s.pickup)


def _repeat_target(s: State) -> tuple[Fraction, ...]:
    """The length a repeated section's last bar must have: with the pickup, one full bar."""
    full = s.clock.full
    return (full - s.pickup,) if s.pickup and not s.first_bar else (full,)


def _partner_rule(s: State) -> str:
    return "tuplet" if s.tuplet_m is not None else "broken"


def _partner_text(s: State) -> str:
    if s.tuplet_m is not None:
        return "a triplet's notes must all be as long as its first"
    return "the second note of a broken rhythm must be as long as the first"


def why_not(s: State, tok: str) -> tuple[str, str] | None:
    """None if ``tok`` may come next; else ``(rule, reason)``, the rule one of :data:`RULES`."""
    c, full = s.clock, s.clock.full
    filled = c.filled
    if s.kind == "end":  # a finished tune in a batch is padded with </s>
        return None if tok == EOS else ("end", "nothing but padding </s> may follow </s>")
    if tok in (BOS, "<pad>") or tok[:2] in ("M:", "K:", "S:"):
        return "end", f"{tok} cannot stand inside a tune"
    if s.kind == "note" and s.need is not None and s.need != 1 and not is_duration(tok):
        return _partner_rule(s), f"{_partner_text(s)}: it needs the duration " \
                                 f"{duration_token(s.need)}"
    if s.kind == "tie" and not is_pitch(tok):
        return "tie", "a tie - must be followed at once by the same note"
    if s.kind in ("broken", "tuplet") and not _is_note(tok):
        return _needs_first(s)
    if c.tuplet_left > 0 and not (_is_note(tok) or is_duration(tok)):
        return "tuplet", f"a (3 triplet needs three notes before {tok}"

    if _is_note(tok):
        if full is not None and _fill_after(s, tok) > full:
            return "bar", f"no room for another note: the bar holds {_eighths(filled)} of " \
                          f"{_eighths(full)} eighths"
        return None
    if is_duration(tok):
        if s.kind != "note":
            return "bar", "a duration follows a note at once, one per note"
        d = parse_duration(tok)
        if s.need is not None and d != s.need:
            return _partner_rule(s), f"{_partner_text(s)}: it needs the duration " \
                                     f"{duration_token(s.need)}, not {tok}"
        if full is not None and _fill_with(s, d) > full:
            return "bar", f"too long for the bar: it holds {_eighths(filled)} of " \
                          f"{_eighths(full)} eighths"
        return None
    if tok == "-":
        across = s.kind == "bar" and s.bar_tok == "|"
        if not ((s.kind in ("note", "dur") or across) and s.pitched):
            return "tie", "a tie - follows a note (or the bar line right after it)"
        if not across and full is not None and filled + c.next_scale() * SHORTEST > full:
            return "tie", "a tie to the next bar is written after the bar line: | -"
        return None
    if tok in BROKEN:
        if s.kind not in ("note", "dur"):
            return "broken", f"{tok} stands between two notes"
        if s.paired:
            return "broken", f"{tok} cannot follow a note that ends a broken pair or a triplet"
        if full is not None and _fill_after(s, tok) > full:
            return "broken", f"no room for the broken pair: the bar holds {_eighths(filled)} of " \
                             f"{_eighths(full)} eighths"
        return None
    if tok == "(3":
        if full is not None and _fill_after(s, tok) > full:
            return "tuplet", "no room for a triplet in this bar"
        return None

    pending = _needs_first(s)
    if pending is not None:
        return pending
    if tok == "[1":
        if s.ending or s.had_ending:
            return "repeat", "[1 comes once per section"
        if not (s.kind == "bar" and s.bar_tok == "|"):
            return "repeat", "[1 comes right after a bar line |"
        return None
    if tok == "[2":
        if not (s.kind == "bar" and s.after_first):
            return "repeat", "[2 comes right after the :| that closes [1"
        return None
    if tok == EOS:
        if not s.notes:
            return "end", "the tune has no notes"
        if s.repeat:
            return "repeat", "a |: repeat is never closed with :|"
        if s.ending == 1:
            return "repeat", "the first ending [1 is never closed with :|"
        if s.kind == "ending":
            return "repeat", "an ending needs a bar of notes"
        if s.kind == "bar":
            return None
        if filled not in _close_target(s):
            return "end", f"the tune would stop in the middle of a bar " \
                          f"({_eighths(filled)} of {_eighths(full)} eighths)"
        return None
    if tok in (":|", "::", "||", "|]", "|:", "|"):
        if not filled:
            if tok == "|:" and (s.kind == "start" or (s.kind == "bar" and s.bar_tok in
                                                      (":|", "||", "|]"))):
                return None
            return "bar", f"an empty bar before {tok}"
        if s.kind == "ending":
            return "repeat", f"an ending needs a bar of notes before {tok}"
        if tok == "|":
            if filled == full or (s.first_bar and filled < full):
                return None
            return "bar", f"the bar holds {_eighths(filled)} of {_eighths(full)} eighths"
        if s.ending == 2 and tok in (":|", "::"):
            return "repeat", "the second ending [2 is not repeated"
        if tok in ("||", "|]", "|:"):
            if s.repeat:
                return "repeat", f"the repeat opened by |: must close with :| before {tok}"
            if s.ending == 1:
                return "repeat", f"the first ending [1 closes with :|, not {tok}"
        if tok == "|:" and s.repeat:
            return "repeat", "|: opens a repeat while another is open"
        if tok == "|:":  # a full bar, or a pickup before the repeat; never a short last bar
            if filled == full or (s.first_bar and filled < full):
                return None
            return "bar", f"the bar before |: holds {_eighths(filled)} of {_eighths(full)} " \
                          "eighths (only a pickup may be short there)"
        targets = _repeat_target(s) if tok in (":|", "::") else _close_target(s)
        if filled not in targets:
            want = " or ".join(_eighths(t) for t in targets)
            why = "with its pickup the section's last bar makes a full bar" \
                if s.pickup and not s.first_bar else "the section's last bar is a full bar"
            return "bar", f"{why}: it should hold {want} eighths, not {_eighths(filled)}"
        return None
    return "end", f"{tok} is not a token of a tune"


def tie_fits(first: str, second: str, across: bool, mode: str = "maj") -> bool:
    """Can a tie join pitch ``first`` to pitch ``second`` in a tune of ``mode``?  Only when both
    sound the same under the key signature alone: the same token, or two spellings of one pitch
    (``_B`` and ``B`` in minor).  ``^F - F`` is refused even inside a bar: ABC readers disagree
    on whether the accidental carries into a tied note (music21 does not).  ``across`` (the
    tie crosses a bar line) is kept for callers that spell it out."""
    if first == second:
        return True
    a, b = PITCH_RE.match(first), PITCH_RE.match(second)
    if not (a and b) or a.group(2, 3) != b.group(2, 3):
        return False
    signature = _signature(mode)
    return midi_pitch(first, signature) == midi_pitch(second, signature)


@functools.lru_cache(maxsize=16)
def _signature(mode: str) -> dict[str, int]:
    return Key("C", 0, mode if mode in MODES else "maj").signature()


def finish(s: State, durations: Iterable[Fraction], pitch: str = "c",
           limit: int = 400) -> list[str]:
    """A short, always-allowed way from ``s`` to ``</s>``: complete what is open, fill the bar,
    close the section, end.  :class:`toolkit.lm.sampling.constraints.GrammarConstraint` counts
    its length to close every tune within its token budget.

    A deterministic function of the state, so that from every state on its path the rest of the
    path is that state's own closing: following it never makes the way longer.  ``durations``
    are the lengths the vocabulary spells (besides 1); ``pitch`` stands for any note.

    >>> finish(start("M:6/8"), [Fraction(2), Fraction(3)], pitch="c")
    ['c', '3', 'c', '3', '</s>']
    """
    lengths = sorted({Fraction(1), *durations}, reverse=True)
    out: list[str] = []
    while s.kind != "end":
        if len(out) > limit:
            raise RuntimeError(f"finish() found no way to close the tune from {s}")
        tok = closing_step(s, lengths, pitch)
        out.append(tok)
        s = advance(s, tok)
    return out


def closing_step(s: State, lengths: list[Fraction], pitch: str) -> str:
    c, full = s.clock, s.clock.full
    if s.kind == "note" and s.need is not None and s.need != 1:
        return duration_token(s.need)
    if s.kind == "note" and s.need is None:  # give the note a length that fits the goal
        base = c.filled - c.last
        per = s.scale * (1 + (c.tuplet_left if s.tuplet_first else 0))
        goal = full if c.tuplet_left or s.paired else _goal(s, base + s.scale * lengths[-1])
        d = next((x for x in lengths if base + per * x <= goal), lengths[-1])
        if d != 1:
            return duration_token(d)
    if s.kind in ("tie", "broken", "tuplet") or c.tuplet_left > 0:
        return pitch
    if why_not(s, EOS) is None:
        return EOS
    closer = ":|" if (s.repeat or s.ending == 1) else "|]"
    if why_not(s, closer) is None:
        return closer
    if c.filled == full:
        return "|"
    return pitch


def _goal(s: State, least: Fraction) -> Fraction:
    """The length to fill this bar to: the nearest way to close the section, else a full bar."""
    targets = _repeat_target(s) if (s.repeat or s.ending == 1) else _close_target(s)
    return min((t for t in targets if t >= least), default=s.clock.full)


def _eighths(x: Fraction | None) -> str:
    return "?" if x is None else str(x)


def read(tokens: Sequence[str], meter: str, mode: str = "maj"
         ) -> tuple[State, str | None, list[tuple[int, str, str]]]:
    """Run the grammar over body tokens in ``meter`` (``"M:6/8"``) and ``mode`` (``"min"``);
    return the state after them, the last pitch (what a tie must reach) and ``(index, rule,
    reason)`` for every token it would not allow (the reading goes on after one, as best it
    can)."""
    s = start(meter)
    last_pitch: str | None = None
    out: list[tuple[int, str, str]] = []
    for i, tok in enumerate(tokens):
        bad = why_not(s, tok)
        if bad is None and s.kind == "tie" and is_pitch(tok) and last_pitch is not None \
                and not tie_fits(last_pitch, tok, s.tie_across, mode):
            bad = ("tie", f"a tie joins two notes of the same pitch, not {last_pitch} and {tok}")
        if bad is not None:
            out.append((i, *bad))
        if is_pitch(tok):
            last_pitch = tok
        s = advance(s, tok)
    return s, last_pitch, out


def walk(tokens: Sequence[str], meter: str, mode: str = "maj") -> list[tuple[int, str, str]]:
    """The problems :func:`read` finds in a whole tune body (with its ``</s>``), and one more if
    the tune does not end."""
    s, _, out = read(tokens, meter, mode)
    if s.kind != "end":
        out.append((len(tokens), "end", "the tune does not end with </s>"))
    return out
