"""Command line: ``neurosim demo`` and ``neurosim train CONFIG --out DIR``.

Sits on the public API only. Errors in user input print one line naming the problem and exit 2; a
diverging run exits 1 after saving what it had.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

DEMO_VARIANTS = (("bp", {}), ("il", {"T": 20, "gamma": 0.1}), ("zil", {}))


def _figure_backend() -> None:
    import matplotlib

    matplotlib.use("Agg")


def _table(rows, columns) -> str:
    widths = [max(len(col), *(len(str(row[i])) for row in rows)) for i, col in enumerate(columns)]
    line = "  ".join(col.ljust(w) for col, w in zip(columns, widths))
    rule = "  ".join("-" * w for w in widths)
    body = ["  ".join(str(value).ljust(w) for value, w in zip(row, widths)) for row in rows]
    return "\n".join([line, rule, *body])


def run_demo(args) -> int:
    _figure_backend()
    import matplotlib.pyplot as plt

    import neurosim as ns

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    data = ns.datasets.digits()
    print(f"neurosim demo: {data.name} ({data.n_train} train / {data.n_test} test), "
          f"MLP 64-128-128-10 tanh, SGD lr={args.lr}, batch {args.batch_size}, {args.epochs} epochs")
    rows, histories = [], {}
    for name, hyper in DEMO_VARIANTS:
        net = ns.mlp([64, 128, 128, 10], activation="tanh", seed=args.seed)
        variant = ns.variant(name, **hyper)
        history = ns.train(net, variant, data, optimizer=ns.optim.SGD(lr=args.lr), epochs=args.epochs,
                           batch_size=args.batch_size, seed=args.seed, progress=not args.quiet)
        histories[name] = history
        rows.append((repr(variant), f"{history.test_accuracy[-1]:.4f}", f"{history.test_loss[-1]:.5f}",
                     f"{sum(history.seconds):.2f}", history.ticks))
    print(_table(rows, ("variant", "test accuracy", "test loss", "train seconds", "inference ticks")))
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.4))
    for name, history in histories.items():
        history.plot(axes=axes, label=name)
    axes[0].set_title("loss (Z-IL lies on BP)")
    axes[1].set_title("test accuracy")
    path = out / "learning_curves.png"
    fig.savefig(path, dpi=120)
    plt.close(fig)
    with open(out / "results.json", "w") as handle:
        json.dump({name: history.to_dict() for name, history in histories.items()}, handle, indent=2)
    print(f"saved {path} and {out / 'results.json'}")
    return 0


def run_train(args) -> int:
    _figure_backend()
    import matplotlib.pyplot as plt

    import neurosim as ns
    from neurosim import config as configs

    config = configs.load(args.config)
    for assignment in args.set or []:
        config = configs.override(config, assignment)
    net, variant, optimizer, data, train_kwargs = configs.build(config)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    print(f"neurosim train: {net!r}, {variant!r}, {optimizer!r}, {data.name}")
    started = time.perf_counter()
    status, history, message = "completed", None, None
    try:
        history = ns.train(net, variant, data, optimizer=optimizer, progress=not args.quiet, **train_kwargs)
    except ns.DivergenceError as exc:
        status, history, message = "diverged", exc.history, str(exc)
    results = {"config": config, "status": status, "message": message,
               "seconds_total": time.perf_counter() - started,
               "history": history.to_dict() if history is not None else None}
    with open(out / "results.json", "w") as handle:
        json.dump(results, handle, indent=2)
    net.save(out / "weights.npz")
    if history is not None and history.epoch:
        fig = history.plot()
        fig.savefig(out / "learning_curve.png", dpi=120)
        plt.close(fig)
        print(f"final test accuracy {history.test_accuracy[-1]:.4f}, test loss {history.test_loss[-1]:.5f}")
    print(f"saved results.json, weights.npz{' and learning_curve.png' if history and history.epoch else ''} "
          f"in {out}")
    if status == "diverged":
        print(f"neurosim: {message}", file=sys.stderr)
        return 1
    return 0


def _depths(text: str) -> range:
    """``"2:16"`` (inclusive) or ``"4"``."""
    try:
        if ":" in text:
            start, stop = (int(part) for part in text.split(":", 1))
            return range(start, stop + 1)
        return range(int(text), int(text) + 1)
    except ValueError:
        raise ValueError(f"--depths expects START:STOP or N, got {text!r}") from None


def _variant_specs(text: str) -> list:
    """``"bp,il:T=3,zil"`` -> ``["bp", ("il", {"T": 3}), "zil"]``."""
    specs = []
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, _, rest = item.partition(":")
        hyper = {}
        for assignment in filter(None, rest.split(":")):
            key, _, value = assignment.partition("=")
            try:
                hyper[key] = int(value)
            except ValueError:
                hyper[key] = float(value)
        specs.append((name, hyper) if hyper else name)
    if not specs:
        raise ValueError("--variants is empty")
    return specs


def run_complexity(args) -> int:
    _figure_backend()
    import matplotlib.pyplot as plt

    from neurosim import complexity
    from neurosim.circuit.network import mlp

    comparison = complexity.compare(_variant_specs(args.variants), depths=_depths(args.depths),
                                    width=args.width, batch_size=args.batch_size, progress=not args.quiet)
    print(comparison.table())
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    fig = comparison.plot()
    fig.savefig(out / "complexity_vs_depth.png", dpi=120)
    plt.close(fig)
    depth = max(_depths(args.depths))
    net = mlp([args.width] * depth + [10], seed=0)
    specs = _variant_specs(args.variants)
    fig, axes = plt.subplots(len(specs), 1, figsize=(10, 1.2 + 1.6 * len(specs)), squeeze=False)
    for ax, spec in zip(axes[:, 0], specs):
        complexity.measure(net, spec, args.batch_size).plot_timeline(ax=ax)
    fig.tight_layout()
    fig.savefig(out / "timelines.png", dpi=120)
    plt.close(fig)
    with open(out / "complexity.json", "w") as handle:
        json.dump({"width": args.width, "batch_size": args.batch_size, "rows": comparison.rows}, handle, indent=1)
    print(f"saved complexity_vs_depth.png, timelines.png (L={depth}) and complexity.json in {out}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="neurosim", description="Simulate predictive-coding circuits and compare them with backprop.")
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="train BP, IL and Z-IL on scikit-learn digits, side by side",
                          description="Train BP, IL (T=20, gamma=0.1) and Z-IL on the scikit-learn digits "
                                      "with the same network, seed and optimiser; print a table and save "
                                      "learning curves.")
    demo.add_argument("--out", default="neurosim-demo", help="output folder (default: %(default)s)")
    demo.add_argument("--epochs", type=int, default=10, help="epochs per variant (default: %(default)s)")
    demo.add_argument("--lr", type=float, default=0.05, help="SGD learning rate (default: %(default)s)")
    demo.add_argument("--batch-size", type=int, default=32, help="mini-batch size (default: %(default)s)")
    demo.add_argument("--seed", type=int, default=0, help="seed of weights and shuffling")
    demo.add_argument("--quiet", action="store_true", help="no progress bars")
    demo.set_defaults(run=run_demo)
    train = sub.add_parser("train", help="train from a TOML model config (see models/)",
                           description="Train the run described by a TOML config; writes results.json, "
                                       "weights.npz and learning_curve.png into --out.")
    train.add_argument("config", help="path to a TOML config, e.g. models/mlp_digits.toml")
    train.add_argument("--out", required=True, help="output folder")
    train.add_argument("--set", action="append", metavar="SECTION.KEY=VALUE",
                       help="override a config value, e.g. --set train.epochs=3 (repeatable)")
    train.add_argument("--quiet", action="store_true", help="no progress bar")
    train.set_defaults(run=run_train)
    cx = sub.add_parser("complexity", help="count ticks, work and critical path of variants against BP",
                        description="Measure one training step of each variant on dense nets of every "
                                    "depth, print the counts with their ratio to BP, save plots.")
    cx.add_argument("--variants", default="bp,il,fpa,zil",
                    help="comma-separated names, hyper-parameters after colons, e.g. bp,il:T=3,zil "
                         "(default: %(default)s)")
    cx.add_argument("--depths", default="2:16", help="START:STOP, inclusive (default: %(default)s)")
    cx.add_argument("--width", type=int, default=128, help="hidden width (default: %(default)s)")
    cx.add_argument("--batch-size", type=int, default=1, help="batch size (default: %(default)s)")
    cx.add_argument("--out", default="neurosim-complexity", help="output folder (default: %(default)s)")
    cx.add_argument("--quiet", action="store_true", help="no progress bar")
    cx.set_defaults(run=run_complexity)
    return parser


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "epochs", 1) is not None and getattr(args, "epochs", 1) < 1:
        parser.error("--epochs must be >= 1")
    try:
        return args.run(args)
    except (ValueError, TypeError, FileNotFoundError) as exc:
        print(f"neurosim: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    os.environ.setdefault("MPLBACKEND", "Agg")
    sys.exit(main())
