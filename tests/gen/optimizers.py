"""Golden values of the optimiser steps (kernels/optimizer_step.h) from torch.optim.

Three parameters of odd sizes, three steps with given gradients (a different gradient per
step), for
    torch.optim.SGD(lr=0.1, momentum=0.9, nesterov=True, weight_decay=1e-4)
    torch.optim.AdamW(lr=1e-3, weight_decay=1e-2)   (betas 0.9, 0.999, eps 1e-8)
all in f32, as training runs them.

    /usr/bin/python3 tests/gen/optimizers.py   -> tests/golden/optimizers.json
"""
import torch

from golden_io import tensor, write

torch.manual_seed(99)
shapes = [(37,), (5, 13), (3, 7, 11)]
STEPS = 3
params0 = [torch.randn(s) for s in shapes]
grads = [[torch.randn(s) * (0.5 + k) for s in shapes] for k in range(STEPS)]


def run(make_opt):
    ps = [p.clone().requires_grad_(True) for p in params0]
    opt = make_opt(ps)
    for k in range(STEPS):
        for p, g in zip(ps, grads[k]):
            p.grad = g.clone()
        opt.step()
    return ps


sgd = run(lambda ps: torch.optim.SGD(ps, lr=0.1, momentum=0.9, nesterov=True, weight_decay=1e-4))
adamw = run(lambda ps: torch.optim.AdamW(ps, lr=1e-3, weight_decay=1e-2))

write("optimizers", {
    "steps": STEPS,
    "params": [tensor(p) for p in params0],
    "grads": [[tensor(g) for g in step] for step in grads],
    "sgd": {"lr": 0.1, "momentum": 0.9, "nesterov": True, "weight_decay": 1e-4,
            "params": [tensor(p) for p in sgd]},
    "adamw": {"lr": 1e-3, "beta1": 0.9, "beta2": 0.999, "eps": 1e-8, "weight_decay": 1e-2,
              "params": [tensor(p) for p in adamw]},
})
