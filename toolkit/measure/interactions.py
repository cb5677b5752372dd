"""The listener's log: every interaction with the rating studio, one JSON object per line.

A log is a plain file the student owns (JSON Lines, appended as they go: Ctrl-C or a dead kernel
loses at most the line being written, and the next event starts a line of its own). Nothing
leaves the machine and nothing names the person: a session is a random id. A class merges its
logs by putting the files in one folder and reading the folder.

Schema (version 1). Every line holds::

    {"v": 1, "time": "2026-12-05T22:31:04.120Z", "session": "3f9a1c0e", "type": ..., ...}

and, by ``type``:

============  =====================================================================================
``settings``  a control moved: ``"name"`` (``"temperature"``, ``"mode"``...), ``"old"``, ``"new"``
``tune``      a tune was written and shown: ``"tune"`` (its id), ``"tokens"`` (list of tokens),
              ``"settings"`` (dict: temperature, top_k, top_p, min_p, seed, meter, mode, style...),
              ``"steered"`` (true when the preference models chose it)
``play``      the tune was played: ``"tune"``
``rate``      ``"tune"``, ``"rating"``: +1 / -1 (thumbs) or 1-5 (``"scale": "stars"``)
``keep``      the tune was kept: ``"tune"``
``skip``      the tune was skipped: ``"tune"``
============  =====================================================================================

A tune's id is the first 12 hex digits of the SHA-1 of its tokens joined by spaces, so the same
tune has the same id in every log.  What counts as liked (:func:`judgements`): a thumbs up, 4 or 5
stars, or a keep; disliked: a thumbs down, 1 or 2 stars, or a skip; the last judgement counts.

>>> import tempfile, pathlib
>>> folder = pathlib.Path(tempfile.mkdtemp())
>>> log = EventLog(folder / "me.jsonl", session="demo")
>>> tid = log.tune(["<s>", "M:6/8", "K:min", "S:irish", "A", "B", "</s>"], {"temperature": 0.8})
>>> _ = log.rate(tid, +1)
>>> events = read_events(folder)
>>> [e["type"] for e in events], events.problems
(['tune', 'rate'], [])
>>> [(j.tune, j.liked) for j in judgements(events)] == [(tid, True)]
True
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import hashlib
import json
import os
import secrets
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["VERSION", "TYPES", "EventLog", "Events", "read_events", "check_event", "tune_id",
           "Judgement", "judgements", "liking", "sessions", "until_judged"]

VERSION = 1
#: Each event type and the fields it must carry (besides v, time, session, type).
TYPES: dict[str, tuple[str, ...]] = {
    "settings": ("name", "old", "new"),
    "tune": ("tune", "tokens", "settings"),
    "play": ("tune",),
    "rate": ("tune", "rating"),
    "keep": ("tune",),
    "skip": ("tune",),
}


def tune_id(tokens: Sequence[str]) -> str:
    """The tune's id: the first 12 hex digits of the SHA-1 of its tokens joined by spaces."""
    return hashlib.sha1(" ".join(tokens).encode()).hexdigest()[:12]


