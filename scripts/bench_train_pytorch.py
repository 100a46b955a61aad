#!/usr/bin/python3
"""The PyTorch side of scripts/bench_train_vs_pytorch and scripts/bench_cpu_vs_pytorch: the
training step of bench/bench_train_step.cpp, in torch, on the same batch, image size and thread count.

  forward (a torchvision model: resnet18/34/50, efficientnet_b0, convnext_tiny, densenet121, the last
  Linear replaced by Linear(F, 14 + 56): make_model) ->
  BCEWithLogits(pos_weight) + masked MSE on sigmoid boxes -> backward -> AdamW (defaults).

CPU: torch.set_num_threads(--threads). CUDA: fp32 weights, channels_last, TF32 allowed unless --tf32 0
(TF32 is PyTorch's default fp32 path in cuDNN), --amp bf16: forward and loss under
torch.autocast(cuda, bfloat16) (fp32 weights, no grad scaler: bf16 needs none), peak =
torch.cuda.max_memory_allocated over the timed steps.
--max-seconds S stops the timed loop after the first step that ends past S seconds (slow rows on
2 cores; "steps" then says how many were timed).
--ranks N (N > 1, CPU): data-parallel, as scripts/bench_dist_vs_pytorch compares with cxr's mpirun
runs: N processes (torch.multiprocessing.spawn) on one machine, torch.distributed with the gloo
back end (TCP on 127.0.0.1), the model wrapped in DistributedDataParallel (its defaults: 25 MB
buckets all-reduced during backward, broadcast_buffers=True); each rank its own batch of --batch
images (the global batch is N x --batch) and --threads threads; a barrier before and after the timed
steps, so the time is the slowest rank's. images_per_s counts the global batch.
Prints one JSON line: {"device", "model", "pixels", "batch", "threads", "steps", "ranks",
"images_per_s", "ms_per_step", "peak_MiB", "peak_rss_MiB", "torch"} (peak_rss_MiB: the process's
maximum resident set, getrusage; rank 0's with --ranks).

  /usr/bin/python3 scripts/bench_train_pytorch.py --device cpu --model resnet18 --pixels 64 --batch 32
  /usr/bin/python3 scripts/bench_train_pytorch.py --model resnet18 --pixels 64 --batch 16 --threads 1 --ranks 2
"""
import argparse
import contextlib
import json
import resource
import socket
import time

import torch
import torch.nn as nn
import torch.nn.functional as F
import torchvision

CLASSES = 14
BOX = 4


def make_model(name):
    """The torchvision model `name`, its classifier's last Linear replaced by the cxr heads in one
    Linear(F, 14 + 14 x 4) (cxr has two Linears of the same sizes)."""
    model = getattr(torchvision.models, name)()
    out = CLASSES * (1 + BOX)
    if hasattr(model, "fc"):  # resnet
        model.fc = nn.Linear(model.fc.in_features, out)
    elif isinstance(model.classifier, nn.Linear):  # densenet
        model.classifier = nn.Linear(model.classifier.in_features, out)
    else:  # efficientnet: Sequential(Dropout, Linear); convnext: Sequential(LayerNorm2d, Flatten, Linear)
        model.classifier[-1] = nn.Linear(model.classifier[-1].in_features, out)
    return model


