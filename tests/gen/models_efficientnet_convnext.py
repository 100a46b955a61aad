"""Golden values for the EfficientNet-B0 and ConvNeXt-Tiny parity tests.

    /usr/bin/python3 tests/gen/models_efficientnet_convnext.py
    -> tests/golden/efficientnet_b0.json, tests/golden/convnext_tiny.json

Each model is torchvision's (0.14) with its classifier replaced by the two cxr heads on the
pooled features: cls_head = Linear(F, 14) and box_head = Linear(F, 56). ConvNeXt keeps the
LayerNorm2d that opens torchvision's classifier (classifier.0), so its pooled features are
normalised exactly as in torchvision and its pretrained keys still load.

Every parameter and buffer comes from det_init (no weights are committed); the C++ test
(tests/models/test_*_parity.cpp) applies the same rule, by name and shape:
    <arch>.<key>  with
    running_mean                 0.1 u
    running_var                  0.5 + 0.25 u
    num_batches_tracked          0 (left alone)
    layer_scale                  0.5 + 0.1 u        (not torchvision's 1e-6: gradients must flow)
    1-d weight (BN / LayerNorm)  1 + 0.2 u
    bias                         0.1 u
    weight of dim >= 2           sqrt(3 / fan_in) u, fan_in = numel / out_channels
    input  <arch>.input (N, 3, S, S)  u;   R1 <arch>.R1 (N, 14),  R2 <arch>.R2 (N, 56)  u
The loss is  L = sum(logits * R1) + sum(box_raw * R2)  (box_raw: box_head's output before the
sigmoid), so dL/dlogits = R1 and dL/dbox_raw = R2.

Recorded, in train mode with stochastic depth off (p = 0) and in eval mode: sigmoid of the
logits ("probs"), sigmoid of the box outputs ("boxes"), the loss, each parameter's gradient
L2 norm and a few sampled gradient elements, sampled running statistics after the training
forward, and the parameter and buffer names with shapes (registration order).
"""
import sys
import os

import torch
from torch import nn
import torchvision

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import det_init  # noqa: E402
import golden_io  # noqa: E402

SAMPLES_PER_TENSOR = 4


class CxrNet(nn.Module):
    """torchvision backbone (features) + global average pool + the cxr heads."""

    def __init__(self, arch):
        super().__init__()
        if arch == "efficientnet_b0":
            tv = torchvision.models.efficientnet_b0(stochastic_depth_prob=0.0)
            width = tv.classifier[1].in_features
        elif arch == "convnext_tiny":
            tv = torchvision.models.convnext_tiny(stochastic_depth_prob=0.0)
            width = tv.classifier[2].in_features
        else:
            raise ValueError(arch)
        self.arch = arch
        self.features = tv.features
        self.avgpool = tv.avgpool
        if arch == "convnext_tiny":
            # classifier.0: the LayerNorm2d over the pooled (N, C, 1, 1) features.
            self.classifier = nn.Sequential(tv.classifier[0])
        self.cls_head = nn.Linear(width, 14)
        self.box_head = nn.Linear(width, 56)

    def forward(self, x):
        x = self.avgpool(self.features(x))
        if self.arch == "convnext_tiny":
            x = self.classifier(x)
        x = torch.flatten(x, 1)
        return self.cls_head(x), self.box_head(x)


def det_value(arch, key, shape):
    name = f"{arch}.{key}"
    leaf = key.rsplit(".", 1)[-1]
    if leaf == "running_mean":
        return det_init.det_uniform(name, shape, 0.1)
    if leaf == "running_var":
        return det_init.det_uniform(name, shape, 0.25, 0.5)
    if leaf == "layer_scale":
        return det_init.det_uniform(name, shape, 0.1, 0.5)
    if leaf == "bias":
        return det_init.det_uniform(name, shape, 0.1)
    if leaf == "weight" and len(shape) == 1:
        return det_init.det_uniform(name, shape, 0.2, 1.0)
    if leaf == "weight":
        fan_in = 1
        for s in shape[1:]:
            fan_in *= s
        return det_init.det_uniform(name, shape, (3.0 / fan_in) ** 0.5)
    raise ValueError("no det_init rule for " + key)


