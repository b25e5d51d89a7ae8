"""Command line: ``neurosim demo``, ``neurosim train CONFIG --out DIR``, ``neurosim complexity``,
``neurosim map CONFIG --hardware CHIP`` and ``neurosim sweep SWEEP --out DIR``.

Sits on the public API only. Errors in user input print one line naming the problem and exit 2; a
diverging run exits 1 after saving what it had.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
import warnings
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
        # one step on a copy first: it compiles the kernels (a one-off, cached on disk), so the
        # training time below is training alone
        started = time.perf_counter()
        ns.Trainer(net.copy(), variant, ns.optim.SGD(lr=args.lr)).step(
            data.x_train[:args.batch_size], data.targets(data.y_train[:args.batch_size]))
        compile_seconds = time.perf_counter() - started
        history = ns.train(net, variant, data, optimizer=ns.optim.SGD(lr=args.lr), epochs=args.epochs,
                           batch_size=args.batch_size, seed=args.seed, progress=not args.quiet)
        histories[name] = history
        rows.append((repr(variant), f"{history.test_accuracy[-1]:.4f}", f"{history.test_loss[-1]:.5f}",
                     f"{sum(history.seconds):.2f}", f"{compile_seconds:.2f}", history.ticks))
    print(_table(rows, ("variant", "test accuracy", "test loss", "train seconds",
                        "first step (compile) seconds", "inference ticks")))
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8), layout="constrained")
    for name, history in histories.items():
        history.plot(axes=axes, label=name)
    fig.suptitle(f"{data.name}: BP, IL and Z-IL on the same network, data and optimiser")
    axes[0].set_title("loss (Z-IL lies on BP)")
    axes[1].set_title("test accuracy")
    path = out / "learning_curves.png"
    _write_atomic(path, lambda temporary: fig.savefig(temporary, dpi=120, bbox_inches="tight", format="png"))
    plt.close(fig)
    demo_results = {name: history.to_dict() for name, history in histories.items()}
    _write_atomic(out / "results.json", lambda temporary: temporary.write_text(json.dumps(demo_results, indent=2)))
    print(f"saved {path} and {out / 'results.json'}")
    return 0


RUN_FILES = ("results.json", "weights.npz", "learning_curve.png")


def _run_folder(path, overwrite: bool, resume: bool) -> Path:
    """The ``--out`` folder of a training run: created if missing; one that already holds a run
    is refused unless the run is to be replaced (``--overwrite``, which clears it) or continued
    (``--resume``)."""
    out = Path(path)
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {out} exists and is not a folder")
    held = [name for name in RUN_FILES + ("checkpoints",) if (out / name).exists()]
    if held and not (overwrite or resume):
        raise ValueError(f"--out {out} already holds a run ({', '.join(held)}); pass --overwrite to replace "
                         f"it or --resume to continue it")
    if held and overwrite and not resume:
        import shutil

        for name in held:
            target = out / name
            shutil.rmtree(target) if target.is_dir() else target.unlink()
    out.mkdir(parents=True, exist_ok=True)
    return out


def _configured(args) -> dict:
    """The config file with the command line's --set and --unset applied, in that order."""
    from neurosim import config as configs

    config = configs.load(args.config)
    for assignment in args.set or []:
        config = configs.override(config, assignment)
    for dotted in args.unset or []:
        config = configs.unset(config, dotted)
    return config


def run_train(args) -> int:
    _figure_backend()
    import matplotlib.pyplot as plt

    import neurosim as ns
    from neurosim import config as configs

    if args.checkpoint_every is not None and args.checkpoint_every < 1:
        raise ValueError(f"--checkpoint-every must be >= 1, got {args.checkpoint_every}")
    config = _configured(args)
    net, variant, optimizer, data, train_kwargs = configs.build(config)
    out = _run_folder(args.out, args.overwrite, args.resume)
    if args.checkpoint_every is not None or args.resume:
        train_kwargs.update(checkpoint_dir=out / "checkpoints", checkpoint_every=args.checkpoint_every,
                            resume=args.resume)
    print(f"neurosim train: {net!r}, {variant!r}, {optimizer!r}, {data.name}")
    started = time.perf_counter()
    status, history, message, stopped_at = "completed", None, None, None
    try:
        history = ns.train(net, variant, data, optimizer=optimizer, progress=not args.quiet, **train_kwargs)
    except ns.DivergenceError as exc:
        status, history, message = "diverged", exc.history, str(exc)
        # where it stopped, even when no epoch was complete (the history lists completed epochs)
        stopped_at = {"epoch": exc.epoch, "batch": exc.step, "tick": exc.tick, "layer": exc.layer}
    results = {"config": config, "status": status, "message": message, "stopped_at": stopped_at,
               "seconds_total": time.perf_counter() - started,
               "history": history.to_dict() if history is not None else None}
    # weights first, results last: a results.json on disk always describes the weights beside it
    net.save(out / "weights.npz")
    written = ["weights.npz"]
    if history is not None and history.epoch:
        fig = history.plot()
        fig.suptitle(f"{variant!r} on {data.name}")
        _write_atomic(out / "learning_curve.png",
                      lambda path: fig.savefig(path, dpi=120, bbox_inches="tight", format="png"))
        plt.close(fig)
        written.append("learning_curve.png")
        print(f"final test accuracy {history.test_accuracy[-1]:.4f}, test loss {history.test_loss[-1]:.5f}")
    _write_atomic(out / "results.json", lambda path: path.write_text(json.dumps(results, indent=2)))
    print(f"saved {', '.join(written)} and results.json in {out}")
    if status == "diverged":
        print(f"neurosim: {message}", file=sys.stderr)
        return 1
    return 0


