"""What a network must be for the rest of the toolkit: the interface both models follow.

``generate``, every sampler step, ``explain``, the metrics, the sweeps, the studios, the widgets
and the CLI talk to a network only through what :class:`Network` lists, so the LSTM
(:mod:`toolkit.lm.model`), the transformer (:mod:`toolkit.lm.transformer`) and a student's own
network are interchangeable.  A network must have

* ``vocab`` (list of token strings, ``<pad>`` first) and ``stoi`` (token -> id);
* ``config`` (a dataclass: everything needed to rebuild it; saved beside the weights) and
  ``info`` (a dict of model-card facts, ``{}`` for a fresh network);
* ``forward(x, state=None) -> (logits, state)`` with ``x`` a LongTensor ``(B, T)`` and logits
  ``(B, T, V)``: the next-token logits after each position.  ``state`` is whatever the network
  needs to go on from there (an LSTM's hidden state, a transformer's key/value cache); callers
  pass it back as they got it and never look inside;
* ``step(tokens, state) -> (logits, state)``: one token per row ``(B,)``, logits ``(B, V)``,
  no dropout; generation calls it once per token, so it must not re-run the prefix.

Subclassing :class:`Network` gives the rest (``token_ids``, ``conditioning``, ``choices``,
``next_logits``, ``logits_along``, ``num_parameters``...) from those.

>>> class Uniform(Network):                       # the smallest network that follows it
...     arch = "uniform"
...     def __init__(self, vocab):
...         super().__init__(vocab, config=None)
...         self.bias = torch.nn.Parameter(torch.zeros(len(vocab)))
...     def forward(self, x, state=None):
...         return self.bias.expand(*x.shape, -1), state
...     def step(self, tokens, state=None):
...         return self.bias.expand(len(tokens), -1), state
>>> Uniform(["<pad>", "<s>", "M:?", "K:?", "S:?", "C", "</s>"]).next_logits("M:? K:? S:?").shape
torch.Size([7])
"""

from __future__ import annotations

import contextlib
import difflib
import os

import torch
from torch import nn

from toolkit.music.tokens import (
    BOS,
    SLOTS,
    UNKNOWN_METER,
    UNKNOWN_MODE,
    UNKNOWN_STYLE,
    UnknownTokenError,
    is_pitch,
    midi_pitch,
)

__all__ = ["Network", "PAD", "PERTURB", "perturbed"]

PAD = "<pad>"
#: Test-only switch: ``FOLK_SAMPLER_PERTURB_LOGITS=1e-6`` adds a deterministic wobble of that size
#: to every logit (``eps · sin(10⁴ · logit)``), as another machine's float rounding would. CI
#: runs the notebook checks a second time with it, so a checked output that depends on rounding
#: fails there instead of on a teacher's laptop. Never set it for real use.
PERTURB = float(os.environ.get("FOLK_SAMPLER_PERTURB_LOGITS") or 0.0)


def perturbed(logits: torch.Tensor) -> torch.Tensor:
    """The logits with the test-only wobble of :data:`PERTURB` (unchanged when it is 0)."""
    return logits + PERTURB * torch.sin(logits * 1e4) if PERTURB else logits


