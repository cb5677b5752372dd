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

from toolkit.music.check import Validity, check_tokens
from toolkit.music.notes import Note, notes_of
from toolkit.music.tokens import (
    ENDINGS,
    EOS,
    UNKNOWN_METER,
    bar_length,
    is_bar,
    is_pitch,
    tune_body,
)

__all__ = [
    "Validity", "check_tokens", "Note", "notes_of", "INSTRUMENTS", "pitch_range",
    "n_pitches_used", "n_pitch_classes_used", "pitch_class_entropy", "scale_consistency",
    "groove_consistency", "empty_beat_rate", "fits_instrument", "repeated_bars",
    "repeated_ngrams", "form", "repeats_a_section", "distinct_n", "mean_pairwise_similarity",
    "Memorisation",
    "surprisal_bits", "tune_surprisal", "score_tokens", "repeat_copy_probabilities",
    "tune_metrics", "batch_metrics",
]

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

def _bar_spans(tokens: Sequence[str]) -> list[tuple[tuple[str, ...], int, int]]:
    """Each bar with notes: (its tokens, endings left out; where it starts; where it ends)."""
    spans, cur, start = [], [], None
    for i, t in enumerate(tokens):
        if i < 4:                                    # <s> and the conditioning
            continue
        if is_bar(t) or t == EOS:
            if any(is_pitch(x) for x in cur):
                spans.append((tuple(cur), start, i))
            cur, start = [], None
        elif t not in ENDINGS:
            start = i if start is None else start
            cur.append(t)
    return spans


def repeated_bars(tokens: Sequence[str]) -> float:
    """Share of bars (with notes) whose exact tokens already appeared in an earlier bar."""
    spans = _bar_spans(tokens)
    seen, rep = set(), 0
    for bar, _, _ in spans:
        rep += bar in seen
        seen.add(bar)
    return rep / len(spans) if spans else 0.0


#: two sections are the same part of the form when at least this share of their bars, compared
#: position by position (over the longer one), are the same tokens
SAME_SECTION = 0.5
#: a stretch between section marks shorter than this many bars (a pickup, a second ending) is no
#: section of its own
MIN_SECTION_BARS = 2


def _sections(tokens: Sequence[str]) -> list[tuple[tuple[tuple[str, ...], ...], bool]]:
    """The tune's sections in order, as ``(bars, played twice)``: split at ``|:`` ``:|`` ``::``
    ``||`` ``|]``; a section that ends with ``:|`` or ``::`` is played twice."""
    sections, bars, cur = [], [], []

    def close(repeated: bool) -> None:
        if len(bars) >= MIN_SECTION_BARS:
            sections.append((tuple(bars), repeated))
        bars.clear()

    for t in tune_body(tokens):
        if is_bar(t):
            if any(is_pitch(x) for x in cur):
                bars.append(tuple(cur))
            cur = []
            if t in (":|", "::"):
                close(True)
            elif t in ("|:", "||", "|]"):
                close(False)
        elif t not in ENDINGS:
            cur.append(t)
    if any(is_pitch(x) for x in cur):
        bars.append(tuple(cur))
    close(False)
    return sections


def _same_section(a: tuple, b: tuple) -> bool:
    same = sum(x == y for x, y in zip(a, b, strict=False))
    return same >= SAME_SECTION * max(len(a), len(b))


def form(tokens: Sequence[str]) -> str:
    """The tune's form as it is played, one letter per section: ``"AABB"`` for two repeated
    sections, ``"AB"`` for two different ones, ``"ABA"`` when the first comes back written out.

    Sections are split at repeat signs and double bars (:data:`MIN_SECTION_BARS` bars at least);
    a later section gets an earlier letter when it is the same part (:data:`SAME_SECTION`).

    >>> form("<s> M:2/4 K:maj S:? |: C D | E F :| |: G A | B c :| </s>".split())
    'AABB'
    >>> form("<s> M:2/4 K:maj S:? C D | E F || G A | B c || C D | E G |] </s>".split())
    'ABA'
    """
    seen: list[tuple] = []
    letters = []
    for bars, repeated in _sections(tokens):
        index = next((i for i, s in enumerate(seen) if _same_section(s, bars)), None)
        if index is None:
            seen.append(bars)
            index = len(seen) - 1
        letters += [chr(ord("A") + index % 26)] * (2 if repeated else 1)
    return "".join(letters)


def repeats_a_section(tokens: Sequence[str]) -> bool:
    """Whether some section of the tune is played more than once (by a repeat sign or written
    out again): the form measure, e.g. true for ``AABB`` and ``ABA``, false for ``AB``."""
    letters = form(tokens)
    return len(set(letters)) < len(letters)


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
    grams = [g for toks in batch for g in _ngrams(tune_body(toks), n)]
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
            for g in set(_ngrams(tune_body(r["tokens"]), n)):
                self.index.setdefault(g, []).append(i)

    def nearest(self, tokens: Sequence[str]) -> tuple[str | None, float]:
        grams = set(_ngrams(tune_body(tokens), self.n))
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


def repeat_copy_probabilities(model, tokens: Sequence[str]) -> list[float]:
    """For each bar of a real tune that repeats an earlier bar exactly: the probability that the
    model, given the tune up to that bar, writes the whole bar again, token by token (the
    product of its tokens' probabilities; what sampling at T = 1 would copy).

    The gap between a model's share of repeated bars and the corpus's comes from here: a tune
    sampled at T = 1 repeats a bar exactly only as often as the model dares to copy it.
    """
    import torch

    spans = _bar_spans(tokens)
    seen: set = set()
    wanted = []
    for bar, start, end in spans:
        if bar in seen:
            wanted.append((start, end))
        seen.add(bar)
    if not wanted:
        return []
    with torch.no_grad():
        ids = model.token_ids(list(tokens))
        logits, _ = model(ids[None, :-1])
        logp = torch.log_softmax(logits[0].float(), -1).gather(1, ids[1:, None])[:, 0]
    return [math.exp(float(logp[start - 1:end - 1].sum())) for start, end in wanted]


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
        "repeats_a_section": repeats_a_section(tokens),
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
