"""Training: teacher-forced next-token cross-entropy, seeded, resumable, CPU or GPU.

``python -m toolkit train --epochs 24 --threads 2 --out runs/folk-head --export`` trains the
shipped model from scratch (see ``toolkit/weights/MODEL_CARD.md`` for its figures;
``--threads`` only sets torch's CPU threads).  A run folder holds
``checkpoint.pt`` (written every ``--checkpoint-every`` steps and at each epoch's end) and the best
weights so far; ``--resume`` continues an interrupted run from its last checkpoint.

Conditioning dropout: each of a tune's meter, mode and style tokens is replaced by its "unknown"
token (``M:?`` ``K:?`` ``S:?``) with probability ``cond_drop`` (15 %), so one network also gives
the unconditional predictions that classifier-free guidance needs.
"""

from __future__ import annotations

import json
import math
import random
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch
from torch.nn import functional as F

from toolkit.lm.model import (
    PAD,
    SHIPPED,
    FolkLSTM,
    FolkTransformer,
    ModelConfig,
    Network,
    TransformerConfig,
    network_from,
    save_model,
    weights_name,
)
from toolkit.lm.optim import Adam, AdamW
from toolkit.music.tokens import BOS, EOS, UNKNOWN_METER, UNKNOWN_MODE, UNKNOWN_STYLE

__all__ = ["make_vocab", "new_model", "new_transformer", "batches", "parts", "evaluate",
           "train_model", "records_for", "PART_TOKENS"]

UNKNOWNS = (UNKNOWN_METER, UNKNOWN_MODE, UNKNOWN_STYLE)
PART_TOKENS = 1024  # a longer batch runs in parts (see parts())


def make_vocab(records: list[dict]) -> list[str]:
    """``<pad>`` first, then every token of the records plus the special ones, sorted."""
    tokens = {t for r in records for t in r["tokens"]} | {BOS, EOS, *UNKNOWNS}
    return [PAD, *sorted(tokens - {PAD})]


