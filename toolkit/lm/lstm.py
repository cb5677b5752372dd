"""The LSTM: embedding (+ bar clock) -> LSTM layers -> linear over the vocabulary.

The shipped LSTM has 1,114,135 parameters (``load_model("lstm").num_parameters``), in the
folk-rnn lineage (Sturm et al. 2016, "Music transcription modelling and composition using deep
learning").  It follows the interface of :mod:`toolkit.lm.network`.

>>> from toolkit.lm.model import load_model
>>> model = load_model()                                   # doctest: +SKIP
>>> model.next_logits("M:6/8 K:maj S:irish |: G A").shape  # doctest: +SKIP
torch.Size([117])
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from toolkit.lm.barclock import N_FEATURES, BarClock
from toolkit.lm.network import Network, perturbed

__all__ = ["ModelConfig", "FolkLSTM"]


@dataclass
class ModelConfig:
    """Sizes and parts of the network.  The defaults describe a plain network without the bar
    clock (so older weights files, which do not name the newer parts, load as they were); the
    shipped model's own values are in ``toolkit/weights/folk_lstm.json``."""

    vocab: list[str]
    emb: int = 128
    hidden: int = 384
    layers: int = 2
    dropout: float = 0.2
    bar_clock: bool = False  # also read how full the current bar is (toolkit.lm.barclock)
    clock_head: bool = False  # the bar clock also adds a learnt bias to every output logit


class FolkLSTM(Network):
    """Embedding -> LSTM -> linear.  ``forward(x (B, T)) -> logits (B, T, V), state``.

    With ``config.bar_clock`` the input at every position is the token's embedding plus an
    embedding of the bar clock (how much of the current bar the tokens so far fill, in twelfths
    of an eighth; :mod:`toolkit.lm.barclock`), so the network need not count durations itself.
    ``state`` is then ``(lstm_state, clock_states)``; callers pass it back as they got it.
    With ``config.clock_head`` as well, the clock also reaches the output directly: one learnt
    bias per clock value and token is added to the logits (for example, "with no room left in
    the bar, a duration token is unlikely"), which the LSTM would otherwise have to carry.
    """

    arch = "lstm"

    def __init__(self, config: ModelConfig):
        super().__init__(config.vocab, config)
        self.embed = nn.Embedding(len(self.vocab), config.emb)
        self.lstm = nn.LSTM(config.emb, config.hidden, config.layers, batch_first=True,
                            dropout=config.dropout if config.layers > 1 else 0.0)
        self.bar_embed = nn.Embedding(N_FEATURES, config.emb) if config.bar_clock else None
        self.clock = BarClock(self.vocab) if config.bar_clock else None
        self.clock_bias = None
        if config.clock_head:
            if not config.bar_clock:
                raise ValueError("clock_head=True needs bar_clock=True (the bias reads the clock)")
            self.clock_bias = nn.Embedding(N_FEATURES, len(self.vocab))
            nn.init.zeros_(self.clock_bias.weight)
        self.drop = nn.Dropout(config.dropout)
        self.head = nn.Linear(config.hidden, len(self.vocab))

    def _inputs(self, x: torch.Tensor, state):
        """Token (+ bar clock) embeddings ``(B, T, E)``, the LSTM state, the clock states and
        the clock features ``(B, T)`` (None without a clock)."""
        h = self.embed(x)                                            # (B, T, E)
        if self.clock is None:
            return h, state, None, None
        lstm_state, clocks = state if state is not None else (None, None)
        feats, clocks = self.clock.run(x, clocks)
        feats = torch.tensor(feats, dtype=torch.long, device=x.device)
        return h + self.bar_embed(feats), lstm_state, clocks, feats

    def _logits(self, h: torch.Tensor, feats: torch.Tensor | None) -> torch.Tensor:
        logits = self.head(h)
        logits = logits if self.clock_bias is None else logits + self.clock_bias(feats)
        return perturbed(logits)  # test-only: another machine's float rounding, imitated

    def forward(self, x: torch.Tensor, state=None):
        h, lstm_state, clocks, feats = self._inputs(x, state)
        h, lstm_state = self.lstm(self.drop(h), lstm_state)          # (B, T, H)
        state = lstm_state if clocks is None else (lstm_state, clocks)
        return self._logits(self.drop(h), feats), state              # (B, T, V)

    def step(self, tokens: torch.Tensor, state=None):
        """One token per row, no dropout: ``tokens (B,) -> logits (B, V), state`` (generation)."""
        h, lstm_state, clocks, feats = self._inputs(tokens[:, None], state)
        h, lstm_state = self.lstm(h, lstm_state)                     # (B, 1, H)
        state = lstm_state if clocks is None else (lstm_state, clocks)
        return self._logits(h[:, 0], None if feats is None else feats[:, 0]), state  # (B, V)
