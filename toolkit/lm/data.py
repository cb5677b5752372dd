"""The folk-tune dataset: built offline from the ABC tunes inside music21's corpus.

``build()`` reads every tune of five collections, encodes it (:mod:`toolkit.music.tokens`), records
why the ones it cannot use were dropped, removes duplicates, and splits train / valid / test by a
stable hash of the tune's melody, so a tune and its duplicates always fall in the same split.  The
result is a JSON-lines cache in ``datasets/cache/`` (not committed; rebuilt in well under a
minute).

>>> records = load("train")            # doctest: +SKIP
>>> records[0]["tokens"][:4]           # doctest: +SKIP
['<s>', 'M:2/4', 'K:maj', 'S:german']
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import signal
import time
from collections import Counter
from collections.abc import Iterator
from multiprocessing import Pool
from pathlib import Path

from toolkit.music import m21
from toolkit.music.check import check_tokens
from toolkit.music.tokens import ABCSyntaxError, encode, is_pitch, split_tunes

__all__ = ["COLLECTIONS", "CACHE_DIR", "TOY_PATH", "MY_TUNES_DIR", "build", "load", "records",
           "load_toy",
           "read_abc_files", "skipped_table", "holdout", "style_of", "iter_corpus"]

ROOT = Path(__file__).resolve().parents[2]
PACKAGE_DATA = Path(__file__).resolve().parents[1] / "data"   # ships with the package
TOY_PATH = PACKAGE_DATA / "toy.abc"
MY_TUNES_DIR = PACKAGE_DATA / "my_tunes"  # an example of a student's own ABC collection


def _cache_dir() -> Path:
    """Where the built dataset lives: ``$FOLK_SAMPLER_CACHE`` when set (a JupyterHub points every
    user at one shared, read-only copy); ``datasets/cache`` in a clone of the repository; else
    the user's cache folder (``$XDG_CACHE_HOME`` or ``~/.cache``, then ``folk-sampler``), never
    site-packages."""
    if os.environ.get("FOLK_SAMPLER_CACHE"):
        return Path(os.environ["FOLK_SAMPLER_CACHE"]).expanduser()
    if (ROOT / "pyproject.toml").is_file() and (ROOT / "datasets").is_dir():
        return ROOT / "datasets" / "cache"
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "folk-sampler"


CACHE_DIR = _cache_dir()
COLLECTIONS = ("essenFolksong", "oneills1850", "ryansMammoth", "airdsAirs", "miscFolk")
MAX_TOKENS = 512          # longer tunes are dropped (reason: "too long")
MIN_TUNES_PER_TOKEN = 10  # rarer symbols are not in the vocabulary; their tunes are dropped
MIN_TUNES_PER_METER = 20
SPLIT_PERCENT = {"train": 90, "valid": 5, "test": 5}


def style_of(collection: str, abc: str) -> str:
    """The style label of a tune: where it comes from, in one word.

    Essen songs carry their origin in an ``O:`` field (China, Germany, Luxembourg, Ireland...);
    the other collections have one style each.
    """
    if collection == "essenFolksong":
        origin = re.search(r"(?m)^O:(.*)$", abc)
        o = origin.group(1) if origin else ""
        if "China" in o:
            return "chinese"
        if "Irland" in o:
            return "irish"
        if "Deutschland" in o or not o.strip():
            return "german"
        return "european"
    return {"oneills1850": "irish", "ryansMammoth": "american", "airdsAirs": "scottish",
            "miscFolk": "american"}.get(collection, "other")


def iter_corpus() -> Iterator[tuple[str, str, str]]:
    """Yield ``(collection, source, abc)`` for every tune of the five collections (offline)."""
    m21.load()
    from music21 import corpus

    for path in sorted(corpus.getPaths(fileExtensions=["abc"]), key=str):
        parts = Path(path).parts
        collection = parts[parts.index("corpus") + 1]
        if collection not in COLLECTIONS:
            continue
        text = Path(path).read_text(encoding="latin-1")
        for i, tune in enumerate(split_tunes(text)):
            yield collection, f"{collection}/{Path(path).name}#{i}", tune


def _encode_one(item: tuple[str, str, str]) -> dict:
    collection, source, abc = item
    style = style_of(collection, abc)
    rec = {"collection": collection, "source": source, "style": style}
    try:
        tokens = encode(abc, style, phrase_breaks_are_bars=collection == "essenFolksong")
    except ABCSyntaxError as err:
        reason = re.sub(r" \(line .*\)$", "", str(err))
        if "unknown symbol" not in reason:  # group by kind: "key '…' is not a tonic and a mode"
            reason = re.sub(r"'[^']*'", "'…'", reason.split(" (e.g.")[0])
        rec["error"] = reason
        return rec
    validity = check_tokens(tokens)
    if not validity.readable:  # the model learns from tunes whose bars add up (lenient rules)
        rec["error"] = ("a bar is not as long as the meter" if not validity.bars_ok
                        else "unbalanced repeats or endings")
        return rec
    rec["tokens"] = tokens
    return rec


def _melody_key(tokens: list[str]) -> str:
    """What makes two tunes 'the same': mode and the first 48 pitches after transposition."""
    pitches = [t for t in tokens if is_pitch(t)][:48]
    return tokens[2] + " " + " ".join(pitches)


def _split_of(key: str) -> str:
    h = int(hashlib.sha1(key.encode()).hexdigest()[:8], 16) % 100
    return "train" if h < SPLIT_PERCENT["train"] else (
        "valid" if h < SPLIT_PERCENT["train"] + SPLIT_PERCENT["valid"] else "test")


def build(out_dir: str | Path | None = None, verbose: bool = False) -> dict:
    """Build the dataset cache; return its statistics (also written to ``stats.json``)."""
    t0 = time.perf_counter()
    out = Path(out_dir) if out_dir else CACHE_DIR
    out.mkdir(parents=True, exist_ok=True)
    items = list(iter_corpus())
    # the workers ignore Ctrl-C: the main process alone stops (one message, no worker tracebacks)
    with Pool(min(2, os.cpu_count() or 1), signal.signal, (signal.SIGINT, signal.SIG_IGN)) as pool:
        work = pool.imap(_encode_one, items, chunksize=64)
        if verbose:
            from tqdm.auto import tqdm

            work = tqdm(work, total=len(items), desc="encoding tunes", unit="tune")
        recs = list(work)

    dropped: Counter = Counter()
    for r in recs:
        if "error" in r:
            dropped[r["error"]] += 1
    ok = [r for r in recs if "tokens" in r]
    for r in ok:
        if len(r["tokens"]) > MAX_TOKENS:
            r["error"] = f"longer than {MAX_TOKENS} tokens"
    meters = Counter(r["tokens"][1] for r in ok if "error" not in r)
    for r in ok:
        if "error" not in r and meters[r["tokens"][1]] < MIN_TUNES_PER_METER:
            r["error"] = f"rare meter (fewer than {MIN_TUNES_PER_METER} tunes)"
    tune_counts: Counter = Counter()
    for r in ok:
        if "error" not in r:
            tune_counts.update(set(r["tokens"][4:]))
    rare = {t for t, c in tune_counts.items() if c < MIN_TUNES_PER_TOKEN}
    for r in ok:
        if "error" not in r and rare.intersection(r["tokens"][4:]):
            r["error"] = f"rare symbol (in fewer than {MIN_TUNES_PER_TOKEN} tunes)"
    for r in ok:
        if "error" in r:
            dropped[r["error"]] += 1
    usable = [r for r in ok if "error" not in r]

    seen: dict[str, dict] = {}
    duplicates = Counter()
    for r in usable:
        key = _melody_key(r["tokens"])
        if key in seen:
            duplicates[r["collection"]] += 1
            continue
        r["split"] = _split_of(key)
        seen[key] = r
    kept = list(seen.values())

    vocab = sorted({t for r in kept for t in r["tokens"]})
    tmp = out / "tunes.jsonl.part"  # renamed when complete: load() never sees half a file
    with open(tmp, "w") as f:
        for r in kept:
            f.write(json.dumps({k: r[k] for k in ("source", "collection", "style", "split",
                                                  "tokens")}) + "\n")
    per_collection = {c: Counter() for c in COLLECTIONS}
    for r in recs:
        per_collection[r["collection"]]["corpus"] += 1
    for r in kept:
        per_collection[r["collection"]][r["split"]] += 1
    stats = {
        "corpus_tunes": len(recs),
        "kept": len(kept),
        "duplicates_removed": sum(duplicates.values()),
        "duplicates_by_collection": dict(duplicates),
        "dropped": dict(dropped.most_common()),
        "per_collection": {c: dict(v) for c, v in per_collection.items()},
        "splits": dict(Counter(r["split"] for r in kept)),
        "styles": dict(Counter(r["style"] for r in kept)),
        "meters": dict(Counter(r["tokens"][1] for r in kept).most_common()),
        "modes": dict(Counter(r["tokens"][2] for r in kept).most_common()),
        "vocab_size": len(vocab),
        "tokens_train": sum(len(r["tokens"]) for r in kept if r["split"] == "train"),
        "seconds": round(time.perf_counter() - t0, 1),
    }
    (out / "vocab.json").write_text(json.dumps(vocab))
    (out / "stats.json").write_text(json.dumps(stats, indent=1))
    os.replace(tmp, out / "tunes.jsonl")
    if verbose:
        print(json.dumps(stats, indent=1))
    return stats


def records(split: str = "train", cache_dir: str | Path | None = None) -> Iterator[dict]:
    """The records of one split (``train``, ``valid``, ``test`` or ``all``), one at a time:
    for a figure over the whole corpus, without holding it (the corpus as a list costs a
    kernel ~20 MB more at its peak; ``benchmarks/bench_memory.py``).

    Builds the cache first when it is absent.

    >>> sum(1 for _ in records("valid")) == len(load("valid"))
    True
    """
    if split not in ("train", "valid", "test", "all"):
        raise ValueError(f"split must be one of 'train', 'valid', 'test', 'all', got {split!r}")
    d = Path(cache_dir) if cache_dir else CACHE_DIR
    if not (d / "tunes.jsonl").exists():
        import sys

        print(f"Building the dataset cache in {d} (once, a few seconds; "
              "`python -m toolkit build-data` does it ahead of time)...", file=sys.stderr)
        build(d, verbose=True)
    return _read(d / "tunes.jsonl", split)


def _read(path: Path, split: str) -> Iterator[dict]:
    names: dict[str, str] = {}
    with open(path) as f:
        for line in f:
            r = json.loads(line)
            if split == "all" or r["split"] == split:
                # one string object per token name, shared by every tune: the training split
                # then holds ~1.5M pointers, not ~1.5M strings (bench_memory.py measures it)
                r["tokens"] = [names.setdefault(t, t) for t in r["tokens"]]
                yield r


def load(split: str = "train", cache_dir: str | Path | None = None) -> list[dict]:
    """Records of one split (``train``, ``valid``, ``test`` or ``all``), as a list.

    Builds the cache first when it is absent.
    """
    return list(records(split, cache_dir))


def _abc_paths(paths) -> tuple[list[Path], list[tuple[str, str]]]:
    """Files to read: a folder stands for every ``*.abc`` file under it (sorted)."""
    files, skipped = [], []
    for p in [paths] if isinstance(paths, str | Path) else paths:
        p = Path(p)
        if p.is_dir():
            found = sorted(q for q in p.rglob("*.abc") if q.is_file())
            if not found:
                skipped.append((str(p), "no .abc files in this folder"))
            files += found
        else:
            files.append(p)
    return files, skipped


def _line_in_file(err: ABCSyntaxError, offset: int) -> str:
    """The error's message with its line counted in the file, not in the tune."""
    if err.line is None:
        return str(err)
    message = re.sub(r" \(line \d+, column \d+\)$", "", str(err))
    return f"{message} (line {err.line + offset}, column {err.column})"