def _depths(text: str) -> range:
    """``"2:16"`` (inclusive) or ``"4"``."""
    try:
        if ":" in text:
            start, stop = (int(part) for part in text.split(":", 1))
        else:
            start = stop = int(text)
    except ValueError:
        raise ValueError(f"--depths expects START:STOP or N, got {text!r}") from None
    if start < 1 or stop < start:
        raise ValueError(f"--depths {text!r}: need 1 <= START <= STOP")
    return range(start, stop + 1)


def _variant_specs(text: str) -> list:
    """``"bp,il:T=3,zil"`` -> ``["bp", ("il", {"T": 3}), "zil"]``."""
    specs = []
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, _, rest = item.partition(":")
        hyper = {}
        for assignment in filter(None, rest.split(":")):
            key, _, value = assignment.partition("=")
            if not key or not value:
                raise ValueError(f"--variants: {item!r}: hyper-parameters are written name=value")
            for parse in (int, float):
                try:
                    hyper[key] = parse(value)
                    break
                except ValueError:
                    continue
            else:
                hyper[key] = {"true": True, "false": False}.get(value.lower(), value)
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
    _write_atomic(out / "complexity_vs_depth.png",
                  lambda temporary: fig.savefig(temporary, dpi=120, bbox_inches="tight", format="png"))
    plt.close(fig)
    depth = max(_depths(args.depths))
    net = mlp([args.width] * depth + [10], seed=0)
    specs = _variant_specs(args.variants)
    measured = [complexity.measure(net, spec, args.batch_size) for spec in specs]
    longest = max(m.ticks for m in measured)
    fig, axes = plt.subplots(len(specs), 1, figsize=(10, 1.3 + (1.2 + 0.08 * depth) * len(specs)), squeeze=False,
                             sharex=True, layout="constrained")
    for ax, found in zip(axes[:, 0], measured):
        found.plot_timeline(ax=ax, max_tick=longest)  # one tick scale for every panel
    fig.suptitle(f"which layers do matrix work on each tick (L = {depth}, width {args.width})")
    _write_atomic(out / "timelines.png",
                  lambda temporary: fig.savefig(temporary, dpi=120, bbox_inches="tight", format="png"))
    plt.close(fig)
    payload = {"width": args.width, "batch_size": args.batch_size, "rows": comparison.rows}
    _write_atomic(out / "complexity.json", lambda temporary: temporary.write_text(json.dumps(payload, indent=1)))
    print(f"saved complexity_vs_depth.png, timelines.png (L={depth}) and complexity.json in {out}")
    return 0


def _write_atomic(path: Path, write) -> None:
    """``write(temporary_path)`` beside ``path``, flushed to disk and renamed into place, so a crash
    never leaves a half-written output."""
    import tempfile

    from neurosim.checkpoint import write_atomic

    with tempfile.TemporaryDirectory(dir=path.parent, prefix=f".{path.name}.") as folder:
        temporary = Path(folder) / path.name
        write(temporary)
        write_atomic(path, temporary.read_bytes())