def _now() -> str:
    return _dt.datetime.now(_dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def check_event(obj: Any) -> dict:
    """The event itself when it follows the schema; else a ValueError saying what is wrong."""
    if not isinstance(obj, dict):
        raise ValueError(f"an event is a JSON object, got {type(obj).__name__}")
    if obj.get("v") != VERSION:
        raise ValueError(f"unknown schema version v={obj.get('v')!r} (this reader knows "
                         f"v={VERSION})")
    kind = obj.get("type")
    if kind not in TYPES:
        raise ValueError(f"unknown event type {kind!r}; known: {', '.join(TYPES)}")
    missing = [f for f in ("time", "session", *TYPES[kind]) if f not in obj]
    if missing:
        raise ValueError(f"a {kind!r} event needs {missing[0]!r}")
    if kind == "tune" and not (isinstance(obj["tokens"], list)
                               and all(isinstance(t, str) for t in obj["tokens"])
                               and isinstance(obj["settings"], dict)):
        raise ValueError("a 'tune' event needs 'tokens' (a list of strings) and 'settings' "
                         "(an object)")
    if kind == "rate":
        r = obj["rating"]
        stars = obj.get("scale") == "stars"
        ok = isinstance(r, int) and not isinstance(r, bool) and (
            1 <= r <= 5 if stars else r in (-1, 1))
        if not ok:
            raise ValueError(f"rating must be +1 or -1 (or 1-5 with \"scale\": \"stars\"), "
                             f"got {r!r}")
    return obj


class EventLog:
    """Appends events to one JSONL file (made with its folder when missing).

    ``session`` is a random id unless given; nothing else about the person is written.
    Each method writes one line at once and returns the tune's id (``tune``) or the event.
    """

    def __init__(self, path: str | os.PathLike, session: str | None = None):
        self.path = Path(path)
        if self.path.is_dir():
            raise ValueError(f"log path {str(self.path)!r} is a folder; give a file such as "
                             f"{str(self.path / 'my_ratings.jsonl')!r}")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.session = session or secrets.token_hex(4)

    def write(self, kind: str, **fields: Any) -> dict:
        """Append one event of type ``kind`` (checked against the schema first)."""
        event = check_event({"v": VERSION, "time": _now(), "session": self.session,
                             "type": kind, **fields})
        line = json.dumps(event, ensure_ascii=False, default=_jsonable)
        with open(self.path, "a+b") as f:
            f.seek(0, os.SEEK_END)
            if f.tell():                  # a line cut off by a dead kernel stays its own line
                f.seek(-1, os.SEEK_END)
                if f.read(1) != b"\n":
                    line = "\n" + line
            f.write((line + "\n").encode("utf-8"))
        return event

    def tune(self, tokens: Sequence[str], settings: Mapping[str, Any], *,
             steered: bool = False) -> str:
        """Log a tune that was written and shown; return its id."""
        tid = tune_id(tokens)
        self.write("tune", tune=tid, tokens=list(tokens), settings=dict(settings),
                   steered=bool(steered))
        return tid

    def settings(self, name: str, old: Any, new: Any) -> dict:
        return self.write("settings", name=name, old=old, new=new)

    def play(self, tune: str) -> dict:
        return self.write("play", tune=tune)

    def rate(self, tune: str, rating: int, *, stars: bool = False) -> dict:
        """+1 / -1, or 1-5 with ``stars=True``."""
        extra = {"scale": "stars"} if stars else {}
        return self.write("rate", tune=tune, rating=rating, **extra)

    def keep(self, tune: str) -> dict:
        return self.write("keep", tune=tune)

    def skip(self, tune: str) -> dict:
        return self.write("skip", tune=tune)

    def __repr__(self) -> str:
        return f"EventLog({str(self.path)!r}, session={self.session!r})"


def _jsonable(value: Any) -> Any:
    if hasattr(value, "item"):       # numpy / torch scalars
        return value.item()
    if isinstance(value, tuple | set):
        return list(value)
    return repr(value)


class Events(list):
    """The events read, in order (file by file, line by line); ``problems`` lists each line that
    was not read, as ``"file:line: reason"``."""

    def __init__(self, events: Iterable[dict] = (), problems: Iterable[str] = ()):
        super().__init__(events)
        self.problems = list(problems)


def read_events(path: str | os.PathLike | Iterable[str | os.PathLike]) -> Events:
    """Read a log file, every ``*.jsonl`` in a folder (a class's logs, merged), or several paths.

    A line that is not JSON or does not follow the schema is left out and named in
    ``events.problems`` (and one warning); every other event is still read.
    A missing path raises FileNotFoundError naming it.
    """
    paths = [path] if isinstance(path, str | os.PathLike) else list(path)
    files: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            files += sorted(p.glob("*.jsonl"))
        elif p.exists():
            files.append(p)
        else:
            raise FileNotFoundError(f"no log at {str(p)!r}")
    events, problems = [], []
    for f in files:
        with open(f, encoding="utf-8", errors="replace") as lines:
            for number, line in enumerate(lines, 1):
                if not line.strip():
                    continue
                try:
                    events.append(check_event(json.loads(line)))
                except json.JSONDecodeError as err:
                    problems.append(f"{f}:{number}: not JSON ({err.msg})")
                except ValueError as err:
                    problems.append(f"{f}:{number}: {err}")
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        warnings.warn(f"{len(problems)} log line(s) left out: {problems[0]}{more}", stacklevel=2)
    return Events(events, problems)


def sessions(events: Iterable[dict]) -> dict[str, list[dict]]:
    """The events of each session, in order (a class's merged logs hold several)."""
    out: dict[str, list[dict]] = {}
    for e in events:
        out.setdefault(e["session"], []).append(e)
    return out


@dataclass(frozen=True)
class Judgement:
    """A tune the listener judged: its tokens and settings, ``liked`` (True/False) and the
    position of the judgement among all judgements by time (``order``: later = more recent)."""

    tune: str
    tokens: tuple[str, ...]
    settings: dict
    liked: bool
    order: int
    session: str


def liking(event: dict) -> bool | None:
    """True when the event says "I like this tune", False for "I do not", None otherwise."""
    kind = event["type"]
    if kind == "keep":
        return True
    if kind == "skip":
        return False
    if kind == "rate":
        r = event["rating"]
        if event.get("scale") == "stars":
            return True if r >= 4 else False if r <= 2 else None
        return r > 0
    return None


def judgements(events: Iterable[dict]) -> list[Judgement]:
    """Every judged tune with the last judgement of it, once per session, oldest first.

    "Oldest first" is by the judgement's timestamp, so a class's merged logs interleave as the
    ratings were given (``order`` counts judgements in that order). A rating or keep/skip of a
    tune the log never showed (no ``tune`` event) is left out.
    """
    shown: dict[str, dict] = {}
    last: dict[tuple[str, str], tuple[str, Judgement]] = {}
    for session, evs in sessions(events).items():
        for e in evs:
            if e["type"] == "tune":
                shown[e["tune"]] = e
            liked = liking(e)
            if liked is None or e["tune"] not in shown:
                continue
            t = shown[e["tune"]]
            last.pop((session, e["tune"]), None)   # re-judged: it moves to the end
            last[(session, e["tune"])] = (str(e["time"]), Judgement(
                e["tune"], tuple(t["tokens"]), dict(t["settings"]), liked, 0, session))
    ordered = sorted(last.values(), key=lambda tj: tj[0])      # stable: ties keep log order
    return [dataclasses.replace(j, order=i) for i, (_, j) in enumerate(ordered)]


def until_judged(events: Sequence[dict], k: int) -> Events:
    """The events up to and including the ``k``-th judgement (a rating, keep or skip that says
    liked or not): the log as it stood then. All of them when there are fewer."""
    if isinstance(k, bool) or not isinstance(k, int) or k < 0:
        raise ValueError(f"k must be an integer >= 0, got {k!r}")
    out, seen = [], 0
    for e in events:
        if seen == k:
            break
        out.append(e)
        seen += liking(e) is not None
    return Events(out)