def read_abc_files(paths, style: str | None = None, *,
                   check_bars: bool = False) -> tuple[list[dict], list[tuple[str, str]]]:
    """Encode every tune in some ABC files; return ``(records, skipped)``.

    ``paths`` is one path or a list of them; a folder stands for every ``*.abc`` file in it
    and its subfolders.  A tune or a file that cannot be read is skipped, never fatal:
    ``skipped`` lists ``(where, why)`` -- ``where`` is the file's path, or ``"name.abc tune N"``
    for one tune of a file, and ``why`` names the problem and its line *in the file*.  With
    ``check_bars`` a tune whose bars do not add up to its meter (or whose repeats do not
    balance) is skipped too, as the corpus builder skips it
    (:func:`toolkit.metrics.check_tokens`).  :func:`skipped_table` prints ``skipped`` for a
    person.
    """
    records: list[dict] = []
    files, skipped = _abc_paths(paths)
    for p in files:
        try:
            text = p.read_text(encoding="utf-8", errors="replace")
        except OSError as err:
            skipped.append((str(p), f"cannot read the file: {err.strerror}"))
            continue
        starts = [m.start() for m in re.finditer(r"(?m)^X:", text)]
        tunes = split_tunes(text)
        if not tunes:
            skipped.append((str(p), "no tune found (every tune starts with an X: line)"))
        for i, (abc, start) in enumerate(zip(tunes, starts, strict=True)):
            try:
                tokens = encode(abc, style)
            except ABCSyntaxError as err:
                skipped.append((f"{p.name} tune {i + 1}", _line_in_file(err, text.count(
                    "\n", 0, start))))
                continue
            if check_bars:
                validity = check_tokens(tokens)
                if not validity.readable:
                    skipped.append((f"{p.name} tune {i + 1}",
                                    "; ".join(validity.readable_problems)))
                    continue
            records.append({"source": f"{p.name}#{i}", "style": style, "split": "train",
                            "tokens": tokens})
    return records, skipped


