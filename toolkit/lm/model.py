"""The networks by name: load and save either one, the LSTM (the default) or the transformer.

``load_model()`` (or ``load_model("lstm")``) gives the shipped LSTM, ``load_model("transformer")``
the shipped transformer (softmax attention), ``load_model("transformer-linear")`` the one with
linear attention; all follow the interface of :mod:`toolkit.lm.network`, so everything
that takes a model takes either.  Weights are safetensors (no pickle) beside a JSON file with the
network's kind, config and model-card facts.

>>> model = load_model()                                   # doctest: +SKIP
>>> model.next_logits("M:6/8 K:maj S:irish |: G A").shape  # doctest: +SKIP
torch.Size([117])
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict
from pathlib import Path

from safetensors import SafetensorError

from toolkit.lm.lstm import FolkLSTM, ModelConfig
from toolkit.lm.network import PAD, Network
from toolkit.lm.transformer import FolkTransformer, TransformerConfig

__all__ = ["ModelConfig", "FolkLSTM", "FolkTransformer", "TransformerConfig", "Network",
           "load_model", "save_model", "network_from", "weights_name", "WEIGHTS_DIR", "PAD",
           "ARCHS", "SHIPPED", "DEFAULT_NAME"]

WEIGHTS_DIR = Path(__file__).resolve().parents[1] / "weights"
#: kind of network (``arch``) -> (its class, its config class)
ARCHS = {"lstm": (FolkLSTM, ModelConfig), "transformer": (FolkTransformer, TransformerConfig)}
#: the shipped networks: the name ``load_model`` takes -> the weights' file name
SHIPPED = {"lstm": "folk_lstm", "transformer": "folk_transformer",
           "transformer-linear": "folk_transformer_linear"}
DEFAULT_NAME = SHIPPED["lstm"]


def weights_name(model: Network) -> str:
    """The file name a network's weights are saved under: ``folk_lstm``, ``folk_transformer``,
    ``folk_transformer_linear`` (``folk_<arch>`` for a kind of your own)."""
    attention = getattr(model.config, "attention", "softmax")
    return f"folk_{model.arch}" + ("" if attention == "softmax" else f"_{attention}")


def network_from(meta: dict) -> Network:
    """An untrained network as a weights JSON describes it (``arch`` missing: the LSTM)."""
    arch = meta.get("arch", "lstm")
    if arch not in ARCHS:
        raise ValueError(f"unknown network kind {arch!r} in the weights' JSON; "
                         f"known: {sorted(ARCHS)}")
    cls, config = ARCHS[arch]
    return cls(config(**meta["config"]))


def save_model(model: Network, directory: str | Path = WEIGHTS_DIR, name: str | None = None,
               info: dict | None = None) -> Path:
    """Write ``name.safetensors`` (weights) and ``name.json`` (kind, config, model-card facts);
    ``name`` defaults to :func:`weights_name`."""
    from safetensors.torch import save_file

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    name = name or weights_name(model)
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    save_file(state, str(directory / f"{name}.safetensors"))
    meta = {"arch": model.arch, "config": asdict(model.config),
            "info": {**model.info, **(info or {})}}
    (directory / f"{name}.json").write_text(json.dumps(meta, indent=1))
    return directory / f"{name}.safetensors"


def load_model(path: str | Path | None = None, device: str = "cpu") -> Network:
    """Load a model: the shipped LSTM by default (offline, CPU, safetensors: no pickle).

    ``path`` may be a shipped network's name (a key of :data:`SHIPPED`: ``"lstm"``,
    ``"transformer"``, ``"transformer-linear"``), a ``.safetensors`` file (its ``.json``
    beside it) or a training run folder.
    """
    import torch
    from safetensors.torch import load_file

    t0 = time.perf_counter()
    takes = (f"a shipped network's name ({', '.join(map(repr, SHIPPED))}), a .safetensors "
             "file with its .json beside it (save_model writes both) or a training run folder")
    if path is not None and (not isinstance(path, str | Path) or not str(path).strip()):
        raise ValueError(f"path must be {takes}, got {path!r} ({type(path).__name__})")
    asked = device
    try:
        device = torch.device(device)
    except (RuntimeError, TypeError):
        device = None
    if device is None or device.type not in ("cpu", "cuda") or (
            device.type == "cpu" and device.index not in (None, 0)):
        raise ValueError(f"device must be 'cpu' or 'cuda' ('cuda:N' for the N-th GPU), got "
                         f"{asked!r}")
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {str(device)!r}: this torch sees no CUDA GPU; use 'cpu'")
    if path is None or str(path) in SHIPPED:
        p = WEIGHTS_DIR / f"{SHIPPED[str(path or 'lstm')]}.safetensors"
    else:
        p = Path(path)
    if p.is_dir():
        found = [p / f"{name}.safetensors" for name in SHIPPED.values()
                 if (p / f"{name}.safetensors").exists()]
        p = found[0] if found else p / f"{DEFAULT_NAME}.safetensors"
    if not p.exists():
        raise FileNotFoundError(f"no model weights at {p}; name one of {sorted(SHIPPED)}, a "
                                "weights file or a run folder, or train one with "
                                "`python -m toolkit train`")
    if p.suffix != ".safetensors" or not p.with_suffix(".json").is_file():
        raise ValueError(f"{p} is not a network's weights: load_model takes {takes}")
    try:
        meta = json.loads(p.with_suffix(".json").read_text())
        model = network_from(meta)
        model.load_state_dict(load_file(str(p), device="cpu" if device.type == "cpu"
                                        else str(device)))
        model.info = dict(meta.get("info", {}))
    except (ValueError, KeyError, TypeError, RuntimeError, SafetensorError) as e:
        raise ValueError(f"cannot load the network at {p}: {e}") from None
    model.info["load_seconds"] = round(time.perf_counter() - t0, 3)
    return model.to(device).eval()