def new_model(records: list[dict], *, emb: int = 128, hidden: int = 256, layers: int = 2,
              dropout: float = 0.2, bar_clock: bool = True, clock_head: bool = True,
              seed: int = 0, vocab: list[str] | None = None) -> FolkLSTM:
    """An untrained :class:`FolkLSTM` whose vocabulary is ``make_vocab(records)`` (or ``vocab``).

    Seeded: the same arguments give the same starting weights.  Pass it to
    ``train_model(..., model=...)`` to train it; measured before that, it shows what a network
    that has learnt nothing scores (about ln V nats per token for V tokens).

    >>> m = new_model([{"tokens": ["<s>", "M:2/4", "K:maj", "S:?", "C", "</s>"]}],
    ...               emb=8, hidden=16, layers=1)
    >>> m.vocab[:3], m.num_parameters
    (['<pad>', '</s>', '<s>'], 12123)
    """
    for name, value in (("hidden", hidden), ("layers", layers), ("emb", emb)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
    torch.manual_seed(seed)
    return FolkLSTM(ModelConfig(vocab or make_vocab(records), emb, hidden, layers, dropout,
                                bar_clock, clock_head and bar_clock)).eval()


def new_transformer(records: list[dict], *, dim: int = 160, layers: int = 3, heads: int = 5,
                    attention: str = "softmax", dropout: float = 0.1, seed: int = 0,
                    vocab: list[str] | None = None, **parts) -> FolkTransformer:
    """An untrained :class:`~toolkit.lm.transformer.FolkTransformer` over ``make_vocab(records)``
    (or ``vocab``), seeded; ``parts`` are the other fields of
    :class:`~toolkit.lm.transformer.TransformerConfig` (``mlp``, ``bar_clock``...).  Train it
    with ``train_model(..., model=...)``, as :func:`new_model`'s LSTM.

    >>> m = new_transformer([{"tokens": ["<s>", "M:2/4", "K:maj", "S:?", "C", "</s>"]}],
    ...                     dim=8, layers=1, heads=2)
    >>> m.config.attention, m.num_parameters
    ('softmax', 11379)
    """
    torch.manual_seed(seed)
    return FolkTransformer(TransformerConfig(vocab or make_vocab(records), dim, layers, heads,
                                             attention=attention, dropout=dropout,
                                             **parts)).eval()


def _check_covers(model: Network, records: list[dict]) -> None:
    """ValueError naming a token of the records that the model's vocabulary lacks."""
    for r in records:
        for pos, tok in enumerate(r["tokens"]):
            if tok not in model.stoi:
                raise ValueError(f"model's vocabulary lacks {tok!r} (token {pos} of "
                                 f"{r.get('source', 'a tune')}): make the model with "
                                 "new_model(...) from these records")


def _ids(records: list[dict], stoi: dict[str, int]) -> list[list[int]]:
    return [[stoi[t] for t in r["tokens"]] for r in records]


def batches(seqs: list[list[int]], batch_size: int, generator: torch.Generator | None = None):
    """Yield padded LongTensors (B, T) of similar-length sequences; shuffled when a generator
    is given (bucketing by length keeps padding small)."""
    order = sorted(range(len(seqs)), key=lambda i: len(seqs[i]))
    chunks = [order[i:i + batch_size] for i in range(0, len(order), batch_size)]
    if generator is not None:
        perm = torch.randperm(len(chunks), generator=generator).tolist()
        chunks = [chunks[i] for i in perm]
    for chunk in chunks:
        t = max(len(seqs[i]) for i in chunk)
        x = torch.zeros(len(chunk), t, dtype=torch.long)  # PAD = 0
        for row, i in enumerate(chunk):
            x[row, :len(seqs[i])] = torch.tensor(seqs[i])
        yield x


def parts(x: torch.Tensor, max_tokens: int | None = None) -> list[torch.Tensor]:
    """A padded batch ``(B, T)`` as row blocks of at most ``max_tokens`` positions (default
    :data:`PART_TOKENS`; one row at least), each cut after its rows' last token.

    Training runs a batch part by part and adds up their gradients, which is the whole batch's
    gradient (the loss is a sum over tokens, divided by the batch's count): the same step, with
    memory bounded by the part (with dropout the same step in distribution: each part draws its
    own masks).  On the CPU the activations the backward pass keeps grow with B × T, and a
    Binder kernel has a few hundred MB (``benchmarks/bench_memory.py --part parts``).  On a GPU
    the batch stays whole: there, fewer and larger kernels are what is fast.
    """
    if x.device.type != "cpu":
        return [x]
    max_tokens = PART_TOKENS if max_tokens is None else max_tokens
    rows = max(1, max_tokens // max(1, x.size(1)))
    out = []
    for i in range(0, x.size(0), rows):
        block = x[i:i + rows]
        used = (block != 0).any(0).nonzero()              # PAD = 0
        last = int(used.max()) if len(used) else 0
        out.append(block[:, :max(last + 1, 2)])
    return out


def _scored(x: torch.Tensor, ignore: torch.Tensor) -> int:
    """How many targets of a batch carry loss (not PAD, not an unknown conditioning token)."""
    return int((~torch.isin(x[:, 1:], ignore)).sum())


def _loss(model: Network, x: torch.Tensor, ignore: torch.Tensor) -> tuple[torch.Tensor, int]:
    logits, _ = model(x[:, :-1])                         # (B, T-1, V)
    target = x[:, 1:].clone()                            # (B, T-1)
    target[torch.isin(target, ignore)] = 0               # PAD and unknown tokens carry no loss
    n = _scored(x, ignore)
    loss = F.cross_entropy(logits.reshape(-1, logits.size(-1)), target.reshape(-1),
                           ignore_index=0, reduction="sum")
    return loss, n


@torch.no_grad()
def evaluate(model: Network, records: list[dict], batch_size: int = 64) -> float:
    """Mean cross-entropy in nats per token (conditioning given, unknown tokens not scored)."""
    was = model.training
    model.eval()
    device = next(model.parameters()).device
    ignore = torch.tensor([0] + [model.stoi[u] for u in UNKNOWNS], device=device)
    total, count = 0.0, 0
    for x in batches(_ids(records, model.stoi), batch_size):
        for part in parts(x.to(device)):
            loss, n = _loss(model, part, ignore)
            total, count = total + float(loss), count + n
    model.train(was)
    return total / max(count, 1)


def _drop_conditioning(x: torch.Tensor, p: float, unk_ids: list[int], g: torch.Generator):
    """Replace each of positions 1..3 (meter, mode, style) by its unknown token with prob p."""
    if p <= 0:
        return x
    x = x.clone()
    for pos, unk in zip((1, 2, 3), unk_ids, strict=True):
        mask = torch.rand(x.size(0), generator=g) < p
        x[mask, pos] = unk
    return x


def train_model(train_records: list[dict], valid_records: list[dict], *, epochs: int = 20,
                batch_size: int = 64, lr: float = 3e-3, emb: int = 128, hidden: int = 256,
                layers: int = 2, dropout: float = 0.2, bar_clock: bool = True,
                clock_head: bool = True, cond_drop: float = 0.15, seed: int = 0,
                vocab: list[str] | None = None, out_dir: str | Path | None = None,
                resume: bool = False, device: str | None = None, checkpoint_every: int = 200,
                on_epoch: Callable[[dict], None] | None = None, progress: bool = True,
                max_minutes: float | None = None,
                stop_after: int | None = None,
                model: Network | None = None,
                calibrate_epochs: int = 2, calibrate_lr: float = 1e-2,
                ) -> tuple[Network, list[dict]]:
    """Train a network (a new :class:`FolkLSTM` by default); return ``(best model, history)``.

    ``history`` has one dict per epoch: ``epoch``, ``train_loss``, ``valid_loss`` (nats/token),
    ``seconds``.  ``on_epoch(entry)`` is called after each epoch (a notebook draws its loss curve
    and plays a sample there).  With ``out_dir``, checkpoints make the run resumable.
    ``stop_after`` ends the run after that many epochs while keeping the learning-rate schedule
    of ``epochs`` (so a shortened run is still reproducible by one command).
    ``model`` trains that network, in place, instead of a new LSTM (make it with
    :func:`new_model` or :func:`new_transformer`, e.g. to measure it untrained first; any
    :class:`~toolkit.lm.network.Network` works); its vocabulary must cover the
    records, and ``vocab``, ``emb``, ``hidden``, ``layers``, ``dropout``, ``bar_clock`` and
    ``clock_head`` are then its own.

    Calibration: a model with the clock head (``clock_head``) then spends ``calibrate_epochs``
    more epochs fitting that head's bias alone, everything else frozen and dropout off: the
    network as generation uses it.  Dropout makes a network hedge; this last stage sharpens
    what the bar's room allows (``benchmarks/clock_ablation.py`` measures it).  It is
    kept only if it lowers the validation loss, and is recorded in ``model.info["calibration"]``;
    it is skipped when the run stops early (``stop_after``, ``max_minutes``), without validation
    records, or when ``calibrate_epochs`` is 0.  ``on_epoch`` sees the main epochs only.
    """
    for name, value, lo in (("epochs", epochs, 1), ("batch_size", batch_size, 1),
                            ("hidden", hidden, 1), ("layers", layers, 1), ("emb", emb, 1),
                            ("calibrate_epochs", calibrate_epochs, 0)):
        if not isinstance(value, int) or value < lo:
            raise ValueError(f"{name} must be an integer >= {lo}, got {value!r}")
    if not 0 <= cond_drop < 1:
        raise ValueError(f"cond_drop must be in [0, 1), got {cond_drop!r}")
    if not train_records:
        raise ValueError("train_records is empty: nothing to learn from")
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    torch.manual_seed(seed)
    random.seed(seed)
    run_meta = [Path(out_dir) / f"{name}.json" for name in SHIPPED.values()
                if (Path(out_dir) / f"{name}.json").exists()] if out_dir else []
    if resume and run_meta:
        # continue the run's own network (its flags may predate today's defaults)
        model = network_from(json.loads(run_meta[0].read_text()))
    if model is None:
        vocab = vocab or make_vocab(train_records + valid_records)
        model = FolkLSTM(ModelConfig(vocab, emb, hidden, layers, dropout, bar_clock,
                                     clock_head and bar_clock))
    else:
        _check_covers(model, train_records + valid_records)
    model = model.to(device)
    opt = AdamW(model.parameters(), lr=lr, weight_decay=0.01)
    train_ids = _ids(train_records, model.stoi)
    steps_per_epoch = math.ceil(len(train_ids) / batch_size)
    total_steps = epochs * steps_per_epoch
    warmup = min(200, total_steps // 10 + 1)

    def lr_at(step: int) -> float:  # linear warm-up, then cosine down to 10 %
        if step < warmup:
            return lr * (step + 1) / warmup
        q = (step - warmup) / max(1, total_steps - warmup)
        return lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * q)))

    history: list[dict] = []
    start_epoch, start_batch, best = 0, 0, math.inf
    out = Path(out_dir) if out_dir else None
    ckpt = out / "checkpoint.pt" if out else None
    if resume and ckpt and ckpt.exists():
        state = torch.load(ckpt, map_location=device, weights_only=True)
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["opt"])
        start_epoch, start_batch = state["epoch"], state["batch"]
        history, best = json.loads(state["history"]), state["best"]
        print(f"resuming from epoch {start_epoch + 1}, batch {start_batch}", file=sys.stderr)
    if out:
        out.mkdir(parents=True, exist_ok=True)

    def save_checkpoint(epoch: int, batch: int) -> None:
        if ckpt:
            torch.save({"model": model.state_dict(), "opt": opt.state_dict(), "epoch": epoch,
                        "batch": batch, "history": json.dumps(history), "best": best},
                       str(ckpt) + ".tmp")
            Path(str(ckpt) + ".tmp").replace(ckpt)

    t_start = time.perf_counter()
    best_state = {k: v.clone() for k, v in model.state_dict().items()}
    best_file = out / f"{weights_name(model)}.safetensors" if out else None
    if resume and history and best_file and best_file.exists():
        from safetensors.torch import load_file  # the best epoch's weights, not the last's

        best_state = load_file(str(best_file), device=str(device))
    for epoch in range(start_epoch, epochs):
        t0 = time.perf_counter()
        model.train()

        def set_lr(b: int, epoch: int = epoch) -> None:
            for group in opt.param_groups:
                group["lr"] = lr_at(epoch * steps_per_epoch + b)

        def checkpoint(b: int, epoch: int = epoch) -> None:
            if ckpt and checkpoint_every and (b + 1) % checkpoint_every == 0:
                save_checkpoint(epoch, b + 1)

        train_loss = _epoch(model, opt, train_ids, batch_size, seed * 1000 + epoch, cond_drop,
                            f"epoch {epoch + 1}", progress, first=start_batch, before=set_lr,
                            after=checkpoint)
        start_batch = 0
        valid = evaluate(model, valid_records) if valid_records else float("nan")
        entry = {"epoch": epoch + 1, "train_loss": round(train_loss, 4),
                 "valid_loss": round(valid, 4), "seconds": round(time.perf_counter() - t0, 1)}
        history.append(entry)
        if progress:
            print(json.dumps(entry), file=sys.stderr)
        if not valid_records or valid < best:
            best = valid
            best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
            if out:
                model.info = {"history": history}
                save_model(_copy_with(model, best_state), out)
        save_checkpoint(epoch + 1, 0)
        if on_epoch is not None:
            on_epoch(entry)
        if max_minutes and (time.perf_counter() - t_start) / 60 > max_minutes:
            break
        if stop_after is not None and epoch + 1 >= stop_after:
            break
    model.load_state_dict(best_state)
    model.info = {"history": history,
                  "train_seconds": round(sum(h["seconds"] for h in history), 1)}
    if getattr(model, "clock_bias", None) is not None and model.clock_bias.weight.requires_grad \
            and calibrate_epochs and len(history) == epochs and valid_records:
        model.info["calibration"] = _calibrate(model, train_ids, valid_records,
                                               calibrate_epochs, calibrate_lr, batch_size,
                                               cond_drop, seed, progress)
        model.info["train_seconds"] = round(
            model.info["train_seconds"] + sum(h["seconds"] for h in model.info["calibration"]), 1)
        if out:
            save_model(model, out)
    return model.eval(), history