def skipped_table(skipped: list[tuple[str, str]], root: str | Path | None = None) -> str:
    """The ``skipped`` list of :func:`read_abc_files` as a small text table for a person.

    Paths under ``root`` (the folder that was read) are shown relative to it.

    >>> print(skipped_table([("mine/a.abc tune 2", "unknown symbol '#' (line 9, column 5)")]))
    skipped                   why
    ------------------------  -------------------------------------
    mine/a.abc tune 2         unknown symbol '#' (line 9, column 5)
    >>> print(skipped_table([]))
    nothing skipped: every tune could be read
    """
    if not skipped:
        return "nothing skipped: every tune could be read"
    rows = []
    for where, why in skipped:
        if root is not None:
            try:
                where = str(Path(where).relative_to(root))
            except ValueError:
                pass
        rows.append((where, why))
    width = max(24, *(len(w) for w, _ in rows))
    why_width = max(len(y) for _, y in rows)
    lines = [f"{'skipped':<{width}}  why", f"{'-' * width}  {'-' * why_width}"]
    lines += [f"{w:<{width}}  {y}" for w, y in rows]
    return "\n".join(lines)


def holdout(records: list[dict], every: int = 10) -> tuple[list[dict], list[dict]]:
    """Split some tunes into ``(train, valid)``: every ``every``-th tune (the 1st, the
    ``every + 1``-th, ...) is held out for validation, so even three tunes give one to check on.

    Deterministic: no random numbers.  Raises ValueError for fewer than two tunes.

    >>> train, valid = holdout([{"n": i} for i in range(12)], every=5)
    >>> [r["n"] for r in valid], len(train)
    ([0, 5, 10], 9)
    """
    if isinstance(every, bool) or not isinstance(every, int) or every < 2:
        raise ValueError(f"every must be an integer >= 2, got {every!r}")
    if len(records) < 2:
        raise ValueError(f"holdout needs at least 2 tunes (one to learn from, one to check "
                         f"on), got {len(records)}")
    valid = [r for i, r in enumerate(records) if i % every == 0]
    train = [r for i, r in enumerate(records) if i % every != 0]
    return train, valid


def load_toy(style: str | None = None) -> list[dict]:
    """The small hand-written toy dataset that ships with the package (for tests and teaching).

    ``style`` labels every tune (``S:toy``); None writes the unknown style ``S:?``.
    """
    records, skipped = read_abc_files(TOY_PATH, style=style)
    if skipped:
        raise RuntimeError(f"the toy dataset has unreadable tunes: {skipped}")
    return records