def run_map(args) -> int:
    _figure_backend()
    import matplotlib.pyplot as plt

    import neurosim as ns
    from neurosim import config as configs
    from neurosim import hardware

    spec = hardware.load_spec(args.hardware)
    config = _configured(args)
    net, variant, _, data, train_kwargs = configs.build(config)
    if args.batch_size < 1:
        raise ValueError(f"--batch-size must be >= 1, got {args.batch_size}")
    events = None
    if args.events is not None:
        events = ns.events.SendOnDelta(args.events)
    elif "events" in train_kwargs:
        events = train_kwargs["events"]
    x = data.x_train[:args.batch_size]
    y = data.targets(data.y_train[:args.batch_size], dtype=net.dtype)
    runs = [(variant, events)]
    if variant.name != "bp":
        runs.append((ns.variant("bp"), None))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    costs, mappings = [], []
    for chosen, chosen_events in runs:
        mapping = hardware.map(net, chosen, spec, max_chips=args.max_chips)
        costs.append(mapping.cost(x, y, events=chosen_events if getattr(chosen, "has_ticks", False) else None))
        mappings.append(mapping)
    mapping, cost = mappings[0], costs[0]
    text = "\n\n".join([mapping.table(), cost.table()] + [c.table() for c in costs[1:]])
    rows = [(c.variant + (" (events)" if i == 0 and events is not None else ""), len(c.timesteps),
             f"{c.latency_s * 1e3:.4g}", f"{c.total_energy_j * 1e6:.4g}", f"{c.synaptic_events:,}",
             f"{c.latency_s / costs[-1].latency_s:.3g}", f"{c.total_energy_j / costs[-1].total_energy_j:.3g}")
            for i, c in enumerate(costs)]
    side_by_side = _table(rows, ("variant", "timesteps", "latency ms", "energy uJ", "synaptic events",
                                 "latency / BP", "energy / BP"))
    text += "\n\n" + side_by_side
    print(text)
    _write_atomic(out / "cost.txt", lambda path: path.write_text(text + "\n"))
    payload = {"config": config, "chip": spec.name, "batch_size": int(x.shape[0]),
               "events": None if events is None else {"threshold": events.threshold, "relative": events.relative},
               "placement": {name: [list(piece) for piece in pieces] for name, pieces in mapping.placement.items()},
               "utilisation": mapping.utilisation(), "costs": [c.as_dict() for c in costs]}
    _write_atomic(out / "cost.json", lambda path: path.write_text(json.dumps(payload, indent=1)))
    figure = mapping.plot(cost)
    figure.suptitle(f"{repr(variant)} on {spec.title}: batch of {x.shape[0]}", fontsize=10)
    _write_atomic(out / "mapping.png",
                  lambda path: figure.savefig(path, dpi=120, bbox_inches="tight", format="png"))
    plt.close(figure)
    ax = hardware.plot_energy(costs)
    ax.set_title(f"one training step on {spec.title}, against BP")
    _write_atomic(out / "energy.png",
                  lambda path: ax.figure.savefig(path, dpi=120, bbox_inches="tight", format="png"))
    plt.close(ax.figure)
    print(f"saved cost.txt, cost.json, mapping.png and energy.png in {out}")
    return 0


def _version() -> str:
    from neurosim import __version__

    return __version__


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="neurosim", description="Simulate predictive-coding circuits and compare them with backprop.",
        epilog="exit codes: 0 done; 1 a training run diverged (what it had is saved); 2 bad input (usage, "
               "config, data, paths); 130 interrupted (Ctrl-C; with checkpoints on, one is saved first)")
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
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
                       help="override a config value, e.g. --set train.epochs=3 (repeatable); "
                            "--set variant.name=zil drops settings the new variant does not take")
    train.add_argument("--unset", action="append", metavar="SECTION.KEY",
                       help="remove a config value so its default applies (repeatable)")
    train.add_argument("--quiet", action="store_true", help="no progress bar")
    train.add_argument("--checkpoint-every", type=int, default=None, metavar="N",
                       help="write a checkpoint into OUT/checkpoints every N batches and after every epoch")
    train.add_argument("--resume", action="store_true",
                       help="continue the run in --out from its newest readable checkpoint")
    train.add_argument("--overwrite", action="store_true", help="replace a run already in --out")
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
    hw = sub.add_parser("map", help="place a config's circuit on a neuromorphic chip; latency and energy against BP",
                        description="Map the network and variant of a TOML config onto a chip, cost one "
                                    "training step on a batch of its data, and compare it with BP on the "
                                    "same chip; writes cost.txt, cost.json, mapping.png and energy.png.")
    hw.add_argument("config", help="path to a TOML config, e.g. models/mlp_digits.toml")
    hw.add_argument("--hardware", default="loihi",
                    help="chip name (loihi, loihi2, truenorth, spinnaker2, generic) or a spec TOML path "
                         "(default: %(default)s)")
    hw.add_argument("--events", type=float, default=None, metavar="THRESHOLD",
                    help="send-on-delta threshold (default: the config's [events], else dense)")
    hw.add_argument("--batch-size", type=int, default=1,
                    help="training samples costed, run one after another (default: %(default)s)")
    hw.add_argument("--max-chips", type=int, default=None, help="fail if the circuit needs more chips")
    hw.add_argument("--set", action="append", metavar="SECTION.KEY=VALUE", help="override a config value")
    hw.add_argument("--unset", action="append", metavar="SECTION.KEY", help="remove a config value")
    hw.add_argument("--out", default="neurosim-map", help="output folder (default: %(default)s)")
    hw.set_defaults(run=run_map)
    from neurosim import sweep

    sweep.add_parser(sub)
    return parser


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """neurosim's own warnings as one line, like its errors (not a source line of the CLI)."""
    print(f"neurosim: warning: {message}", file=sys.stderr if file is None else file)


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "epochs", 1) is not None and getattr(args, "epochs", 1) < 1:
        parser.error("--epochs must be >= 1")
    try:
        with warnings.catch_warnings():
            warnings.showwarning = _show_warning
            return args.run(args)
    except (ValueError, TypeError, FileNotFoundError) as exc:
        print(f"neurosim: error: {exc}", file=sys.stderr)
        return 2
    except IsADirectoryError as exc:
        print(f"neurosim: error: {exc.filename} is a folder, not a file", file=sys.stderr)
        return 2
    except PermissionError as exc:
        print(f"neurosim: error: no permission to use {exc.filename}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("neurosim: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    os.environ.setdefault("MPLBACKEND", "Agg")
    sys.exit(main())
