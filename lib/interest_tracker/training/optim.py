"""Adagrad with momentum, the optimizer of the GRU4Rec reference implementation.

torch's ``Adagrad`` has no momentum term. The reference keeps Adagrad's per-parameter
accumulator of squared gradients and adds classical momentum on top of the scaled step:

    acc += g**2;  v = momentum * v - lr * g / sqrt(acc + eps);  p += v

It is the optimizer the reference's tuned session-based results use (``adapt='adagrad'``
with ``momentum`` 0.1-0.7), so the model can be compared on the same footing.
"""
from __future__ import annotations

import torch


class AdagradMomentum(torch.optim.Optimizer):
    def __init__(self, params, lr: float = 0.05, momentum: float = 0.0, eps: float = 1e-6,
                 weight_decay: float = 0.0):
        if lr <= 0 or not 0.0 <= momentum < 1.0 or eps <= 0 or weight_decay < 0:
            raise ValueError(f"invalid AdagradMomentum settings: lr={lr}, momentum={momentum}, eps={eps}, "
                             f"weight_decay={weight_decay}")
        super().__init__(params, dict(lr=lr, momentum=momentum, eps=eps, weight_decay=weight_decay))

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            lr, mom, eps, wd = group["lr"], group["momentum"], group["eps"], group["weight_decay"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                g = p.grad
                if wd:
                    g = g.add(p, alpha=wd)
                state = self.state[p]
                if not state:
                    state["sum"] = torch.zeros_like(p)
                    if mom > 0:
                        state["velocity"] = torch.zeros_like(p)
                state["sum"].addcmul_(g, g)
                update = g / (state["sum"] + eps).sqrt()
                if mom > 0:
                    v = state["velocity"]
                    v.mul_(mom).add_(update, alpha=-lr)
                    p.add_(v)
                else:
                    p.add_(update, alpha=-lr)
        return loss
