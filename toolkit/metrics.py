"""Measuring tunes: is it valid ABC with complete bars?  (More metrics build on this module.)

The validity check works on tokens, so it is fast (thousands of tunes a second) and follows the
bar lines the tune itself writes: music21 re-bars what it parses, so it cannot judge bars.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from toolkit.abc import BOS, ENDINGS, EOS, UNKNOWN_METER, bar_length, events, is_pitch

__all__ = ["Validity", "check_tokens"]

SECTION_ENDS = ("|]", "||", ":|", "::")
SECTION_STARTS = ("|:", "||", "::", ":|", "|]")


@dataclass
class Validity:
    """The result of :func:`check_tokens`: ``ok`` is True when every check passed."""

    complete: bool = True           # ends with </s>
    headers: bool = True            # meter and mode known
    bars_ok: bool = True            # every bar as long as the meter (pickups, section ends aside)
    repeats_ok: bool = True         # |: ... :| balanced, [2 after [1
    has_notes: bool = True
    bad_bars: list[int] = field(default_factory=list)  # 0-based numbers of the wrong bars
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.complete and self.headers and self.bars_ok and self.repeats_ok \
            and self.has_notes


def check_tokens(tokens: Sequence[str]) -> Validity:
    """Check one tune's tokens.

    * complete: the tune ends with ``</s>``;
    * headers: a known meter and mode;
    * bars: every bar lasts exactly one bar of the meter, except that the first bar of a section
      (a pickup) and the last bar of a section (before ``:|``, ``||``, ``|]``, ``::``, an ending
      or the end) may be shorter; no bar may be longer;
    * repeats: no ``|:`` opens while another is open, none is left open at the end, and an
      ending ``[2`` follows an ``[1``.

    >>> check_tokens(['<s>', 'M:2/4', 'K:maj', 'S:?', 'C', 'D', 'E', 'F', '|', 'G', '4', '|]',
    ...               '</s>']).ok
    True
    """
    v = Validity()
    toks = list(tokens)
    if not toks or toks[-1] != EOS:
        v.complete = False
        v.problems.append("the tune does not end with </s>")
    meter = next((t for t in toks[:4] if t.startswith("M:")), UNKNOWN_METER)
    mode = next((t for t in toks[:4] if t.startswith("K:")), "K:?")
    full = bar_length(meter) if meter != UNKNOWN_METER else None
    if full is None or mode == "K:?":
        v.headers = False
        v.problems.append("meter or mode unknown")
    body = [t for t in toks if t not in (BOS, EOS) and t[:2] not in ("M:", "K:", "S:")]
    if not any(is_pitch(t) for t in body):
        v.has_notes = False
        v.problems.append("no notes")

    # bar lengths: collect (length, token that closes the bar, token that opened it)
    bars: list[tuple[int, object, str | None, str | None]] = []
    filled, bar_no, opened_by = 0, 0, None
    evs = list(events(body))
    for e in evs:
        if e.kind == "bar":
            nxt = body[e.index + 1] if e.index + 1 < len(body) else None
            bars.append((bar_no, filled, e.token if nxt not in ENDINGS else nxt, opened_by))
            opened_by, filled, bar_no = e.token, 0, bar_no + 1
        else:
            filled += e.duration
    if filled:
        bars.append((bar_no, filled, EOS, opened_by))
    if full is not None:
        for no, length, closer, opener in bars:
            if length == full:
                continue
            may_be_short = (no == 0 or opener in SECTION_STARTS or closer in SECTION_ENDS
                            or closer == EOS or closer in ENDINGS or length == 0)
            if length > full or not may_be_short:
                v.bad_bars.append(no)
        if v.bad_bars:
            v.bars_ok = False
            v.problems.append(f"{len(v.bad_bars)} bar(s) not as long as {meter[2:]}: "
                              f"bar {', '.join(str(b + 1) for b in v.bad_bars[:5])}")

    open_repeat, had_first_ending = False, False
    for t in body:
        if t == "|:":
            if open_repeat:
                v.repeats_ok = False
                v.problems.append("|: opens a repeat while another is open")
            open_repeat, had_first_ending = True, False
        elif t == ":|":
            open_repeat = False
        elif t == "::":
            open_repeat, had_first_ending = True, False
        elif t == "[1":
            had_first_ending = True
        elif t == "[2" and not had_first_ending:
            v.repeats_ok = False
            v.problems.append("ending [2 without [1")
        elif t in ("|]", "||"):
            had_first_ending = False
    if open_repeat and v.complete:
        v.repeats_ok = False
        v.problems.append("a |: repeat is never closed")
    return v