class Network(nn.Module):
    """The interface (module docstring) and what follows from it.  ``arch`` names the kind
    (``"lstm"``, ``"transformer"``); :func:`toolkit.lm.model.load_model` reads it back."""

    arch = "network"

    def __init__(self, vocab: list[str], config=None):
        super().__init__()
        self.config = config
        self.vocab = list(vocab)
        self.stoi = {t: i for i, t in enumerate(self.vocab)}
        self.info: dict = {}  # provenance and metrics read from the weights' JSON (model card)

    def forward(self, x: torch.Tensor, state=None):  # pragma: no cover - the interface
        raise NotImplementedError

    def step(self, tokens: torch.Tensor, state=None):  # pragma: no cover - the interface
        raise NotImplementedError

    def sized_for(self, positions: int) -> contextlib.AbstractContextManager:
        """A context in which the states made hold up to ``positions`` tokens: generation knows
        how long its tunes can get, so a network whose state grows with every token (the
        transformer's key/value cache) sizes it once instead of doubling it as it fills.  A
        state of fixed size (the LSTM's) has nothing to do."""
        return contextlib.nullcontext()

    @property
    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())

    @property
    def vocab_size(self) -> int:
        return len(self.vocab)

    def token_ids(self, tokens: list[str]) -> torch.Tensor:
        """Tokens -> ids (LongTensor), with a clear error naming an unknown token and its place."""
        ids = []
        for pos, tok in enumerate(tokens):
            if tok not in self.stoi:
                raise UnknownTokenError(tok, pos, self.nearest_token(tok))
            ids.append(self.stoi[tok])
        return torch.tensor(ids, dtype=torch.long)

    def nearest_token(self, token: str) -> str | None:
        """The known token closest to an unknown one: for a pitch, the nearest known pitch."""
        if is_pitch(token):
            target = midi_pitch(token, {})
            pitches = [t for t in self.vocab if is_pitch(t)]
            return min(pitches, key=lambda t: (abs(midi_pitch(t, {}) - target), len(t)))
        close = difflib.get_close_matches(token, [t for t in self.vocab if t != PAD], n=1,
                                          cutoff=0.3)
        return close[0] if close else None

    def conditioning(self, meter: str | None = None, mode: str | None = None,
                     style: str | None = None) -> list[str]:
        """The tune's opening tokens ``<s> M:.. K:.. S:..``; None means "unknown" (unconditional).

        Raises ValueError naming the argument and the values the model knows.
        """
        out = [BOS]
        for name, prefix, value, unknown in (("meter", "M:", meter, UNKNOWN_METER),
                                             ("mode", "K:", mode, UNKNOWN_MODE),
                                             ("style", "S:", style, UNKNOWN_STYLE)):
            if value is None:
                out.append(unknown)
                continue
            tok = prefix + str(value)
            if tok not in self.stoi or tok == unknown:
                raise ValueError(f"{name} must be one of {self.choices(name)}, got {value!r}")
            out.append(tok)
        return out

    def choices(self, name: str) -> list[str]:
        """The values the model knows for ``meter``, ``mode`` or ``style`` (from the data)."""
        prefix = SLOTS[name]
        return [t[2:] for t in self.vocab if t.startswith(prefix) and not t.endswith("?")]

    @torch.no_grad()
    def next_logits(self, prefix: str | list[str]) -> torch.Tensor:
        """Logits (V,) of the next token after ``prefix`` (a token list or space-separated text).

        The prefix may start with its conditioning (``"M:6/8 K:maj S:irish |: G A"``); ``<s>``
        is added when missing.
        """
        tokens = prefix.split() if isinstance(prefix, str) else list(prefix)
        if not tokens or tokens[0] != BOS:
            tokens = [BOS, *tokens]
        was_training = self.training
        self.eval()
        logits, _ = self(self.token_ids(tokens)[None])
        self.train(was_training)
        return logits[0, -1]

    @torch.no_grad()
    def logits_along(self, tokens: list[str]) -> torch.Tensor:
        """The next-token logits after every prefix of a tune, in one pass: (T, V).

        Row ``n - 1`` holds the logits after ``tokens[:n]``, the same as
        ``next_logits(tokens[:n])`` (up to float rounding), for every n from 1 to T. One
        forward pass over the whole tune instead of T: use it to scan a tune.
        """
        toks = list(tokens)
        lead = 0 if toks and toks[0] == BOS else 1                   # next_logits adds <s>
        ids = self.token_ids([BOS] * lead + toks)
        was_training = self.training
        self.eval()
        logits, _ = self(ids[None])                                  # (1, T + lead, V)
        self.train(was_training)
        return logits[0, lead:]
