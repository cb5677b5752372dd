"""Adam and AdamW, written out: the optimizers every training loop here uses.

Creating any ``torch.optim`` optimizer imports TorchDynamo, SymPy and mpmath (about 70 MB more
in a kernel, measured by ``benchmarks/bench_memory.py``), which a few lines of arithmetic per
parameter do not need.  The updates are the ones ``torch.optim.Adam`` and ``torch.optim.AdamW``
compute (tests compare them step by step), and ``state_dict`` has their layout, so a training
checkpoint written by either resumes with the other.

With gradient g, step t and the bias-corrected moments m̂ = m / (1−β₁ᵗ), v̂ = v / (1−β₂ᵗ):

- ``Adam`` (Kingma & Ba 2015), L2 weight decay: g ← g + λ·θ; θ ← θ − lr·m̂ / (√v̂ + ε);
- ``AdamW`` (Loshchilov & Hutter 2019), decoupled: θ ← θ·(1 − lr·λ), then the same step.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch


class Adam:
    """``Adam(params, lr=1e-3, weight_decay=0, betas=(0.9, 0.999), eps=1e-8)``: one parameter
    group; set ``opt.param_groups[0]["lr"]`` to schedule the learning rate."""

    decoupled = False

    def __init__(self, params: Iterable[torch.Tensor], lr: float = 1e-3,
                 weight_decay: float = 0.0, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8):
        self.params = list(params)
        if not self.params:
            raise ValueError("params is empty: nothing to optimize")
        for name, value, ok in (("lr", lr, lr >= 0), ("weight_decay", weight_decay,
                                                      weight_decay >= 0),
                                ("eps", eps, eps >= 0),
                                ("betas", betas, len(betas) == 2
                                 and all(0 <= b < 1 for b in betas))):
            if not ok:
                raise ValueError(f"{name} out of range: {value!r}")
        self.param_groups = [{"lr": lr, "betas": tuple(betas), "eps": eps,
                              "weight_decay": weight_decay}]
        self.state: dict[int, dict[str, torch.Tensor]] = {}

    def zero_grad(self, set_to_none: bool = True) -> None:
        for p in self.params:
            if set_to_none:
                p.grad = None
            elif p.grad is not None:
                p.grad.zero_()

    @torch.no_grad()
    def step(self) -> None:
        group = self.param_groups[0]
        lr, (b1, b2), eps, wd = group["lr"], group["betas"], group["eps"], group["weight_decay"]
        for i, p in enumerate(self.params):
            if p.grad is None:
                continue
            g = p.grad
            s = self.state.get(i)
            if s is None:
                s = self.state[i] = {"step": torch.tensor(0.0),
                                     "exp_avg": torch.zeros_like(p),
                                     "exp_avg_sq": torch.zeros_like(p)}
            s["step"] += 1
            t = s["step"].item()
            if wd and self.decoupled:
                p.mul_(1 - lr * wd)
            elif wd:
                g = g.add(p, alpha=wd)
            s["exp_avg"].lerp_(g, 1 - b1)
            s["exp_avg_sq"].mul_(b2).addcmul_(g, g.conj(), value=1 - b2)
            denom = (s["exp_avg_sq"].sqrt() / (1 - b2 ** t) ** 0.5).add_(eps)
            p.addcdiv_(s["exp_avg"], denom, value=-lr / (1 - b1 ** t))

    def state_dict(self) -> dict:
        """In ``torch.optim``'s layout: ``{"state": {i: {...}}, "param_groups": [{...}]}``."""
        group = dict(self.param_groups[0], params=list(range(len(self.params))))
        return {"state": {i: {k: v.clone() for k, v in s.items()} for i, s in self.state.items()},
                "param_groups": [group]}

    def load_state_dict(self, state: dict) -> None:
        groups = state.get("param_groups", [])
        if len(groups) != 1 or len(groups[0].get("params", [])) != len(self.params):
            raise ValueError("the saved optimizer state is for other parameters: "
                             f"{[len(g.get('params', [])) for g in groups]} saved, "
                             f"{len(self.params)} here")
        for key in ("lr", "betas", "eps", "weight_decay"):
            if key in groups[0]:
                self.param_groups[0][key] = tuple(groups[0][key]) if key == "betas" \
                    else groups[0][key]
        self.state = {}
        for i, s in state.get("state", {}).items():
            p = self.params[int(i)]
            if s["exp_avg"].shape != p.shape:
                raise ValueError(f"the saved optimizer state of parameter {i} has shape "
                                 f"{tuple(s['exp_avg'].shape)}, the parameter {tuple(p.shape)}")
            self.state[int(i)] = {"step": torch.as_tensor(s["step"], dtype=torch.float32).clone(),
                                  "exp_avg": s["exp_avg"].to(p.device, p.dtype).clone(),
                                  "exp_avg_sq": s["exp_avg_sq"].to(p.device, p.dtype).clone()}


class AdamW(Adam):
    """``AdamW(params, lr=1e-3, weight_decay=0.01, ...)``: Adam with decoupled weight decay."""

    decoupled = True

    def __init__(self, params: Iterable[torch.Tensor], lr: float = 1e-3,
                 weight_decay: float = 0.01, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8):
        super().__init__(params, lr=lr, weight_decay=weight_decay, betas=betas, eps=eps)
