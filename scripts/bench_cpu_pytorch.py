#!/usr/bin/python3
"""The PyTorch and ONNX Runtime sides of scripts/bench_cpu_vs_pytorch (the training step is
scripts/bench_train_pytorch.py). Each subcommand prints one JSON line; peak_rss_MiB is the
process's maximum resident set (getrusage).

  infer       torchvision model (make_model of bench_train_pytorch.py) + sigmoid, eval(),
              torch.inference_mode(): images/s at --batch, --pixels (bench/bench_inference.cpp)
  onnx-export the same model + sigmoid, eval, to an ONNX file with a fixed batch
              (torch.onnx.export, the TorchScript exporter where the torch has it)
  ort         that file in ONNX Runtime, CPU execution provider, intra_op_num_threads = --threads,
              sequential, every graph optimisation (batch norm folded into the convolutions):
              images/s. Imports onnxruntime and numpy only, so its peak memory is ONNX Runtime's
  train-loop  a plain PyTorch training loop on a synthetic set of `train_cxr synth` (the work of
              `train_cxr train --image-size P --epochs E` at its defaults, without its loader):
              every image decoded once up front, the cxr split (train_val_list.txt less 10 % of its
              patients for validation), batch 16, last partial batch dropped, the cxr loss
              (BCE-with-logits, pos_weight negatives/positives per class, + masked MSE on
              sigmoid boxes), AdamW (lr 1e-3, weight decay 1e-4) with a per-step cosine
              schedule; after each epoch a validation pass (eval, inference_mode, mean AUROC) and
              the weights saved (last.pt, best.pt). No augmentation (cxr augments by default, in
              its loader threads).
  versions    torch, torchvision, onnx, onnxruntime versions (null where absent), and the peak RSS
              after `import torch, torchvision` alone

  build-bench/venv-torch/bin/python scripts/bench_cpu_pytorch.py infer --model resnet50 --batch 32
"""
import argparse
import csv
import json
import os
import random
import resource
import sys
import time

CLASS_NAMES = ["Atelectasis", "Cardiomegaly", "Effusion", "Infiltration", "Mass", "Nodule", "Pneumonia",
               "Pneumothorax", "Consolidation", "Edema", "Emphysema", "Fibrosis", "Pleural_Thickening", "Hernia"]
BOX = 4


def peak_rss_mib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def emit(r):
    r["peak_rss_MiB"] = peak_rss_mib()
    print(json.dumps(r), flush=True)


def set_threads(torch, n):
    if n > 0:
        torch.set_num_threads(n)


def model_with_sigmoid(name):
    import torch.nn as nn
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from bench_train_pytorch import make_model
    return nn.Sequential(make_model(name), nn.Sigmoid())


def timed(fn, warmup, iters, max_seconds):
    """Runs fn warmup times, then up to iters times (stopping after max_seconds): (calls, seconds)."""
    for _ in range(warmup):
        fn()
    t0 = time.perf_counter()
    n = 0
    while n < iters:
        fn()
        n += 1
        if max_seconds > 0 and time.perf_counter() - t0 > max_seconds:
            break
    return n, time.perf_counter() - t0


def cmd_infer(a):
    import torch
    set_threads(torch, a.threads)
    torch.manual_seed(0)
    model = model_with_sigmoid(a.model).eval()
    x = torch.randn(a.batch, 3, a.pixels, a.pixels, generator=torch.Generator().manual_seed(1))
    with torch.inference_mode():
        n, dt = timed(lambda: model(x), a.warmup, a.iters, a.max_seconds)
    emit({"side": "torch", "model": a.model, "pixels": a.pixels, "batch": a.batch, "threads": torch.get_num_threads(),
          "iters": n, "images_per_s": a.batch * n / dt, "ms_per_batch": 1e3 * dt / n, "torch": torch.__version__})