def _epoch(model: Network, opt: Adam, train_ids: list[list[int]],
           batch_size: int, seed: int, cond_drop: float, desc: str, progress: bool, *,
           first: int = 0, before: Callable[[int], None] | None = None,
           after: Callable[[int], None] | None = None, clip: bool = True) -> float:
    """One pass over the training batches, shuffled by ``seed``; the mean loss (nats/token).

    Batches before ``first`` are skipped (done before an interruption); ``before(b)`` runs
    before batch ``b`` (the learning rate), ``after(b)`` after its step (checkpoints).  The
    caller sets train or eval mode.
    """
    device = next(model.parameters()).device
    g = torch.Generator().manual_seed(seed)
    ignore = torch.tensor([0] + [model.stoi[u] for u in UNKNOWNS], device=device)
    unk_ids = [model.stoi[u] for u in UNKNOWNS]
    bar = None
    if progress:
        from tqdm.auto import tqdm
        bar = tqdm(total=math.ceil(len(train_ids) / batch_size), initial=first, desc=desc,
                   leave=False)
    tot, cnt = 0.0, 0
    try:  # the bar is closed even on Ctrl-C: the message after it starts a line
        for b, x in enumerate(batches(train_ids, batch_size, g)):
            if b < first:
                continue
            if before is not None:
                before(b)
            x = _drop_conditioning(x, cond_drop, unk_ids, g).to(device)
            n = _scored(x, ignore)
            opt.zero_grad(set_to_none=True)
            for part in parts(x):  # the parts' gradients add up to the batch's
                loss, _ = _loss(model, part, ignore)
                (loss / max(n, 1)).backward()
                tot += loss.item()
            if clip:
                torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            cnt += n
            if bar is not None:
                bar.update(1)
                bar.set_postfix(loss=f"{tot / max(cnt, 1):.3f}")
            if after is not None:
                after(b)
    finally:
        if bar is not None:
            bar.close()
    return tot / max(cnt, 1)


