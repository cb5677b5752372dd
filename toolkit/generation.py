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

import argparse
import functools
import itertools
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch

from toolkit.abc import (
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
from toolkit.model import PAD, FolkLSTM

__all__ = ["generate", "add_arguments", "cli_main", "StepRecord"]

StepRecord = dict  # what ``on_step`` receives: step, logits (B, V), tokens (B,), finished (B,)


def _check_int(name: str, value, lo: int, hi: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < lo or \
            (hi is not None and value > hi):
        rng = f"[{lo}, {hi}]" if hi is not None else f">= {lo}"
        raise ValueError(f"{name} must be an integer {rng}, got {value!r}")
    return value


def _prefix(model: FolkLSTM, meter, mode, style, prime, key) -> list[str]:
    tokens = model.conditioning(meter, mode, style)
    if prime:  # an unknown symbol in ABC text is named as written, with line and column
        body = prime if isinstance(prime, list) else check_fragment(
            prime, model.stoi, key, mode or "maj", nearest=model.nearest_token)
        tokens += body
    model.token_ids(tokens)  # raises UnknownTokenError naming the token and its position
    return tokens


@torch.inference_mode()
def generate(model: FolkLSTM, n: int = 1, seed: int | None = None, meter: str | None = None,
             mode: str | None = None, style: str | None = None,
             prime: str | list[str] | None = None,
             max_tokens: int = 256, sampler=None, temperature: float | None = None,
             guidance: float | None = None, key: str = "D", stop_at_end: bool = True,
             on_step: Callable[[StepRecord], None] | None = None):
    """Generate ``n`` tunes at once; return a list of :class:`toolkit.tune.Tune`.

    Parameters
    ----------
    meter, mode, style : the conditioning (``"6/8"``, ``"maj"``, ``"irish"``); None lets the model
        choose, for each tune (a softmax draw among the values it knows).
        ``model.choices("style")`` lists the values it knows.
    prime : the tune's opening, as ABC body text in ``key`` (``"|: d2e fed |"``) or tokens.
    sampler : a chain from :mod:`toolkit.sampling` (default: plain softmax sampling, or
        ``temperature`` alone when given).
    guidance : classifier-free guidance scale ``s``: logits = uncond + s·(cond − uncond), where
        "uncond" is the same model with the style hidden (``S:?``).  None or 1 = off.
    seed : same seed, same tunes (byte for byte on the same machine); None picks one and records it.
    stop_at_end : False forbids ``</s>`` so every tune runs to ``max_tokens`` (benchmarks).
    on_step : called after each step with the raw logits and drawn tokens (step-through views).
    """
    from toolkit import sampling as S

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
    if guidance is not None and (isinstance(guidance, bool) or
                                 not isinstance(guidance, int | float) or not 0 <= guidance <= 20):
        raise ValueError(f"guidance must be a number in [0, 20], got {guidance!r}")
    chain_guides = any(isinstance(step, S.Guidance) and step.active
                       for step in getattr(sampler, "steps", ()))
    if chain_guides and guidance is not None:
        raise ValueError("give guidance either as generate(guidance=...) or as S.guidance(...) "
                         "in the sampler chain, not both")
    use_cfg = (guidance is not None and guidance != 1) or chain_guides
    if use_cfg and style is None:
        raise ValueError("guidance needs a style to steer towards: give style=...")

    threads = torch.get_num_threads()
    if n <= 16 and threads > 1:  # one thread is faster for small batches (no OpenMP hand-offs)
        torch.set_num_threads(1)
    onednn = torch.backends.mkldnn.enabled
    # oneDNN's LSTM kernel costs ~10x more per single-token step than PyTorch's own on CPU
    torch.backends.mkldnn.enabled = False
    try:
        return _generate(model, n, seed, meter, mode, style, prime, max_tokens, sampler,
                         guidance, key, stop_at_end, on_step, use_cfg, chain_guides)
    finally:
        torch.set_num_threads(threads)
        torch.backends.mkldnn.enabled = onednn


def _generate(model, n, seed, meter, mode, style, prime, max_tokens, sampler, guidance, key,
              stop_at_end, on_step, use_cfg, chain_guides):
    from toolkit import sampling as S
    from toolkit.tune import Tune

    t0 = time.perf_counter()
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    prefix = _prefix(model, meter, mode, style, prime, key)  # validates every argument first
    P = len(prefix)
    sampler.reset() if hasattr(sampler, "reset") else None
    g = torch.Generator().manual_seed(seed)

    banned_mask = torch.tensor([t in (PAD, "<s>") or t[:2] in ("M:", "K:", "S:")
                                or (t == EOS and not stop_at_end) for t in model.vocab],
                               device=device)
    is_bar = torch.tensor([t in BARS for t in model.vocab], device=device)
    # the token grammar: one duration right after a note or rest, broken rhythm after either;
    # row p of the table is what may not follow token p (one lookup per step)
    is_note = torch.tensor([is_pitch(t) or t == "z" for t in model.vocab], device=device)
    is_dur = torch.tensor([is_duration(t) for t in model.vocab], device=device)
    is_broken = torch.tensor([t in BROKEN for t in model.vocab], device=device)
    forbid_after = banned_mask | ((~is_note)[:, None] & is_dur) \
        | ((~(is_note | is_dur))[:, None] & is_broken)                  # (V, V)
    eos = model.stoi[EOS]
    buf = torch.full((n, P + max_tokens), model.stoi[PAD], dtype=torch.long, device=device)
    logp_buf = torch.zeros(n, max_tokens, device=device)
    R = 2 if use_cfg else 1  # rows: n conditional (+ n unconditional for guidance)

    # the header: <s>, then meter, mode and style: given ones are fixed, missing ones the model
    # chooses (a plain softmax draw among that slot's known values, one per tune)
    buf[:, 0] = model.stoi[prefix[0]]
    logits, state = model(buf[:, :1].repeat(R, 1))
    for pos, (value, slot) in enumerate(((meter, "M:"), (mode, "K:"), (style, "S:")), start=1):
        if value is not None:
            tok = torch.full((n,), model.stoi[prefix[pos]], dtype=torch.long, device=device)
        else:
            allowed = torch.tensor([t.startswith(slot) and not t.endswith("?")
                                    for t in model.vocab], device=device)
            if not bool(allowed.any()):  # a model that never saw a value here: "unknown"
                tok = torch.full((n,), model.stoi[slot + "?"], dtype=torch.long, device=device)
            else:
                choice = logits[:n, -1].masked_fill(~allowed, float("-inf"))
                tok = torch.multinomial(torch.softmax(choice.float(), -1), 1, generator=g)[:, 0]
        buf[:, pos] = tok
        feed = torch.cat([tok, torch.full_like(tok, model.stoi[UNKNOWN_STYLE])]) \
            if use_cfg and slot == "S:" else tok.repeat(R)
        logits, state = model(feed[:, None], state)
    if P > 4:  # the primer, the same for every tune
        buf[:, 4:P] = model.token_ids(prefix[4:]).to(device)
        logits, state = model(buf[:, 4:P].repeat(R, 1), state)
    logits = logits[:, -1]                                            # (R·n, V)
    bars = torch.full((n,), sum(t in BARS for t in prefix), device=device)
    finished = torch.zeros(n, dtype=torch.bool, device=device)
    length = torch.full((n,), max_tokens, dtype=torch.long, device=device)
    for step in range(max_tokens):
        cond = logits[:n]
        raw_logp = torch.log_softmax(cond.float(), dim=-1)              # (n, V)
        forbid = forbid_after[buf[:, P + step - 1]]                      # (n, V)
        mixed = cond
        uncond_logits = None
        if use_cfg:
            uncond_logits = logits[n:].masked_fill(forbid, float("-inf"))
            if not chain_guides:  # else the chain's Guidance step mixes them
                mixed = uncond_logits + guidance * (cond - uncond_logits)
        mixed = mixed.masked_fill(forbid, float("-inf"))
        ctx = S.Context(history=buf[:, :P + step], step=step, bar=bars, vocab=model.vocab,
                        uncond_logits=uncond_logits)
        tok = sampler.sample(mixed, generator=g, ctx=ctx)              # (n,)
        tok = torch.where(finished, torch.full_like(tok, eos), tok)
        buf[:, P + step] = tok
        logp_buf[:, step] = raw_logp.gather(1, tok[:, None])[:, 0]
        if on_step is not None:
            on_step({"step": step, "logits": mixed, "tokens": tok, "finished": finished.clone()})
        newly = (tok == eos) & ~finished
        length = torch.where(newly, step + 1, length)
        finished |= newly
        bars += is_bar[tok].long()
        if bool(finished.all()):
            break
        logits, state = model.step(tok.repeat(R) if R > 1 else tok, state)
    model.train(was_training)

    elapsed = time.perf_counter() - t0
    settings = {"meter": meter, "mode": mode, "style": style, "prime": prime if isinstance(
        prime, str | None) else " ".join(prime), "seed": seed, "max_tokens": max_tokens,
        "sampler": repr(sampler), "guidance": guidance, "key": key,
        "model": model.info.get("id", "folk_lstm"), "seconds_for_batch": round(elapsed, 4)}
    tunes = []
    for r in range(n):
        L = int(length[r])
        tokens = [model.vocab[i] for i in buf[r, :P + L].tolist()]
        logprobs = [None] * P + logp_buf[r, :L].tolist()
        write = functools.partial(decode, tuple(tokens), key=key, number=r + 1,
                                  title=f"Folk Sampler tune {r + 1} (seed {seed})")
        tunes.append(Tune(make_abc=write, tokens=tokens, logprobs=logprobs,
                          settings={**settings, "index": r}))
    return tunes


# --------------------------------------------------------------------------------------------
# CLI: python -m toolkit generate ...

def _floats(text: str) -> list[float]:
    return [float(v) for v in text.split(",")]


def _ints(text: str) -> list[int]:
    return [int(v) for v in text.split(",")]


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--n", type=int, default=8, help="tunes per setting")
    p.add_argument("--temperature", type=_floats, default=[1.0], help="e.g. 1.1 or 0.8,1.2,1.6")
    p.add_argument("--top-k", type=_ints, default=[0])
    p.add_argument("--top-p", type=_floats, default=[1.0])
    p.add_argument("--min-p", type=_floats, default=[0.0])
    p.add_argument("--seed", type=_ints, default=[1], help="one or more seeds, e.g. 1,2,3")
    p.add_argument("--meter", default=None)
    p.add_argument("--mode", default=None)
    p.add_argument("--style", default=None)
    p.add_argument("--guidance", type=float, default=None, help="classifier-free guidance scale")
    p.add_argument("--prime", default=None, help="the tune's opening, ABC in --key")
    p.add_argument("--meter-constraint", action="store_true",
                   help="keep every bar exactly as long as the meter (toolkit.constraints)")
    p.add_argument("--key", default="D", help="display key of the written tunes")
    p.add_argument("--max-tokens", type=int, default=256)
    p.add_argument("--model", default=None, help="weights file or run folder")
    p.add_argument("--formats", default="abc", help="comma list of abc,musicxml,mid,wav,svg")
    p.add_argument("--out", default="out", help="output folder")


def cli_main(args: argparse.Namespace) -> int:
    from toolkit import sampling as S
    from toolkit.metrics import check_tokens
    from toolkit.model import load_model

    formats = [f.strip() for f in args.formats.split(",") if f.strip()]
    model = load_model(args.model)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    grid = list(itertools.product(args.temperature, args.top_k, args.top_p, args.min_p, args.seed))
    runs, failures = [], 0
    for temp, k, p, mp, seed in grid:
        name = f"T{temp}_k{k}_p{p}_minp{mp}_seed{seed}" if len(grid) > 1 else ""
        run = {"temperature": temp, "top_k": k, "top_p": p, "min_p": mp, "seed": seed,
               "n": args.n, "meter": args.meter, "mode": args.mode, "style": args.style,
               "guidance": args.guidance, "prime": args.prime, "key": args.key,
               "max_tokens": args.max_tokens, "formats": formats,
               "meter_constraint": args.meter_constraint}
        t0 = time.perf_counter()
        try:
            chain = S.temperature_first(temperature=temp, top_k=k, top_p=p, min_p=mp)
            if args.meter_constraint:
                from toolkit.constraints import MeterConstraint

                chain = S.chain(MeterConstraint(), chain)
            tunes = generate(model, n=args.n, seed=seed, meter=args.meter, mode=args.mode,
                             style=args.style, prime=args.prime, max_tokens=args.max_tokens,
                             sampler=chain, guidance=args.guidance, key=args.key)
            folder = out / name if name else out
            files, validity = [], []
            for i, tune in enumerate(tunes):
                saved = tune.save(folder, formats=formats, stem=f"tune_{i + 1:03d}")
                files += [str(f) for f in saved]
                v = check_tokens(tune.tokens)
                validity.append({"tune": i + 1, "valid": v.ok, "problems": v.problems})
            run.update(sampler=repr(chain), files=files, validity=validity,
                       valid_share=sum(v["valid"] for v in validity) / len(validity))
        except Exception as err:  # a failed setting is logged, not fatal, in a sweep
            if len(grid) == 1:
                raise
            failures += 1
            run["error"] = f"{type(err).__name__}: {err}"
        run["seconds"] = round(time.perf_counter() - t0, 3)
        runs.append(run)
        status = run.get("error") or f"{run['valid_share']:.0%} valid"
        print(f"{name or 'run'}: {args.n} tunes in {run['seconds']:.2f} s, {status}",
              file=sys.stderr)
    log = {"model": model.info.get("id", "folk_lstm"), "command": " ".join(sys.argv),
           "runs": runs, "failures": failures}
    (out / "run.json").write_text(json.dumps(log, indent=1))
    print(f"wrote {out / 'run.json'}")
    return 0 if failures == 0 else 1
