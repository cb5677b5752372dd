"""Command line: ``python -m toolkit <command> ...``.

Each command is a small function that parses its own arguments and calls the public API.
"""

from __future__ import annotations

import argparse
import sys


def _build_data(args: argparse.Namespace) -> int:
    from toolkit import data

    data.build(out_dir=args.out, verbose=True)
    return 0


def _train(args: argparse.Namespace) -> int:
    from toolkit import train

    train.main(args)
    return 0


def _generate(args: argparse.Namespace) -> int:
    from toolkit import generation

    return generation.cli_main(args)


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m toolkit",
        description="Folk Sampler: a small LSTM writes folk tunes in ABC; "
                    "you choose how it samples.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("build-data", help="build the tokenised dataset from music21's ABC corpus")
    p.add_argument("--out", default=None, help="cache directory (default: datasets/cache)")
    p.set_defaults(func=_build_data)

    p = sub.add_parser("train", help="train the LSTM (seeded, resumable, CPU or GPU)")
    from toolkit.train import add_arguments as add_train_arguments

    add_train_arguments(p)
    p.set_defaults(func=_train)

    p = sub.add_parser("generate", help="generate tunes and write .abc files and run.json")
    from toolkit.generation import add_arguments as add_generate_arguments

    add_generate_arguments(p)
    p.set_defaults(func=_generate)
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


if __name__ == "__main__":
    sys.exit(main())
