"""Command line: ``python -m toolkit <command> ...`` (also installed as ``folk-sampler``).

Each command is a small function that checks its arguments, then calls the public API. Every
failure a user can cause -- a bad setting, a path that cannot be written -- is one line on stderr
and a non-zero exit code, and settings are checked before anything is created on disk.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import re
import shutil
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import NoReturn

from toolkit.music.tune import EXPORT_FORMATS

PROG = "python -m toolkit"


# ---------------------------------------------------------------------------------------------
# parsing: every error is one line naming the flag

class _Parser(argparse.ArgumentParser):
    """argparse, but an error is one line (``error: --flag expects ...``) and exit code 2."""

    def error(self, message: str) -> NoReturn:
        message = re.sub(r"^argument (\S+?)(?:/\S+)?: (expects|lists)", r"\1 \2", message)
        self.exit(2, f"error: {message} (see {self.prog} --help)\n")


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(text)
    return value


def _one(convert, what: str):
    """An argparse type: ``convert(text)``, or an error saying what the flag expects."""
    def parse(text: str):
        try:
            return convert(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expects {what}, got {text!r}") from None
    return parse


def _many(convert, what: str):
    """An argparse type for a comma list (``0.8,1.2``): each value once."""
    def parse(text: str) -> list:
        try:
            values = [convert(v) for v in text.split(",")]
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"expects {what} separated by commas, got {text!r}") from None
        twice = [v for i, v in enumerate(values) if v in values[:i]]
        if twice:
            raise argparse.ArgumentTypeError(f"lists {twice[0]} twice in {text!r}; give each "
                                             "value once")
        return values
    return parse


def _path(text: str) -> str:
    if not text.strip():
        raise argparse.ArgumentTypeError(f"expects a path, got {text!r}")
    return text


_int, _float = _one(int, "a whole number"), _one(_finite, "a number")
_ints, _floats = _many(int, "whole numbers"), _many(_finite, "numbers")


def _check_writable(path: str, flag: str, folder: bool) -> None:
    """Refuse a destination that cannot be written before the long work starts; create
    nothing (a temporary file in the nearest existing folder is the test)."""
    p = Path(path).absolute()
    if folder and p.exists() and not p.is_dir():
        raise ValueError(f"{flag} {path!r} is a file; give a folder (it is made if missing)")
    if not folder and p.is_dir():
        raise ValueError(f"{flag} {path!r} is a folder; give a file such as prefs.json")
    base = p if folder and p.is_dir() else p.parent
    while not base.exists():
        base = base.parent
    try:
        with tempfile.TemporaryFile(dir=base):
            pass
    except OSError as err:
        raise OSError(f"{flag} {path!r} cannot be written: no file can be made in {base} "
                      f"({err.strerror or err})") from None


def _load_model(name: str | None):
    """``load_model(name)``; when it cannot, one line naming --model and what it takes."""
    from toolkit.lm.model import load_model

    try:
        return load_model(name)
    except (ValueError, FileNotFoundError) as err:  # a setting, so exit 2 like the others
        raise ValueError(f"--model {name!r}: {err}") from None


# ---------------------------------------------------------------------------------------------
# build-data

def _build_data(args: argparse.Namespace) -> int:
    from toolkit.lm import data

    data.build(out_dir=args.out, verbose=True)
    return 0


# ---------------------------------------------------------------------------------------------
# train

def add_train_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", type=_path, default="corpus",
                   help="'corpus' (music21's folk tunes), 'toy', or ABC files/folders")
    p.add_argument("--arch", choices=["lstm", "transformer"], default="lstm",
                   help="the network: the LSTM (default) or the transformer")
    p.add_argument("--epochs", type=_int, default=20)
    p.add_argument("--batch-size", type=_int, default=64)
    p.add_argument("--lr", type=_float, default=None,
                   help="peak learning rate (default 3e-3 for the LSTM, 2e-3 the transformer)")
    p.add_argument("--emb", type=_int, default=128, help="LSTM: embedding size")
    p.add_argument("--hidden", type=_int, default=256, help="LSTM: hidden size")
    p.add_argument("--layers", type=_int, default=None,
                   help="layers (default 2 for the LSTM, 3 for the transformer)")
    p.add_argument("--dim", type=_int, default=160, help="transformer: width")
    p.add_argument("--heads", type=_int, default=5, help="transformer: attention heads")
    p.add_argument("--attention", choices=["softmax", "linear"], default="softmax",
                   help="transformer: softmax or linear (kernel, recurrent) attention")
    p.add_argument("--dropout", type=_float, default=None,
                   help="dropout (default 0.2 for the LSTM, 0.1 for the transformer)")
    p.add_argument("--no-bar-clock", dest="bar_clock", action="store_false",
                   help="do not give the model the bar clock (how full the bar is) as input")
    p.add_argument("--no-clock-head", dest="clock_head", action="store_false",
                   help="do not let the bar clock bias the output logits directly")
    p.add_argument("--cond-drop", type=_float, default=0.15)
    p.add_argument("--calibrate-epochs", type=_int, default=2,
                   help="epochs fitting the clock head's bias alone, dropout off, at the end")
    p.add_argument("--seed", type=_int, default=0)
    p.add_argument("--out", type=_path, default="runs/folk",
                   help="run folder (checkpoints, best weights)")
    p.add_argument("--resume", action="store_true", help="continue from the run's checkpoint")
    p.add_argument("--device", default=None, help="cpu or cuda (default: cuda when present)")
    p.add_argument("--threads", type=_int, default=None, help="torch CPU threads")
    p.add_argument("--checkpoint-every", type=_int, default=200,
                   help="steps between checkpoints (one is also written at each epoch's end)")
    p.add_argument("--max-minutes", type=_float, default=None)
    p.add_argument("--stop-after", type=_int, default=None,
                   help="stop after this many epochs, keeping the schedule of --epochs")
    p.add_argument("--export", action="store_true",
                   help="copy the best weights into toolkit/weights/ (the shipped model)")


def _check_train(args: argparse.Namespace) -> None:
    """Every train setting, before anything is read or written: one ValueError naming the flag,
    its value and the allowed range."""
    import torch

    from toolkit.lm.sampling.base import _check_number

    at_least = [(">= 1", lambda v: v >= 1), (">= 0", lambda v: v >= 0)]
    checks = {"epochs": at_least[0], "batch_size": at_least[0], "emb": at_least[0],
              "hidden": at_least[0], "layers": at_least[0], "dim": at_least[0],
              "heads": at_least[0], "calibrate_epochs": at_least[1],
              "seed": ("in [0, 2**32 - 1]", lambda v: 0 <= v < 2**32),
              "threads": at_least[0], "checkpoint_every": at_least[0],
              "stop_after": (f"in [1, {args.epochs}] (--epochs)", lambda v: 1 <= v <= args.epochs),
              "lr": ("> 0", lambda v: v > 0), "max_minutes": ("> 0", lambda v: v > 0),
              "dropout": ("in [0, 1)", lambda v: 0 <= v < 1),
              "cond_drop": ("in [0, 1)", lambda v: 0 <= v < 1)}
    for name, (allowed, ok) in checks.items():
        value = getattr(args, name)
        if value is not None:
            _check_number(f"--{name.replace('_', '-')}", value, allowed, ok,
                          integer=isinstance(value, int))
    if args.arch == "transformer" and (args.dim % args.heads or (args.dim // args.heads) % 2):
        raise ValueError(f"--dim {args.dim} must split into --heads {args.heads} heads of an "
                         "even size (rotary positions turn pairs of numbers)")
    if args.device is not None:
        try:
            device = torch.device(args.device)
        except RuntimeError:
            device = None
        if device is None or device.type not in ("cpu", "cuda"):
            raise ValueError(f"--device must be cpu or cuda (cuda:N for the N-th GPU), "
                             f"got {args.device!r}")
        gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if device.type == "cuda" and (device.index or 0) >= gpus:
            raise ValueError(f"--device {args.device!r}: torch sees {gpus} CUDA GPU(s) here; "
                             "give --device cpu, or leave --device out")


def _train(args: argparse.Namespace) -> int:
    import torch

    from toolkit.lm.model import WEIGHTS_DIR, save_model, weights_name
    from toolkit.lm.train import make_vocab, new_transformer, records_for, train_model

    _check_train(args)
    _check_writable(args.out, "--out", folder=True)
    if args.export:
        _check_writable(str(WEIGHTS_DIR), "--export (the package's weights folder)", folder=True)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    lstm = args.arch == "lstm"
    lr = args.lr if args.lr is not None else (3e-3 if lstm else 2e-3)
    layers = args.layers if args.layers is not None else (2 if lstm else 3)
    dropout = args.dropout if args.dropout is not None else (0.2 if lstm else 0.1)
    train, valid, vocab = records_for(args.data)
    network = None if lstm else new_transformer(
        train + valid, dim=args.dim, layers=layers, heads=args.heads, attention=args.attention,
        dropout=dropout, seed=args.seed, vocab=vocab or make_vocab(train + valid),
        bar_clock=args.bar_clock, clock_head=args.clock_head and args.bar_clock)
    command = f"{PROG} train " + " ".join(sys.argv[2:]) if len(sys.argv) > 2 else ""
    model, history = train_model(
        train, valid, epochs=args.epochs, batch_size=args.batch_size, lr=lr, emb=args.emb,
        hidden=args.hidden, layers=layers, dropout=dropout, bar_clock=args.bar_clock,
        clock_head=args.clock_head, calibrate_epochs=args.calibrate_epochs,
        cond_drop=args.cond_drop, model=network,
        seed=args.seed, vocab=vocab, out_dir=args.out, resume=args.resume, device=args.device,
        checkpoint_every=args.checkpoint_every, max_minutes=args.max_minutes,
        stop_after=args.stop_after)
    model.info.update({"data": args.data, "command": command, "seed": args.seed,
                       "parameters": model.num_parameters, "device": args.device or "auto",
                       "threads": torch.get_num_threads()})
    path = save_model(model.cpu(), args.out, info=model.info)
    losses = [h["valid_loss"] for h in history + model.info.get("calibration", [])]
    print(f"best weights: {path}  (valid loss {min(losses):.4f})")
    if args.export:
        WEIGHTS_DIR.mkdir(exist_ok=True)
        for suffix in (".safetensors", ".json"):
            shutil.copy(path.with_suffix(suffix), WEIGHTS_DIR / (weights_name(model) + suffix))
        print(f"exported to {WEIGHTS_DIR}")
    return 0


# ---------------------------------------------------------------------------------------------
# generate

def add_generate_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--n", type=_int, default=8, help="tunes per setting")
    p.add_argument("--temperature", type=_floats, default=None,
                   help="e.g. 1.1 or 0.8,1.2,1.6 (default 1.0)")
    p.add_argument("--top-k", type=_ints, default=[0])
    p.add_argument("--top-p", type=_floats, default=[1.0])
    p.add_argument("--min-p", type=_floats, default=[0.0])
    p.add_argument("--seed", type=_ints, default=[1], help="one or more seeds, e.g. 1,2,3")
    p.add_argument("--meter", default=None)
    p.add_argument("--mode", default=None)
    p.add_argument("--style", default=None)
    p.add_argument("--guidance", type=_float, default=None, help="classifier-free guidance scale")
    p.add_argument("--prime", default=None, help="the tune's opening, ABC in --key")
    p.add_argument("--constrain", choices=["none", "grammar", "meter"], default="none",
                   help="grammar: mask every token that would make the tune invalid ABC, and "
                        "close every tune within --max-tokens; meter: only forbid notes that "
                        "overfill a bar (a short bar may still end a section)")
    p.add_argument("--meter-constraint", action="store_true",
                   help="the same as --constrain meter")
    p.add_argument("--key", default="D", help="display key of the written tunes")
    p.add_argument("--max-tokens", type=_int, default=256)
    p.add_argument("--model", type=_path, default=None,
                   help="lstm (default), transformer or transformer-linear (the shipped "
                        "weights), a weights file, or a run folder")
    p.add_argument("--formats", default="abc", help="comma list of " + ",".join(EXPORT_FORMATS))
    p.add_argument("--out", type=_path, default="out", help="output folder")
    p.add_argument("--restart", action="store_true",
                   help="start again in --out: delete the tunes logged there (their files and "
                        "the log) instead of resuming them")
    p.add_argument("--prefs", type=_path, default=None,
                   help="steer by preference models (a file from `prefs train`): conditioning "
                        "from the history model, best of --best-of by the reward model; the "
                        "temperature is the predicted one unless --temperature is given")
    p.add_argument("--best-of", type=_int, default=8,
                   help="with --prefs: candidates per tune (default 8)")


def _plan(args: argparse.Namespace, model) -> list[dict]:
    """Every setting of the grid, checked (chain, n, meter, style, key, ...) before anything is
    written: one ValueError names the first bad one."""
    from toolkit.lm import sampling as S
    from toolkit.lm.generation import check_settings

    if args.prefs is not None:
        clash = [f"--{k.replace('_', '-')}" for k in ("meter", "mode", "style", "guidance",
                                                      "prime", "meter_constraint")
                 if getattr(args, k)] + (["--constrain"] if args.constrain != "none" else []) \
            + (["--top-k"] if args.top_k != [0] else []) \
            + (["--min-p"] if args.min_p != [0.0] else [])
        if clash:
            raise ValueError(f"--prefs chooses the conditioning and steers by itself; leave out "
                             f"{', '.join(clash)} (--temperature and --top-p may stay)")
        if args.best_of < 1:
            raise ValueError(f"--best-of must be an integer >= 1, got {args.best_of}")
    temperatures = args.temperature or [1.0]
    formats = [f.strip() for f in args.formats.split(",") if f.strip()]
    bad = [f for f in formats if f not in EXPORT_FORMATS]
    if bad or not formats:
        raise ValueError(f"--formats must be a comma list of {','.join(EXPORT_FORMATS)}, "
                         f"got {args.formats!r}")
    grid = list(itertools.product(temperatures, args.top_k, args.top_p, args.min_p, args.seed))
    plan = []
    for temp, k, p, mp, seed in grid:
        chain = S.temperature_first(temperature=temp, top_k=k, top_p=p, min_p=mp)
        check_settings(model, args.n, seed, args.meter, args.mode, args.style, args.prime,
                       args.max_tokens, chain, None, args.guidance, args.key, True,
                       _constrain(args))
        name = f"T{temp}_k{k}_p{p}_minp{mp}_seed{seed}" if len(grid) > 1 else ""
        plan.append({"name": name, "chain": chain, "temperature": temp, "top_k": k, "top_p": p,
                     "min_p": mp, "seed": seed, "formats": formats})
    return plan


def _constrain(args: argparse.Namespace) -> str | None:
    if args.meter_constraint and args.constrain not in ("none", "meter"):
        raise ValueError(f"give --constrain {args.constrain} or --meter-constraint, not both")
    return "meter" if args.meter_constraint else (None if args.constrain == "none"
                                                  else args.constrain)


def _out_folder(path: str) -> Path:
    _check_writable(path, "--out", folder=True)
    out = Path(path)
    out.mkdir(parents=True, exist_ok=True)
    return out


# what a batch writes in --out: setting folders ("" for one setting) and files tune_001.abc...
_TUNE_FOLDER = re.compile(r"(T[\w.+-]*)?")  # as _plan names them: T0.8_k0_p1.0_minp0.0_seed1
_TUNE_FILE = re.compile(r"tune_\d{3,}\.(" + "|".join(EXPORT_FORMATS) + ")")


def _logged(log: Path) -> dict[tuple[str, int], dict]:
    """The tunes a previous run wrote completely, by (setting, tune): a rerun skips them."""
    done = {}
    if log.exists():
        for line in log.read_text().splitlines():
            try:
                row = json.loads(line)
                key = (row["setting"], row["tune"])
            except (ValueError, KeyError, TypeError):
                continue  # a line cut off by Ctrl-C: that tune is written again
            files = row.get("files")
            if (isinstance(key[0], str) and _TUNE_FOLDER.fullmatch(key[0])
                    and isinstance(key[1], int) and isinstance(files, list)
                    and all(isinstance(f, str) and _TUNE_FILE.fullmatch(Path(f).name)
                            for f in files)):
                done[key] = row  # else a row this command did not write: written again
    return done


def _tune_settings(args: argparse.Namespace, model) -> dict:
    """What decides a batch's tunes: a rerun into the same --out resumes only when they match
    (the formats may differ: a resumed tune gets the files it lacks)."""
    import hashlib

    weights = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        weights.update(name.encode() + tensor.detach().cpu().contiguous().numpy().tobytes())
    return {"model": args.model or "lstm", "weights": weights.hexdigest()[:16], "n": args.n,
            "temperature": args.temperature or ([1.0] if args.prefs is None else None),
            **{k: getattr(args, k) for k in ("top_k", "top_p", "min_p", "seed", "meter", "mode",
                                             "style", "guidance", "prime", "key", "max_tokens",
                                             "prefs")},
            "constrain": _constrain(args), "best_of": args.best_of if args.prefs else None}


def _shown(value) -> str:
    if value is None:
        return "(not given)"
    return ",".join(map(str, value)) if isinstance(value, list) else str(value)


def _check_resumable(out: Path, settings: dict) -> None:
    """Refuse to resume, in ``out``, a batch made with other settings (one line naming the
    first that differs); nothing logged there, nothing to check."""
    if not _logged(out / "tunes.jsonl"):
        return
    try:
        before = json.loads((out / "run.json").read_text())["settings"]
    except (OSError, ValueError, KeyError, TypeError):
        raise ValueError(f"--out {str(out)!r} holds tunes whose settings were not recorded; "
                         "give another --out, or --restart to replace them") from None
    for key, value in settings.items():
        if key != "model" and before.get(key) != value:
            flag = "--model" if key == "weights" else f"--{key.replace('_', '-')}"
            was, now = (before.get("model"), settings["model"]) if key == "weights" else \
                (before.get(key), value)
            raise ValueError(f"--out {str(out)!r} holds a run made with {flag} {_shown(was)}"
                             f"{' (other weights)' if key == 'weights' else ''}, this one has "
                             f"{flag} {_shown(now)}; give another --out, or --restart to "
                             "replace that run")


def _restart(out: Path, log: Path) -> None:
    """--restart: delete the tune files the log lists (in ``out``), then the log."""
    for row in _logged(log).values():
        folder = out / row["setting"] if row["setting"] else out
        for f in row["files"]:
            (folder / Path(f).name).unlink(missing_ok=True)
        if row["setting"] and folder.is_dir() and not any(folder.iterdir()):
            folder.rmdir()
    log.unlink(missing_ok=True)


def _save(tune, folder: Path, formats: list[str], stem: str) -> tuple[list[Path], list[str]]:
    """Write every format that can be written; a format that fails (a score that cannot be
    engraved, say) is reported, and the tune's other files -- its ABC first -- still exist."""
    saved, errors = [], []
    for fmt in formats:
        try:
            saved += tune.save(folder, formats=[fmt], stem=stem)
        except ValueError as err:
            errors.append(f"{fmt}: {err}")
    return saved, errors


