"""Constrained decoding: chain steps that remove, before the draw, the tokens that would break a
rule.  :class:`GrammarConstraint` (``S.grammar()``) enforces every rule of a valid tune and
closes it within the budget; :class:`MeterConstraint`, the older and narrower one, only keeps
bars from overflowing.

Meter-constrained decoding: a chain step that keeps bars from running over the meter.

The step knows how much of the current bar each tune has filled (in eighth notes) and removes,
before the draw, every token that would break the bar:

* a duration that would make the note overflow the bar;
* a new note or rest when less than the shortest note fits;
* broken rhythm (``>``, ``<``) when the pair would not fit;
* a plain bar line ``|`` (or ``|:``) before the bar is full — except in the first bar, a pickup;
* when the bar is full: anything but a bar line, an end of section, a tie or the end of the tune.

Section ends (``:|``, ``||``, ``|]``, ``::``) may close a short bar, whether or not a pickup
makes it up, and ties, tuplets, broken rhythm, repeats and the end of the tune are not its
business: ``benchmarks/results/steering.md`` measures how many of its tunes are still invalid.  If
a rule would leave no token at all, the step leaves the row alone (it never removes every
token).

>>> from toolkit import sampling as S, generate, load_model                  # doctest: +SKIP
>>> chain = S.chain(MeterConstraint(), S.temperature(3.0))                   # doctest: +SKIP
>>> tunes = generate(load_model(), n=8, sampler=chain, seed=1)               # doctest: +SKIP
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import torch
from torch import Tensor

from toolkit.lm.barclock import START, advance
from toolkit.lm.sampling.base import Context, Step
from toolkit.music import grammar as G
from toolkit.music.check import SECTION_ENDS
from toolkit.music.tokens import BROKEN, EOS, bar_length, is_duration, is_pitch, parse_duration

__all__ = ["MeterConstraint", "BarState", "meter_constraint", "GrammarConstraint", "grammar"]

SHORTEST = Fraction(1, 4)  # the shortest duration token ("/4") times one eighth


class BarState:
    """How full the current bar is: a :class:`toolkit.barclock.Clock` (the arithmetic the model's
    bar clock uses) plus the bar's full length, and the rule of what may come next.

    ``filled`` counts eighths, including the last note's duration so far; ``last`` is that note's
    length (a duration token multiplies it); ``next_scale()`` is what the next note's length is
    multiplied by (a tuplet, or the second note of a broken-rhythm pair).
    """

    def __init__(self, full: Fraction | None):
        self.full = full
        self.clock = START

    filled = property(lambda self: self.clock.filled)
    last = property(lambda self: self.clock.last)
    after_duration = property(lambda self: self.clock.after_duration)
    bar = property(lambda self: self.clock.bar)

    def next_scale(self) -> Fraction:
        return self.clock.next_scale()

    def push(self, tok: str) -> None:
        self.clock = advance(self.clock, tok)

    def allowed(self, vocab: list[str]) -> list[bool]:
        """Which tokens may come next without breaking the bar."""
        if self.full is None:
            return [True] * len(vocab)
        room = self.full - self.filled
        out = []
        for tok in vocab:
            if is_duration(tok):
                ok = (self.last is not None and not self.after_duration
                      and self.last * (parse_duration(tok) - 1) <= room)
            elif is_pitch(tok) or tok == "z":
                ok = room >= self.next_scale() * SHORTEST and room > 0
                if self.filled > self.full:  # the last note still needs a shortening duration
                    ok = False
            elif tok in BROKEN:
                first, second = BROKEN[tok]
                ok = self.last is not None and self.last * (first - 1) \
                    + self.last * second * SHORTEST <= room
            elif tok in ("|", "|:"):
                ok = self.filled == self.full or (self.bar == 0 and 0 < self.filled < self.full)
            elif tok in SECTION_ENDS or tok == EOS:
                ok = self.filled <= self.full
            elif tok == "-":
                ok = True
            else:  # endings, tuplet marks: only at a sensible place
                ok = room > 0 and self.filled <= self.full
            out.append(ok)
        if self.filled > self.full:  # overflowing: only a duration that shrinks the note helps
            out = [o and is_duration(t) for o, t in zip(out, vocab, strict=True)]
        return out


class MeterConstraint(Step):
    """Remove the tokens that would make a bar longer or shorter than the meter.

    Formula: ``logits[b, v] = −∞`` for every token ``v`` that :class:`BarState` of row ``b``
    does not allow; needs ``ctx.history`` (the tokens so far, with the meter at position 1) and
    ``ctx.vocab``, which :func:`toolkit.generate` provides.  Keeps state between tokens (reset
    by the generator at the start of every batch).
    """

    def __init__(self) -> None:
        self._states: list[BarState] | None = None
        self._vocab: list[str] | None = None
        self._cache: dict[tuple, Tensor] = {}

    def reset(self) -> None:
        self._states = None

    def _start(self, ctx: Context) -> None:
        if ctx is None or ctx.history is None or ctx.vocab is None:
            raise ValueError("MeterConstraint needs ctx.history and ctx.vocab: use it inside "
                             "toolkit.generate(..., sampler=S.chain(MeterConstraint(), ...))")
        self._vocab = list(ctx.vocab)
        self._states = []
        for row in ctx.history.tolist():
            toks = [self._vocab[i] for i in row]
            state = BarState(bar_length(toks[1]) if len(toks) > 1 else None)
            for t in toks[4:]:
                state.push(t)
            self._states.append(state)

    def step(self, logits: Tensor, ctx: Context | None = None) -> Tensor:
        if self._states is None or len(self._states) != logits.shape[0]:
            self._start(ctx)
        masks = []
        for st in self._states:
            key = (st.full, st.filled, st.last, st.after_duration, st.next_scale(), st.bar == 0)
            if key not in self._cache:
                self._cache[key] = torch.tensor(st.allowed(self._vocab), dtype=torch.bool)
            masks.append(self._cache[key])
        allowed = torch.stack(masks).to(logits.device)                     # (B, V)
        allowed &= logits > float("-inf")
        empty = ~allowed.any(dim=-1, keepdim=True)                         # (B, 1) rule kills all
        return logits.masked_fill(~(allowed | empty), float("-inf"))

    def observe(self, tokens: Tensor, probs: Tensor) -> None:
        if self._states is None:
            return
        for st, t in zip(self._states, tokens.tolist(), strict=True):
            st.push(self._vocab[t])

    def __repr__(self) -> str:
        return "MeterConstraint()"


def meter_constraint() -> MeterConstraint:
    """A :class:`MeterConstraint` step for a chain."""
    return MeterConstraint()


# --------------------------------------------------------------------------------------------
# the grammar: every rule of a valid tune, as a per-step mask

_NEVER = 1 << 30  # the cost of a token the grammar forbids
CLOSING_MAX = 40  # no closing is longer (tests/test_grammar.py walks states to check it)


class _GrammarTables:
    """The grammar over one vocabulary: interned states; for each state which tokens it allows
    and, near the end of the budget, the cost of every token (1 + the length of the closing
    after it, or ``_NEVER``).

    Every pitch moves the state the same way (which pitch a tie needs is checked apart), so a
    state is worked out once per token *kind* and its row is cached for good.
    """

    _shared: dict[tuple[str, ...], _GrammarTables] = {}

    @classmethod
    def of(cls, vocab: list[str]) -> _GrammarTables:
        key = tuple(vocab)
        if key not in cls._shared:
            cls._shared[key] = cls(list(vocab))
        return cls._shared[key]

    def __init__(self, vocab: list[str]):
        self.vocab = vocab
        pitches = [t for t in vocab if is_pitch(t)]
        if not pitches or EOS not in vocab:
            raise ValueError("the grammar needs a vocabulary with pitches and </s>")
        self.pitch = pitches[0]
        self.durations = [parse_duration(t) for t in vocab if is_duration(t)]
        self.lengths = sorted({Fraction(1), *self.durations}, reverse=True)
        rep = [self.pitch if is_pitch(t) else t for t in vocab]
        self.kinds = sorted(set(rep))
        kind_of = {k: i for i, k in enumerate(self.kinds)}
        self.kind = [kind_of[r] for r in rep]                       # token id -> kind
        self.members = [[i for i, r in enumerate(rep) if r == k] for k in self.kinds]
        # header tokens, <s> and padding never come inside a tune: no need to ask
        self.live = [k for k, r in enumerate(self.kinds)
                     if not (r in ("<s>", "<pad>") or r[:2] in ("M:", "K:", "S:"))]
        self.states: list[G.State] = []
        self.index: dict[G.State, int] = {}
        self.moves: list[list[int]] = []                             # state -> kind -> state
        # state -> token -> ok; numpy, so rows can be written whether or not torch is in
        # inference mode (generate's) when a state first appears
        self.allowed_rows = np.zeros((256, len(vocab)), dtype=bool)

        self._costs: dict[int, Tensor] = {}
        self._closing: dict[G.State, int] = {}
        self._ties: dict[str, Tensor] = {}

    def closing(self, s: G.State) -> int:
        """Tokens on :func:`toolkit.music.grammar.finish`'s way from ``s`` to ``</s>``."""
        path = []
        lengths = self.lengths
        while s not in self._closing and s.kind != "end":
            path.append(s)
            s = G.advance(s, G.closing_step(s, lengths, self.pitch))
            if len(path) > 400:
                raise RuntimeError(f"the grammar found no way to close the tune from {path[0]}")
        n = self._closing.get(s, 0)
        for st in reversed(path):
            n += 1
            self._closing[st] = n
        if n > CLOSING_MAX:
            raise RuntimeError(f"a closing of {n} tokens is longer than CLOSING_MAX = "
                               f"{CLOSING_MAX}; raise it (from state {path[0]})")
        return n

    def intern(self, s: G.State) -> int:
        sid = self.index.get(s)
        if sid is not None:
            return sid
        sid = self.index[s] = len(self.states)
        self.states.append(s)
        self.moves.append([-1] * len(self.kinds))
        if sid >= self.allowed_rows.shape[0]:  # grow by doubling: rows are written in place
            grown = np.zeros((2 * sid, len(self.vocab)), dtype=bool)
            grown[:sid] = self.allowed_rows
            self.allowed_rows = grown
        row = self.allowed_rows[sid]
        for k in self.live:
            if G.why_not(s, self.kinds[k]) is None:
                row[self.members[k]] = True
        return sid

    def cost_row(self, sid: int) -> Tensor:
        """(V,) the tokens, from this one to ``</s>``, each next token commits the tune to
        (1 + the closing after it), or ``_NEVER``: worked out when the budget runs low."""
        row = self._costs.get(sid)
        if row is None:
            row = torch.full((len(self.vocab),), _NEVER, dtype=torch.int32)
            s = self.states[sid]
            for k in self.live:
                rep = self.kinds[k]
                if G.why_not(s, rep) is None:
                    row[self.members[k]] = 1 + self.closing(G.advance(s, rep))
            self._costs[sid] = row
        return row

    def move(self, sid: int, tok: int) -> int:
        k = self.kind[tok]
        nxt = self.moves[sid][k]
        if nxt < 0:
            nxt = self.moves[sid][k] = self.intern(G.advance(self.states[sid], self.vocab[tok]))
        return nxt

    def allowed(self, sids: list[int], left: int) -> Tensor:
        """(B, V) bool: the tokens rows in states ``sids`` may take with ``left`` tokens left
        (this one included).  Far from the budget every allowed token can still be closed in
        time (a closing is never longer than :data:`CLOSING_MAX`), so only the last stretch
        needs the costs."""
        if left > CLOSING_MAX:
            return torch.from_numpy(self.allowed_rows[sids])
        return torch.stack([self.cost_row(sid) for sid in sids]) <= left

    def ties(self, mode: str) -> Tensor:
        """(V, V) bool: may a tie lead from pitch ``a`` to token ``b`` in ``mode``?"""
        if mode not in self._ties:
            v = self.vocab
            self._ties[mode] = torch.tensor(
                [[is_pitch(a) and is_pitch(b) and G.tie_fits(a, b, False, mode) for b in v]
                 if is_pitch(a) else [True] * len(v) for a in v])
        return self._ties[mode]


