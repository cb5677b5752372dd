"""The generation loop: conditioning, priming, the sampler chain, seeds and stopping.

>>> from toolkit import load_model, generate, sampling as S       # doctest: +SKIP
>>> tunes = generate(load_model(), n=4, meter="6/8", style="irish",
...                  sampler=S.chain(S.temperature(1.1), S.top_p(0.9)), seed=7)  # doctest: +SKIP

One loop serves every lesson: at each step the model gives logits ``(B, V)`` for all ``n`` tunes at
once, the sampler chain reshapes them, and one seeded ``torch.Generator`` draws the next tokens.
A tune stops at ``</s>`` or after ``max_tokens`` tokens, whichever comes first.  Before the
chain sees them, the logits of tokens that cannot come next are set to −∞: header tokens inside
the body, and the token grammar (a duration only right after a note or rest, broken rhythm only
after a note) — a spelling rule of ABC, not a musical choice.
"""

from __future__ import annotations

import contextlib
import functools
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from toolkit.lm.network import PAD, Network
from toolkit.lm.threads import one_thread
from toolkit.music.tokens import (
    BARS,
    BROKEN,
    EOS,
    UNKNOWN_STYLE,
    check_fragment,
    decode,
    display_key,
    is_duration,
    is_pitch,
)

__all__ = ["generate", "check_settings", "GenerationSettings", "StepRecord", "CONSTRAINTS"]

StepRecord = dict  # what ``on_step`` receives: step, logits (B, V), tokens (B,), finished (B,)