def _generate(args: argparse.Namespace) -> int:
    from toolkit.lm.generation import generate
    from toolkit.music.check import check_tokens

    model = _load_model(args.model)
    plan = _plan(args, model)                     # every setting checked before anything exists
    prefs = None
    if args.prefs is not None:
        from toolkit.measure.preferences import Preferences

        prefs = Preferences.load(args.prefs)
        prefs.check_model(model)
    settings = _tune_settings(args, model)
    if not args.restart:
        _check_resumable(Path(args.out), settings)
    out = _out_folder(args.out)
    log = out / "tunes.jsonl"
    if args.restart:
        _restart(out, log)
    done = _logged(log)
    common = {"n": args.n, "meter": args.meter, "mode": args.mode, "style": args.style,
              "guidance": args.guidance, "prime": args.prime, "key": args.key,
              "max_tokens": args.max_tokens, "constrain": _constrain(args)}
    head = {"model": model.info.get("id", f"folk_{model.arch}"), "command": " ".join(sys.argv),
            "log": log.name, **({"prefs": str(args.prefs)} if prefs is not None else {}),
            "settings": settings}
    (out / "run.json").write_text(json.dumps({**head, "status": "running", "runs": []}, indent=1))
    runs, failures, resumed = [], 0, 0
    with log.open("a") as logfile:
        for s in plan:
            t0 = time.perf_counter()
            folder = out / s["name"] if s["name"] else out
            run = {k: s[k] for k in ("temperature", "top_k", "top_p", "min_p", "seed", "formats")}
            run.update(common, sampler=repr(s["chain"]))
            try:
                tunes = prefs.generate(
                    model, args.n, N=args.best_of, seed=s["seed"], max_tokens=args.max_tokens,
                    temperature=s["temperature"] if args.temperature else None,
                    top_p=s["top_p"], key=args.key) if prefs is not None else \
                    generate(model, n=args.n, seed=s["seed"], meter=args.meter,
                                 mode=args.mode, style=args.style, prime=args.prime,
                                 max_tokens=args.max_tokens, sampler=s["chain"],
                                 guidance=args.guidance, key=args.key,
                                 constrain=_constrain(args))
                files, validity = [], []
                for i, tune in enumerate(tunes, start=1):
                    row = done.get((s["name"], i))
                    if row is None:
                        v = check_tokens(tune.tokens)
                        row = {"setting": s["name"], "tune": i, "files": [], "valid": v.ok,
                               "problems": v.problems}
                    else:
                        resumed += 1
                    tried = {Path(f).suffix[1:] for f in row["files"]} | {
                        e.split(":")[0] for e in row.get("errors", [])}
                    missing = [f for f in s["formats"] if f not in tried]
                    if missing:             # a new tune, or a resumed one given more --formats
                        saved, errors = _save(tune, folder, missing, f"tune_{i:03d}")
                        row = {**row, "files": row["files"] + [str(f) for f in saved]}
                        if errors:
                            row["errors"] = row.get("errors", []) + errors
                            print(f"tune {i}: " + "; ".join(errors), file=sys.stderr)
                        logfile.write(json.dumps(row) + "\n")
                        logfile.flush()
                    files += row["files"]
                    validity.append({"tune": i, "valid": row["valid"],
                                     "problems": row["problems"]})
                run.update(files=files, validity=validity,
                           valid_share=sum(v["valid"] for v in validity) / len(validity))
                if prefs is not None:  # what steering used, not the grid's defaults
                    run.update(temperature=tunes[0].settings["temperature"],
                               sampler=f"best of {tunes[0].settings['prefs']['of']} by the "
                                       f"reward model; {tunes[0].settings['sampler']}",
                               meter=tunes[0].settings["meter"], mode=tunes[0].settings["mode"],
                               style=tunes[0].settings["style"],
                               guidance=tunes[0].settings["guidance"])
                status = f"{run['valid_share']:.0%} valid"
            except ValueError as err:  # a setting that fails is logged, not fatal, in a sweep
                if len(plan) == 1:
                    raise
                failures += 1
                run["error"] = status = f"{type(err).__name__}: {err}"
            run["seconds"] = round(time.perf_counter() - t0, 3)
            runs.append(run)
            print(f"{s['name'] or 'run'}: {args.n} tunes in {run['seconds']:.2f} s, {status}",
                  file=sys.stderr)
    (out / "run.json").write_text(json.dumps({**head, "status": "done", "runs": runs,
                                              "failures": failures, "resumed": resumed},
                                             indent=1))
    if resumed:
        print(f"resumed: {resumed} tune(s) were already written (--restart writes them again)",
              file=sys.stderr)
    print(f"wrote {out / 'run.json'}")
    return 0 if failures == 0 else 1


