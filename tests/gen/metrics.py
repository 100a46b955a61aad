"""Golden values for train/metrics and train/schedule: tests/golden/metrics.json.

    /usr/bin/python3 tests/gen/metrics.py      (needs python3-sklearn and python3-torch)

Ranking metrics come from scikit-learn (roc_auc_score, average_precision_score) on random
scores with heavy ties, plus edge cases; a class with no positives or no negatives is
undefined (null here, NaN in cxr). Thresholds chosen by Youden's J and by F1 are computed
by brute force with exact fractions over the distinct scores (ties to the highest
threshold), an implementation independent of the C++ one. The learning-rate schedules are
torch's own schedulers (SequentialLR of LinearLR warmup and StepLR / CosineAnnealingLR,
OneCycleLR), stepped as a training loop would.
"""
import os
import random
import sys
from fractions import Fraction

import numpy as np
import torch
from sklearn.metrics import average_precision_score, roc_auc_score

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import golden_io  # noqa: E402


def best_threshold(scores, labels, rule):
    p = sum(labels)
    n = len(labels) - p
    if p == 0 or n == 0:
        return 0.5
    best, best_value = None, None
    for t in sorted(set(scores), reverse=True):
        tp = sum(1 for s, y in zip(scores, labels) if s >= t and y)
        fp = sum(1 for s, y in zip(scores, labels) if s >= t and not y)
        if rule == "youden":
            value = Fraction(tp, p) - Fraction(fp, n)
        else:
            value = Fraction(2 * tp, 2 * tp + fp + (p - tp))
        if best_value is None or value > best_value:
            best, best_value = t, value
    return best


def ranking_case(name, scores, labels):
    scores = [float(s) for s in scores]
    labels = [int(y) for y in labels]
    p = sum(labels)
    defined = 0 < p < len(labels)
    case = {"name": name, "scores": scores, "labels": labels,
            "auc": float(roc_auc_score(labels, scores)) if defined else None,
            "ap": float(average_precision_score(labels, scores)) if defined else None,
            "youden": best_threshold(scores, labels, "youden"),
            "f1": best_threshold(scores, labels, "f1")}
    tp = sum(1 for s, y in zip(scores, labels) if s >= 0.5 and y)
    fp = sum(1 for s, y in zip(scores, labels) if s >= 0.5 and not y)
    tn = sum(1 for s, y in zip(scores, labels) if s < 0.5 and not y)
    case["accuracy_05"] = (tp + tn) / len(labels)
    case["bias_05"] = (tp + fp) / len(labels) - p / len(labels)
    return case


def ranking_cases():
    rng = np.random.default_rng(1234)
    cases = []
    # Heavy ties: scores on a 0.1 grid, correlated with the label.
    y = (rng.random(200) < 0.3).astype(int)
    s = np.clip(np.round(0.35 * y + rng.random(200) * 0.7, 1), 0, 1)
    cases.append(ranking_case("ties_grid_0.1", s, y))
    # Very heavy ties: only three distinct scores.
    y = (rng.random(120) < 0.5).astype(int)
    s = rng.choice([0.2, 0.5, 0.8], size=120, p=[0.4, 0.3, 0.3]) + 0.0 * y
    s = np.where((y == 1) & (rng.random(120) < 0.4), 0.8, s)
    cases.append(ranking_case("three_levels", s, y))
    # Continuous scores, rare positives.
    y = (rng.random(300) < 0.05).astype(int)
    y[7] = 1
    s = rng.random(300) * 0.8 + 0.2 * y
    cases.append(ranking_case("continuous_rare", s, y))
    # Quantised to 1/64 (exact binary fractions) with 10% positives.
    y = (rng.random(250) < 0.1).astype(int)
    s = np.floor((rng.beta(2, 5, 250) + 0.15 * y).clip(0, 1) * 64) / 64
    cases.append(ranking_case("quantised_64", s, y))
    cases.append(ranking_case("all_tied", [0.3] * 10, [1, 0, 0, 1, 0, 0, 0, 1, 0, 0]))
    cases.append(ranking_case("perfect", [0.9, 0.8, 0.7, 0.2, 0.1], [1, 1, 1, 0, 0]))
    cases.append(ranking_case("inverted", [0.9, 0.8, 0.7, 0.2, 0.1], [0, 0, 0, 1, 1]))
    cases.append(ranking_case("no_positives", [0.1, 0.4, 0.6], [0, 0, 0]))
    cases.append(ranking_case("no_negatives", [0.1, 0.4, 0.6], [1, 1, 1]))
    return cases


def lrs_sequential(base, warmup, start_factor, main_fn, total):
    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([p], lr=base)
    if warmup > 0:
        warm = torch.optim.lr_scheduler.LinearLR(opt, start_factor=start_factor, end_factor=1.0, total_iters=warmup)
        main = main_fn(opt, total - warmup)
        sched = torch.optim.lr_scheduler.SequentialLR(opt, [warm, main], milestones=[warmup])
    else:
        sched = main_fn(opt, total)
    out = []
    for _ in range(total):
        out.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return out


def schedule_cases():
    lr = torch.optim.lr_scheduler
    cases = []

    def add(config, lrs):
        cases.append({"config": config, "lrs": [float(v) for v in lrs]})

    add({"kind": "constant", "base_lr": 0.05, "total_steps": 12, "warmup_steps": 4, "warmup_start_factor": 0.25},
        lrs_sequential(0.05, 4, 0.25, lambda o, t: lr.ConstantLR(o, factor=1.0, total_iters=0), 12))
    add({"kind": "step", "base_lr": 0.1, "total_steps": 40, "warmup_steps": 5, "warmup_start_factor": 0.1,
         "step_size": 7, "gamma": 0.5},
        lrs_sequential(0.1, 5, 0.1, lambda o, t: lr.StepLR(o, step_size=7, gamma=0.5), 40))
    add({"kind": "step", "base_lr": 0.01, "total_steps": 30, "warmup_steps": 0, "step_size": 10, "gamma": 0.1},
        lrs_sequential(0.01, 0, 1.0, lambda o, t: lr.StepLR(o, step_size=10, gamma=0.1), 30))
    add({"kind": "cosine", "base_lr": 0.01, "total_steps": 50, "warmup_steps": 10, "warmup_start_factor": 0.2,
         "min_lr": 1e-4},
        lrs_sequential(0.01, 10, 0.2, lambda o, t: lr.CosineAnnealingLR(o, T_max=t, eta_min=1e-4), 50))
    add({"kind": "cosine", "base_lr": 0.003, "total_steps": 30, "warmup_steps": 0, "min_lr": 0.0},
        lrs_sequential(0.003, 0, 1.0, lambda o, t: lr.CosineAnnealingLR(o, T_max=t, eta_min=0.0), 30))
    for total, pct, div, final in [(100, 0.3, 25.0, 1e4), (37, 0.25, 10.0, 100.0)]:
        add({"kind": "onecycle", "base_lr": 0.003, "total_steps": total, "warmup_steps": 0, "pct_start": pct,
             "div_factor": div, "final_div_factor": final},
            lrs_sequential(0.003, 0, 1.0, lambda o, t: lr.OneCycleLR(
                o, max_lr=0.003, total_steps=t, pct_start=pct, anneal_strategy="cos", div_factor=div,
                final_div_factor=final, cycle_momentum=False), total))
    return cases


def main():
    random.seed(0)
    golden_io.write("metrics", {"ranking": ranking_cases(), "schedules": schedule_cases()})


if __name__ == "__main__":
    main()