def det_init_model(model, arch):
    with torch.no_grad():
        for key, t in list(model.named_parameters()) + list(model.named_buffers()):
            if key.endswith("num_batches_tracked"):
                continue
            t.copy_(det_value(arch, key, list(t.shape)))


def sample_indices(numel, key):
    # Deterministic, spread over the tensor; first and last always included.
    g = torch.Generator().manual_seed(det_init.fnv1a64(key) & 0x7FFFFFFF)
    idx = {0, numel - 1}
    while len(idx) < min(SAMPLES_PER_TENSOR, numel):
        idx.add(int(torch.randint(numel, (1,), generator=g)))
    return sorted(idx)


def run(arch, n, size, model=None, dtype=torch.float32, noise=0.0):
    """model: CxrNet(arch) unless given; dtype: of the weights, inputs and arithmetic; noise:
    added to the input, times det_uniform("<arch>.noise") (tests/gen/models_densenet.py passes
    its own model and measures how much float32 and small input changes move the gradients)."""
    model = CxrNet(arch) if model is None else model
    det_init_model(model, arch)
    model.to(dtype)
    x = det_init.det_uniform(f"{arch}.input", [n, 3, size, size], 1.0).to(dtype)
    if noise:
        x = x + noise * det_init.det_uniform(f"{arch}.noise", [n, 3, size, size], 1.0).to(dtype)
    r1 = det_init.det_uniform(f"{arch}.R1", [n, 14], 1.0).to(dtype)
    r2 = det_init.det_uniform(f"{arch}.R2", [n, 56], 1.0).to(dtype)

    out = {
        "arch": arch,
        "input_shape": [n, 3, size, size],
        "parameters": [{"name": k, "shape": list(p.shape)} for k, p in model.named_parameters()],
        "buffers": [{"name": k, "shape": list(b.shape)} for k, b in model.named_buffers()],
    }

    # Eval first (running statistics as initialised), then train (which updates them).
    model.eval()
    with torch.no_grad():
        logits, box = model(x)
    out["eval"] = {"probs": golden_io.tensor(torch.sigmoid(logits)), "boxes": golden_io.tensor(torch.sigmoid(box))}

    model.train()
    logits, box = model(x)
    loss = (logits * r1).sum() + (box * r2).sum()
    loss.backward()
    grads = {}
    for k, p in model.named_parameters():
        g = p.grad.reshape(-1)
        idx = sample_indices(g.numel(), k)
        grads[k] = {"norm": float(g.norm()), "index": idx, "value": [float(g[i]) for i in idx]}
    running = {}
    for k, b in model.named_buffers():
        if k.endswith("running_mean") or k.endswith("running_var"):
            v = b.reshape(-1)
            idx = sample_indices(v.numel(), k)
            running[k] = {"index": idx, "value": [float(v[i]) for i in idx]}
    out["train"] = {
        "probs": golden_io.tensor(torch.sigmoid(logits)),
        "boxes": golden_io.tensor(torch.sigmoid(box)),
        "loss": float(loss),
        "grads": grads,
        "running": running,
    }
    # For a reader of the file: the scale of the activations the test runs through.
    out["logits_abs_max"] = float(logits.abs().max())
    return out


def main():
    torch.set_num_threads(2)
    for arch in ("efficientnet_b0", "convnext_tiny"):
        out = run(arch, 2, 64)
        print(arch, "loss", out["train"]["loss"], "logits |max|", out["logits_abs_max"],
              "eval probs", out["eval"]["probs"]["data"][:4])
        golden_io.write(arch, out)


if __name__ == "__main__":
    main()