# ---------------------------------------------------------------------------------------------
# prefs

def _prefs_train(args: argparse.Namespace) -> int:
    from toolkit.measure.interactions import read_events
    from toolkit.measure.preferences import Preferences

    out = Path(args.out)
    _check_writable(args.out, "--out", folder=False)   # before the fitting, not after
    model = _load_model(args.model)
    with warnings.catch_warnings():             # each skipped line is printed below instead
        warnings.simplefilter("ignore")
        events = read_events(args.logs)         # a file, or a class's folder of logs
    if not events:
        raise ValueError(f"no events in {args.logs!r}"
                         + (f" ({len(events.problems)} line(s) could not be read)"
                            if events.problems else " (is it a folder of *.jsonl logs?)"))
    for problem in events.problems:
        print(f"skipped {problem}", file=sys.stderr)
    t0 = time.perf_counter()
    prefs = Preferences.fit(events, model, seed=args.seed)
    seconds = time.perf_counter() - t0
    prefs.save(out)
    ready = prefs.ready
    print(f"{len(events)} events, {prefs.reward.n} judged tunes ({prefs.reward.n_liked} liked), "
          f"fitted in {seconds:.1f} s")
    print(f"reward model: {'ready' if ready['reward'] else 'not ready (too few ratings)'}; "
          f"top weights: " + ", ".join(f"{k} {v:+.2f}"
                                       for k, v in list(prefs.reward.weights().items())[:4]))
    print("history model: " + (f"suggests {prefs.suggest()}" if ready["history"]
                                 else "not sure yet (too few likes)"))
    print(f"wrote {out}")
    return 0