def peak_rss_mib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    ap.add_argument("--model", default="resnet18")
    ap.add_argument("--pixels", type=int, default=64)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--threads", type=int, default=0, help="CPU threads (0: torch's default)")
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--max-seconds", type=float, default=0, help="stop timing after S seconds (0: never)")
    ap.add_argument("--amp", choices=["none", "bf16"], default="none", help="CUDA: autocast to bfloat16")
    ap.add_argument("--tf32", type=int, choices=[0, 1], default=1,
                    help="CUDA: let fp32 convolutions and matmuls use TF32 tensor cores (PyTorch's default for cuDNN)")
    ap.add_argument("--ranks", type=int, default=1,
                    help="CPU: N processes, DistributedDataParallel over gloo (1: one plain process)")
    a = ap.parse_args()
    if a.ranks > 1:
        if a.device != "cpu":
            ap.error("--ranks needs --device cpu")
        import torch.multiprocessing as mp
        port = free_port()
        mp.spawn(run, args=(a, port), nprocs=a.ranks, join=True)
    else:
        run(0, a, None)


def run(rank, a, port):
    """One process's benchmark (rank `rank` of a.ranks; port: the gloo rendezvous, None alone)."""
    distributed = port is not None
    if distributed:
        import torch.distributed as dist
        dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=a.ranks)
    if a.threads > 0:
        torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    dev = torch.device(a.device)
    cuda = dev.type == "cuda"
    if cuda:
        torch.backends.cuda.matmul.allow_tf32 = bool(a.tf32)
        torch.backends.cudnn.allow_tf32 = bool(a.tf32)
        torch.backends.cudnn.benchmark = True

    model = make_model(a.model).to(dev)
    fmt = torch.channels_last if cuda else torch.contiguous_format
    model = model.to(memory_format=fmt)
    model.train()
    if distributed:  # rank 0's weights everywhere (DDP's constructor broadcasts them)
        model = nn.parallel.DistributedDataParallel(model)
    opt = torch.optim.AdamW(model.parameters())  # lr 1e-3, weight decay 1e-2

    g = torch.Generator().manual_seed(1 + rank)  # each rank its own images
    x = torch.randn(a.batch, 3, a.pixels, a.pixels, generator=g).to(dev).contiguous(memory_format=fmt)
    y = (torch.rand(a.batch, CLASSES, generator=g) < 0.3).float().to(dev)
    mask = y.clone()
    pw = (1 + 4 * torch.rand(CLASSES, generator=g)).to(dev)
    t = torch.rand(a.batch, CLASSES, BOX, generator=g).to(dev)

    amp = cuda and a.amp == "bf16"
    autocast = (lambda: torch.autocast(device_type="cuda", dtype=torch.bfloat16)) if amp else contextlib.nullcontext

    def step():
        with autocast():
            out = model(x)
            z = out[:, :CLASSES].float()
            b = out[:, CLASSES:].float().reshape(a.batch, CLASSES, BOX)
            bce = F.binary_cross_entropy_with_logits(z, y, pos_weight=pw)
            m = mask.unsqueeze(-1)
            mse = (m * (torch.sigmoid(b) - t) ** 2).sum() / torch.clamp(4 * mask.sum(), min=1)
            loss = bce + mse
        opt.zero_grad()
        loss.backward()
        opt.step()
        return loss

    for _ in range(a.warmup):
        step()
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    if distributed:
        dist.barrier()
    t0 = time.perf_counter()
    steps = 0
    while steps < a.steps:
        step()
        steps += 1
        # --max-seconds: one process only (every rank must run the same number of steps)
        if a.max_seconds > 0 and not distributed and time.perf_counter() - t0 > a.max_seconds:
            break
    if cuda:
        torch.cuda.synchronize()
    if distributed:
        dist.barrier()
    dt = time.perf_counter() - t0
    r = {
        "device": a.device,
        "model": a.model,
        "pixels": a.pixels,
        "batch": a.batch,
        "threads": torch.get_num_threads(),
        "steps": steps,
        "ranks": a.ranks,
        "images_per_s": a.batch * a.ranks * steps / dt,
        "ms_per_step": 1e3 * dt / steps,
        "peak_MiB": torch.cuda.max_memory_allocated() / 2**20 if cuda else None,
        "peak_rss_MiB": peak_rss_mib(),
        "tf32": bool(a.tf32) if cuda else None,
        "amp": a.amp if cuda else None,
        "torch": torch.__version__,
    }
    if distributed:
        r["dist_backend"] = dist.get_backend()
        dist.destroy_process_group()
    if rank == 0:
        print(json.dumps(r), flush=True)


if __name__ == "__main__":
    main()
