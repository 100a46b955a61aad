#!/usr/bin/python3
"""PyTorch's side of bench_activation_memory: the bytes autograd keeps from a training forward.

For torchvision's model in train mode on the CPU, every tensor that autograd saves for the
backward is seen through torch.autograd.graph.saved_tensors_hooks; the distinct storages that
are not parameters are summed (a tensor saved by two ops, e.g. a ReLU output that the next
convolution also saves, counts once). Per image = (kept(B2) - kept(B1)) / (B2 - B1), as in
bench/bench_activation_memory.cpp. The bytes do not depend on the device: CUDA saves the same
tensors (cuDNN batch norm saves its mean and inverse std, as the CPU kernel does).

--precision bf16 runs the model and the input in bfloat16, which keeps what CUDA autocast
(torch.autocast("cuda", torch.bfloat16)) keeps: convolution and linear outputs in bf16, so the
batch norms, activations and additions after them save bf16 too. (The CPU autocast of older
torch versions runs batch norm in fp32, unlike CUDA's, so it is not used here.)

Run with Debian's python3 (torch, torchvision):
  /usr/bin/python3 scripts/activation_memory_pytorch.py --pixels 64 --json out.json
"""
import argparse
import json
import sys

import torch
import torchvision


def storage_of(t):
    return t.untyped_storage() if hasattr(t, "untyped_storage") else t.storage()


def kept_by_forward(arch, pixels, batch, dtype):
    torch.manual_seed(0)
    model = getattr(torchvision.models, arch)().to(dtype).train()
    params = {storage_of(p).data_ptr() for p in model.parameters()}
    x = torch.randn(batch, 3, pixels, pixels, dtype=dtype)
    saved = {}

    def pack(t):
        s = storage_of(t)
        if s.data_ptr() not in params and s.data_ptr() != storage_of(x).data_ptr():
            saved[s.data_ptr()] = s.nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        y = model(x)
    return sum(saved.values()) + y.numel() * y.element_size()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--models", default="resnet50,efficientnet_b0")
    ap.add_argument("--precisions", default="fp32,bf16")
    ap.add_argument("--pixels", type=int, default=224)
    ap.add_argument("--batches", default="1,2")
    ap.add_argument("--json")
    a = ap.parse_args()
    b1, b2 = (int(v) for v in a.batches.split(","))
    if not 1 <= b1 < b2:
        sys.exit("activation_memory_pytorch: want --batches B1,B2 with 1 <= B1 < B2")
    rows = []
    print(f"# torch {torch.__version__}, torchvision {torchvision.__version__}, {a.pixels} x {a.pixels} px")
    print(f"{'model':16} {'prec':5} {'kept@B1 MiB':>14} {'kept@B2 MiB':>14} {'MiB/image':>14}")
    for arch in a.models.split(","):
        for prec in a.precisions.split(","):
            dtype = {"fp32": torch.float32, "bf16": torch.bfloat16}[prec]
            k1 = kept_by_forward(arch, a.pixels, b1, dtype)
            k2 = kept_by_forward(arch, a.pixels, b2, dtype)
            per_image = (k2 - k1) / (b2 - b1)
            print(f"{arch:16} {prec:5} {k1 / 2**20:14.1f} {k2 / 2**20:14.1f} {per_image / 2**20:14.2f}", flush=True)
            rows.append({"model": arch, "precision": prec, "pixels": a.pixels, "batches": [b1, b2],
                         "kept_bytes": [k1, k2], "bytes_per_image": per_image})
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"device": "pytorch (saved tensors)", "torch": torch.__version__, "rows": rows}, f, indent=2)
            f.write("\n")


if __name__ == "__main__":
    main()