# ---------------------------------------------------------------------------------------------

def make_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog=Path(sys.argv[0]).name if Path(sys.argv[0]).name == "folk-sampler" else PROG,
        description="Folk Sampler: a small LSTM writes folk tunes in ABC; "
                    "you choose how it samples.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("build-data", help="build the tokenised dataset from music21's ABC corpus")
    p.add_argument("--out", type=_path, default=None,
                   help="cache directory (default: the user cache)")
    p.set_defaults(func=_build_data)

    p = sub.add_parser("train", help="train the LSTM (seeded, resumable, CPU or GPU)")
    add_train_arguments(p)
    p.set_defaults(func=_train)

    p = sub.add_parser("generate", help="generate tunes; write their files, run.json and a "
                                        "tunes.jsonl log (a rerun resumes)")
    add_generate_arguments(p)
    p.set_defaults(func=_generate)

    p = sub.add_parser("prefs", help="preference models learned from rating logs")
    prefs = p.add_subparsers(dest="prefs_command", metavar="ACTION", required=True)
    t = prefs.add_parser("train", help="fit the reward and history models on a log file or a "
                                       "folder of logs (a class's, merged)")
    t.add_argument("logs", help="a .jsonl log from the rating studio, or a folder of them")
    t.add_argument("--out", type=_path, default="prefs.json",
                   help="the preferences file to write")
    t.add_argument("--model", type=_path, default=None,
                   help="the generator they are for (default lstm)")
    t.add_argument("--seed", type=_int, default=0)
    t.set_defaults(func=_prefs_train)
    return parser


