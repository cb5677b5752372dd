"""The transformer: a small decoder-only network beside the LSTM, on the same tokens.

Folk tunes are built from repetition: a phrase comes back, a section is played twice.  An LSTM
must carry a bar it may want to repeat in its state; attention can look back and copy it.

The network (``forward(x, state) -> logits, state``, the interface of :mod:`toolkit.lm.network`):

* **inputs**: the token's embedding, plus an embedding of the **bar clock** (the room left in
  the bar, as the LSTM gets it: :mod:`toolkit.lm.barclock`) and of the **phrase clock** (how many
  bar lines since the last section mark, capped at :data:`PHRASE_MAX`: "the 8th bar of the
  B part");
* **positions**: rotary (RoPE; Su et al. 2021, "RoFormer: Enhanced Transformer with Rotary
  Position Embedding", arXiv:2104.09864).  Rotary positions are relative: the score between two
  tokens depends on how far apart they are, not where the tune started, so "the same place one
  bar / one phrase back" is one pattern at every point of a tune, and tunes longer than any seen
  in training still work.  The two clocks give what token distance cannot: where the beat and
  the phrase stand, which varies with the note lengths;
* ``layers`` pre-norm blocks of causal self-attention and a GELU MLP (Vaswani et al. 2017,
  "Attention is all you need"), then a linear layer over the vocabulary (plus the clock head's
  bias, as in the LSTM).

``attention="softmax"`` is the usual scaled dot-product attention; generating keeps a key/value
cache, so a new token attends to the stored keys instead of re-running the prefix (cost grows
with the length).  ``attention="linear"`` replaces ``softmax(q·k)`` by a kernel feature map
``φ(q)·φ(k)`` with ``φ = elu + 1`` (Katharopoulos et al. 2020, "Transformers are RNNs: fast
autoregressive transformers with linear attention", arXiv:2006.16236): the sums
``S = Σ φ(k) vᵀ`` and ``z = Σ φ(k)`` are a recurrent state of fixed size, so each generated
token costs the same at any length.  Rotary positions rotate the numerator's features only, as
RoFormer §3.4 does for linear attention.  Training computes the same sums in parallel.

>>> from toolkit.lm.transformer import FolkTransformer, TransformerConfig
>>> net = FolkTransformer(TransformerConfig(["<pad>", "<s>", "M:?", "K:?", "S:?", "|", "C",
...                                          "2", "</s>"], dim=16, layers=1, heads=2))
>>> net.next_logits("M:? K:? S:? | C 2").shape
torch.Size([9])
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from toolkit.lm.barclock import N_FEATURES, BarClock
from toolkit.lm.network import Network, perturbed
from toolkit.music.check import SECTION_ENDS, SECTION_STARTS
from toolkit.music.tokens import BARS, ENDINGS

__all__ = ["TransformerConfig", "FolkTransformer", "ATTENTIONS", "PHRASE_MAX"]

ATTENTIONS = ("softmax", "linear")
PHRASE_MAX = 16  # the phrase clock counts 0 .. 16 bar lines since the last section mark


@dataclass
class TransformerConfig:
    """Sizes and parts of the transformer (the shipped one's values are in
    ``toolkit/weights/folk_transformer.json``)."""

    vocab: list[str]
    dim: int = 192
    layers: int = 4
    heads: int = 6
    mlp: int = 4                  # the MLP's width, in multiples of dim
    dropout: float = 0.1
    attention: str = "softmax"    # or "linear"
    bar_clock: bool = True
    clock_head: bool = True
    phrase_clock: bool = True

    def __post_init__(self):
        if self.attention not in ATTENTIONS:
            raise ValueError(f"attention must be one of {ATTENTIONS}, got {self.attention!r}")
        for name in ("dim", "layers", "heads", "mlp"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
        if self.dim % self.heads or (self.dim // self.heads) % 2:
            raise ValueError(f"dim ({self.dim}) must split into {self.heads} heads of an even "
                             "size (rotary positions turn pairs of numbers)")
        if self.clock_head and not self.bar_clock:
            raise ValueError("clock_head=True needs bar_clock=True (the bias reads the clock)")


class PhraseClock:
    """How many bar lines since the last section mark (``|:`` ``:|`` ``::`` ``||`` ``|]`` or an
    ending), capped at :data:`PHRASE_MAX`: for rows of ids at once, in torch.

    A state is ``(bars so far, bars at the last mark)``, one pair of (B,) tensors.

    >>> clock = PhraseClock(["<s>", "|", "|:", "C"])
    >>> clock.run(torch.tensor([[0, 3, 1, 3, 1, 2, 3, 1]]))[0].tolist()
    [[0, 0, 1, 1, 2, 0, 0, 1]]
    """

    def __init__(self, vocab: list[str]):
        marks = set(SECTION_ENDS) | set(SECTION_STARTS) | set(ENDINGS)
        self.is_bar = torch.tensor([t in BARS for t in vocab], dtype=torch.long)
        self.is_mark = torch.tensor([t in marks for t in vocab])

    def to(self, device) -> PhraseClock:
        self.is_bar, self.is_mark = self.is_bar.to(device), self.is_mark.to(device)
        return self

    def run(self, ids: torch.Tensor, state=None):
        if self.is_bar.device != ids.device:
            self.to(ids.device)
        if state is not None and ids.shape[1] == 1:                  # one token: no scans
            bars = state[0] + self.is_bar[ids[:, 0]]
            at_mark = torch.where(self.is_mark[ids[:, 0]], bars, state[1])
            return (bars - at_mark).clamp(max=PHRASE_MAX)[:, None], (bars, at_mark)
        bars = self.is_bar[ids].cumsum(1)                                           # (B, T)
        if state is not None:
            bars = bars + state[0][:, None]
        at_mark = torch.where(self.is_mark[ids], bars, 0).cummax(1).values
        if state is not None:
            at_mark = torch.maximum(at_mark, state[1][:, None])
        return (bars - at_mark).clamp(max=PHRASE_MAX), (bars[:, -1], at_mark[:, -1])


def _rotate(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotary positions: turn each pair (x_i, x_{i+D/2}) by the position's angles; ``cos`` and
    ``sin`` hold each angle twice (``(T, D)``, the same for both halves)."""
    half = x.shape[-1] // 2
    return x * cos + torch.cat((-x[..., half:], x[..., :half]), -1) * sin


