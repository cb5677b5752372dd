"""The dataset: built from music21's corpus (offline, a few seconds), split stably, and valid."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from toolkit import data
from toolkit.measure.metrics import check_tokens
from toolkit.music import tokens as abc


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> tuple[dict, Path]:
    """A fresh build of the whole dataset into a temporary directory (the shared cache is kept)."""
    out = tmp_path_factory.mktemp("cache")
    return data.build(out), out


@pytest.fixture(scope="module")
def records(built) -> list[dict]:
    return data.load("all", cache_dir=built[1])


def test_the_dataset_builds_from_the_corpus(built, records):
    stats, out = built
    assert {p.name for p in out.iterdir()} == {"tunes.jsonl", "vocab.json", "stats.json"}
    assert stats["kept"] == len(records) >= 10_000
    assert stats["corpus_tunes"] > 12_000
    # every corpus tune is kept, dropped for a reason, or removed as a duplicate
    assert stats["corpus_tunes"] == (stats["kept"] + stats["duplicates_removed"]
                                     + sum(stats["dropped"].values()))
    assert json.loads((out / "stats.json").read_text()) == stats


def test_counts_per_collection_and_split_add_up(built, records):
    stats, _ = built
    assert set(stats["per_collection"]) == set(data.COLLECTIONS)
    for collection, counts in stats["per_collection"].items():
        kept = [r for r in records if r["collection"] == collection]
        assert counts["corpus"] >= len(kept) > 0
        assert sum(v for k, v in counts.items() if k != "corpus") == len(kept)
    assert stats["splits"] == dict(Counter(r["split"] for r in records))


def test_splits_are_disjoint_and_about_90_5_5(records):
    sources = [r["source"] for r in records]
    assert len(sources) == len(set(sources))
    melodies = [data._melody_key(r["tokens"]) for r in records]
    assert len(melodies) == len(set(melodies))  # duplicates removed: no melody in two splits
    shares = Counter(r["split"] for r in records)
    assert set(shares) == {"train", "valid", "test"}
    assert 0.87 < shares["train"] / len(records) < 0.93
    assert 0.03 < shares["valid"] / len(records) < 0.07
    assert 0.03 < shares["test"] / len(records) < 0.07


def test_load_returns_one_split(built):
    _, out = built
    train, valid = data.load("train", cache_dir=out), data.load("valid", cache_dir=out)
    assert {r["split"] for r in train} == {"train"} and {r["split"] for r in valid} == {"valid"}
    assert not {r["source"] for r in train} & {r["source"] for r in valid}
    with pytest.raises(ValueError, match="'training'"):
        data.load("training", cache_dir=out)


def test_records_stream_what_load_lists(built):
    _, out = built
    stream = data.records("all", cache_dir=out)
    first = next(stream)
    assert first == data.load("all", cache_dir=out)[0]
    assert 1 + sum(1 for _ in stream) == len(data.load("all", cache_dir=out))
    with pytest.raises(ValueError, match="'training'"):  # at the call, not at the first tune
        data.records("training", cache_dir=out)


def test_the_split_follows_the_melody_so_duplicates_share_it(records):
    for r in records[::50]:  # the split is a pure function of the melody
        assert r["split"] == data._split_of(data._melody_key(r["tokens"]))
    # the same tune found in two collections: different style tokens, same melody, same split
    text = "X:1\nT:Twice\nM:6/8\nL:1/8\nK:G\n|: GAB d2B | c2A B2G | AGF G3 :|\n"
    irish = data._encode_one(("oneills1850", "a.abc#0", text))
    american = data._encode_one(("ryansMammoth", "b.abc#0", text))
    assert irish["tokens"][3] == "S:irish" and american["tokens"][3] == "S:american"
    assert data._melody_key(irish["tokens"]) == data._melody_key(american["tokens"])
    # written in another key, it is still the same melody
    in_d = data._encode_one(("oneills1850", "c.abc#0", text.replace("K:G", "K:D").replace(
        "|: GAB d2B | c2A B2G | AGF G3 :|", "|: DEF A2F | G2E F2D | EDC D3 :|")))
    assert data._split_of(data._melody_key(in_d["tokens"])) == data._split_of(
        data._melody_key(irish["tokens"]))


def test_the_split_hash_is_pinned():
    """Changing the hash would silently move tunes between train and test."""
    assert data._split_of("K:maj C D E F G") == "train"
    assert data._split_of("K:maj 13") == "valid"
    assert data._split_of("K:maj 14") == "test"


def test_every_kept_tune_is_valid(built, records):
    _, out = built
    vocab = set(json.loads((out / "vocab.json").read_text()))
    seen: set[str] = set()
    for r in records:
        tokens = r["tokens"]
        v = check_tokens(tokens)  # the corpus filter is the lenient verdict (see music/check)
        assert v.readable, (r["source"], v.problems)
        assert len(tokens) <= data.MAX_TOKENS
        assert tokens[0] == abc.BOS and tokens[-1] == abc.EOS
        assert tokens[3] == f"S:{r['style']}"
        seen.update(tokens)
    assert seen == vocab


def test_styles_meters_and_modes_are_recorded(built, records):
    stats, _ = built
    assert set(stats["styles"]) == {"german", "european", "chinese", "irish", "scottish",
                                    "american"}
    assert stats["styles"] == dict(Counter(r["style"] for r in records))
    assert stats["meters"] == dict(Counter(r["tokens"][1] for r in records))
    assert stats["modes"] == dict(Counter(r["tokens"][2] for r in records))
    assert {"M:2/4", "M:3/4", "M:4/4", "M:6/8"} <= set(stats["meters"])
    assert {"K:maj", "K:min", "K:dor", "K:mix"} <= set(stats["modes"])
    assert all(n >= data.MIN_TUNES_PER_METER for n in stats["meters"].values())


def test_style_of():
    assert data.style_of("essenFolksong", "X:1\nO:China, Hebei\n") == "chinese"
    assert data.style_of("essenFolksong", "X:1\nO:Europa, Mitteleuropa, Deutschland\n") == "german"
    assert data.style_of("essenFolksong", "X:1\nO:Europa, Westeuropa, Irland\n") == "irish"
    assert data.style_of("essenFolksong", "X:1\nO:Europa, Nordeuropa, Schweden\n") == "european"
    assert data.style_of("essenFolksong", "X:1\n") == "german"
    assert data.style_of("airdsAirs", "") == "scottish"
    assert data.style_of("oneills1850", "") == "irish"


def test_read_abc_files_skips_what_it_cannot_read_and_says_why(tmp_path):
    good = tmp_path / "good.abc"
    good.write_text("X:1\nT:One\nM:2/4\nL:1/8\nK:G\n|: GA Bc | d4 :|\n\n"
                    "X:2\nT:Two, broken\nM:2/4\nL:1/8\nK:G\nGA B# | d4 |\n\n"
                    "X:3\nT:Three\nM:3/4\nL:1/8\nK:Em\nE2 G2 B2 | e6 |]\n")
    broken = tmp_path / "broken.abc"
    broken.write_bytes(b"\xff\xfe this is not ABC at all \x00\x01\n")
    records, skipped = data.read_abc_files([good, broken, tmp_path / "missing.abc"],
                                           style="mine")
    assert [r["source"] for r in records] == ["good.abc#0", "good.abc#2"]
    assert records[0]["tokens"][:4] == ["<s>", "M:2/4", "K:maj", "S:mine"]
    assert all(check_tokens(r["tokens"]).readable for r in records)
    where = dict(skipped)
    assert set(where) == {"good.abc tune 2", str(broken), str(tmp_path / "missing.abc")}
    # the line is counted in the file (where an editor shows it), not inside the tune
    assert "'#'" in where["good.abc tune 2"] and "line 13" in where["good.abc tune 2"]
    assert "no tune found" in where[str(broken)]
    assert "cannot read" in where[str(tmp_path / "missing.abc")]
    # one path, not a list, works too
    assert len(data.read_abc_files(good)[0]) == 2


def test_the_toy_dataset_loads_and_is_valid():
    from music21 import converter

    records = data.load_toy()
    assert 36 <= len(records) <= 40
    assert all(check_tokens(r["tokens"]).readable for r in records)
    meters = Counter(r["tokens"][1] for r in records)
    modes = Counter(r["tokens"][2] for r in records)
    assert set(meters) == {"M:2/4", "M:3/4", "M:4/4", "M:6/8"}
    assert {"K:maj", "K:min", "K:dor", "K:mix"} <= set(modes)
    assert modes["K:maj"] > len(records) / 2
    body_tokens = Counter(t for r in records for t in r["tokens"][4:])
    for feature in ("|:", ":|", "[1", "[2", ">", "(3", "z"):
        assert body_tokens[feature] > 0, feature
    text = data.TOY_PATH.read_text()
    assert "CC0" in text.split("X:")[0]
    for tune in abc.split_tunes(text):
        assert converter.parse(tune, format="abc").recurse().notes, tune.splitlines()[1]
        assert "L:1/8" in tune


def test_the_toy_dataset_ships_with_the_package():
    pyproject = (Path(data.ROOT) / "pyproject.toml").read_text()
    assert '"data/*.abc"' in pyproject
    assert data.TOY_PATH.parent.name == "data" and data.TOY_PATH.parent.parent.name == "toolkit"
