"""Which corpus tunes the strict checker refuses, and why (the figures in datasets/README.md).

    python benchmarks/strict_corpus.py      # writes benchmarks/results/strict_corpus.md

Every kept tune (all splits) is judged by ``toolkit.music.check.check_tokens``; a refused tune is
counted once per rule it breaks and once under the first reason it is given.  The corpus itself
was filtered by the lenient verdict (``Validity.readable``), so these tunes are in the data.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

from toolkit import data
from toolkit.music.check import check_tokens

OUT = Path(__file__).parent / "results" / "strict_corpus.md"
RULES = {"bars_ok": "bars (pickups, section ends)", "repeats_ok": "repeats and endings",
         "ties_ok": "ties", "tuplets_ok": "tuplets", "broken_ok": "broken rhythm",
         "complete": "the end of the tune"}


def main() -> str:
    records = data.load("all")
    rules, first, examples = Counter(), Counter(), {}
    refused = 0
    for r in records:
        v = check_tokens(r["tokens"])
        if v.ok:
            continue
        refused += 1
        for field, name in RULES.items():
            if not getattr(v, field):
                rules[name] += 1
        key = re.split(r": (?=[a-z0-9])", v.reason.split(" (token")[0])[0]
        first[key] += 1
        examples.setdefault(key, r["source"])
    lines = ["# The corpus under the strict checker", "",
             f"{refused:,} of {len(records):,} kept tunes ({refused / len(records):.1%}) break a "
             "strict rule (`python benchmarks/strict_corpus.py`).", "",
             "| rule | tunes |", "|---|---:|"]
    lines += [f"| {name} | {n:,} |" for name, n in rules.most_common()]
    lines += ["", "| first reason | tunes | for example |", "|---|---:|---|"]
    lines += [f"| {k.replace('|', chr(92) + '|')} | {n:,} | `{examples[k]}` |"
              for k, n in first.most_common(12)]
    text = "\n".join(lines) + "\n"
    OUT.write_text(text)
    print(text)
    return text


if __name__ == "__main__":
    main()
