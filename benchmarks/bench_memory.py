"""Kernel memory per notebook: what a student's open notebook costs on Binder or JupyterHub.

    python benchmarks/bench_memory.py                  # every notebook, then 00's first cell alone
    python benchmarks/bench_memory.py --part parts     # what the toolkit's memory habits save
    python benchmarks/bench_memory.py --part class     # a student's session: kernels kept open
    python benchmarks/bench_memory.py --part first     # 00's first cell, a statement at a time

Each notebook runs top to bottom in a fresh kernel (as nbval runs it); the figure is the kernel's
peak resident memory (VmHWM from /proc, Linux), so it counts everything the notebook imported and
built. At the end it also reads how much of the kernel's resident memory is its own heap
(anonymous pages, from smaps_rollup): the rest is file-backed (shared libraries), pages that
several open kernels map from the same files.
Targets (issue "Green on every fresh machine"): 00's first cell <= 250 MB, any notebook
<= 400 MB. Results go to benchmarks/results/memory.json.

``--part class`` measures what a student's session holds with several notebooks open: the six
heaviest notebooks (by their peak in memory.json) are run one after another, each in its own
kernel, and every kernel is kept open; after each, the kernels' proportional set sizes (PSS:
a page that n kernels share counts 1/n in each) are added up. That sum is what the kernels
take from the machine together (what Binder's limit counts), lower than their summed RSS,
which counts libtorch's code once per kernel. A Jupyter server's own PSS is measured too.
Results go to benchmarks/results/memory_class.json.

``--part first`` runs the statements of 00's first cell one at a time in a fresh kernel, and
reads the kernel's peak and resident memory after each: where that cell's memory goes. Results
go to benchmarks/results/memory_first_cell.json.

``--part parts`` measures, each in a fresh process, the peak growth of the operations that
made kernels large, with and without the habit that now bounds each (``toolkit.lm.heap``,
``toolkit.lm.train.parts``, ``Network.sized_for``, ``data.records``, the order
``S.temperature_entropy`` allocates in): generating batches with the transformer, training
notebook 8's tiny LSTM, a figure over the whole corpus, notebook 9's entropy curves, and
scanning 200 tunes with the LSTM. Results go to benchmarks/results/memory_parts.json.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "benchmarks" / "results" / "memory.json"
PARTS_OUT = ROOT / "benchmarks" / "results" / "memory_parts.json"
CLASS_OUT = ROOT / "benchmarks" / "results" / "memory_class.json"
FIRST_OUT = ROOT / "benchmarks" / "results" / "memory_first_cell.json"
# 00_start_here's first cell, a statement at a time (import torch first: what it costs alone)
FIRST_CELL = ["import torch",
              "from toolkit import generate, load_model",
              "model = load_model()",
              'tune = generate(model, meter="6/8", mode="maj", style="irish", seed=7)[0]',
              "tune"]

# each runs in a fresh Python; it prints the peak growth (MB) of the measured call and a figure
_PRELUDE = """
import json, os, sys, time
def status(field):
    line = [x for x in open('/proc/self/status') if x.startswith(field)][0]
    return int(line.split()[1]) / 1024
def rss(): return status('VmRSS')
def hwm(): return status('VmHWM')
def measure(call):
    open('/proc/self/clear_refs', 'w').write('5')     # the peak starts again from here
    r0, t0 = rss(), time.perf_counter()
    result = call()
    return {'peak_mb': round(hwm() - r0, 1), 'kept_mb': round(rss() - r0, 1),
            'seconds': round(time.perf_counter() - t0, 2), 'result': result}
"""
_GENERATE = """
from toolkit import generate, load_model
from toolkit.lm.network import Network
model = load_model('transformer')
if not sized:
    type(model).sized_for = Network.sized_for       # the caches grow by doubling, as before
generate(model, n=2, seed=0)
out = measure(lambda: max(len(t.tokens) for t in generate(model, n=n, seed=1, max_tokens=T)))
print(json.dumps(out))
"""
_TRAIN = """
import torch
import toolkit.lm.train as TR
from toolkit import data
torch.set_num_threads(1)
if not in_parts:
    TR.PART_TOKENS = 10**9                          # each batch whole, as before