class Attention(nn.Module):
    """Causal self-attention, softmax or linear, with its cache (module docstring)."""

    def __init__(self, c: TransformerConfig):
        super().__init__()
        self.heads, self.kind, self.p = c.heads, c.attention, c.dropout
        self.qkv = nn.Linear(c.dim, 3 * c.dim, bias=False)
        self.out = nn.Linear(c.dim, c.dim, bias=False)
        self.room: int | None = None  # positions a new cache holds (FolkTransformer.sized_for)

    def forward(self, x, cos, sin, cache, want_weights: bool = False):
        B, T, E = x.shape
        q, k, v = self.qkv(x).view(B, T, 3, self.heads, E // self.heads).permute(2, 0, 3, 1, 4)
        if self.kind == "softmax":
            qk = _rotate(torch.stack((q, k)), cos, sin)                  # both turned at once
            y, cache, w = self._softmax(qk[0], qk[1], v, cache, want_weights)
        else:
            y, cache, w = self._linear(q, k, v, cos, sin, cache, want_weights)
        return self.out(y.transpose(1, 2).reshape(B, T, E)), cache, w

    def _softmax(self, q, k, v, cache, want_weights):
        T = q.shape[2]
        if cache is None:
            past, kbuf, vbuf = 0, k, v
            if self.room is not None and self.room > T and not self.training:  # generation
                kbuf = k.new_empty(*k.shape[:2], self.room, k.shape[3])
                vbuf = v.new_empty(*v.shape[:2], self.room, v.shape[3])
                kbuf[:, :, :T], vbuf[:, :, :T] = k, v
        else:  # write into the cache's spare room (doubled when full): no copy per token
            kbuf, vbuf, past = cache
            if past + T > kbuf.shape[2]:
                room = max(2 * kbuf.shape[2], past + T)
                spare = (*k.shape[:2], room - past, k.shape[3])
                kbuf = torch.cat((kbuf[:, :, :past], k.new_empty(spare)), 2)
                vbuf = torch.cat((vbuf[:, :, :past], v.new_empty(spare)), 2)
            kbuf[:, :, past:past + T], vbuf[:, :, past:past + T] = k, v
            k, v = kbuf[:, :, :past + T], vbuf[:, :, :past + T]
        cache = (kbuf, vbuf, past + T)
        L = k.shape[2]
        p = self.p if self.training else 0.0
        mask = None if T == 1 else (
            torch.ones(T, L, dtype=torch.bool, device=q.device).tril(past))
        if want_weights or (T == 1 and q.shape[0] > 8):  # many rows: plain matmuls are faster
            scores = (q @ k.transpose(-1, -2)) * (1 / math.sqrt(q.shape[-1]))
            if mask is not None:
                scores = scores.masked_fill(~mask, float("-inf"))
            w = scores.softmax(-1)
            return w @ v, cache, (w if want_weights else None)
        if mask is None or past == 0:
            y = F.scaled_dot_product_attention(q, k, v, is_causal=mask is not None, dropout_p=p)
        else:
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=p)
        return y, cache, None

    def _linear(self, q, k, v, cos, sin, cache, want_weights):
        fq, fk = F.elu(q) + 1, F.elu(k) + 1                      # φ(q), φ(k) > 0
        rq, rk = _rotate(torch.stack((fq, fk)), cos, sin)        # rotated: the numerator's
        if q.shape[2] == 1 and cache is not None and not want_weights:   # the recurrent step
            s, z = cache
            s = s + rk.transpose(-1, -2) @ v                     # (B, H, D, D)
            z = z + fk                                           # (B, H, 1, D)
            num = rq @ s
            den = (fq * z).sum(-1, keepdim=True)
            return num / den, (s, z), None
        T = q.shape[2]
        causal = torch.ones(T, T, dtype=torch.bool, device=q.device).tril()
        a = (rq @ rk.transpose(-1, -2)).masked_fill(~causal, 0.0)        # (B, H, T, T)
        den = (fq @ fk.transpose(-1, -2)).masked_fill(~causal, 0.0).sum(-1, keepdim=True)
        num = a @ v
        s_new = rk.transpose(-1, -2) @ v
        z_new = fk.sum(2, keepdim=True)
        if cache is not None:
            s, z = cache
            num = num + rq @ s
            den = den + (fq * z).sum(-1, keepdim=True)
            s_new, z_new = s + s_new, z + z_new
        y = num / den
        w = a / den if want_weights else None
        if self.training and self.p:
            y = F.dropout(y, self.p)
        return y, (s_new, z_new), w