def cmd_onnx_export(a):
    import torch
    torch.manual_seed(0)
    model = model_with_sigmoid(a.model).eval()
    x = torch.randn(a.batch, 3, a.pixels, a.pixels)
    kw = dict(input_names=["x"], output_names=["y"], opset_version=a.opset)
    t0 = time.perf_counter()
    try:  # torch >= 2.5 has dynamo=; the TorchScript exporter needs no onnxscript
        torch.onnx.export(model, (x,), a.out, dynamo=False, **kw)
        exporter = "torchscript"
    except TypeError:
        torch.onnx.export(model, (x,), a.out, **kw)
        exporter = "torchscript"
    emit({"model": a.model, "batch": a.batch, "pixels": a.pixels, "onnx": a.out, "exporter": exporter,
          "seconds": time.perf_counter() - t0, "torch": torch.__version__})


def cmd_ort(a):
    import numpy as np
    import onnxruntime as ort
    so = ort.SessionOptions()
    so.intra_op_num_threads = a.threads if a.threads > 0 else 0
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    sess = ort.InferenceSession(a.onnx, sess_options=so, providers=["CPUExecutionProvider"])
    inp = sess.get_inputs()[0]
    batch = inp.shape[0]
    x = np.random.default_rng(1).standard_normal((batch, 3, a.pixels, a.pixels), dtype=np.float32)
    n, dt = timed(lambda: sess.run(None, {inp.name: x}), a.warmup, a.iters, a.max_seconds)
    emit({"side": "ort", "model": a.model, "pixels": a.pixels, "batch": batch, "threads": a.threads, "iters": n,
          "images_per_s": batch * n / dt, "ms_per_batch": 1e3 * dt / n, "onnxruntime": ort.__version__,
          "providers": sess.get_providers()})


# ---- train-loop -------------------------------------------------------------------------------

def read_dataset(d, pixels):
    """(names, labels (N, 14) float, boxes (N, 14, 4) in [0, 1] as cx, cy, w, h, box mask (N, 14),
    patients) of the images listed in Data_Entry_2017.csv."""
    import numpy as np
    names, labels, patients = [], [], []
    with open(os.path.join(d, "Data_Entry_2017.csv"), newline="") as f:
        rows = csv.reader(f)
        next(rows)
        for r in rows:
            if not r:
                continue
            names.append(r[0])
            found = set(r[1].split("|"))
            labels.append([1.0 if c in found else 0.0 for c in CLASS_NAMES])
            patients.append(r[3])
    index = {n: i for i, n in enumerate(names)}
    boxes = np.zeros((len(names), len(CLASS_NAMES), BOX), np.float32)
    mask = np.zeros((len(names), len(CLASS_NAMES)), np.float32)
    spelling = {"Infiltrate": "Infiltration"}
    with open(os.path.join(d, "BBox_List_2017.csv"), newline="") as f:
        rows = csv.reader(f)
        next(rows)
        for r in rows:
            if not r or r[0] not in index:
                continue
            i, c = index[r[0]], CLASS_NAMES.index(spelling.get(r[1], r[1]))
            x, y, w, h = (float(v) for v in r[2:6])
            boxes[i, c] = [(x + w / 2) / pixels, (y + h / 2) / pixels, w / pixels, h / pixels]
            mask[i, c] = 1
    return names, np.array(labels, np.float32), boxes, mask, patients


def split(d, names, patients, val_fraction, seed):
    with open(os.path.join(d, "train_val_list.txt")) as f:
        train_val = {l.strip() for l in f if l.strip()}
    idx = [i for i, n in enumerate(names) if n in train_val]
    pats = sorted({patients[i] for i in idx})
    random.Random(seed).shuffle(pats)
    val_pats = set(pats[:max(1, round(val_fraction * len(pats)))])
    return [i for i in idx if patients[i] not in val_pats], [i for i in idx if patients[i] in val_pats]