train = [r for r in data.load('train') if r['collection'] == 'oneills1850'][:600]
valid = [r for r in data.load('valid') if r['collection'] == 'oneills1850']
tiny = TR.new_model(train + valid, emb=48, hidden=128, layers=1, dropout=0.0, seed=0)
out = measure(lambda: TR.train_model(train, valid, model=tiny, epochs=6, batch_size=32,
                                     lr=1e-2, seed=0, progress=False,
                                     calibrate_epochs=0)[1][-1]['valid_loss'])
print(json.dumps(out))
"""
_SCAN = """
os.environ['ONEDNN_PRIMITIVE_CACHE_CAPACITY'] = '8' if capped else '1024'  # kernel, default
from toolkit import data, load_model
model = load_model('lstm')
tunes = data.load('valid')[:200]
out = measure(lambda: sum(len(model.logits_along(r['tokens'])) for r in tunes))
print(json.dumps(out))
"""
_CORPUS = """
import numpy as np
from toolkit import data, metrics
data.load('valid')                                  # the cache read once: its pages are warm
def figures():
    tunes = data.records('all') if streamed else data.load('all')
    return round(float(np.mean([metrics.repeated_bars(r['tokens']) for r in tunes])), 4)
out = measure(figures)
print(json.dumps(out))
"""
_ENTROPY = """
import math
import numpy as np, torch
from toolkit import load_model, sampling as S
if not first:                                       # the result made after the temporaries
    def entropy(logits, temperatures):
        t = torch.as_tensor(np.asarray(temperatures, dtype=np.float64))
        p = torch.softmax(logits[None, :] / t[:, None], dim=-1)
        return (torch.special.entr(p).sum(dim=-1) / math.log(2)).numpy()
    S.temperature_entropy = entropy
model = load_model('lstm')
torch.manual_seed(0)
rows = [torch.randn(250, model.vocab_size) for _ in range(30)]   # 30 tunes' logits
temperatures = np.geomspace(0.25, 4, 25)
curves = lambda: len([S.temperature_entropy(x, temperatures) for r in rows for x in r])
out = measure(curves)
print(json.dumps(out))
"""

_IMPORT = """
import numpy
if module != 'torch':
    import torch
out = measure(lambda: __import__(module) and None)
print(json.dumps(out))
"""


def _fresh(code: str, **values) -> dict:
    setup = "".join(f"{k} = {v!r}\n" for k, v in values.items())
    run = subprocess.run([sys.executable, "-c", _PRELUDE + setup + code], capture_output=True,
                         text=True, cwd=ROOT, check=True)
    return {**values, **json.loads(run.stdout.strip().splitlines()[-1])}


def parts() -> list[dict]:
    rows = []
    for n, T in ((8, 384), (16, 384), (32, 256), (64, 384)):
        for sized in (False, True):
            rows.append({"what": f"transformer: generate {n} tunes, max_tokens {T}",
                         "habit": "cache sized once" if sized else "cache doubles",
                         **_fresh(_GENERATE, n=n, T=T, sized=sized)})
    for in_parts in (False, True):
        rows.append({"what": "notebook 8's tiny LSTM: 6 epochs on 600 tunes",
                     "habit": "batches in parts of 1,024 tokens" if in_parts else "whole batches",
                     **_fresh(_TRAIN, in_parts=in_parts)})
    for streamed in (False, True):
        rows.append({"what": "notebook 9: a figure over the whole corpus",
                     "habit": "data.records (one tune at a time)" if streamed
                     else "data.load (a list)", **_fresh(_CORPUS, streamed=streamed)})
    for first in (False, True):
        rows.append({"what": "notebook 9: an entropy curve per position, 30 tunes",
                     "habit": "result made before the temporaries" if first
                     else "result made after them", **_fresh(_ENTROPY, first=first)})
    for module in ("torch", "music21"):   # the floor, and the score's fallback
        rows.append({"what": f"a bare Python: import {module}",
                     "habit": "after numpy" if module == "torch" else "after torch",
                     **_fresh(_IMPORT, module=module)})
    for capped in (False, True):
        rows.append({"what": "LSTM: logits_along 200 validation tunes",
                     "habit": "oneDNN cache capped at 8" if capped else "oneDNN cache 1,024",
                     **_fresh(_SCAN, capped=capped)})
    for r in rows:
        print(f"{r['what']:<46} {r['habit']:<34} peak +{r['peak_mb']:6.1f} MB, kept "
              f"+{r['kept_mb']:6.1f} MB, {r['seconds']:6.2f} s, result {r['result']}")
    PARTS_OUT.write_text(json.dumps(rows, indent=1))
    return rows


def peak_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM")


def _rollup(pid: int) -> dict[str, float]:
    """The process's memory totals from /proc/PID/smaps_rollup, in MB."""
    fields = {}
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()[1:]:
        name, value = line.split(":", 1)
        fields[name] = int(value.split()[0]) / 1024
    return fields


