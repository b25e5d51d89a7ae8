"""Ahmad, Schrader & van Gerven 2023 (TMLR, arXiv 2203.13203): COPI on digits.

Measured on the 8x8 digits with 64-128-128-10 tanh networks (a small stand-in for the paper's
CIFAR-10 3072-1000x4-10 runs):

1. Decorrelation: mean absolute off-diagonal correlation of each layer's decorrelated input
   ``x_l = R_l y_{l-1}`` on the test set, before training (``R = I``) and after each epoch.
2. Learning: test accuracy per epoch of COPI with BP credit and with feedback-alignment credit
   (``SGD(lr=1)``, COPI's own rates ``eta``, ``eta_r``), against BP with SGD and with Adam.
3. Learning-rate sweep of COPI's ``eta`` (the paper's claim: stable at very high rates); a run whose
   parameters become non-finite or whose test accuracy collapses to chance is reported as such.

Prints a markdown table and JSON, saves a PNG.

    python benchmarks/reproduce_copi.py [--quick] [--json out.json] [--png out.png]
"""
from __future__ import annotations

import argparse
import json

import numpy as np

import neurosim as ns


def offdiag_corr(x):
    keep = x.std(axis=0) > 1e-12
    c = np.corrcoef(x[:, keep].T)
    return float(np.abs(c[~np.eye(len(c), dtype=bool)]).mean())


def layer_inputs(net, variant, x):
    """The decorrelated input of every layer, ``x_l = R_l y_{l-1}``, for a batch."""
    R = variant.state(net).decorrelation
    out, act = [], x
    for l in range(1, net.n_layers + 1):
        out.append(act @ R[l - 1].T)
        h = act @ net.weights[l - 1].T + net.biases[l - 1]
        act = np.tanh(h) if l < net.n_layers else h
    return out


def train_copi(data, epochs, **hyper):
    net = ns.mlp([64, 128, 128, 10], seed=0)
    variant = ns.variant("copi", **hyper)
    corr = [[offdiag_corr(x) for x in layer_inputs(net, variant, data.x_test)]]
    acc = []
    opt = ns.optim.SGD(lr=1.0)
    for epoch in range(epochs):
        try:
            hist = ns.train(net, variant, data, opt, epochs=1, batch_size=32, seed=epoch, progress=False)
        except ns.DivergenceError:
            acc.append(float("nan"))
            break
        acc.append(hist.test_accuracy[-1])
        corr.append([offdiag_corr(x) for x in layer_inputs(net, variant, data.x_test)])
    return acc, corr


def train_bp(data, epochs, opt):
    net = ns.mlp([64, 128, 128, 10], seed=0)
    return ns.train(net, ns.variant("bp"), data, opt, epochs=epochs, batch_size=32, progress=False).test_accuracy


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer epochs")
    parser.add_argument("--json", default=None)
    parser.add_argument("--png", default="copi.png")
    args = parser.parse_args(argv)
    from threadpoolctl import threadpool_limits
    threadpool_limits(1)  # small matrices: multi-threaded BLAS only adds overhead (MEASURED.md)
    data = ns.datasets.digits()
    epochs = 8 if args.quick else 30
    result = {"curves": {}, "decorrelation": {}, "eta_sweep": {}}
    for label, hyper in (("copi-bp", {}), ("copi-fa", {"credit": "fa"})):
        acc, corr = train_copi(data, epochs, **hyper)
        result["curves"][label] = acc
        result["decorrelation"][label] = corr
    result["curves"]["bp-sgd(0.05)"] = train_bp(data, epochs, ns.optim.SGD(lr=0.05))
    result["curves"]["bp-adam(1e-3)"] = train_bp(data, epochs, ns.optim.Adam(lr=1e-3))
    for eta in (0.003, 0.01, 0.03, 0.1):
        acc, _ = train_copi(data, max(2, epochs // 4), eta=eta)
        result["eta_sweep"][str(eta)] = acc[-1]

    print("| run | final test acc | best |\n|---|---|---|")
    for label, acc in result["curves"].items():
        print(f"| {label} | {acc[-1]:.4f} | {np.nanmax(acc):.4f} |")
    print("\n| run | layer | off-diag |corr| before | after training |\n|---|---|---|---|")
    for label, corr in result["decorrelation"].items():
        for layer in range(len(corr[0])):
            print(f"| {label} | {layer + 1} | {corr[0][layer]:.4f} | {corr[-1][layer]:.4f} |")
    print("\n| eta | test acc after " + str(max(2, epochs // 4)) + " epochs |\n|---|---|")
    for eta, acc in result["eta_sweep"].items():
        print(f"| {eta} | {acc:.4f} |")
    text = json.dumps(result, indent=1)
    print(text)
    if args.json:
        with open(args.json, "w") as fh:
            fh.write(text)

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    for label, acc in result["curves"].items():
        axes[0].plot(range(1, len(acc) + 1), acc, marker=".", label=label)
    axes[0].set_xlabel("epoch")
    axes[0].set_ylabel("test accuracy (digits)")
    axes[0].legend(fontsize=8)
    corr = np.array(result["decorrelation"]["copi-bp"])
    for layer in range(corr.shape[1]):
        axes[1].semilogy(range(corr.shape[0]), corr[:, layer], marker=".", label=f"input of layer {layer + 1}")
    axes[1].set_xlabel("epoch")
    axes[1].set_ylabel("mean |off-diagonal correlation|")
    axes[1].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(args.png, dpi=120)
    print(f"saved {args.png}")


if __name__ == "__main__":
    main()
