"""How close each variant's update is to BP's, as a function of inference ticks T and depth L.

Zahid, Guo & Fountas 2023 (Fig. 3): from feed-forward initialisation the error needs L - 1 ticks to
reach layer 1 (Lemma 1), so with T < L - 1 the lowest layers receive no update and the similarity to
BP collapses. For each (variant, L, T) we report the mean over layers of the cosine similarity
between the variant's and BP's update of that layer (a layer with no update scores 0), averaged over
batches of the scikit-learn digits. Like with like: each variant is compared with BP on its own
output loss (``variant("bp", output="ce")`` for a cross-entropy target), so SeqIL appears twice, with
a squared-error and with its default cross-entropy output. Prints JSON and a table; saves a PNG.

    python benchmarks/cosine_vs_ticks.py [--quick] [--out cosine_vs_ticks.png] [--json out.json]
"""
from __future__ import annotations

import argparse
import json

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

import neurosim as ns  # noqa: E402

VARIANTS = {"il": ("il", {"gamma": 0.1}), "fpa": ("fpa", {"gamma": 1.0}),
            "seqil (mse)": ("seqil", {"output": "mse"}), "seqil (ce)": ("seqil", {"output": "ce"})}


def layer_cosines(grads, reference):
    out = []
    for (dw, db), (rw, rb) in zip(grads, reference):
        a = np.concatenate([dw.ravel(), db])
        b = np.concatenate([rw.ravel(), rb])
        na, nb = np.linalg.norm(a), np.linalg.norm(b)
        out.append(0.0 if na == 0 or nb == 0 else float(a @ b / (na * nb)))
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--out", default="cosine_vs_ticks.png")
    parser.add_argument("--json")
    args = parser.parse_args(argv)
    depths = [2, 4, 6] if args.quick else [2, 3, 4, 6, 8, 10]
    batches = 2 if args.quick else 5
    data = ns.datasets.digits()
    variants = dict(VARIANTS)
    rows = []
    for depth in depths:
        net = ns.mlp([64] + [64] * (depth - 1) + [10], activation="tanh", seed=depth)
        ticks = sorted(set(range(1, 2 * depth + 2)) | {20})
        for name, (registered, hyper) in variants.items():
            for T in ticks:
                variant = ns.variant(registered, T=T, **hyper)
                reference = ns.variant("bp", output=variant.hyper.get("output", "mse"))
                scores = []
                for b in range(batches):
                    x = data.x_train[b * 32:(b + 1) * 32]
                    y = data.targets(data.y_train[b * 32:(b + 1) * 32])
                    bp = reference.gradients(net, x, y)
                    scores.append(np.mean(layer_cosines(variant.gradients(net, x, y), bp)))
                rows.append({"variant": name, "L": depth, "T": T, "mean_layer_cosine": float(np.mean(scores)),
                             "T_reaches_layer_1": T >= depth - 1})
    print(json.dumps({"benchmark": "cosine_vs_ticks", "rows": rows}, indent=1))
    print()
    print("| variant | L | T | mean per-layer cosine to BP | T >= L - 1 |")
    print("|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['variant']} | {r['L']} | {r['T']} | {r['mean_layer_cosine']:.4f} | "
              f"{'yes' if r['T_reaches_layer_1'] else 'no'} |")
    fig, axes = plt.subplots(1, len(variants), figsize=(4.2 * len(variants), 3.4), squeeze=False)
    for ax, name in zip(axes[0], variants):
        for depth in depths:
            sel = [r for r in rows if r["variant"] == name and r["L"] == depth]
            ax.plot([r["T"] for r in sel], [r["mean_layer_cosine"] for r in sel], marker=".", label=f"L={depth}")
        ax.set_xscale("log")
        ax.set_xlabel("ticks T")
        ax.set_ylabel("mean per-layer cosine to BP")
        ax.set_title(name)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(args.out, dpi=120)
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(rows, handle, indent=1)


if __name__ == "__main__":
    main()
