"""Measuring tunes: validity, musical statistics, repetition, diversity, memorisation, surprisal.

Every metric works on tokens, so it is fast (thousands of tunes a second).  The validity check
follows the bar lines the tune itself writes: music21 re-bars what it parses, so it cannot judge
bars.  The musical statistics follow MusPy's definitions (Dong et al., 2020); each docstring
gives the formula.  Folk tunes repeat on purpose: always read a tune's repetition beside the
corpus's own level.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from fractions import Fraction

from toolkit.abc import _ACCIDENTALS as ACCIDENTALS  # accidental text -> semitones
from toolkit.abc import (
    BOS,
    ENDINGS,
    EOS,
    MODES,
    PITCH_RE,
    UNKNOWN_METER,
    Key,
    bar_length,
    events,
    is_bar,
    is_duration,
    is_pitch,
    midi_pitch,
    parse_key,
)

__all__ = [
    "Validity", "check_tokens", "Note", "notes_of", "INSTRUMENTS", "pitch_range",
    "n_pitches_used", "n_pitch_classes_used", "pitch_class_entropy", "scale_consistency",
    "groove_consistency", "empty_beat_rate", "fits_instrument", "repeated_bars",
    "repeated_ngrams", "distinct_n", "mean_pairwise_similarity", "Memorisation",
    "surprisal_bits", "tune_surprisal", "score_tokens", "tune_metrics", "batch_metrics",
]

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
    body = _body(toks)
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
    return v


# --------------------------------------------------------------------------------------------
# notes: pitches and onsets read from tokens

@dataclass(frozen=True)
class Note:
    """A sounding note: MIDI ``pitch``; ``onset`` and ``duration`` in quarter notes; 0-based bar."""

    pitch: int
    onset: float
    duration: float
    bar: int


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
    body = _body(tokens)
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
    semis = {"C": 0, "D": 2, "E": 4, "F": 5, "G": 7, "A": 9, "B": 11}[k.letter] + k.alter
    steps = "CDEFGAB".index(k.letter)
    return semis - 12 if steps > 3 else semis


# --------------------------------------------------------------------------------------------
# musical statistics (MusPy's definitions)

INSTRUMENTS = {  # playable MIDI range (inclusive)
    "fiddle": (55, 93),        # G3 .. A6, first to fourth position
    "tin whistle": (74, 95),   # D whistle: D5 .. B6 (two octaves)
    "voice": (57, 79),         # A3 .. G5, a comfortable untrained range
}
_MAJOR = (0, 2, 4, 5, 7, 9, 11)
_MINOR = (0, 2, 3, 5, 7, 8, 10)


def pitch_range(notes: Sequence[Note]) -> int:
    """Highest minus lowest MIDI pitch, in semitones (0 for no notes)."""
    return max(n.pitch for n in notes) - min(n.pitch for n in notes) if notes else 0


def n_pitches_used(notes: Sequence[Note]) -> int:
    """Number of different pitches."""
    return len({n.pitch for n in notes})


def n_pitch_classes_used(notes: Sequence[Note]) -> int:
    """Number of different pitch classes (C, C#, ... B)."""
    return len({n.pitch % 12 for n in notes})


def pitch_class_entropy(notes: Sequence[Note]) -> float:
    """Entropy in bits of the 12-bin pitch-class histogram (note counts): 0 .. log2(12) ≈ 3.58."""
    if not notes:
        return 0.0
    counts = [0] * 12
    for n in notes:
        counts[n.pitch % 12] += 1
    total = len(notes)
    return -sum(c / total * math.log2(c / total) for c in counts if c)


def scale_consistency(notes: Sequence[Note]) -> float:
    """Largest fraction of notes that lie in one of the 24 major and minor scales."""
    if not notes:
        return 0.0
    best = 0
    for tonic in range(12):
        for scale in (_MAJOR, _MINOR):
            pcs = {(tonic + s) % 12 for s in scale}
            best = max(best, sum(n.pitch % 12 in pcs for n in notes))
    return best / len(notes)


def groove_consistency(notes: Sequence[Note], bar_quarters: float, resolution: int = 12) -> float:
    """1 − mean Hamming distance between the onset patterns of neighbouring bars.

    Each bar becomes a binary vector of ``resolution`` slots per quarter note (1 = an onset);
    distances are normalised by the vector length, as in MusPy.
    """
    size = max(1, round(bar_quarters * resolution))
    n_bars = max((n.bar for n in notes), default=-1) + 1
    if n_bars < 2:
        return 1.0
    patterns = [[0] * size for _ in range(n_bars)]
    starts: dict[int, float] = {}
    for n in notes:
        starts.setdefault(n.bar, n.onset)
    for n in notes:
        slot = round((n.onset - starts[n.bar]) * resolution)
        if 0 <= slot < size:
            patterns[n.bar][slot] = 1
    dist = [sum(a != b for a, b in zip(p, q, strict=True)) / size
            for p, q in zip(patterns, patterns[1:], strict=False)]
    return 1 - sum(dist) / len(dist)


def empty_beat_rate(notes: Sequence[Note]) -> float:
    """Share of quarter-note beats in which no note starts (MusPy's definition)."""
    if not notes:
        return 1.0
    end = max(n.onset + n.duration for n in notes)
    n_beats = max(1, math.ceil(end - 1e-9))
    busy = {int(n.onset) for n in notes}
    return 1 - len(busy) / n_beats


def fits_instrument(notes: Sequence[Note], instrument: str = "fiddle") -> bool:
    """True when every note lies in the instrument's range (see ``INSTRUMENTS``)."""
    if instrument not in INSTRUMENTS:
        raise ValueError(f"instrument must be one of {sorted(INSTRUMENTS)}, got {instrument!r}")
    lo, hi = INSTRUMENTS[instrument]
    return all(lo <= n.pitch <= hi for n in notes)


# --------------------------------------------------------------------------------------------
# repetition inside a tune, diversity across tunes

def _body(tokens: Sequence[str]) -> list[str]:
    return [t for t in tokens if t not in (BOS, EOS) and t[:2] not in ("M:", "K:", "S:")]


def repeated_bars(tokens: Sequence[str]) -> float:
    """Share of bars (with notes) whose exact tokens already appeared in an earlier bar."""
    bars, cur = [], []
    for t in _body(tokens):
        if is_bar(t):
            if any(is_pitch(x) for x in cur):
                bars.append(tuple(cur))
            cur = []
        elif t not in ENDINGS:
            cur.append(t)
    if any(is_pitch(x) for x in cur):
        bars.append(tuple(cur))
    if not bars:
        return 0.0
    seen, rep = set(), 0
    for b in bars:
        rep += b in seen
        seen.add(b)
    return rep / len(bars)


def _ngrams(seq: Sequence[str], n: int) -> list[tuple[str, ...]]:
    return [tuple(seq[i:i + n]) for i in range(len(seq) - n + 1)]


def repeated_ngrams(tokens: Sequence[str], n: int = 4) -> float:
    """Share of the tune's pitch ``n``-grams that occur more than once in it."""
    pitches = [t for t in tokens if is_pitch(t)]
    grams = _ngrams(pitches, n)
    if not grams:
        return 0.0
    counts = Counter(grams)
    return sum(c for c in counts.values() if c > 1) / len(grams)


def distinct_n(batch: Sequence[Sequence[str]], n: int = 4) -> float:
    """Distinct-n: unique body-token ``n``-grams over all ``n``-grams of a batch (0..1)."""
    grams = [g for toks in batch for g in _ngrams(_body(toks), n)]
    return len(set(grams)) / len(grams) if grams else 0.0


def mean_pairwise_similarity(batch: Sequence[Sequence[str]], n: int = 4) -> float:
    """Mean Jaccard similarity of the tunes' pitch ``n``-gram sets over all pairs (0..1)."""
    sets = [set(_ngrams([t for t in toks if is_pitch(t)], n)) for toks in batch]
    pairs = [(a, b) for i, a in enumerate(sets) for b in sets[i + 1:]]
    if not pairs:
        return 0.0
    return sum(len(a & b) / len(a | b) if a | b else 1.0 for a, b in pairs) / len(pairs)


# --------------------------------------------------------------------------------------------
# memorisation

class Memorisation:
    """The nearest training tune of a generated tune, and how much of it the tune copies.

    ``copied`` is the share of the tune's body-token ``n``-grams (default 8: about two bars) that
    also occur in that one training tune; 1.0 means every stretch of the tune is in it.
    """

    def __init__(self, records: Sequence[dict], n: int = 8):
        self.n = n
        self.sources = [r.get("source", str(i)) for i, r in enumerate(records)]
        self.index: dict[tuple, list[int]] = {}
        for i, r in enumerate(records):
            for g in set(_ngrams(_body(r["tokens"]), n)):
                self.index.setdefault(g, []).append(i)

    def nearest(self, tokens: Sequence[str]) -> tuple[str | None, float]:
        grams = set(_ngrams(_body(tokens), self.n))
        if not grams:
            return None, 0.0
        hits: Counter = Counter()
        for g in grams:
            hits.update(self.index.get(g, ()))
        if not hits:
            return None, 0.0
        best, count = hits.most_common(1)[0]
        return self.sources[best], count / len(grams)


# --------------------------------------------------------------------------------------------
# surprisal

def surprisal_bits(logprobs: Sequence[float | None]) -> list[float]:
    """Per-token surprisal −log2 p from natural-log probabilities (None entries skipped)."""
    return [-lp / math.log(2) for lp in logprobs if lp is not None]


def tune_surprisal(logprobs: Sequence[float | None]) -> float:
    """Mean surprisal of a tune in bits per token (the tokens the model chose)."""
    s = surprisal_bits(logprobs)
    return sum(s) / len(s) if s else 0.0


def score_tokens(model, tokens: Sequence[str]) -> list[float]:
    """Surprisal in bits of each token after the first under ``model`` (any tune at all)."""
    import torch

    with torch.no_grad():
        ids = model.token_ids(list(tokens))
        logits, _ = model(ids[None, :-1])
        logp = torch.log_softmax(logits[0], -1).gather(1, ids[1:, None])[:, 0]
    return (-logp / math.log(2)).tolist()


# --------------------------------------------------------------------------------------------
# everything about one tune, and about a batch

def tune_metrics(tokens: Sequence[str], key: str = "D") -> dict:
    """Every per-tune metric in one flat dict (for tables and sweeps)."""
    v = check_tokens(tokens)
    notes = notes_of(tokens, key)
    meter = next((t for t in tokens[:4] if t.startswith("M:")), UNKNOWN_METER)
    bar = bar_length(meter) if meter != UNKNOWN_METER else None
    return {
        "valid": v.ok, "bars_ok": v.bars_ok, "repeats_ok": v.repeats_ok, "complete": v.complete,
        "n_notes": len(notes), "n_bars": max((n.bar for n in notes), default=-1) + 1,
        "pitch_range": pitch_range(notes), "n_pitches_used": n_pitches_used(notes),
        "n_pitch_classes_used": n_pitch_classes_used(notes),
        "pitch_class_entropy": pitch_class_entropy(notes),
        "scale_consistency": scale_consistency(notes),
        "groove_consistency": groove_consistency(notes, float(bar) / 2 if bar else 2.0),
        "empty_beat_rate": empty_beat_rate(notes),
        "repeated_bars": repeated_bars(tokens), "repeated_4grams": repeated_ngrams(tokens, 4),
        "fits_fiddle": fits_instrument(notes, "fiddle"),
    }


def batch_metrics(token_lists: Sequence[Sequence[str]], key: str = "D",
                  memorisation: Memorisation | None = None) -> dict:
    """Means of :func:`tune_metrics` over a batch, plus its diversity (and memorisation)."""
    rows = [tune_metrics(t, key) for t in token_lists]
    out = {k: sum(float(r[k]) for r in rows) / len(rows) for k in rows[0]} if rows else {}
    out["distinct_4"] = distinct_n(token_lists, 4)
    out["pairwise_similarity"] = mean_pairwise_similarity(token_lists, 4)
    if memorisation is not None:
        copied = [memorisation.nearest(t)[1] for t in token_lists]
        out["copied_from_nearest"] = sum(copied) / len(copied) if copied else 0.0
    return out