class GrammarConstraint(Step):
    """Remove every token that would make the tune invalid ABC, at every step, and close every
    tune within the token budget.

    The rules are :mod:`toolkit.music.grammar`'s (ties, tuplets, broken rhythm, bars and
    pickups, repeats and endings, the end on a complete bar): the same ones
    :func:`toolkit.music.check.check_tokens` judges by, so a tune generated under this step
    passes the checker whatever the logits.  This is how structured generation works in
    language models too: a JSON schema or a grammar is compiled into the same per-step mask.

    Formula: ``logits[b, v] = −∞`` unless token ``v`` is allowed in row ``b``'s state *and*
    the tune can still be closed after it within the budget (``ctx.max_tokens − ctx.step``
    tokens left, this one included).  Incremental: a small immutable state per row, moved by
    one dictionary lookup per token; each new state's mask row is worked out once and cached.
    Needs ``ctx.history``, ``ctx.vocab`` and ``ctx.max_tokens``, which :func:`toolkit.generate`
    gives.  Put it first in a chain (after a guidance step): it must see every token before a
    truncation step removes some.

    >>> from toolkit import sampling as S, generate, load_model                  # doctest: +SKIP
    >>> tunes = generate(load_model(), n=8, sampler=S.chain(S.grammar(), S.temperature(3)))
    ... # doctest: +SKIP
    """

    def __init__(self) -> None:
        self._tables: _GrammarTables | None = None
        self._sids: list[int] | None = None
        self._tie_from: list[int | None] = []
        self._ties: list[Tensor] = []

    def reset(self) -> None:
        self._sids = None

    def _start(self, ctx: Context | None, batch: int) -> None:
        if ctx is None or ctx.history is None or ctx.vocab is None:
            raise ValueError("S.grammar() needs ctx.history and ctx.vocab: use it inside "
                             "toolkit.generate(..., constrain='grammar') or a chain given to "
                             "generate")
        vocab = list(ctx.vocab)
        tables = self._tables = _GrammarTables.of(vocab)
        self._sids, self._tie_from, self._ties = [], [], []
        for row in ctx.history.tolist():
            toks = [vocab[i] for i in row]
            header = [t for t in toks[:4] if t[:2] in ("M:", "K:")]
            meter = next((t for t in header if t.startswith("M:")), "M:?")
            mode = next((t[2:] for t in header if t.startswith("K:")), "maj")
            try:
                G.start(meter)
            except ValueError:
                raise ValueError(f"S.grammar() needs a known meter, got {meter}: give "
                                 "meter='6/8' or leave meter=None for the model to choose") \
                    from None
            s, last_pitch, problems = G.read(toks[4:], meter, mode)
            if problems:
                pos, _, reason = problems[0]
                raise ValueError(f"the opening breaks the grammar at its token {pos + 1} "
                                 f"({toks[4 + pos]!r}): {reason}")
            self._sids.append(tables.intern(s))
            self._tie_from.append(tables.vocab.index(last_pitch) if last_pitch else None)
            self._ties.append(tables.ties(mode if mode in G.MODES else "maj"))
        if len(self._sids) != batch:
            raise ValueError(f"ctx.history has {len(self._sids)} rows but the logits {batch}")

    def allowed(self, ctx: Context | None, batch: int) -> Tensor:
        """(B, V) bool: the tokens the grammar allows next in each row (budget included)."""
        if self._sids is None or len(self._sids) != batch:
            self._start(ctx, batch)
        tables = self._tables
        left = (ctx.max_tokens - ctx.step) if ctx is not None and ctx.max_tokens is not None \
            else _NEVER - 1
        ok = tables.allowed(self._sids, left)                               # (B, V)
        for b, sid in enumerate(self._sids):
            if tables.states[sid].kind == "tie" and self._tie_from[b] is not None:
                ok[b] &= self._ties[b][self._tie_from[b]]
        if not bool(ok.any(dim=-1).all()):
            b = int((~ok.any(dim=-1)).nonzero()[0])
            closing = tables.closing(tables.states[self._sids[b]])
            raise RuntimeError(f"the grammar allows no token in row {b} with {left} tokens "
                               f"left (closing needs {closing}); state: "
                               f"{tables.states[self._sids[b]]}. This is a bug, or max_tokens "
                               f"is too small for a tune: give max_tokens >= {closing}")
        return ok

    def step(self, logits: Tensor, ctx: Context | None = None) -> Tensor:
        ok = self.allowed(ctx, logits.shape[0]).to(logits.device)
        kept = ok & (logits > float("-inf"))
        empty = ~kept.any(dim=-1)
        if bool(empty.any()):
            b = int(empty.nonzero()[0])
            raise ValueError(f"row {b}: every token the grammar allows was already removed "
                             f"before S.grammar() saw the logits (allowed: "
                             f"{[self._tables.vocab[i] for i in ok[b].nonzero().flatten()][:8]}"
                             f"); put S.grammar() first in the chain, before truncation steps")
        return logits.masked_fill(~kept, float("-inf"))

    def observe(self, tokens: Tensor, probs: Tensor) -> None:
        if self._sids is None:
            return
        tables = self._tables
        for b, t in enumerate(tokens.tolist()):
            self._sids[b] = tables.move(self._sids[b], t)
            if is_pitch(tables.vocab[t]):
                self._tie_from[b] = t

    def __repr__(self) -> str:
        return "GrammarConstraint()"


def grammar() -> GrammarConstraint:
    """A :class:`GrammarConstraint` step for a chain: every tune valid, closed within budget."""
    return GrammarConstraint()
