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

``--paper``: the paper's network as published instead (leaky-ReLU 0.1 on every layer, the output
perturbation through ``f'(a_L)``, no biases, batch 50, the paper's rates ``eta = eta_r = 1e-3``,
``loss_gain = 1000`` after 1,000 decorrelation-only steps) beside BP + Adam on the same network
(``lr = 1e-4`` as the public code's baseline, and ``1e-3``), on digits and MNIST-1D: test accuracy
per epoch, the peak and the epoch it is reached (for COPI counted from the start and from the end of
the warm-up). neurosim's BP takes the plain squared-error gradient; the public code's BP baseline
also multiplies its output error by ``f'(a_L)``.

    python benchmarks/reproduce_copi.py [--quick] [--paper] [--json out.json] [--png out.png]
"""
from __future__ import annotations

import argparse

import numpy as np

from benchlib import one_blas_thread, print_and_save, save_figure, two_panels
import neurosim as ns
from neurosim.plotting import style as variant_style


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


PAPER_WARMUP, PAPER_BATCH = 1000, 50


def paper_net(data):
    """64-128-128-10 (MNIST-1D: 40 inputs) with leaky-ReLU 0.1 and no biases, as in the public code."""
    net = ns.mlp([data.n_inputs, 128, 128, 10], activation="leaky_relu_0.1", seed=0)
    for bias in net.biases:
        bias[...] = 0.0
    return net


def paper_runs(data, epochs_after):
    """COPI as published and BP + Adam on the same network: test accuracy per epoch, COPI's starting
    after its warm-up epochs (returned as the second value)."""
    steps_per_epoch = -(-data.n_train // PAPER_BATCH)
    warm_epochs = -(-PAPER_WARMUP // steps_per_epoch)
    copi = ns.variant("copi", eta=1e-3, eta_r=1e-3, loss_gain=1000.0, warmup_steps=warm_epochs * steps_per_epoch,
                      output_derivative=True, learn_bias=False)
    curves = {"copi (paper)": ns.train(paper_net(data), copi, data, ns.optim.SGD(lr=1.0),
                                       epochs=warm_epochs + epochs_after, batch_size=PAPER_BATCH,
                                       progress=False).test_accuracy}
    for lr in (1e-4, 1e-3):
        curves[f"bp + adam {lr:g}"] = ns.train(paper_net(data), ns.variant("bp"), data, ns.optim.Adam(lr=lr),
                                              epochs=epochs_after, batch_size=PAPER_BATCH,
                                              progress=False).test_accuracy
    return curves, warm_epochs


def paper_main(args):
    epochs_after = 10 if args.quick else 40
    result = {}
    fig, axes = two_panels()
    print("| data | run | peak test acc | epoch of peak (from start) | epoch of peak (weight learning) "
          "| first within 0.01 of peak (weight learning) | final |\n|---|---|---|---|---|---|---|")
    for ax, (name, data) in zip(axes, (("digits", ns.datasets.digits()), ("mnist1d", ns.datasets.mnist1d()))):
        curves, warm = paper_runs(data, epochs_after)
        result[name] = {"warmup_epochs": warm, "curves": curves}
        for label, acc in curves.items():
            acc = np.asarray(acc)
            skip = warm if label.startswith("copi") else 0
            learning = acc[skip:]
            peak = int(np.argmax(learning))
            near = int(np.flatnonzero(learning >= learning.max() - 0.01)[0])
            print(f"| {name} | {label} | {learning.max():.4f} | {peak + skip + 1} | {peak + 1} | {near + 1} "
                  f"| {learning[-1]:.4f} |")
            style = variant_style(label.split()[0])
            if label.endswith("0.0001"):
                style["linestyle"] = ":"
            ax.plot(np.arange(1, len(learning) + 1), learning, label=label, **style)
        ax.set_title(f"{name}: COPI as published vs BP + Adam", fontsize=9)
        ax.set_xlabel(f"epoch of weight learning (COPI after {warm} warm-up epochs)")
        ax.set_ylabel("test accuracy")
        ax.legend(fontsize=8)
    print_and_save(result, args.json)
    save_figure(fig, args.png)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer epochs")
    parser.add_argument("--paper", action="store_true", help="the paper's network and rates beside BP + Adam")
    parser.add_argument("--json", default=None)
    parser.add_argument("--png", default="copi.png")
    args = parser.parse_args(argv)
    one_blas_thread()
    if args.paper:
        return paper_main(args)
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