def pss_mb(pid: int) -> float:
    """The process's proportional set size (MB): its own pages, and its share of shared ones."""
    return _rollup(pid)["Pss"]


def private_mb(pid: int) -> tuple[float, float]:
    """(RSS, anonymous) now, in MB. Anonymous pages (the heap: tensors, arrays, Python objects)
    belong to this kernel alone; the rest of its RSS is file-backed (libtorch's code, numpy's,
    fonts...), pages that every kernel on the machine maps from the same files and that a
    Binder session's memory limit counts once."""
    fields = _rollup(pid)
    return fields["Rss"], fields["Anonymous"]


def run(path: Path, cells: int | None = None) -> dict:
    nb = nbformat.read(path, as_version=4)
    if cells is not None:
        code = [c for c in nb.cells if c.cell_type == "code"][:cells]  # 0: a bare kernel
        nb.cells = code
    client = NotebookClient(nb, timeout=600, kernel_name="python3",
                            resources={"metadata": {"path": str(path.parent)}})
    t0 = time.perf_counter()
    with client.setup_kernel():
        pid = client.km.provisioner.process.pid
        for i, cell in enumerate(nb.cells):
            client.execute_cell(cell, i)
        mb = peak_mb(pid)
        rss, private = private_mb(pid)
        probe = nbformat.v4.new_code_cell("import sys; print('music21' in sys.modules)")
        nb.cells.append(probe)
        client.execute_cell(probe, len(nb.cells) - 1)
    return {"notebook": path.name, "cells": "all" if cells is None else cells,
            "peak_mb": round(mb, 1), "rss_end_mb": round(rss, 1),
            "anonymous_end_mb": round(private, 1),
            "music21": probe.outputs[0]["text"].strip() == "True",
            "seconds": round(time.perf_counter() - t0, 1)}


def _server_pss_mb() -> float:
    """A JupyterLab server's PSS (MB) once it answers, with no notebook open."""
    import socket
    import urllib.request

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = subprocess.Popen(
        [sys.executable, "-m", "jupyter", "lab", "--no-browser", f"--port={port}",
         "--IdentityProvider.token=", "--ServerApp.password=", "--allow-root",
         f"--ServerApp.root_dir={ROOT / 'notebooks'}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(120):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/api/status", timeout=1)
                break
            except OSError:
                time.sleep(0.5)
        urllib.request.urlopen(f"http://127.0.0.1:{port}/lab", timeout=30).read()  # its page
        time.sleep(1)
        return pss_mb(server.pid)
    finally:
        server.terminate()
        server.wait(timeout=30)


def first_cell() -> list[dict]:
    """00's first cell a statement at a time in one fresh kernel: peak, resident and heap
    memory after each (checked against the notebook, so a change to that cell shows here)."""
    nb = nbformat.read(ROOT / "notebooks" / "00_start_here.ipynb", as_version=4)
    source = [c for c in nb.cells if c.cell_type == "code"][0].source
    code = [line.split("#")[0].strip() for line in source.splitlines() if line.strip()]
    assert code == FIRST_CELL[1:], f"00's first cell changed: {code}"
    steps = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in FIRST_CELL])
    client = NotebookClient(steps, timeout=600, kernel_name="python3",
                            resources={"metadata": {"path": str(ROOT / "notebooks")}})
    rows = []
    with client.setup_kernel():
        pid = client.km.provisioner.process.pid
        rss, heap = private_mb(pid)
        rows.append({"step": "a fresh kernel", "peak_mb": round(peak_mb(pid), 1),
                     "rss_mb": round(rss, 1), "anonymous_mb": round(heap, 1)})
        for i, cell in enumerate(steps.cells):
            client.execute_cell(cell, i)
            rss, heap = private_mb(pid)
            rows.append({"step": cell.source, "peak_mb": round(peak_mb(pid), 1),
                         "rss_mb": round(rss, 1), "anonymous_mb": round(heap, 1)})
    for r in rows:
        print(f"{r['step'][:56]:<58} peak {r['peak_mb']:6.1f} MB, resident {r['rss_mb']:6.1f}, "
              f"of it heap {r['anonymous_mb']:6.1f}")
    FIRST_OUT.write_text(json.dumps(rows, indent=1))
    return rows