def _check_int(name: str, value, lo: int, hi: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < lo or \
            (hi is not None and value > hi):
        rng = f"[{lo}, {hi}]" if hi is not None else f">= {lo}"
        raise ValueError(f"{name} must be an integer {rng}, got {value!r}")
    return value


def _mixture(model: Network, name: str, value):
    """A conditioning given as a mixture ``{"irish": 0.7, "scottish": 0.3}``: checked, and
    normalised to sum to 1 (a ValueError names the argument and the bad value)."""
    known = model.choices(name)
    bad = [k for k in value if k not in known]
    if bad:
        raise ValueError(f"{name} mixture: {bad[0]!r} is not one of {known}")
    weights = list(value.values())
    if any(isinstance(w, bool) or not isinstance(w, int | float) or not w >= 0
           or w == float("inf") for w in weights) or not sum(weights) > 0:
        raise ValueError(f"{name} mixture weights must be finite numbers >= 0 with a positive "
                         f"sum, got {dict(value)!r}")
    total = float(sum(weights))
    return {k: float(w) / total for k, w in value.items() if w > 0}


def _prefix(model: Network, meter, mode, style, prime, key) -> list[str]:
    fixed = [None if isinstance(v, dict) else v for v in (meter, mode, style)]
    tokens = model.conditioning(*fixed)  # a mixture is drawn per tune, after <s>
    if prime:  # an unknown symbol in ABC text is named as written, with line and column
        body = prime if isinstance(prime, list) else check_fragment(
            prime, model.stoi, key, mode or "maj", nearest=model.nearest_token)
        tokens += body
    model.token_ids(tokens)  # raises UnknownTokenError naming the token and its position
    return tokens


@dataclass(frozen=True)
class GenerationSettings:
    """Everything one call of :func:`generate` decided, checked: the loop reads only this."""

    n: int
    seed: int
    meter: str | dict | None    # a value, a mixture {value: probability}, or None (the model's)
    mode: str | dict | None
    style: str | dict | None
    prefix: tuple[str, ...]     # <s>, meter, mode, style tokens, then the primer's tokens
    max_tokens: int
    sampler: Any                # a Chain; a Guidance step in it makes the batch guided
    key: str
    stop_at_end: bool
    guidance: float | None      # as given to generate(guidance=...), for the record
    prime: str | None           # the primer as given (ABC text, or its tokens joined)

    @property
    def guided(self) -> bool:
        """True when a Guidance step needs the unconditional logits too."""
        return _guides(self.sampler)


def _steps(sampler) -> tuple:
    """The steps of a chain, or of the chain inside a wrapper that records draws (the studio's)."""
    inner = getattr(sampler, "chain", sampler)
    return tuple(getattr(inner, "steps", (inner,)))


def _guides(sampler) -> bool:
    from toolkit.lm import sampling as S

    return any(isinstance(s, S.Guidance) and s.active for s in _steps(sampler))


@torch.inference_mode()
def generate(model: Network, n: int = 1, seed: int | None = None,
             meter: str | dict | None = None, mode: str | dict | None = None,
             style: str | dict | None = None,
             prime: str | list[str] | None = None,
             max_tokens: int = 256, sampler=None, temperature: float | None = None,
             guidance: float | None = None, key: str = "D", stop_at_end: bool = True,
             on_step: Callable[[StepRecord], None] | None = None, constrain: str | None = None):
    """Generate ``n`` tunes at once; return a list of :class:`toolkit.music.tune.Tune`.

    Parameters
    ----------
    meter, mode, style : the conditioning (``"6/8"``, ``"maj"``, ``"irish"``); None lets the model
        choose, for each tune (a softmax draw among the values it knows); a dict such as
        ``{"irish": 0.7, "scottish": 0.3}`` is a mixture: each tune draws its value from it
        (the preference models steer this way). ``model.choices("style")`` lists the values.
    prime : the tune's opening, as ABC body text in ``key`` (``"|: d2e fed |"``) or tokens.
    sampler : a chain from :mod:`toolkit.lm.sampling` (default: plain softmax sampling, or
        ``temperature`` alone when given).
    guidance : classifier-free guidance scale ``s``; the same as putting ``S.guidance(s)`` first
        in the chain (logits = uncond + s·(cond − uncond), "uncond" being the same model with the
        style hidden, ``S:?``).  None or 1 = off.
    seed : same seed, same tunes (byte for byte on the same machine); None picks one and records it.
    stop_at_end : False forbids ``</s>`` so every tune runs to ``max_tokens`` (benchmarks).
    on_step : called after each step with the raw logits and drawn tokens (step-through views).
    constrain : ``"grammar"`` masks, at every step, every token that would make the tune
        invalid and closes every tune within ``max_tokens`` (:class:`S.GrammarConstraint`);
        ``"meter"`` only keeps bars from overflowing (:class:`S.MeterConstraint`); None: free.
        The same as putting ``S.grammar()`` first in the chain (after a guidance step).
    """
    settings = check_settings(model, n, seed, meter, mode, style, prime, max_tokens, sampler,
                              temperature, guidance, key, stop_at_end, constrain)
    onednn = torch.backends.mkldnn.enabled
    # oneDNN's LSTM kernel costs ~10x more per single-token step than PyTorch's own on CPU
    torch.backends.mkldnn.enabled = False
    try:  # one thread is faster for small batches (no OpenMP hand-offs)
        # the state sized for the tune's whole room, up to a longer tune than the corpus holds;
        # a longer run grows it as it goes
        sized = getattr(model, "sized_for", None)
        room = len(settings.prefix) + min(max_tokens, SIZED_TOKENS)
        with one_thread(when=n <= 16), (sized(room) if sized else contextlib.nullcontext()):
            return _run(model, settings, on_step)
    finally:
        torch.backends.mkldnn.enabled = onednn


CONSTRAINTS = ("grammar", "meter")
SIZED_TOKENS = 512  # generation sizes a growing state for this many tokens at most


def check_settings(model, n, seed, meter, mode, style, prime, max_tokens, sampler, temperature,
                   guidance, key, stop_at_end, constrain=None) -> GenerationSettings:
    """Check every argument (each error names it and its allowed range) and settle the chain."""
    from toolkit.lm import sampling as S

    if not isinstance(model, Network):
        hint = f"load_model({model!r})" if isinstance(model, str) else "load_model()"
        raise ValueError(f"model must be a network from load_model(), got {model!r} "
                        f"({type(model).__name__}): model = {hint}, then generate(model, ...)")
    _check_int("n", n, 1, 4096)
    # the tunes are written in `key` later, when first read: check now that it spells them all
    pitches = tuple(t for t in model.vocab if is_pitch(t))
    for m in ([mode] if mode in model.choices("mode") else model.choices("mode") or ["maj"]):
        display_key(key, m, pitches)
    _check_int("max_tokens", max_tokens, 1, 4096)
    if seed is None:
        seed = int.from_bytes(os.urandom(4), "little")
    _check_int("seed", seed, 0, 2**63 - 1)
    if sampler is None:
        sampler = S.chain(S.temperature(1.0 if temperature is None else temperature))
    elif temperature is not None:
        raise ValueError("give either sampler or temperature, not both "
                         "(put S.temperature(...) in the chain)")
    elif not hasattr(sampler, "sample"):
        sampler = S.chain(sampler)
    if constrain is not None:
        if constrain not in CONSTRAINTS:
            raise ValueError(f"constrain must be one of {', '.join(map(repr, CONSTRAINTS))} or "
                             f"None, got {constrain!r}")
        if not stop_at_end:
            raise ValueError("constrain needs stop_at_end=True: the constraint ends every tune")
        if not isinstance(sampler, S.Step):
            raise ValueError("generate(constrain=...) needs a sampler chain; put S.grammar() "
                             "first in your own sampler instead")
        sampler = _constrained(sampler, S.grammar() if constrain == "grammar"
                               else S.meter_constraint())
    if guidance is not None and (isinstance(guidance, bool) or
                                 not isinstance(guidance, int | float) or not 0 <= guidance <= 20):
        raise ValueError(f"guidance must be a number in [0, 20], got {guidance!r}")
    if guidance is not None:
        if _guides(sampler):
            raise ValueError("give guidance either as generate(guidance=...) or as "
                             "S.guidance(...) in the sampler chain, not both")
        if guidance != 1:  # one formula, one home: the Guidance step, first in the chain
            if not isinstance(sampler, S.Step):
                raise ValueError("generate(guidance=...) needs a sampler chain; put "
                                 "S.guidance(...) first in your own sampler instead")
            sampler = S.Chain(S.guidance(guidance), sampler)
    meter, mode, style = (_mixture(model, name, v) if isinstance(v, dict) else v
                          for name, v in (("meter", meter), ("mode", mode), ("style", style)))
    settings = GenerationSettings(n, seed, meter, mode, style,
                                  tuple(_prefix(model, meter, mode, style, prime, key)),
                                  max_tokens, sampler, key, stop_at_end, guidance,
                                  prime if isinstance(prime, str | None) else " ".join(prime))
    if settings.guided and style is None:
        raise ValueError("guidance needs a style to steer towards: give style=...")
    return settings


def _constrained(sampler, step):
    """``step`` first in the chain: after a guidance step (which must see raw logits), before
    everything else (which must see only the tokens the constraint allows)."""
    from toolkit.lm import sampling as S

    steps = _steps(sampler)
    if steps and isinstance(steps[0], S.Guidance):
        return S.Chain(steps[0], step, *steps[1:])
    return S.Chain(step, sampler)


def _grammar(vocab: tuple[str, ...], stop_at_end: bool, device) -> torch.Tensor:
    """(V, V) bool: row p says which tokens may not follow token p. Header tokens never come
    inside the body; a duration comes only right after a note or rest; broken rhythm after either
    (a spelling rule of ABC, not a musical choice)."""
    banned = torch.tensor([t in (PAD, "<s>") or t[:2] in ("M:", "K:", "S:")
                           or (t == EOS and not stop_at_end) for t in vocab], device=device)
    is_note = torch.tensor([is_pitch(t) or t == "z" for t in vocab], device=device)
    is_dur = torch.tensor([is_duration(t) for t in vocab], device=device)
    is_broken = torch.tensor([t in BROKEN for t in vocab], device=device)
    return banned | ((~is_note)[:, None] & is_dur) | ((~(is_note | is_dur))[:, None] & is_broken)


def _header(model, s: GenerationSettings, buf, g, rows: int):
    """Feed <s>, the meter, mode and style (given ones fixed, missing ones drawn by the model
    among that slot's known values, one per tune) and the primer; return the logits and state."""
    n, device, P = s.n, buf.device, len(s.prefix)
    buf[:, 0] = model.stoi[s.prefix[0]]
    logits, state = model(buf[:, :1].repeat(rows, 1))
    for pos, (value, slot) in enumerate(((s.meter, "M:"), (s.mode, "K:"), (s.style, "S:")), 1):
        if isinstance(value, dict):  # a mixture: each tune draws its value from it
            ids = torch.tensor([model.stoi[slot + k] for k in value], device=device)
            weights = torch.tensor(list(value.values()), dtype=torch.float64)
            tok = ids[torch.multinomial(weights.expand(n, -1), 1, replacement=True,
                                        generator=g)[:, 0]]
        elif value is not None:
            tok = torch.full((n,), model.stoi[s.prefix[pos]], dtype=torch.long, device=device)
        else:
            allowed = torch.tensor([t.startswith(slot) and not t.endswith("?")
                                    for t in model.vocab], device=device)
            if not bool(allowed.any()):  # a model that never saw a value here: "unknown"
                tok = torch.full((n,), model.stoi[slot + "?"], dtype=torch.long, device=device)
            else:
                choice = logits[:n, -1].masked_fill(~allowed, float("-inf"))
                tok = torch.multinomial(torch.softmax(choice.float(), -1), 1, generator=g)[:, 0]
        buf[:, pos] = tok
        # the guided batch's second half is the same tunes with the style hidden
        feed = torch.cat([tok, torch.full_like(tok, model.stoi[UNKNOWN_STYLE])]) \
            if rows == 2 and slot == "S:" else tok.repeat(rows)
        logits, state = model(feed[:, None], state)
    if P > 4:  # the primer, the same for every tune
        buf[:, 4:P] = model.token_ids(list(s.prefix[4:])).to(device)
        logits, state = model(buf[:, 4:P].repeat(rows, 1), state)
    return logits[:, -1], state                                       # (rows·n, V)


def _run(model: Network, s: GenerationSettings, on_step) -> list:
    """The loop: model step -> mask what cannot come next -> sampler chain -> draw."""
    from toolkit.lm import sampling as S

    t0 = time.perf_counter()
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    n, P, T, eos = s.n, len(s.prefix), s.max_tokens, model.stoi[EOS]
    if hasattr(s.sampler, "reset"):
        s.sampler.reset()
    g = torch.Generator().manual_seed(s.seed)
    grammar = _grammar(model.vocab, s.stop_at_end, device)             # (V, V)
    is_bar = torch.tensor([t in BARS for t in model.vocab], device=device)
    buf = torch.full((n, P + T), model.stoi[PAD], dtype=torch.long, device=device)
    logp = torch.zeros(n, T, device=device)
    rows = 2 if s.guided else 1  # n conditional (+ n unconditional) rows
    logits, state = _header(model, s, buf, g, rows)                     # (rows·n, V)
    bars = torch.full((n,), sum(t in BARS for t in s.prefix), device=device)
    finished = torch.zeros(n, dtype=torch.bool, device=device)
    length = torch.full((n,), T, dtype=torch.long, device=device)
    for step in range(T):
        forbid = grammar[buf[:, P + step - 1]]                           # (n, V)
        cond = logits[:n].masked_fill(forbid, float("-inf"))
        uncond = logits[n:].masked_fill(forbid, float("-inf")) if rows == 2 else None
        ctx = S.Context(history=buf[:, :P + step], step=step, bar=bars, vocab=model.vocab,
                        uncond_logits=uncond, max_tokens=T)
        tok = s.sampler.sample(cond, generator=g, ctx=ctx)               # (n,)
        tok = torch.where(finished, torch.full_like(tok, eos), tok)
        buf[:, P + step] = tok
        logp[:, step] = torch.log_softmax(logits[:n].float(), -1).gather(1, tok[:, None])[:, 0]
        if on_step is not None:
            on_step({"step": step, "logits": cond, "tokens": tok, "finished": finished.clone()})
        newly = (tok == eos) & ~finished
        length = torch.where(newly, step + 1, length)
        finished |= newly
        bars += is_bar[tok].long()
        if bool(finished.all()):
            break
        logits, state = model.step(tok.repeat(rows), state)
    model.train(was_training)
    return _tunes(model, s, buf, logp, length, time.perf_counter() - t0)


def _tunes(model, s: GenerationSettings, buf, logp, length, elapsed: float) -> list:
    from toolkit.music.tune import Tune

    P = len(s.prefix)
    record = {"meter": s.meter, "mode": s.mode, "style": s.style, "prime": s.prime, "seed": s.seed,
              "max_tokens": s.max_tokens, "sampler": repr(s.sampler), "guidance": s.guidance,
              "key": s.key, "model": model.info.get("id", f"folk_{model.arch}"),
              "seconds_for_batch": round(elapsed, 4)}
    tunes = []
    for r in range(s.n):
        L = int(length[r])
        tokens = [model.vocab[i] for i in buf[r, :P + L].tolist()]
        write = functools.partial(decode, tuple(tokens), key=s.key, number=r + 1,
                                  title=f"Folk Sampler tune {r + 1} (seed {s.seed})")
        tunes.append(Tune(make_abc=write, tokens=tokens, logprobs=[None] * P + logp[r, :L].tolist(),
                          settings={**record, "index": r}))
    return tunes


