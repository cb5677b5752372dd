"""Write the model cards from the weights' own record and the benchmark results.

    python benchmarks/quality.py
    python benchmarks/bench_generate.py
    python benchmarks/two_models.py
    python benchmarks/model_card.py       # MODEL_CARD.md (LSTM), MODEL_CARD_transformer.md

Every figure in the card comes from ``toolkit/weights/folk_lstm.json`` (training history, command,
time) or ``benchmarks/results/{quality,generate}.json``; nothing is typed in by hand.
"""

from __future__ import annotations

import json
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
WEIGHTS = ROOT / "toolkit" / "weights"


def main() -> None:
    meta = json.loads((WEIGHTS / "folk_lstm.json").read_text())
    cfg, info = meta["config"], meta["info"]
    q = json.loads((RESULTS / "quality.json").read_text())
    g = json.loads((RESULTS / "generate.json").read_text())
    stats = json.loads((ROOT / "datasets" / "cache" / "stats.json").read_text()) \
        if (ROOT / "datasets" / "cache" / "stats.json").exists() else {}
    hist = info["history"]
    best = min(hist, key=lambda h: h["valid_loss"])
    hours = sum(h["seconds"] for h in hist) / 3600
    lines = [
        "# Model card: folk_lstm", "",
        "A language model over folk-tune tokens (one token per musical "
        "symbol, see `toolkit/abc.py`), the model every notebook talks to.", "",
        "## Data", "",
        f"Folk tunes in ABC from music21's corpus (Essen Folksong Collection — **non-commercial "
        f"use only** —, O'Neill's 1850, Ryan's Mammoth, Aird's Airs, miscFolk); "
        f"{stats.get('kept', '?')} tunes after cleaning and deduplication, split train / valid / "
        f"test {stats.get('splits', {}).get('train', '?')} / "
        f"{stats.get('splits', {}).get('valid', '?')} / {stats.get('splits', {}).get('test', '?')}"
        " by a stable hash of the melody. Details: `datasets/README.md`.", "",
        "## Tokens and network", "",
        f"- vocabulary: {len(cfg['vocab'])} tokens (meter, mode and style tokens with their "
        "unknown `?` forms, pitches, durations, bars, repeats, endings, broken rhythm, tuplets, "
        "tie, rest, start, end, padding); every tune transposed to tonic C;",
        f"- embedding {cfg['emb']} → LSTM {cfg['layers']} × {cfg['hidden']} → linear; dropout "
        f"{cfg['dropout']}; **{q['parameters']:,} parameters**;",
        *(["- the bar clock: at every position the input is the token's embedding plus an "
           "embedding of the room left in the current bar after the tokens so far (in twelfths "
           "of an eighth note; the filled length when the meter is unknown; "
           "`toolkit/barclock.py`), so the network reads where the bar stands instead of "
           "counting durations itself;"] if cfg.get("bar_clock") else []),
        *(["- the clock head: the same clock value also adds one learnt bias per token to the "
           f"output logits ({len(cfg['vocab'])} numbers per clock value), so \"no room left: a "
           "duration is unlikely\" need not pass through the LSTM;"]
          if cfg.get("clock_head") else []),
        "- conditioning: meter, mode and style tokens lead each tune; during training each is "
        "replaced by its unknown form with probability 0.15, so the same network gives the "
        "unconditional predictions that classifier-free guidance needs.", "",
        "## Training", "",
        f"- command: `{info.get('command') or 'python -m toolkit train'}`;"
        + (f" {info['note']};" if info.get("note") else ""),
        "- data: the corpus as `python -m toolkit build-data` builds it "
        f"({info.get('dataset_tunes_at_training', '?'):,} tunes in all splits when it was "
        "trained);",
        f"- {len(hist)} epochs, AdamW, cosine learning rate, batches of 64 tunes of similar "
        f"length; best validation loss at epoch {best['epoch']};",
        *([f"- calibration: then {len(cal)} epochs fitting the clock head's bias alone, the "
           "rest frozen and dropout off (the network as it generates); validation loss "
           f"{best['valid_loss']:.4f} → {min(c['valid_loss'] for c in cal):.4f} nats/token. It "
           "barely moves the loss but sharpens what the bar's room allows (figures below);"]
          if (cal := info.get("calibration")) else []),
        f"- time: {hours:.2f} h on 2 CPU cores of a shared machine ({info.get('threads', '?')} "
        "torch thread(s)); the per-epoch times are in `folk_lstm.json`.", "",
        "## Results", "",
        "| | LSTM | 5-gram baseline |", "|---|---|---|",
        f"| valid cross-entropy (nats/token) | {q['lstm_valid_nats']:.3f} | "
        f"{q['ngram5_valid_nats']:.3f} |",
        f"| valid perplexity | {q['lstm_valid_perplexity']:.2f} | "
        f"{q['ngram5_valid_perplexity']:.2f} |",
        f"| test cross-entropy (nats/token) | {q['lstm_test_nats']:.3f} | "
        f"{q['ngram5_test_nats']:.3f} |",
        f"| test perplexity | {q['lstm_test_perplexity']:.2f} | "
        f"{q['ngram5_test_perplexity']:.2f} |", "",
        f"Of {q['samples']} tunes sampled at temperature 1.0 with no truncation "
        f"({q['sampler']}): **{q['share_parse_music21']:.1%} parse in music21**, "
        f"**{q['share_bars_complete']:.1%} have every bar as long as the meter** (pickups and "
        f"section ends may be short), **{q['share_parse_and_bars']:.1%} both**; "
        f"{q['share_fully_valid']:.1%} are fully valid under the strict checker (ties, "
        f"tuplets, broken rhythm, repeats and endings, pickups completed by the section's last "
        f"bar, the end on a full bar: `toolkit/music/grammar.py`). "
        f"With the meter constraint (`toolkit.lm.sampling.constraints`) the same seeds give "
        f"{q['share_bars_complete_with_meter_constraint']:.1%} complete bars; with "
        f"`constrain=\"grammar\"` {q.get('share_fully_valid_with_grammar', float('nan')):.1%} "
        f"are fully valid (`benchmarks/results/grammar.md`).",
        *([f"On {q['samples_large']:,} more tunes (other seeds) "
           f"{q['share_bars_complete_large']:.1%} have every bar complete (95 % interval "
           f"{q['share_bars_complete_large_95ci'][0]:.1%}–"
           f"{q['share_bars_complete_large_95ci'][1]:.1%}); 200 tunes alone leave about ±3 "
           "points of sampling noise."] if "samples_large" in q else []), "",
        *ablation_lines(),
        "Speed on this machine (`benchmarks/bench_generate.py`, " + g["machine"] + "):", "",
        f"- loading the model: {g['load_seconds_median'] * 1000:.0f} ms (median);",
        f"- one 256-token tune: {g['one_tune_256_tokens_ms_median']:.0f} ms (median);",
        f"- a batch of 64 tunes: {g['batch64_tokens_per_second_median']:,} tokens/s"
        + (f" (the model and the sampler; writing the 64 ABC texts, done when a tune is first "
           f"read, takes {g['batch64_write_abc_ms_median']:.0f} ms more; with it, "
           f"{g['batch64_with_abc_text_tokens_per_second_median']:,} tokens/s)."
           if "batch64_write_abc_ms_median" in g else "."), "",
        "## Limits", "",
        "- It learned from Western-European and Chinese folk song collections as transcribed in "
        "ABC; it knows nothing of lyrics, harmony or ornament (dropped by the tokenizer).",
        "- Generated tunes can copy stretches of training tunes: `toolkit.metrics.Memorisation` "
        "measures it (report: `benchmarks/results/sampling_report.md`).",
        "- Licence: trained partly on the Essen collection, distributed with permission for "
        "non-commercial use only; the weights and what they generate inherit that restriction.",
        "",
    ]
    (WEIGHTS / "MODEL_CARD.md").write_text("\n".join(lines))
    print("\n".join(lines))


