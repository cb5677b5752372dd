"""The network: embedding -> LSTM layers -> linear over the vocabulary.

The shipped model has 1,114,135 parameters (``load_model().num_parameters``).

A language model over folk-tune tokens (:mod:`toolkit.music.tokens`).  Given the tokens so far it
gives
*logits*, one number per token of the vocabulary; softmax turns them into the next-token
distribution the samplers work on.

>>> model = load_model()                                   # doctest: +SKIP
>>> model.next_logits("M:6/8 K:maj S:irish |: G A").shape  # doctest: +SKIP
torch.Size([117])
"""

from __future__ import annotations

import difflib
import json
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import nn

from toolkit.lm.barclock import N_FEATURES, BarClock
from toolkit.music.tokens import (
    BOS,
    UNKNOWN_METER,
    UNKNOWN_MODE,
    UNKNOWN_STYLE,
    UnknownTokenError,
    is_pitch,
    midi_pitch,
)

__all__ = ["ModelConfig", "FolkLSTM", "load_model", "save_model", "WEIGHTS_DIR", "PAD"]

PAD = "<pad>"
#: Test-only switch: ``FOLK_SAMPLER_PERTURB_LOGITS=1e-6`` adds a deterministic wobble of that size
#: to every logit (``eps · sin(10⁴ · logit)``), as another machine's float rounding would. CI
#: runs the notebook checks a second time with it, so a checked output that depends on rounding
#: fails there instead of on a teacher's laptop. Never set it for real use.
PERTURB = float(os.environ.get("FOLK_SAMPLER_PERTURB_LOGITS") or 0.0)

WEIGHTS_DIR = Path(__file__).resolve().parents[1] / "weights"
DEFAULT_NAME = "folk_lstm"


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


class FolkLSTM(nn.Module):
    """Embedding -> LSTM -> linear.  ``forward(x (B, T)) -> logits (B, T, V), state``.

    With ``config.bar_clock`` the input at every position is the token's embedding plus an
    embedding of the bar clock (how much of the current bar the tokens so far fill, in twelfths
    of an eighth; :mod:`toolkit.lm.barclock`), so the network need not count durations itself.
    ``state`` is then ``(lstm_state, clock_states)``; callers pass it back as they got it.
    With ``config.clock_head`` as well, the clock also reaches the output directly: one learnt
    bias per clock value and token is added to the logits (for example, "with no room left in
    the bar, a duration token is unlikely"), which the LSTM would otherwise have to carry.
    """

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        self.vocab = list(config.vocab)
        self.stoi = {t: i for i, t in enumerate(self.vocab)}
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
        self.info: dict = {}  # provenance and metrics read from the weights' JSON (model card)

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
        if PERTURB:  # test-only: another machine's float rounding, imitated
            logits = logits + PERTURB * torch.sin(logits * 1e4)
        return logits

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
        prefix = {"meter": "M:", "mode": "K:", "style": "S:"}[name]
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


def save_model(model: FolkLSTM, directory: str | Path = WEIGHTS_DIR, name: str = DEFAULT_NAME,
               info: dict | None = None) -> Path:
    """Write ``name.safetensors`` (weights) and ``name.json`` (config, vocab, model card facts)."""
    from safetensors.torch import save_file

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    save_file(state, str(directory / f"{name}.safetensors"))
    meta = {"config": asdict(model.config), "info": {**model.info, **(info or {})}}
    (directory / f"{name}.json").write_text(json.dumps(meta, indent=1))
    return directory / f"{name}.safetensors"


def load_model(path: str | Path | None = None, device: str = "cpu") -> FolkLSTM:
    """Load a model: the shipped weights by default (offline, CPU, safetensors: no pickle).

    ``path`` may be a ``.safetensors`` file (its ``.json`` beside it) or a training run folder.
    """
    from safetensors.torch import load_file

    t0 = time.perf_counter()
    p = Path(path) if path else WEIGHTS_DIR / f"{DEFAULT_NAME}.safetensors"
    if p.is_dir():
        p = p / f"{DEFAULT_NAME}.safetensors"
    if not p.exists():
        raise FileNotFoundError(f"no model weights at {p}; "
                                "train one with `python -m toolkit train`")
    meta = json.loads(p.with_suffix(".json").read_text())
    model = FolkLSTM(ModelConfig(**meta["config"]))
    model.load_state_dict(load_file(str(p), device=device))
    model.info = meta.get("info", {})
    model.info["load_seconds"] = round(time.perf_counter() - t0, 3)
    return model.to(device).eval()
