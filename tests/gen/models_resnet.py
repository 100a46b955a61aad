"""Golden files for the ResNet parity test (tests/models/test_resnet_parity.cpp).

Builds torchvision's resnet18 / resnet34 / resnet50 with "fc" replaced by cxr's two heads
(cls_head: Linear(F, 14) -> logits; box_head: Linear(F, 56) -> raw boxes viewed (N, 14, 4)),
sets every parameter and buffer by the deterministic rule below (tests/det_init.h computes
the same values in C++, so no weights are committed), and records, for a batch of 2 images
of 3 x 64 x 64:
  eval mode (running statistics):  sigmoid probabilities and sigmoid boxes
  train mode (batch statistics):   probabilities, boxes, the loss
        L = sum(logits * R1) + sum(raw_boxes * R2),
  the L2 norm of every parameter's gradient and of the input's, each with a few sampled
  elements (evenly spaced indices and the largest |g|), and the norms of the BN running statistics after the step.
Why bn3 is scaled down: a deep BatchNorm network at initialisation in training mode is
chaotic (gradients explode with depth). With every BN weight near 1, ResNet-50's float32
gradients in PyTorch itself differ from its float64 ones by 2%, so no float32
implementation could match another to 1e-3. Scaling the last BN of each residual branch by
0.2 (what zero_init_residual does, with 0 instead) brings that to 1e-5 (0.4 still gives 1%).
ResNet-18/34 (no bn3) are well conditioned as they are (6e-6, 2e-5).

The eval pass runs first (the train pass updates the running statistics). The weight scale
keeps the eval-mode activations bounded through all blocks (probabilities between about 0.03
and 0.999, none saturated), so the eval comparison is meaningful.

Deterministic rule (det_init.det_uniform(name, shape, scale, offset) = scale * u + offset,
u in [-1, 1) from a hash of the name and the element index):
  parameter with >= 2 dims      scale sqrt(3 / fan_in), fan_in = prod(shape[1:])  (variance 1 / fan_in)
  1-dim parameter "*weight"     1 + 0.1 u          1-dim parameter "*bias"    0.1 u
    except "*bn3.weight"        0.2 (1 + 0.1 u)    (the last BN of a Bottleneck, see below)
  buffer "*running_mean"        0.1 u              buffer "*running_var"      1 + 0.5 u
  buffer "*num_batches_tracked" 0
  input  det_uniform("input", (2, 3, 64, 64), 1)
  R1     det_uniform("R_logits", (2, 14), 1)       R2 det_uniform("R_boxes", (2, 14, 4), 1)

Run with Debian's python3:  /usr/bin/python3 tests/gen/models_resnet.py
"""
import math
import os
import sys

import torch
import torch.nn as nn
import torchvision

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import det_init  # noqa: E402
import golden_io  # noqa: E402

NUM_CLASSES = 14
BATCH, SIZE = 2, 64
SAMPLES = 6  # evenly spaced gradient elements per parameter (plus the largest)


class CxrResNet(nn.Module):
    """torchvision's ResNet with fc replaced by cls_head and box_head (cxr's names)."""

    def __init__(self, arch):
        super().__init__()
        base = getattr(torchvision.models, arch)(weights=None)
        for name, child in base.named_children():
            if name != "fc":
                self.add_module(name, child)
        features = base.fc.in_features
        self.cls_head = nn.Linear(features, NUM_CLASSES)
        self.box_head = nn.Linear(features, 4 * NUM_CLASSES)

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        f = torch.flatten(self.avgpool(x), 1)
        return self.cls_head(f), self.box_head(f).view(-1, NUM_CLASSES, 4)


def det_param(name, shape):
    shape = list(shape)
    if len(shape) >= 2:
        fan_in = math.prod(shape[1:])
        return det_init.det_uniform(name, shape, math.sqrt(3.0 / fan_in))
    if name.endswith("bn3.weight"):
        return det_init.det_uniform(name, shape, 0.02, 0.2)
    if name.endswith("weight"):
        return det_init.det_uniform(name, shape, 0.1, 1.0)
    return det_init.det_uniform(name, shape, 0.1)


def det_buffer(name, shape):
    shape = list(shape)
    if name.endswith("running_mean"):
        return det_init.det_uniform(name, shape, 0.1)
    if name.endswith("running_var"):
        return det_init.det_uniform(name, shape, 0.5, 1.0)
    if name.endswith("num_batches_tracked"):
        return torch.zeros(shape, dtype=torch.int64)
    raise ValueError("no deterministic rule for buffer " + name)


def det_init_module(model):
    """Sets every parameter and buffer of `model` by the rule of this file's docstring."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            p.copy_(det_param(name, p.shape))
        for name, b in model.named_buffers():
            b.copy_(det_buffer(name, b.shape))


def sample_indices(n):
    k = min(SAMPLES, n)
    return sorted({(j * n) // k + (n // (2 * k)) for j in range(k)})


def grad_summary(grad):
    """L2 norm and a few elements: evenly spaced indices and the largest |g|."""
    g = grad.detach().reshape(-1)
    idx = sample_indices(g.numel())
    top = int(g.abs().argmax())
    if top not in idx:
        idx.append(top)
    return {"norm": float(g.double().norm()), "samples": [[i, float(g[i])] for i in idx]}


def golden(arch):
    torch.manual_seed(0)
    model = CxrResNet(arch)
    det_init_module(model)
    x = det_init.det_uniform("input", [BATCH, 3, SIZE, SIZE], 1.0)
    r1 = det_init.det_uniform("R_logits", [BATCH, NUM_CLASSES], 1.0).double()
    r2 = det_init.det_uniform("R_boxes", [BATCH, NUM_CLASSES, 4], 1.0).double()

    model.eval()
    with torch.no_grad():
        logits, boxes = model(x)
    out = {
        "arch": arch,
        "input": {"batch": BATCH, "size": SIZE},
        "parameters": [[n, list(p.shape)] for n, p in model.named_parameters()],
        "buffers": [[n, list(b.shape)] for n, b in model.named_buffers()],
        "eval": {"probs": golden_io.tensor(torch.sigmoid(logits)), "boxes": golden_io.tensor(torch.sigmoid(boxes))},
    }

    model.train()
    x.requires_grad_(True)
    logits, boxes = model(x)
    loss = (logits.double() * r1).sum() + (boxes.double() * r2).sum()
    loss.backward()
    grads = {name: grad_summary(p.grad) for name, p in model.named_parameters()}
    buffers = {}
    for name, b in model.named_buffers():
        buffers[name] = float(b.double().norm())
    out["train"] = {
        "probs": golden_io.tensor(torch.sigmoid(logits)),
        "boxes": golden_io.tensor(torch.sigmoid(boxes)),
        "loss": float(loss),
        "grads": grads,
        "input_grad": grad_summary(x.grad),
        "buffer_norms": buffers,
    }
    return out


def main():
    torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
    archs = sys.argv[1:] or ["resnet18", "resnet34", "resnet50"]
    for arch in archs:
        golden_io.write(arch, golden(arch))


if __name__ == "__main__":
    main()