def ablation_lines() -> list[str]:
    """The clock's parts, from ``benchmarks/clock_ablation.py`` (when it has been run)."""
    path = RESULTS / "clock_ablation.json"
    if not path.exists():
        return []
    lines = ["What the bar clock's parts do (`benchmarks/clock_ablation.py`, the same 1,000 seeds "
             "each; training runs of the same command with the flags shown):", "",
             "| model | valid nats/token | every bar complete (95 % interval) |",
             "|---|---:|---:|"]
    for r in json.loads(path.read_text()):
        name = ("clock as input only (`--no-clock-head`)" if not r["clock_head"] else
                "with the clock head, no calibration (`--calibrate-epochs 0`)"
                if not r["calibration_epochs"] else
                f"with the clock head and {r['calibration_epochs']} calibration epochs (shipped)")
        low, high = r["share_bars_complete_95ci"]
        lines.append(f"| {name} | {r['valid_nats']:.4f} | {r['share_bars_complete']:.1%} "
                     f"({low:.1%}–{high:.1%}) |")
    return [*lines, ""]


def _pct_off(value: float, target: float) -> str:
    return f"{value / target - 1:+.0%}"


def transformer_card() -> None:
    """``toolkit/weights/MODEL_CARD_transformer.md``, from ``folk_transformer.json`` and
    ``benchmarks/results/two_models.json`` (the transformer measured beside the LSTM)."""
    meta = json.loads((WEIGHTS / "folk_transformer.json").read_text())
    cfg, info = meta["config"], meta["info"]
    two = json.loads((RESULTS / "two_models.json").read_text())
    c, models = two["corpus"], two["models"]
    lstm, tf = models["lstm"], models["transformer"]
    linear = models.get("transformer-linear")
    hist = info["history"]
    best = min(hist, key=lambda h: h["valid_loss"])
    cal = info.get("calibration") or []
    hours = info.get("train_seconds", sum(h["seconds"] for h in hist)) / 3600
    head = cfg["dim"] // cfg["heads"]
    names = [("LSTM", lstm), ("transformer", tf)] + ([("transformer, linear", linear)]
                                                      if linear else [])

    def row(label, fmt, get, corpus=""):
        return (f"| {label} | {corpus} | " + " | ".join(fmt.format(get(m)) for _, m in names)
                + " |")

    s1 = lambda m: m["samples"]["1.0"]  # noqa: E731
    s05 = lambda m: m["samples"]["0.5"]  # noqa: E731
    lines = [
        "# Model card: folk_transformer", "",
        "The second network: a small decoder-only transformer over the same folk-tune tokens as "
        "the LSTM (`MODEL_CARD.md`), on the same data, splits, bar clock and conditioning. "
        "`load_model(\"transformer\")` loads it; every sampler, widget, studio and CLI command "
        "takes it (`--model transformer`).", "",
        "## Network", "",
        f"- {cfg['layers']} pre-norm blocks of causal self-attention ({cfg['heads']} heads of "
        f"{head}) and a GELU MLP ({cfg['mlp']} × {cfg['dim']}), width {cfg['dim']}, "
        f"{cfg['attention']} attention; dropout {cfg['dropout']}; "
        f"**{tf['parameters']:,} parameters** (the LSTM: {lstm['parameters']:,});",
        "- inputs: the token's embedding plus the **bar clock** (room left in the bar, as the "
        "LSTM reads it) and the **phrase clock** (bar lines since the last repeat sign or double "
        "bar, up to 16): where the beat and the phrase stand, which token distance alone "
        "cannot tell because note lengths vary;",
        "- positions: **rotary** (RoFormer, Su et al. 2021): relative, so \"the same place one "
        "bar back\" is one pattern anywhere in a tune, and tunes longer than any in training "
        "still work;",
        "- the clock head, as the LSTM's: one learnt bias per bar-clock value and token;",
        "- generation keeps a key/value cache (softmax) or the running sums of linear attention, "
        "so a new token never re-runs the prefix (`toolkit/lm/transformer.py`).", "",
        "## Training", "",
        f"- command: `{info.get('command') or 'python -m toolkit train --arch transformer'}`;",
        f"- {len(hist)} epochs, AdamW, cosine learning rate, batches of 64 tunes of similar "
        f"length, meter/mode/style dropped to unknown with probability 0.15 (for guidance); best "
        f"validation loss at epoch {best['epoch']}"
        + (f"; then {len(cal)} epochs fitting the clock head alone (validation "
           f"{best['valid_loss']:.4f} → {min(x['valid_loss'] for x in cal):.4f})" if cal else "")
        + ";",
        f"- time: {hours:.2f} h on 2 CPU cores of a shared machine, "
        f"{info.get('threads', '?')} torch thread(s); "
        "the per-epoch times are in `folk_transformer.json`.", "",
        "## Results beside the LSTM", "",
        "From `python benchmarks/two_models.py` (`benchmarks/results/two_models.md`): "
        f"{s1(tf)['tunes']} tunes per network at each temperature, no truncation, up to 384 "
        "tokens.", "",
        "| | corpus | " + " | ".join(n for n, _ in names) + " |",
        "|---|---:|" + "---:|" * len(names),
        row("validation cross-entropy (nats/token)", "{:.3f}", lambda m: m["valid_ce"]),
        row("test cross-entropy (nats/token)", "{:.3f}", lambda m: m["test_ce"]),
        row("P(copy a repeated bar exactly), given the real tune so far", "{:.3f}",
            lambda m: m["copy_probability"]),
        row("T = 1: valid under the strict checker", "{:.1%}", lambda m: s1(m)["valid"]),
        row("T = 1: share of repeated bars", "{:.3f}", lambda m: s1(m)["repeated_bars"],
            f"{c['repeated_bars']:.3f}"),
        row("T = 1: form measure (a section played twice)", "{:.3f}",
            lambda m: s1(m)["repeats_a_section"], f"{c['repeats_a_section']:.3f}"),
        row("T = 1: has a repeat sign", "{:.3f}", lambda m: s1(m)["repeat_sign"],
            f"{c['repeat_sign']:.3f}"),
        row("T = 1: copied from the nearest training tune", "{:.1%}",
            lambda m: s1(m)["copied_from_nearest"]),
        row("T = 0.5: share of repeated bars", "{:.3f}", lambda m: s05(m)["repeated_bars"],
            f"{c['repeated_bars']:.3f}"),
        row("T = 0.5: copied from the nearest training tune", "{:.1%}",
            lambda m: s05(m)["copied_from_nearest"]),
        row("load (ms, median)", "{:.0f}", lambda m: 1000 * m["speed"]["load_seconds_median"]),
        row("one 256-token tune, B = 1 (ms, median)", "{:.0f}",
            lambda m: m["speed"]["one_tune_256_tokens_ms_median"]),
        row("batch of 64 (tokens/s, median)", "{:,}",
            lambda m: m["speed"]["batch64_tokens_per_second_median"]), "",
        "## Against the targets", "",
        f"- cross-entropy below the LSTM's: validation {tf['valid_ce']:.3f} against "
        f"{lstm['valid_ce']:.3f} nats/token — "
        + ("**met**;" if tf["valid_ce"] < lstm["valid_ce"] else "**missed**;"),
        f"- share of repeated bars at T = 1 within ±30 % of the corpus: "
        f"{s1(tf)['repeated_bars']:.3f} against {c['repeated_bars']:.3f} "
        f"({_pct_off(s1(tf)['repeated_bars'], c['repeated_bars'])}) — "
        + ("**met**" if abs(s1(tf)["repeated_bars"] / c["repeated_bars"] - 1) <= 0.3
           else "**missed**")
        + f" (the LSTM: {s1(lstm)['repeated_bars']:.3f}, "
        f"{_pct_off(s1(lstm)['repeated_bars'], c['repeated_bars'])});",
        f"- form measure at T = 1 within ±30 % of the corpus: {s1(tf)['repeats_a_section']:.3f} "
        f"against {c['repeats_a_section']:.3f} "
        f"({_pct_off(s1(tf)['repeats_a_section'], c['repeats_a_section'])}) — "
        + ("**met**" if abs(s1(tf)["repeats_a_section"] / c["repeats_a_section"] - 1) <= 0.3
           else "**missed**")
        + f" (the LSTM: {s1(lstm)['repeats_a_section']:.3f});",
        f"- one 256-token tune ≤ 100 ms: {tf['speed']['one_tune_256_tokens_ms_median']:.0f} ms — "
        + ("**met**;" if tf["speed"]["one_tune_256_tokens_ms_median"] <= 100 else "**missed**;"),
        f"- a batch of 64 ≥ 30,000 tokens/s: "
        f"{tf['speed']['batch64_tokens_per_second_median']:,} — "
        + ("**met**" if tf["speed"]["batch64_tokens_per_second_median"] >= 30000
           else "**missed**") + ";",
        "- weights ≤ 20 MB and load ≤ 1 s: "
        f"{(WEIGHTS / 'folk_transformer.safetensors').stat().st_size / 1e6:.1f} MB, "
        f"{1000 * tf['speed']['load_seconds_median']:.0f} ms.", "",
        "## Why the misses", "",
        "- **Repeated bars.** Given the real tune up to a bar that repeats an earlier one, the "
        f"transformer writes the whole bar again with probability {tf['copy_probability']:.2f} "
        f"on average, {tf['copy_probability'] / lstm['copy_probability']:.0f} times the LSTM's "
        f"{lstm['copy_probability']:.3f}: attention does copy (notebook 9 shows the head that "
        "does it). But sampling at T = 1 copies a bar only that often, and one different note "
        "breaks an exact repeat, so its tunes repeat "
        f"{s1(tf)['repeated_bars']:.3f} of their bars against the corpus's "
        f"{c['repeated_bars']:.3f}. A lower temperature favours the likely copy: at T = 0.5 the "
        f"share is {s05(tf)['repeated_bars']:.3f} (the LSTM: {s05(lstm)['repeated_bars']:.3f}), "
        "so the corpus's share lies between T = 0.5 and T = 1 for the transformer and below "
        "T = 0.5 for the LSTM."
        + (" The validation loss was still falling at the last epoch: a longer run may copy "
           "more surely." if best is hist[-1] else ""),
        "- **Form measure.** Most of it is repeat signs: "
        f"{c['repeat_sign']:.1%} of corpus tunes have one, {s1(lstm)['repeat_sign']:.1%} of the "
        f"LSTM's tunes and {s1(tf)['repeat_sign']:.1%} of the transformer's at T = 1. The "
        "transformer writes fewer repeat signs, not fewer repeated passages: it repeats "
        f"{s1(tf)['repeated_bars'] / s1(lstm)['repeated_bars']:.1f} times as many bars as the "
        "LSTM, written out.",
        "- **Speed.** Per token the network is three blocks of about 25 small torch operations "
        f"each; at one tune (B = 1) a step costs {tf['decode']['256@B1']['ms_per_token']:.2f} ms "
        "at length 256, where the LSTM runs one fused kernel per layer. In a "
        "batch of 64 the softmax attention's cost grows with the cache: "
        f"{tf['decode']['256@B64']['ms_per_token']:.2f} ms a step at length 256 and "
        f"{tf['decode']['1024@B64']['ms_per_token']:.2f} at 1,024"
        + (f", where linear attention stays at {linear['decode']['256@B64']['ms_per_token']:.2f} "
           f"and {linear['decode']['1024@B64']['ms_per_token']:.2f} ms and "
           + ("meets" if linear["speed"]["batch64_tokens_per_second_median"] >= 30_000
              else "still misses") + " the batch target "
           f"({linear['speed']['batch64_tokens_per_second_median']:,} tokens/s) — at a "
           f"validation loss of {linear['valid_ce']:.3f}, worse than the LSTM's"
           if linear else "") + ".", "",
    ]
    if "decode" in tf:
        lines += ["## Softmax against linear attention", "",
                  "The cost of one more token for the network alone (median of 16 steps at that "
                  "length) and what its cache or state holds per tune:", "",
                  "| attention | length | ms/token, B = 1 | ms/step, B = 64 | KiB per tune |",
                  "|---|---:|---:|---:|---:|"]
        for _, m in names[1:]:
            for length in (256, 1024):
                one, many = m["decode"][f"{length}@B1"], m["decode"][f"{length}@B64"]
                lines.append(f"| {m['attention']} | {length} | {one['ms_per_token']:.2f} | "
                             f"{many['ms_per_token']:.2f} | {one['state_kib_per_tune']:,.0f} |")
        lines.append("")
    lines += [
        "## Limits", "",
        "- The same data as the LSTM, with the same limits (`MODEL_CARD.md`): Western-European "
        "and Chinese folk tunes as transcribed in ABC; melody only.",
        "- Attention can copy: within a tune (what gives it form) and from training tunes; the "
        "copied share above is measured by `toolkit.measure.metrics.Memorisation`.",
        "- Licence: trained partly on the Essen collection (non-commercial use only); the "
        "weights and what they generate inherit that restriction.", ""]
    (WEIGHTS / "MODEL_CARD_transformer.md").write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
    if (WEIGHTS / "folk_transformer.json").exists() and (RESULTS / "two_models.json").exists():
        transformer_card()