def decode(d, names, idx, pixels):
    """The images of idx, decoded once: (n, 3, P, P) float, ImageNet-normalised gray."""
    import numpy as np
    from PIL import Image
    out = np.empty((len(idx), 3, pixels, pixels), np.float32)
    mean = np.array([0.485, 0.456, 0.406], np.float32)[:, None, None]
    std = np.array([0.229, 0.224, 0.225], np.float32)[:, None, None]
    for k, i in enumerate(idx):
        im = Image.open(os.path.join(d, "images", names[i])).convert("L")
        if im.size != (pixels, pixels):
            im = im.resize((pixels, pixels), Image.BILINEAR)
        g = np.asarray(im, np.float32) / 255.0
        out[k] = (g[None] - mean) / std
    return out


def mean_auroc(probs, labels):
    """Mean over the classes with both outcomes of the rank AUROC (ties averaged)."""
    import numpy as np
    aucs = []
    for c in range(labels.shape[1]):
        y, p = labels[:, c], probs[:, c]
        pos, neg = int(y.sum()), int(len(y) - y.sum())
        if pos == 0 or neg == 0:
            continue
        order = np.argsort(p, kind="mergesort")
        ranks = np.empty(len(p))
        sp = p[order]
        i = 0
        while i < len(sp):
            j = i
            while j + 1 < len(sp) and sp[j + 1] == sp[i]:
                j += 1
            ranks[order[i:j + 1]] = (i + j) / 2 + 1
            i = j + 1
        aucs.append((ranks[y == 1].sum() - pos * (pos + 1) / 2) / (pos * neg))
    return float(np.mean(aucs)) if aucs else float("nan")


def cmd_train_loop(a):
    t_start = time.perf_counter()
    import math
    import numpy as np
    import torch
    import torch.nn.functional as F
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from bench_train_pytorch import make_model
    t_import = time.perf_counter() - t_start
    set_threads(torch, a.threads)
    torch.manual_seed(a.seed)

    t0 = time.perf_counter()
    names, labels, boxes, mask, patients = read_dataset(a.data, a.pixels)
    tr, va = split(a.data, names, patients, a.val_fraction, a.seed)
    x_tr = torch.from_numpy(decode(a.data, names, tr, a.pixels))
    x_va = torch.from_numpy(decode(a.data, names, va, a.pixels))
    y_tr, y_va = torch.from_numpy(labels[tr]), torch.from_numpy(labels[va])
    b_tr, b_va = torch.from_numpy(boxes[tr]), torch.from_numpy(boxes[va])
    m_tr, m_va = torch.from_numpy(mask[tr]), torch.from_numpy(mask[va])
    pos = y_tr.sum(0)
    pw = torch.where(pos > 0, (len(tr) - pos) / pos.clamp(min=1), torch.ones_like(pos))
    t_decode = time.perf_counter() - t0

    model = make_model(a.model)
    decay = [p for p in model.parameters() if p.ndim > 1]
    no_decay = [p for p in model.parameters() if p.ndim <= 1]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": a.weight_decay},
                             {"params": no_decay, "weight_decay": 0.0}], lr=a.lr)
    steps_per_epoch = len(tr) // a.batch
    total = max(1, steps_per_epoch * a.epochs)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 0.5 * (1 + math.cos(math.pi * min(s, total) / total)))
    C = len(CLASS_NAMES)

    def loss_fn(out, y, b, m):
        z = out[:, :C]
        bb = out[:, C:].reshape(-1, C, BOX)
        bce = F.binary_cross_entropy_with_logits(z, y, pos_weight=pw)
        mse = (m.unsqueeze(-1) * (torch.sigmoid(bb) - b) ** 2).sum() / torch.clamp(4 * m.sum(), min=1)
        return bce + mse

    os.makedirs(a.out, exist_ok=True)
    gen = torch.Generator().manual_seed(a.seed)
    t_train = t_val = 0.0
    epochs = []
    best = -1.0
    for e in range(a.epochs):
        t0 = time.perf_counter()
        model.train()
        perm = torch.randperm(len(tr), generator=gen)
        tot = 0.0
        for s in range(steps_per_epoch):
            i = perm[s * a.batch:(s + 1) * a.batch]
            loss = loss_fn(model(x_tr[i]), y_tr[i], b_tr[i], m_tr[i])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            tot += loss.item()
        t_train += time.perf_counter() - t0
        t0 = time.perf_counter()
        model.eval()
        probs, vloss = [], 0.0
        with torch.inference_mode():
            for s in range(0, len(va), a.batch):
                out = model(x_va[s:s + a.batch])
                vloss += loss_fn(out, y_va[s:s + a.batch], b_va[s:s + a.batch], m_va[s:s + a.batch]).item() * len(out)
                probs.append(torch.sigmoid(out[:, :C]))
        auc = mean_auroc(torch.cat(probs).numpy(), y_va.numpy())
        torch.save(model.state_dict(), os.path.join(a.out, "last.pt"))
        if auc > best:
            best = auc
            torch.save(model.state_dict(), os.path.join(a.out, "best.pt"))
        t_val += time.perf_counter() - t0
        epochs.append({"epoch": e + 1, "train_loss": tot / max(1, steps_per_epoch), "val_loss": vloss / max(1, len(va)),
                       "val_auroc": auc})
        if not a.quiet:
            print(f"epoch {e + 1}/{a.epochs}: train loss {epochs[-1]['train_loss']:.4f} | val AUROC {auc:.4f}",
                  file=sys.stderr)
    emit({"side": "torch", "model": a.model, "pixels": a.pixels, "batch": a.batch, "epochs": a.epochs,
          "threads": torch.get_num_threads(), "train_images": len(tr), "val_images": len(va),
          "steps": steps_per_epoch * a.epochs, "import_s": t_import, "decode_s": t_decode, "train_s": t_train,
          "val_s": t_val, "in_process_s": time.perf_counter() - t_start,
          "train_images_per_s": steps_per_epoch * a.batch * a.epochs / t_train if t_train > 0 else None,
          "epoch_results": epochs, "torch": torch.__version__})


