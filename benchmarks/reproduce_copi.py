"""Ahmad, Schrader & van Gerven 2023 (TMLR, arXiv 2203.13203): COPI on digits.

Measured on the 8x8 digits with 64-128-128-10 tanh networks (a small stand-in for the paper's
CIFAR-10 3072-1000x4-10 runs):

1. Decorrelation: mean absolute off-diagonal correlation of each layer's decorrelated input
   ``x_l = R_l y_{l-1}`` on the test set, before training (``R = I``) and after each epoch.
2. Learning: test accuracy per epoch of COPI with BP credit and with feedback-alignment credit
   (``SGD(lr=1)``, COPI's own rates), against BP with SGD and with Adam.
3. Learning-rate sweep (the paper's claim: stable at very high rates). COPI's rate on the credit
   term is ``eta * loss_gain`` (the paper: ``lr * loss_multiplier = 1e-3 * 1000 = 1``); we sweep it
   with ``eta = eta_r = 0.1`` against BP with SGD at the same rate, and also run the paper's literal
   rates (``eta = eta_r = 1e-3``, ``loss_gain = 1000``) and a decorrelation slower than the
   regression (``eta = 0.1``, ``eta_r = 0.01``). A run whose parameters become non-finite or whose
   test accuracy collapses to chance is reported as such (NaN or ~0.1).

Prints a markdown table and JSON, saves a PNG.

    python benchmarks/reproduce_copi.py [--quick] [--json out.json] [--png out.png]
"""
from __future__ import annotations

import argparse

import numpy as np

from benchlib import one_blas_thread, print_and_save, save_figure, two_panels
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
            with np.errstate(over="ignore", invalid="ignore"):
                hist = ns.train(net, variant, data, opt, epochs=1, batch_size=32, seed=epoch,
                                progress=False)
        except (ns.DivergenceError, ValueError, np.linalg.LinAlgError):
            hist = None
        if hist is None or not np.all(np.isfinite(net.params)):
            acc.append(float("nan"))  # diverged: the weights blew up
            break
        acc.append(hist.test_accuracy[-1])
        corr.append([offdiag_corr(x) for x in layer_inputs(net, variant, data.x_test)])
    return acc, corr


def train_bp(data, epochs, opt):
    net = ns.mlp([64, 128, 128, 10], seed=0)
    try:
        return ns.train(net, ns.variant("bp"), data, opt, epochs=epochs, batch_size=32,
                        progress=False).test_accuracy
    except ns.DivergenceError:
        return [float("nan")]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer epochs")
    parser.add_argument("--json", default=None)
    parser.add_argument("--png", default="copi.png")
    args = parser.parse_args(argv)
    one_blas_thread()
    data = ns.datasets.digits()
    epochs = 8 if args.quick else 30
    result = {"curves": {}, "decorrelation": {}, "eta_sweep": {}}
    for label, hyper in (("copi-bp", {}), ("copi-fa", {"credit": "fa"}),
                         ("copi-fa (credit rate 1)", {"credit": "fa", "eta": 0.03, "eta_r": 0.03,
                                                      "loss_gain": 1 / 0.03})):
        acc, corr = train_copi(data, epochs, **hyper)
        result["curves"][label] = acc
        result["decorrelation"][label] = corr
    result["curves"]["bp-sgd(0.05)"] = train_bp(data, epochs, ns.optim.SGD(lr=0.05))
    result["curves"]["bp-adam(1e-3)"] = train_bp(data, epochs, ns.optim.Adam(lr=1e-3))
    short = max(2, epochs // 3)
    for rate in (0.1, 0.3, 0.5, 1.0, 1.5):
        acc, _ = train_copi(data, short, eta=0.1, eta_r=0.1, loss_gain=rate / 0.1)
        result["eta_sweep"][f"copi credit rate {rate} (eta = eta_r = 0.1)"] = acc[-1]
        result["eta_sweep"][f"bp sgd lr {rate}"] = train_bp(data, short, ns.optim.SGD(lr=rate))[-1]
    acc, _ = train_copi(data, short, eta=1e-3, eta_r=1e-3, loss_gain=1000.0)
    result["eta_sweep"]["copi paper rates (eta = eta_r = 1e-3, loss_gain 1000)"] = acc[-1]
    acc, _ = train_copi(data, short, eta=0.1, eta_r=0.01)
    result["eta_sweep"]["copi eta 0.1 > eta_r 0.01 (loss_gain 1)"] = acc[-1]

    print("| run | final test acc | best |\n|---|---|---|")
    for label, acc in result["curves"].items():
        print(f"| {label} | {acc[-1]:.4f} | {np.nanmax(acc):.4f} |")
    print("\n| run | layer | off-diag |corr| before | after training |\n|---|---|---|---|")
    for label, corr in result["decorrelation"].items():
        for layer in range(len(corr[0])):
            print(f"| {label} | {layer + 1} | {corr[0][layer]:.4f} | {corr[-1][layer]:.4f} |")
    print("\n| run | test acc after " + str(short) + " epochs |\n|---|---|")
    for eta, acc in result["eta_sweep"].items():
        print(f"| {eta} | {acc:.4f} |")
    print_and_save(result, args.json)

    fig, axes = two_panels()
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
    save_figure(fig, args.png)


if __name__ == "__main__":
    main()
