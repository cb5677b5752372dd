"""Is a tune well formed? The token checker.

Strict: every rule of :mod:`toolkit.music.grammar` (ties, tuplets, broken rhythm, bars with
pickups completed, repeats and endings, a tune that ends on a complete bar), with a reason for
each rule a tune breaks.  It follows the bar lines the tune itself writes: music21 re-bars what
it parses, so it cannot judge bars (:mod:`toolkit.measure.reference` cross-checks the rest).

``Validity.readable`` keeps the older, lenient verdict (every bar as long as the meter, a short
bar allowed at any section boundary, repeats balanced): the corpus was filtered with it, so the
shipped model's data does not change with the strict rules."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from toolkit.music.grammar import walk
from toolkit.music.tokens import (
    ENDINGS,
    EOS,
    UNKNOWN_METER,
    bar_length,
    events,
    is_bar,
    is_pitch,
    tune_body,
)

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
    ties_ok: bool = True            # every tie joins a note to the same pitch at once
    tuplets_ok: bool = True         # (3 then three notes of one length, in one bar
    broken_ok: bool = True          # > and < between two notes of equal length, not chained
    readable: bool = True           # the older lenient verdict (the corpus filter)
    readable_problems: list[str] = field(default_factory=list)  # its reasons alone
    bad_bars: list[int] = field(default_factory=list)  # 0-based numbers of the wrong bars
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.complete and self.headers and self.bars_ok and self.repeats_ok \
            and self.has_notes and self.ties_ok and self.tuplets_ok and self.broken_ok

    @property
    def reason(self) -> str:
        """The first problem, or "" for a valid tune."""
        return self.problems[0] if self.problems else ""


def check_tokens(tokens: Sequence[str]) -> Validity:
    """Check one tune's tokens.

    * complete: the tune ends with ``</s>``;
    * headers: a known meter and mode;
    * bars: every bar lasts exactly one bar of the meter, except that the first bar of a section
      (a pickup) and the last bar of a section (before ``:|``, ``||``, ``|]``, ``::``, an ending
      or the end) may be shorter; no bar may be longer;
    * repeats: no ``|:`` opens while another is open, none is left open at the end, and an
      ending ``[2`` follows an ``[1``;
    * and every rule of :mod:`toolkit.music.grammar` (ties, tuplets, broken rhythm, pickups
      completed by the section's last bar, endings in place, the tune ending on a full bar).

    ``problems`` gives a reason for each broken rule; ``readable`` the lenient verdict alone.

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
    body = tune_body(toks)
    if not any(is_pitch(t) for t in body):
        v.has_notes = False
        v.problems.append("no notes")

    # bar lengths: collect (length, token that closes the bar, token that opened it)
    bars: list[tuple[int, object, str | None, str | None]] = []
    filled, bar_no, opened_by = 0, 0, None
    # an ending mark written without a bar line before it (``G [2 A``) also ends the bar, as
    # ABC readers (music21 among them) take it
    bare_endings = [(i, t) for i, t in enumerate(body)
                    if t in ENDINGS and (i == 0 or not is_bar(body[i - 1]))]
    marks = sorted([(e.index, e) for e in events(body)] + bare_endings, key=lambda m: m[0])
    for index, e in marks:
        if isinstance(e, str):  # a bare ending mark
            if filled:
                bars.append((bar_no, filled, e, opened_by))
                opened_by, filled, bar_no = e, 0, bar_no + 1
        elif e.kind == "bar":
            nxt = body[index + 1] if index + 1 < len(body) else None
            mark = nxt if nxt in ENDINGS else e.token
            if not bars and not filled:  # a bar line before any note ("|: G A ..."): no bar
                opened_by = mark
                continue
            bars.append((bar_no, filled, mark, opened_by))
            opened_by, filled, bar_no = mark, 0, bar_no + 1
        else:
            filled += e.duration
    if filled:
        bars.append((bar_no, filled, EOS, opened_by))
    if full is not None:
        for no, length, closer, opener in bars:
            if length == full:
                continue
            may_be_short = (no == 0 or opener in SECTION_STARTS or opener in ENDINGS
                            or closer in SECTION_ENDS or closer == EOS or closer in ENDINGS
                            or length == 0)
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
    if open_repeat:
        v.repeats_ok = False
        v.problems.append("a |: repeat is never closed")
    v.readable, v.readable_problems = v.ok, list(v.problems)
    if v.headers:
        _strict(v, body + ([EOS] if v.complete else []), meter, mode[2:])
    return v


_FIELD = {"tie": "ties_ok", "tuplet": "tuplets_ok", "broken": "broken_ok", "bar": "bars_ok",
          "repeat": "repeats_ok", "end": "complete"}


def _strict(v: Validity, body: list[str], meter: str, mode: str) -> None:
    """Add the grammar's verdicts: one problem per rule broken (the first place it breaks)."""
    seen = set()
    for index, rule, reason in walk(body, meter, mode):
        if rule in seen:
            continue
        seen.add(rule)
        setattr(v, _FIELD[rule], False)
        text = f"{reason} (token {index + 1} of the body)"
        if text not in v.problems:
            v.problems.append(text)


