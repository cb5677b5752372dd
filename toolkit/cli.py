"""Command line: ``python -m toolkit <command> ...`` (also installed as ``folk-sampler``).

Each command is a small function that checks its arguments, then calls the public API. Every
failure a user can cause -- a bad setting, a path that cannot be written -- is one line on stderr
and a non-zero exit code, and settings are checked before anything is created on disk.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import shutil
import sys
import time
import warnings
from pathlib import Path

from toolkit.music.tune import EXPORT_FORMATS

PROG = "python -m toolkit"


# ---------------------------------------------------------------------------------------------
# build-data

def _build_data(args: argparse.Namespace) -> int:
    from toolkit.lm import data

    data.build(out_dir=args.out, verbose=True)
    return 0


# ---------------------------------------------------------------------------------------------
# train

def add_train_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", default="corpus",
                   help="'corpus' (music21's folk tunes), 'toy', or ABC files/folders")
    p.add_argument("--arch", choices=["lstm", "transformer"], default="lstm",
                   help="the network: the LSTM (default) or the transformer")
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=None,
                   help="peak learning rate (default 3e-3 for the LSTM, 2e-3 the transformer)")
    p.add_argument("--emb", type=int, default=128, help="LSTM: embedding size")
    p.add_argument("--hidden", type=int, default=256, help="LSTM: hidden size")
    p.add_argument("--layers", type=int, default=None,
                   help="layers (default 2 for the LSTM, 3 for the transformer)")
    p.add_argument("--dim", type=int, default=160, help="transformer: width")
    p.add_argument("--heads", type=int, default=5, help="transformer: attention heads")
    p.add_argument("--attention", choices=["softmax", "linear"], default="softmax",
                   help="transformer: softmax or linear (kernel, recurrent) attention")
    p.add_argument("--dropout", type=float, default=None,
                   help="dropout (default 0.2 for the LSTM, 0.1 for the transformer)")
    p.add_argument("--no-bar-clock", dest="bar_clock", action="store_false",
                   help="do not give the model the bar clock (how full the bar is) as input")
    p.add_argument("--no-clock-head", dest="clock_head", action="store_false",
                   help="do not let the bar clock bias the output logits directly")
    p.add_argument("--cond-drop", type=float, default=0.15)
    p.add_argument("--calibrate-epochs", type=int, default=2,
                   help="epochs fitting the clock head's bias alone, dropout off, at the end")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="runs/folk", help="run folder (checkpoints, best weights)")
    p.add_argument("--resume", action="store_true", help="continue from the run's checkpoint")
    p.add_argument("--device", default=None, help="cpu or cuda (default: cuda when present)")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    p.add_argument("--checkpoint-every", type=int, default=200)
    p.add_argument("--max-minutes", type=float, default=None)
    p.add_argument("--stop-after", type=int, default=None,
                   help="stop after this many epochs, keeping the schedule of --epochs")
    p.add_argument("--export", action="store_true",
                   help="copy the best weights into toolkit/weights/ (the shipped model)")


def _train(args: argparse.Namespace) -> int:
    import torch

    from toolkit.lm.model import WEIGHTS_DIR, save_model, weights_name
    from toolkit.lm.train import make_vocab, new_transformer, records_for, train_model

    if args.threads:
        torch.set_num_threads(args.threads)
    lstm = args.arch == "lstm"
    lr = args.lr or (3e-3 if lstm else 2e-3)
    layers = args.layers or (2 if lstm else 3)
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

def _floats(text: str) -> list[float]:
    return [float(v) for v in text.split(",")]


def _ints(text: str) -> list[int]:
    return [int(v) for v in text.split(",")]


def add_generate_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--n", type=int, default=8, help="tunes per setting")
    p.add_argument("--temperature", type=_floats, default=None,
                   help="e.g. 1.1 or 0.8,1.2,1.6 (default 1.0)")
    p.add_argument("--top-k", type=_ints, default=[0])
    p.add_argument("--top-p", type=_floats, default=[1.0])
    p.add_argument("--min-p", type=_floats, default=[0.0])
    p.add_argument("--seed", type=_ints, default=[1], help="one or more seeds, e.g. 1,2,3")
    p.add_argument("--meter", default=None)
    p.add_argument("--mode", default=None)
    p.add_argument("--style", default=None)
    p.add_argument("--guidance", type=float, default=None, help="classifier-free guidance scale")
    p.add_argument("--prime", default=None, help="the tune's opening, ABC in --key")
    p.add_argument("--constrain", choices=["none", "grammar", "meter"], default="none",
                   help="grammar: mask every token that would make the tune invalid ABC, and "
                        "close every tune within --max-tokens; meter: only forbid notes that "
                        "overfill a bar (a short bar may still end a section)")
    p.add_argument("--meter-constraint", action="store_true",
                   help="the same as --constrain meter")
    p.add_argument("--key", default="D", help="display key of the written tunes")
    p.add_argument("--max-tokens", type=int, default=256)
    p.add_argument("--model", default=None,
                   help="lstm (default), transformer or transformer-linear (the shipped "
                        "weights), a weights file, or a run folder")
    p.add_argument("--formats", default="abc", help="comma list of " + ",".join(EXPORT_FORMATS))
    p.add_argument("--out", default="out", help="output folder")
    p.add_argument("--restart", action="store_true",
                   help="start again in --out instead of resuming the tunes already logged there")
    p.add_argument("--prefs", default=None,
                   help="steer by preference models (a file from `prefs train`): conditioning "
                        "from the history model, best of --best-of by the reward model; the "
                        "temperature is the predicted one unless --temperature is given")
    p.add_argument("--best-of", type=int, default=8,
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
    out = Path(path)
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {path!r} is a file; give a folder (it is made if missing)")
    out.mkdir(parents=True, exist_ok=True)
    if not os.access(out, os.W_OK):
        raise PermissionError(f"--out {path!r}: the folder cannot be written")
    return out


def _logged(log: Path) -> dict[tuple[str, int], dict]:
    """The tunes a previous run wrote completely, by (setting, tune): a rerun skips them."""
    done = {}
    if log.exists():
        for line in log.read_text().splitlines():
            try:
                row = json.loads(line)
                done[(row["setting"], row["tune"])] = row
            except (ValueError, KeyError, TypeError):
                continue  # a line cut off by Ctrl-C: that tune is written again
    return done


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
    from toolkit.lm.model import load_model
    from toolkit.music.check import check_tokens

    model = load_model(args.model)
    plan = _plan(args, model)                     # every setting checked before anything exists
    prefs = None
    if args.prefs is not None:
        from toolkit.measure.preferences import Preferences

        prefs = Preferences.load(args.prefs)
        prefs.check_model(model)
    out = _out_folder(args.out)
    log = out / "tunes.jsonl"
    if args.restart and log.exists():
        log.unlink()
    done = _logged(log)
    common = {"n": args.n, "meter": args.meter, "mode": args.mode, "style": args.style,
              "guidance": args.guidance, "prime": args.prime, "key": args.key,
              "max_tokens": args.max_tokens, "constrain": _constrain(args)}
    head = {"model": model.info.get("id", f"folk_{model.arch}"), "command": " ".join(sys.argv),
            "log": log.name, **({"prefs": str(args.prefs)} if prefs is not None else {})}
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
                        saved, errors = _save(tune, folder, s["formats"], f"tune_{i:03d}")
                        row = {"setting": s["name"], "tune": i, "files": [str(f) for f in saved],
                               "valid": v.ok, "problems": v.problems}
                        if errors:
                            row["errors"] = errors
                            print(f"tune {i}: " + "; ".join(errors), file=sys.stderr)
                        logfile.write(json.dumps(row) + "\n")
                        logfile.flush()
                    else:
                        resumed += 1
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
    from toolkit.lm.model import load_model
    from toolkit.measure.interactions import read_events
    from toolkit.measure.preferences import Preferences

    out = Path(args.out)
    if out.is_dir():
        raise ValueError(f"--out {args.out!r} is a folder; give a file such as prefs.json")
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
    prefs = Preferences.fit(events, load_model(args.model), seed=args.seed)
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
    parser = argparse.ArgumentParser(
        prog=Path(sys.argv[0]).name if Path(sys.argv[0]).name == "folk-sampler" else PROG,
        description="Folk Sampler: a small LSTM writes folk tunes in ABC; "
                    "you choose how it samples.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("build-data", help="build the tokenised dataset from music21's ABC corpus")
    p.add_argument("--out", default=None, help="cache directory (default: the user cache)")
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
    t.add_argument("--out", default="prefs.json", help="the preferences file to write")
    t.add_argument("--model", default=None, help="the generator they are for (default lstm)")
    t.add_argument("--seed", type=int, default=0)
    t.set_defaults(func=_prefs_train)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = make_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
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
        print("interrupted: the tunes written so far are logged; run the same command to resume",
              file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
