"""Kernel memory per notebook: what a student's open notebook costs on Binder or JupyterHub.

    python benchmarks/bench_memory.py            # every notebook, then 00's first cell alone

Each notebook runs top to bottom in a fresh kernel (as nbval runs it); the figure is the kernel's
peak resident memory (VmHWM from /proc, Linux), so it counts everything the notebook imported and
built. At the end it also reads how much of the kernel's resident memory is its own heap
(anonymous pages, from smaps_rollup): the rest is file-backed (shared libraries), pages that
several open kernels map from the same files.
Targets (issue "Green on every fresh machine"): 00's first cell <= 250 MB, any notebook
<= 400 MB. Results go to benchmarks/results/memory.json.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "benchmarks" / "results" / "memory.json"


def peak_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM")


def private_mb(pid: int) -> tuple[float, float]:
    """(RSS, anonymous) now, in MB. Anonymous pages (the heap: tensors, arrays, Python objects)
    belong to this kernel alone; the rest of its RSS is file-backed (libtorch's code, numpy's,
    fonts...), pages that every kernel on the machine maps from the same files and that a
    Binder session's memory limit counts once."""
    fields = {}
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()[1:]:
        name, value = line.split(":", 1)
        fields[name] = int(value.split()[0]) / 1024
    return fields["Rss"], fields["Anonymous"]


def run(path: Path, cells: int | None = None) -> dict:
    nb = nbformat.read(path, as_version=4)
    if cells is not None:
        code = [c for c in nb.cells if c.cell_type == "code"][:cells]
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
    return {"notebook": path.name, "cells": cells or "all", "peak_mb": round(mb, 1),
            "rss_end_mb": round(rss, 1), "anonymous_end_mb": round(private, 1),
            "seconds": round(time.perf_counter() - t0, 1)}


def main() -> None:
    from tqdm import tqdm

    paths = sorted((ROOT / "notebooks").glob("*.ipynb"))
    rows = [run(paths[0], cells=1)]
    for p in tqdm(paths, desc="notebooks", unit="nb"):
        rows.append(run(p))
    for r in rows:
        print(f"{r['notebook']:<36} {str(r['cells']):>5} cells  peak {r['peak_mb']:7.1f} MB  "
              f"at the end {r['rss_end_mb']:7.1f} MB, {r['anonymous_end_mb']:7.1f} MB of it "
              f"its own heap ({r['seconds']} s)")
    worst = max(r["peak_mb"] for r in rows[1:])
    print(f"first cell of 00: {rows[0]['peak_mb']:.0f} MB (target <= 250); worst notebook "
          f"{worst:.0f} MB (target <= 400)")
    OUT.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