def cmd_versions(a):
    r = {"python": sys.version.split()[0]}
    try:  # the resident memory of the libraries alone, before any model
        import torch, torchvision  # noqa: F401,E401
        r["torch_import_rss_MiB"] = peak_rss_mib()
    except Exception:
        pass
    for mod in ("torch", "torchvision", "onnx", "onnxruntime", "numpy"):
        try:
            r[mod] = __import__(mod).__version__
        except Exception:  # absent or broken: reported as null
            r[mod] = None
    try:
        import torch
        r["torch_threads"] = torch.get_num_threads()
        r["torch_config"] = torch.__config__.show()
    except Exception:
        pass
    print(json.dumps(r))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)

    def common(p, batch, pixels):
        p.add_argument("--model", default="resnet18")
        p.add_argument("--batch", type=int, default=batch)
        p.add_argument("--pixels", type=int, default=pixels)
        p.add_argument("--threads", type=int, default=0, help="CPU threads (0: the library's default)")

    def timing(p):
        p.add_argument("--warmup", type=int, default=2)
        p.add_argument("--iters", type=int, default=10)
        p.add_argument("--max-seconds", type=float, default=0, help="stop timing after S seconds (0: never)")

    p = sub.add_parser("infer")
    common(p, 1, 224)
    timing(p)
    p = sub.add_parser("onnx-export")
    common(p, 1, 224)
    p.add_argument("--out", required=True)
    p.add_argument("--opset", type=int, default=17)
    p = sub.add_parser("ort")
    common(p, 1, 224)
    timing(p)
    p.add_argument("--onnx", required=True)
    p = sub.add_parser("train-loop")
    common(p, 16, 64)
    p.add_argument("--data", required=True)
    p.add_argument("--out", required=True, help="folder for last.pt / best.pt")
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--weight-decay", type=float, default=1e-4)
    p.add_argument("--val-fraction", type=float, default=0.1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quiet", action="store_true")
    sub.add_parser("versions")
    a = ap.parse_args()
    {"infer": cmd_infer, "onnx-export": cmd_onnx_export, "ort": cmd_ort, "train-loop": cmd_train_loop,
     "versions": cmd_versions}[a.cmd](a)


if __name__ == "__main__":
    main()