class Block(nn.Module):
    def __init__(self, c: TransformerConfig):
        super().__init__()
        self.norm1, self.norm2 = nn.LayerNorm(c.dim), nn.LayerNorm(c.dim)
        self.attn = Attention(c)
        self.mlp = nn.Sequential(nn.Linear(c.dim, c.mlp * c.dim), nn.GELU(),
                                 nn.Linear(c.mlp * c.dim, c.dim))
        self.drop = nn.Dropout(c.dropout)

    def forward(self, x, cos, sin, cache, want_weights=False):
        a, cache, w = self.attn(self.norm1(x), cos, sin, cache, want_weights)
        if not self.training:  # generation: no dropout calls at all (they cost time per token)
            x = x + a
            return x + self.mlp(self.norm2(x)), cache, w
        x = x + self.drop(a)
        return x + self.drop(self.mlp(self.norm2(x))), cache, w


class FolkTransformer(Network):
    """Decoder-only transformer over folk-tune tokens (module docstring).

    ``state`` is ``(caches, bar clocks, phrase clock, position)``: one key/value cache (softmax)
    or ``(S, z)`` sums (linear) per layer, and where the clocks stand; pass it back as you got it,
    once: the key/value cache is written in place, so a state cannot be continued twice.
    """

    arch = "transformer"

    def __init__(self, config: TransformerConfig):
        super().__init__(config.vocab, config)
        c = config
        self.embed = nn.Embedding(len(self.vocab), c.dim)
        self.bar_embed = nn.Embedding(N_FEATURES, c.dim) if c.bar_clock else None
        self.clock = BarClock(self.vocab) if c.bar_clock else None
        self.phrase_embed = nn.Embedding(PHRASE_MAX + 1, c.dim) if c.phrase_clock else None
        self.phrase = PhraseClock(self.vocab) if c.phrase_clock else None
        self.drop = nn.Dropout(c.dropout)
        self.blocks = nn.ModuleList(Block(c) for _ in range(c.layers))
        self.norm = nn.LayerNorm(c.dim)
        self.head = nn.Linear(c.dim, len(self.vocab))
        self.clock_bias = nn.Embedding(N_FEATURES, len(self.vocab)) if c.clock_head else None
        self.apply(self._init)
        if self.clock_bias is not None:
            nn.init.zeros_(self.clock_bias.weight)
        self._angles(512)

    @staticmethod
    def _init(m):
        if isinstance(m, (nn.Linear, nn.Embedding)):
            nn.init.normal_(m.weight, std=0.02)
        if isinstance(m, nn.Linear) and m.bias is not None:
            nn.init.zeros_(m.bias)

    def _angles(self, n: int) -> None:
        d = self.config.dim // self.config.heads
        inv = 1.0 / (10000 ** (torch.arange(0, d, 2, dtype=torch.float32) / d))
        ang = torch.arange(n, dtype=torch.float32)[:, None] * inv[None]         # (n, D/2)
        ang = torch.cat((ang, ang), -1)                                         # (n, D)
        device = self.embed.weight.device
        self._cos, self._sin = ang.cos().to(device), ang.sin().to(device)

    def _run(self, x: torch.Tensor, state, want_weights: bool = False):
        B, T = x.shape
        caches, clocks, phrase, pos = state if state is not None else (None, None, None, 0)
        h = self.embed(x)
        feats = None
        if self.clock is not None:
            f, clocks = self.clock.run(x, clocks)
            feats = torch.tensor(f, dtype=torch.long, device=x.device)
            h = h + self.bar_embed(feats)
        if self.phrase is not None:
            p, phrase = self.phrase.run(x, phrase)
            h = h + self.phrase_embed(p)
        if pos + T > self._cos.shape[0] or self._cos.device != x.device:
            self._angles(max(2 * (pos + T), 512))
        cos, sin = self._cos[pos:pos + T], self._sin[pos:pos + T]
        if self.training:
            h = self.drop(h)
        new, weights = [], []
        for i, block in enumerate(self.blocks):
            h, cache, w = block(h, cos, sin, None if caches is None else caches[i], want_weights)
            new.append(cache)
            weights.append(w)
        logits = self.head(self.norm(h))
        if self.clock_bias is not None:
            logits = logits + self.clock_bias(feats)
        return perturbed(logits), (new, clocks, phrase, pos + T), weights

    def forward(self, x: torch.Tensor, state=None):
        logits, state, _ = self._run(x, state)
        return logits, state                                                    # (B, T, V)

    @contextlib.contextmanager
    def sized_for(self, positions: int):
        """New key/value caches hold ``positions`` tokens from the start (softmax attention):
        a batch then peaks at the cache it needs, not at a doubled one plus the copy it was
        doubled from (``benchmarks/bench_memory.py --part parts`` measures both).  Only the
        making of a cache reads the room, so generations that overlap (threads) each keep the
        cache they made; the room is cleared when any of them ends."""
        for block in self.blocks:
            block.attn.room = positions
        try:
            yield
        finally:
            for block in self.blocks:
                block.attn.room = None

    def step(self, tokens: torch.Tensor, state=None):
        """One token per row, no dropout: ``tokens (B,) -> logits (B, V), state``."""
        logits, state, _ = self._run(tokens[:, None], state)
        return logits[:, 0], state

    @torch.no_grad()
    def attention_along(self, tokens: list[str]) -> torch.Tensor:
        """Attention weights over a whole tune: ``(layers, heads, T, T)``; row i says how much
        the network, writing the token after position i, looks at each position j ≤ i.

        ``tokens`` start with ``<s>`` (added when missing, and then left out of the result).
        Linear attention's weights are its kernel scores with rotary positions, over the
        unrotated normaliser: their rows need not sum to one, and can hold small negative values.
        """
        from toolkit.music.tokens import BOS

        toks = list(tokens)
        lead = 0 if toks and toks[0] == BOS else 1
        was = self.training
        self.eval()
        _, _, weights = self._run(self.token_ids([BOS] * lead + toks)[None], None, True)
        self.train(was)
        return torch.stack([w[0] for w in weights])[:, :, lead:, lead:]