def _calibrate(model: Network, train_ids: list[list[int]], valid_records: list[dict],
               epochs: int, lr: float, batch_size: int, cond_drop: float, seed: int,
               progress: bool) -> list[dict]:
    """Fit ``model.clock_bias`` alone with dropout off; keep the best epoch (or none)."""
    frozen = [p for p in model.parameters() if p.requires_grad]
    for p in frozen:
        p.requires_grad_(False)
    weight = model.clock_bias.weight
    weight.requires_grad_(True)
    opt = Adam([weight], lr=lr)
    best, best_weight, log = evaluate(model, valid_records), weight.detach().clone(), []
    try:
        for epoch in range(epochs):
            t0 = time.perf_counter()
            model.eval()  # no dropout: the network as it generates
            train_loss = _epoch(model, opt, train_ids, batch_size, seed * 1000 + 999 - epoch,
                                cond_drop, f"calibrate {epoch + 1}", progress, clip=False)
            valid = evaluate(model, valid_records)
            entry = {"epoch": epoch + 1, "train_loss": round(train_loss, 4),
                     "valid_loss": round(valid, 4), "seconds": round(time.perf_counter() - t0, 1)}
            log.append(entry)
            if progress:
                print(json.dumps({"calibrate": entry}), file=sys.stderr)
            if valid < best:
                best, best_weight = valid, weight.detach().clone()
    finally:
        with torch.no_grad():
            weight.copy_(best_weight)
        for p in frozen:
            p.requires_grad_(True)
    return log