def _checkpoint_time(args: argparse.Namespace) -> float | None:
    ckpt = Path(args.out) / "checkpoint.pt" if args.command == "train" else None
    return ckpt.stat().st_mtime if ckpt is not None and ckpt.exists() else None


def _interrupted(args: argparse.Namespace, checkpoint_time: float | None) -> str:
    """What Ctrl-C leaves behind, and how to go on, for each command."""
    if args.command == "train":
        now = _checkpoint_time(args)
        if now is not None and (args.resume or now != checkpoint_time):
            return (f"interrupted: the last checkpoint is {Path(args.out) / 'checkpoint.pt'}; "
                    "run the same command with --resume to continue from it (without "
                    "--resume, training starts again at epoch 1)")
        return "interrupted before the first checkpoint: run the command again to start over"
    if args.command == "build-data":
        return "interrupted: the dataset was not built; run the command again to build it"
    if args.command == "prefs":
        return f"interrupted: {args.out} was not written; run the command again to fit"
    return "interrupted: the tunes written so far are logged; run the same command to resume"


def main(argv: list[str] | None = None) -> int:
    parser = make_parser()
    args = parser.parse_args(argv)
    if args.command is None:  # a command is needed: the help says which
        parser.print_help(sys.stderr)
        return 2
    checkpoint_time = _checkpoint_time(args)
    try:
        return int(args.func(args) or 0)
    except ValueError as err:  # bad user input: one clear line, no traceback
        print(f"error: {err}", file=sys.stderr)
        return 2
    except OSError as err:  # a path that cannot be read or written
        print(f"error: {err.strerror or err}" + (f": {err.filename}" if err.filename else "")
              if err.strerror else f"error: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(_interrupted(args, checkpoint_time), file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
