"""Alonso, Krichmar & Neftci 2024 (AAAI, arXiv 2305.13562): SeqIL and the MQ optimiser, on digits.

Two claims, measured here on the 8x8 digits (our scale, not the paper's CIFAR/MNIST runs):

1. A top-down sequential sweep carries the output error to every layer in one iteration, so SeqIL with
   ``T = 3`` is closer to BP's update than parallel IL with ``T = 3`` (cosine to BP, whole update and
   worst layer, on a 64-128-128-128-128-10 network at the feed-forward init, targets near the output).
2. MQ (one scalar of state per matrix) gives Adam-like convergence with SGD's memory: test accuracy
   per epoch of SeqIL+MQ, SeqIL+SGD, IL+SGD, BP+SGD and BP+Adam, and each optimiser's state bytes.

Prints a markdown table and JSON, saves a PNG.

    python benchmarks/reproduce_alonso2024.py [--quick] [--json out.json] [--png out.png]
"""
from __future__ import annotations

import argparse

import numpy as np

from benchlib import one_blas_thread, print_and_save, save_figure, two_panels
import neurosim as ns
from neurosim.variants._common import cosine


def layer_cosines(net, a, b):
    return [cosine(a[net.w_off[l]:net.b_off[l] + net.sizes[l]], b[net.w_off[l]:net.b_off[l] + net.sizes[l]])
            for l in range(1, net.n_layers + 1)]


def claim_sweep(data, ticks):
    net = ns.mlp([64, 128, 128, 128, 128, 10], seed=0)
    rng = np.random.default_rng(0)
    x = data.x_train[:64]
    y = net.forward(x) + 0.1 * rng.normal(size=(64, 10))
    bp = ns.variant("bp").compute(net, x, y).grads
    rows = []
    for T in ticks:
        for name, hyper in (("seqil", dict(T=T, output="mse")), ("il", dict(T=T))):
            g = ns.variant(name, **hyper).compute(net, x, y).grads
            rows.append({"variant": name, "T": T, "cosine": cosine(g, bp),
                         "worst_layer_cosine": min(layer_cosines(net, g, bp))})
    return rows


def claim_mq(data, epochs):
    runs = {"seqil+mq": ("seqil", {}, ns.optim.MQ(alpha=1e-3)),
            "seqil+sgd": ("seqil", {}, ns.optim.SGD(lr=0.05)),
            "il+sgd": ("il", {"T": 20, "gamma": 0.1}, ns.optim.SGD(lr=0.05)),
            "bp+sgd": ("bp", {}, ns.optim.SGD(lr=0.05)),
            "bp+adam": ("bp", {}, ns.optim.Adam(lr=1e-3))}
    out = {}
    for label, (name, hyper, opt) in runs.items():
        net = ns.mlp([64, 128, 128, 10], seed=0)
        hist = ns.train(net, ns.variant(name, **hyper), data, opt, epochs=epochs, batch_size=32,
                        progress=False)
        out[label] = {"test_accuracy": hist.test_accuracy, "state_bytes": opt.state_bytes(),
                      "seconds": float(sum(hist.seconds))}
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer epochs and ticks")
    parser.add_argument("--json", default=None)
    parser.add_argument("--png", default="alonso2024.png")
    args = parser.parse_args(argv)
    one_blas_thread()
    data = ns.datasets.digits()
    ticks = (1, 3, 5) if args.quick else (1, 2, 3, 4, 5, 8)
    epochs = 5 if args.quick else 20
    result = {"claim_sweep": claim_sweep(data, ticks), "claim_mq": claim_mq(data, epochs)}

    print("| variant | T | cosine to BP | worst layer cosine |\n|---|---|---|---|")
    for row in result["claim_sweep"]:
        print(f"| {row['variant']} | {row['T']} | {row['cosine']:.4f} | {row['worst_layer_cosine']:.4f} |")
    print("\n| run | final test acc | best | optimiser state bytes | train s |\n|---|---|---|---|---|")
    for label, run in result["claim_mq"].items():
        acc = run["test_accuracy"]
        print(f"| {label} | {acc[-1]:.4f} | {max(acc):.4f} | {run['state_bytes']} | {run['seconds']:.1f} |")
    print_and_save(result, args.json)

    fig, axes = two_panels()
    for name in ("seqil", "il"):
        rows = [r for r in result["claim_sweep"] if r["variant"] == name]
        axes[0].plot([r["T"] for r in rows], [r["worst_layer_cosine"] for r in rows], marker="o", label=name)
    axes[0].set_xlabel("ticks T")
    axes[0].set_ylabel("worst-layer cosine to BP")
    axes[0].legend()
    for label, run in result["claim_mq"].items():
        axes[1].plot(range(1, len(run["test_accuracy"]) + 1), run["test_accuracy"], marker=".", label=label)
    axes[1].set_xlabel("epoch")
    axes[1].set_ylabel("test accuracy (digits)")
    axes[1].legend(fontsize=8)
    save_figure(fig, args.png)


if __name__ == "__main__":
    main()