def class_session() -> list[dict]:
    """Open the six heaviest notebooks one after another, keeping every kernel; after each,
    the kernels' summed PSS and RSS."""
    from contextlib import ExitStack

    peaks = {r["notebook"]: r["peak_mb"] for r in json.loads(OUT.read_text())
             if r["cells"] == "all"}
    names = sorted(peaks, key=peaks.get, reverse=True)[:6]
    rows, pids = [], []
    with ExitStack() as stack:
        for name in names:
            path = ROOT / "notebooks" / name
            nb = nbformat.read(path, as_version=4)
            client = NotebookClient(nb, timeout=600, kernel_name="python3",
                                    resources={"metadata": {"path": str(path.parent)}})
            stack.enter_context(client.setup_kernel())
            pids.append(client.km.provisioner.process.pid)
            for i, cell in enumerate(nb.cells):
                client.execute_cell(cell, i)
            time.sleep(1)
            rows.append({"open": len(pids), "notebook": name,
                         "pss_total_mb": round(sum(pss_mb(p) for p in pids), 1),
                         "rss_total_mb": round(sum(private_mb(p)[0] for p in pids), 1),
                         "largest_peak_mb": max(peaks[n] for n in names[:len(pids)])})
            r = rows[-1]
            print(f"{r['open']} kernels open (+{name:<34}) PSS {r['pss_total_mb']:7.1f} MB, "
                  f"RSS {r['rss_total_mb']:7.1f} MB")
    server = _server_pss_mb()
    print(f"a JupyterLab server, no notebook open: PSS {server:.1f} MB")
    CLASS_OUT.write_text(json.dumps({"kernels": rows, "server_pss_mb": round(server, 1)},
                                    indent=1))
    return rows


def main() -> None:
    from tqdm import tqdm

    paths = sorted((ROOT / "notebooks").glob("*.ipynb"))
    rows = [run(paths[0], cells=0), run(paths[0], cells=1)]   # a bare kernel, then one cell
    for p in tqdm(paths, desc="notebooks", unit="nb"):
        rows.append(run(p))
    for r in rows:
        print(f"{r['notebook']:<36} {str(r['cells']):>5} cells  peak {r['peak_mb']:7.1f} MB  "
              f"at the end {r['rss_end_mb']:7.1f} MB, {r['anonymous_end_mb']:7.1f} MB of it "
              f"its own heap; music21 {'imported' if r['music21'] else 'not imported'} "
              f"({r['seconds']} s)")
    worst = max(r["peak_mb"] for r in rows[2:])
    print(f"a bare kernel: {rows[0]['peak_mb']:.0f} MB; first cell of 00: "
          f"{rows[1]['peak_mb']:.0f} MB (target <= 250); worst notebook "
          f"{worst:.0f} MB (target <= 400)")
    OUT.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    PARTS = {"": main, "parts": parts, "class": class_session, "first": first_cell}
    part = sys.argv[2] if len(sys.argv) == 3 and sys.argv[1] == "--part" else "" if len(
        sys.argv) == 1 else None
    if part not in PARTS:
        sys.exit("usage: python benchmarks/bench_memory.py [--part parts|class|first]")
    PARTS[part]()