def _copy_with(model: Network, state: dict) -> Network:
    clone = type(model)(model.config)
    clone.load_state_dict(state)
    clone.info = dict(model.info)
    return clone


# --------------------------------------------------------------------------------------------
# CLI

def records_for(data: str) -> tuple[list[dict], list[dict], list[str] | None]:
    from toolkit.lm import data as D

    if data == "corpus":  # the vocabulary covers every split, so any test tune can be scored
        return D.load("train"), D.load("valid"), make_vocab(D.load("all"))
    if data == "toy":
        recs = D.load_toy()
        return recs[4:], recs[:4], None
    paths = []
    for part in data.split(","):
        q = Path(part)
        if not q.exists():
            raise ValueError(f"--data {part!r}: no such file or folder (give 'corpus', 'toy', "
                             "or ABC files/folders)")
        paths += sorted(q.glob("**/*.abc")) if q.is_dir() else [q]
    recs, skipped = D.read_abc_files(paths)
    for where, why in skipped:
        print(f"skipped {where}: {why}", file=sys.stderr)
    if len(recs) < 2:
        raise ValueError(f"--data {data!r}: found {len(recs)} usable tune(s) in "
                         f"{len(paths)} .abc file(s); training needs at least 2")
    n_valid = max(1, len(recs) // 20)
    return recs[n_valid:], recs[:n_valid], None
