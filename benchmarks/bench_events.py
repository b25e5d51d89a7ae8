"""Send-on-delta events: messages saved and accuracy lost per threshold, and the wall clock they buy.

Part 1, messages and accuracy (``ns.events.SendOnDelta(threshold)``, absolute thresholds). For IL
(T = 20, gamma = 0.1) and SeqIL (T = 3, gamma = 0.5, beta = 100, ``output="mse"`` so that its loss is
BP's 1/2||y - yhat||^2 and the cosine below compares like with like) on the digits MLP 64-128-128-10
and the digits CNN of ``models/cnn_digits.toml`` (float64), each threshold of the sweep gets:

- messages: one ``ns.Simulator(net, variant, events=...).run(x, y)`` on a fixed test batch (the
  first 32 test samples) at the networks' initialisation (seed 0, the state every training run
  starts from): messages per tick per population, messages in the step (feed-forward sweep
  included), synaptic events (messages x fan-out) and the active fraction (mean fraction of the
  neurons that may send that do send, per tick 1..T).
- the cosine between the variant's gradient with those events and BP's on the same batch and
  network (all layers' dW and db flattened into one vector).
- test accuracy after training from the same initialisation with those events: same data, seed,
  epochs, batch size 32 and optimiser as the dense run of the same variant and network (the
  reference row). MLP: ``SGD(lr=0.05)``, as in ``models/mlp_digits.toml``; CNN:
  ``SGD(lr=0.1, momentum=0.9)``, as in ``models/cnn_digits.toml``.

The dense row's messages and synaptic events are what ``ns.counting`` records for a dense run of the
same step (kernels ``feedforward``, ``prediction``, ``feedback``: the same quantities an
``EventTrace`` reports, which the counters reproduce exactly for event runs). A variant's sweep stops
at the first threshold whose accuracy has collapsed: below half the dense accuracy, or within 0.05 of
chance (1/10), or a diverged run.

Part 2, wall clock. A batch-1 training step, ``ns.Trainer(net, ns.variant("il", T=T, gamma=0.1),
SGD, events=...).step(x, y)`` (one compiled numba call for both the dense and the event kernels),
float32, one BLAS thread: IL on the digits MLP (digits samples) and on 784-512-512-10 with T = 20 and
T = 50 (random inputs drawn from the digits' pixel values, one-hot random targets), plus one
batch-32 group. Every event threshold is timed against the dense step in the same run: the runners
of a group are sampled round by round (order reversed every other round), each sample at least
``--min-seconds`` of back-to-back steps over a pool of 4 fixed batches; medians; ratio = dense
median / events median. The learning rate is 1e-12 so that the weights stay at their initialisation
(the update is still computed and applied: same work) and every timed step sends the same messages;
the active fraction printed next to each ratio is the mean over the pool of ``step.events``. Per
group a verdict line says whether the rows where at most 10% of the neurons send per tick reach a
3x speed-up, and gives the group's ceiling: the dense step over its part outside the ticks. That
part (the feed-forward pass, the update, the Python of a step) is the same dense step with one tick
(timed in the same rounds) less one tick's share, ``(dense - one tick) / (T - 1)``; it is there
whatever is sent, so no threshold can beat the ceiling on this machine.

Output: a text table on stdout (progress on stderr), the JSON (``--out``, default
``benchmarks/results/bench_events.json``) and a figure next to it (``bench_events.png``: messages per
tick per population, accuracy vs threshold, synaptic events vs threshold, speed-up vs active
fraction); ``--docs`` also saves the figure to ``docs/img/bench_events.png``. Files are written
atomically (a temporary file, then a rename). The full run takes about 5 minutes on 2 cores;
``--quick`` (3 thresholds, 1 epoch on a 720-sample subset, short timing) well under a minute.

    python benchmarks/bench_events.py [--quick] [--out benchmarks/results/bench_events.json] [--docs]
        [--epochs-mlp 10] [--epochs-cnn 5] [--rounds 9] [--min-seconds 0.15] [--skip-cost]
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from benchlib import fmt, one_blas_thread, time_per_call
import neurosim as ns
import neurosim.config  # noqa: F401  (ns.config: the CNN of models/cnn_digits.toml)

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = ROOT / "benchmarks" / "results" / "bench_events.json"
QUICK_OUT = DEFAULT_OUT.with_name("bench_events_quick.json")
DOCS_FIGURE = ROOT / "docs" / "img" / "bench_events.png"
CNN_CONFIG = ROOT / "models" / "cnn_digits.toml"

# Part 1
SWEEP = (0.0, 1e-4, 3e-4, 1e-3, 3e-3, 0.01, 0.03, 0.1, 0.3, 1.0)
QUICK_SWEEP = (0.0, 0.01, 0.3)
VARIANTS = {"il": {"T": 20, "gamma": 0.1}, "seqil": {"output": "mse"}}
MLP_SIZES = [64, 128, 128, 10]
NETS = ("mlp", "cnn")
OPTIMIZERS = {"mlp": {"lr": 0.05}, "cnn": {"lr": 0.1, "momentum": 0.9}}
EPOCHS = {"mlp": 10, "cnn": 5}
BATCH_SIZE = 32
PROBE = 32  # test samples of the fixed batch for messages and cosines
QUICK_TRAIN = 720  # training samples in --quick (half the training set)
CHANCE = 0.1  # ten classes
SEED = 0
FIGURE_THRESHOLD = 0.01  # panel (a): IL on the MLP at this threshold (or the nearest one run)
TRAFFIC_KERNELS = ("prediction", "feedback")  # the kernels whose messages cross a connection per tick

# Part 2
COST_THRESHOLDS = (0.0, 1e-4, 1e-3, 3e-3, 0.01, 0.03, 0.1)
BATCH32_THRESHOLDS = (0.0, 1e-3, 0.01, 0.03)
COST_CASES = (  # (label, sizes, T, batch, thresholds)
    ("digits MLP", [64, 128, 128, 10], 20, 1, COST_THRESHOLDS),
    ("784-512-512-10", [784, 512, 512, 10], 20, 1, COST_THRESHOLDS),
    ("784-512-512-10", [784, 512, 512, 10], 50, 1, COST_THRESHOLDS),
    ("784-512-512-10", [784, 512, 512, 10], 20, 32, BATCH32_THRESHOLDS),
)
QUICK_COST_CASES = (
    ("digits MLP", [64, 128, 128, 10], 20, 1, (0.0, 0.01)),
    ("784-512-512-10", [784, 512, 512, 10], 20, 1, (0.01,)),
    ("784-512-512-10", [784, 512, 512, 10], 20, 32, (0.01,)),
)
COST_LR = 1e-12  # keeps float32 weights at their initialisation; the update is still applied
POOL = 4
SPARSE = 0.10  # "at most 10% of neurons send per tick"
TARGET = 3.0  # the speed-up the verdict asks about
ONE_TICK = "one tick"  # the runner of the dense step with T = 1 (the ceiling)


def _log(message):
    print(message, file=sys.stderr, flush=True)


def _label(threshold):
    return "dense" if threshold is None else f"{threshold:g}"


def _events(threshold):
    return ns.events.Dense() if threshold is None else ns.events.SendOnDelta(threshold)


# --------------------------------------------------------------------------------------------- #
# Part 1: messages, cosine to BP, accuracy
# --------------------------------------------------------------------------------------------- #
def build_net(kind, dtype="float64"):
    if kind == "mlp":
        return ns.mlp(MLP_SIZES, activation="tanh", seed=SEED, dtype=dtype)
    model = dict(ns.config.load(CNN_CONFIG)["model"], dtype=dtype, seed=SEED)
    return ns.config.build_model(model)


def load_data(kind, train_samples=None):
    data = ns.datasets.load("digits", flat=(kind == "mlp"))
    if train_samples:
        data = dataclasses.replace(data, x_train=data.x_train[:train_samples], y_train=data.y_train[:train_samples])
    return data


def _population_names(net):
    L = net.n_layers
    return [f"value[{l}]" for l in range(L)] + [f"error[{l}]" for l in range(2, L + 1)]


def _neurons(net, batch):
    sizes = [int(n) for n in net.sizes]
    return {name: batch * sizes[int(name[name.index("[") + 1:-1])] for name in _population_names(net)}


def _summary(populations, neurons, sent, feedforward, synaptic, ticks):
    """The per-step numbers of one run from ``sent`` (ticks 0..T x populations), shared by the event
    traces and the dense counts: messages in the ticks per population and per tick, the active
    fraction (ticks 1..T, the clamped input excluded), totals."""
    relaxing = [p for p, name in enumerate(populations) if name != "value[0]"]
    capacity = max(ticks, 1) * sum(neurons[populations[p]] for p in relaxing)
    return {
        "messages": int(sent.sum() + sum(feedforward.values())),
        "feedforward": int(sum(feedforward.values())),
        "synaptic_events": int(synaptic),
        "active_fraction": float(sent[1:, relaxing].sum()) / capacity if capacity else 0.0,
        "ticks": int(ticks),
        "per_population": {
            name: {"messages": int(sent[:, p].sum()), "neurons": int(neurons[name]),
                   "per_tick": float(sent[1:, p].sum()) / max(ticks, 1),
                   "active": float(sent[1:, p].sum()) / (max(ticks, 1) * neurons[name])}
            for p, name in enumerate(populations)},
        "per_tick": {name: [int(v) for v in sent[:, p]] for p, name in enumerate(populations)},
    }


def message_summary(net, variant, x, y, threshold):
    """Messages of one step on ``(x, y)``: from ``trace.events`` for send-on-delta, from the
    counters (``feedforward``, ``prediction`` and ``feedback`` kernels) for the dense step."""
    if threshold is not None:
        events = ns.Simulator(net, variant, events=_events(threshold)).run(x, y).events
        neurons = dict(zip(events.populations, (int(n) for n in events.neurons)))
        feedforward = dict(zip(events.populations, (int(n) for n in events.feedforward)))
        out = _summary(list(events.populations), neurons, events.sent, feedforward, events.synaptic_events(),
                       events.ticks)
        assert out["messages"] == events.total()
        assert abs(out["active_fraction"] - events.active_fraction()) < 1e-12
        return out
    with ns.counting.count() as counter:
        ns.Simulator(net, variant).run(x, y)
    populations, ticks = _population_names(net), int(variant.n_ticks(net))
    index = {name: p for p, name in enumerate(populations)}
    sent = np.zeros((ticks + 1, len(populations)), dtype=np.int64)
    feedforward = {name: 0 for name in populations}
    synaptic = 0
    for event in counter.events:
        if event.kernel == "feedforward":
            feedforward[event.source] += event.messages
        elif event.kernel in TRAFFIC_KERNELS and 0 <= event.tick <= ticks:
            sent[event.tick, index[event.source]] += event.messages
            synaptic += event.macs
    return _summary(populations, _neurons(net, x.shape[0]), sent, feedforward, synaptic, ticks)


def flat_gradient(grads):
    return np.concatenate([np.concatenate([np.ravel(dw), np.ravel(db)]) for dw, db in grads])


def cosine(a, b):
    na, nb = np.linalg.norm(a), np.linalg.norm(b)
    return float(a @ b / (na * nb)) if na > 0 and nb > 0 else 0.0


def train_accuracy(kind, name, hyper, threshold, data, epochs):
    """``(test accuracy per epoch, seconds, error)`` of one training run from the seed-0 network."""
    net = build_net(kind)
    started = time.perf_counter()
    try:
        history = ns.train(net, ns.variant(name, **hyper), data, optimizer=ns.optim.SGD(**OPTIMIZERS[kind]),
                           epochs=epochs, batch_size=BATCH_SIZE, seed=SEED, progress=False,
                           events=_events(threshold))
    except FloatingPointError as exc:  # DivergenceError
        return [], time.perf_counter() - started, f"{type(exc).__name__}: {exc}"
    return [float(a) for a in history.test_accuracy], time.perf_counter() - started, None


def collapsed(accuracy, dense_accuracy):
    return accuracy is None or not math.isfinite(accuracy) or accuracy < 0.5 * dense_accuracy \
        or accuracy <= CHANCE + 0.05


def sweep(kind, name, hyper, thresholds, epochs, train_samples=None):
    """Rows of one (network, variant): the dense reference, then each threshold until collapse."""
    data = load_data(kind, train_samples)
    net = build_net(kind)  # the initialisation every run starts from: messages and cosines here
    x = net.as_input(data.x_test[:PROBE])
    y = data.targets(data.y_test[:PROBE], net.dtype)
    variant = ns.variant(name, **hyper)
    bp = flat_gradient(ns.variant("bp").gradients(net, x, y))
    rows, dense_accuracy = [], None
    for threshold in (None, *thresholds):
        row = {"net": kind, "variant": name, "settings": dict(variant.hyper), "threshold": threshold,
               "label": _label(threshold), "optimizer": dict(OPTIMIZERS[kind], name="sgd"), "epochs": epochs,
               "train_samples": int(len(data.x_train))}
        row.update(message_summary(net, variant, x, y, threshold))
        row["cosine_to_bp"] = cosine(flat_gradient(variant.gradients(net, x, y, events=_events(threshold))), bp)
        curve, seconds, error = train_accuracy(kind, name, hyper, threshold, data, epochs)
        row.update({"test_accuracy_per_epoch": curve, "test_accuracy": curve[-1] if curve else None,
                    "train_seconds": seconds, "error": error})
        if threshold is None:
            dense_accuracy = row["test_accuracy"]
            row["collapsed"] = False
        else:
            row["collapsed"] = collapsed(row["test_accuracy"], dense_accuracy)
        row["accuracy_vs_dense"] = (None if row["test_accuracy"] is None or dense_accuracy is None
                                    else row["test_accuracy"] - dense_accuracy)
        rows.append(row)
        _log(f"  {kind} {name} {row['label']:>7}: acc {row['test_accuracy']} messages {row['messages']} "
             f"active {row['active_fraction']:.4f} cosine {row['cosine_to_bp']:.4f} ({seconds:.1f} s)")
        if row["collapsed"]:
            break
    return rows


# --------------------------------------------------------------------------------------------- #
# Part 2: wall clock of a training step
# --------------------------------------------------------------------------------------------- #
def cost_batches(sizes, batch, dtype="float32"):
    """``POOL`` fixed batches: digits samples for the digits MLP, else random inputs drawn from the
    digits' pixel values (range and share of zeros as the digits) and random one-hot targets."""
    digits = ns.datasets.load("digits")
    if sizes[0] == digits.x_train.shape[1]:
        return [(digits.x_train[k * batch:(k + 1) * batch].astype(dtype),
                 digits.targets(digits.y_train[k * batch:(k + 1) * batch], dtype)) for k in range(POOL)]
    rng = np.random.default_rng(SEED)
    pixels = digits.x_train.ravel()
    return [(rng.choice(pixels, size=(batch, sizes[0])).astype(dtype),
             np.eye(sizes[-1], dtype=dtype)[rng.integers(0, sizes[-1], batch)]) for _ in range(POOL)]


class StepRunner:
    """``trainer.step`` over the pool of batches in turn."""

    def __init__(self, trainer, batches):
        self.trainer, self.batches, self.calls = trainer, batches, 0

    def __call__(self):
        x, y = self.batches[self.calls % len(self.batches)]
        self.calls += 1
        return self.trainer.step(x, y)


def measure_case(label, sizes, T, batch, thresholds, rounds, min_seconds):
    """Rows ``{threshold, active_fraction, dense_ms, events_ms, speedup, ...}`` of one group; the
    dense step and every threshold's step are sampled in the same rounds."""
    batches = cost_batches(sizes, batch)
    runners, active, traffic = {}, {}, {}
    # For the ceiling: the dense step with one tick. Less that tick, what it times (the feed-forward
    # pass, the update, the Python of a step) no event model removes.
    net = ns.mlp(sizes, activation="tanh", seed=SEED, dtype="float32")
    one_tick = StepRunner(ns.Trainer(net, ns.variant("il", T=1, gamma=0.1), ns.optim.SGD(lr=COST_LR)), batches)
    for _ in range(POOL):
        one_tick()
    for threshold in (None, *thresholds):
        net = ns.mlp(sizes, activation="tanh", seed=SEED, dtype="float32")
        trainer = ns.Trainer(net, ns.variant("il", T=T, gamma=0.1), ns.optim.SGD(lr=COST_LR),
                             events=_events(threshold))
        runner = runners[threshold] = StepRunner(trainer, batches)
        steps = [runner() for _ in range(POOL)]  # warm-up (compile or load the numba cache) + activity
        if threshold is not None:
            active[threshold] = float(np.mean([s.events.active_fraction() for s in steps]))
            traffic[threshold] = (float(np.mean([s.events.total() for s in steps])),
                                  float(np.mean([s.events.synaptic_events() for s in steps])),
                                  float(np.mean([s.events.sent[1:].sum() for s in steps])))
    runners[ONE_TICK] = one_tick
    samples = {threshold: [] for threshold in runners}
    order = list(runners)
    for round_ in range(rounds):
        for threshold in (order if round_ % 2 == 0 else order[::-1]):
            samples[threshold].append(time_per_call(runners[threshold], min_seconds)[0])
    dense = statistics.median(samples[None])
    one = statistics.median(samples[ONE_TICK])
    # the step without its ticks, from the two dense timings: one tick costs (dense - one) / (T - 1)
    fixed = one - (dense - one) / (T - 1) if T > 1 else one
    ceiling = dense / fixed
    rows = []
    for threshold in thresholds:
        seconds = statistics.median(samples[threshold])
        rows.append({"case": label, "network": "-".join(map(str, sizes)), "T": T, "batch": batch,
                     "dtype": "float32", "threshold": threshold, "active_fraction": active[threshold],
                     "messages": traffic[threshold][0], "synaptic_events": traffic[threshold][1],
                     "tick_messages": traffic[threshold][2],
                     "dense_ms": dense * 1e3, "events_ms": seconds * 1e3, "speedup": dense / seconds,
                     "one_tick_ms": one * 1e3, "fixed_ms": fixed * 1e3, "ceiling": ceiling,
                     "samples": len(samples[threshold]), "dense_samples": len(samples[None])})
    return rows


def _point(row):
    silent = " (nothing sent in ticks 1..T)" if row["tick_messages"] == 0 else ""
    return f"{row['speedup']:.2f}x at {row['active_fraction']:.2%} active (threshold {row['threshold']:g}){silent}"


def verdict(rows):
    """One plain line on the group's sparse rows (at most SPARSE of the neurons send per tick): which
    of them reach TARGET x and which do not, each with its active fraction."""
    first = rows[0]
    head = f"{first['case']} (IL T={first['T']}, batch {first['batch']}), rows with <= {SPARSE:.0%} active"
    sparse = sorted((r for r in rows if r["active_fraction"] <= SPARSE), key=lambda r: -r["active_fraction"])
    if not sparse:
        return f"{first['case']} (IL T={first['T']}, batch {first['batch']}): no threshold tried brings the " \
               f"active fraction to {SPARSE:.0%} or below"
    hits = [r for r in sparse if r["speedup"] >= TARGET]
    misses = [r for r in sparse if r["speedup"] < TARGET]
    ceiling = (f" [ceiling {first['ceiling']:.2f}x: {first['fixed_ms']:.3f} of the dense step's "
               f"{first['dense_ms']:.3f} ms are not ticks (feed-forward pass, update, Python), and no "
               f"threshold removes them]")
    if not misses:
        return head + f": ALL reach >= {TARGET:g}x: " + "; ".join(map(_point, hits)) + ceiling
    if not hits:
        return head + f": NONE reaches {TARGET:g}x: " + "; ".join(map(_point, misses)) + ceiling
    return (head + f": MIXED, >= {TARGET:g}x only at " + "; ".join(map(_point, hits))
            + f"; below {TARGET:g}x at " + "; ".join(map(_point, misses)) + ceiling)


# --------------------------------------------------------------------------------------------- #
# Output
# --------------------------------------------------------------------------------------------- #
def accuracy_table(rows):
    pops = [p for p in rows[0]["per_population"] if p != "value[0]"] if rows else []
    head = ("| net | variant | threshold | test acc | vs dense | messages/step | synaptic events/step | "
            "active fraction | cosine to BP | " + " | ".join(f"{p} msgs/tick" for p in pops) + " |")
    lines = [head, "|" + "---|" * (9 + len(pops))]
    for r in rows:
        per = " | ".join(f"{r['per_population'][p]['per_tick']:.1f}" if p in r["per_population"] else "n/a"
                         for p in pops)
        accuracy = fmt(r["test_accuracy"], ".4f") + (" (collapsed)" if r["collapsed"] else "")
        if r["error"]:
            accuracy = "diverged"
        lines.append(f"| {r['net']} | {r['variant']} | {r['label']} | {accuracy} | "
                     f"{fmt(r['accuracy_vs_dense'], '+.4f')} | {r['messages']} | {r['synaptic_events']} | "
                     f"{r['active_fraction']:.4f} | {r['cosine_to_bp']:.4f} | {per} |")
    return "\n".join(lines)


def cost_table(rows):
    lines = ["| network | T | batch | threshold | active fraction | messages/step | dense ms | events ms | "
             "dense/events | ceiling |", "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['case']} | {r['T']} | {r['batch']} | {r['threshold']:g} | {r['active_fraction']:.4f} | "
                     f"{r['messages']:.0f} | {r['dense_ms']:.4f} | {r['events_ms']:.4f} | {r['speedup']:.2f}x | "
                     f"{r['ceiling']:.2f}x |")
    return "\n".join(lines)


def _atomic(path, write):
    """``write(temporary path)``, then rename the file onto ``path`` (no half-written output)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(handle)
    try:
        write(temporary)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(temporary, 0o666 & ~umask)  # mkstemp creates it 0600
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.unlink(temporary)
        raise


def write_json_atomic(path, report):
    def write(temporary):
        with open(temporary, "w") as handle:
            json.dump(report, handle, indent=1)
    _atomic(path, write)


def _log_axis(ax, values, decades):
    """A log x axis for ``values`` >= 0: 0 is drawn at a visible left edge (a third of the smallest
    positive value) and labelled "0". Returns where 0 goes."""
    positive = [v for v in values if v > 0]
    low = min(positive) / 3 if positive else 1e-5
    ax.set_xscale("log")
    ticks = [t for t in decades if t > low]
    if any(v == 0 for v in values):
        ax.set_xticks([low] + ticks)
        ax.set_xticklabels(["0"] + [f"{t:g}" for t in ticks])
    else:
        ax.set_xticks(ticks)
        ax.set_xticklabels([f"{t:g}" for t in ticks])
    return low


def figure(report, paths):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 2, figsize=(12, 8.5))
    accuracy = report["accuracy"]
    colors = {(k, n): f"C{i}" for i, (k, n) in enumerate((k, n) for k in NETS for n in VARIANTS)}

    ax = axes[0, 0]  # (a) messages per tick per population, IL on the MLP
    il = [r for r in accuracy if r["net"] == "mlp" and r["variant"] == "il" and r["threshold"]]
    if il:
        chosen = min(il, key=lambda r: abs(math.log10(r["threshold"] / FIGURE_THRESHOLD)))
        for name, counts in chosen["per_tick"].items():
            if name != "value[0]":
                neurons = chosen["per_population"][name]["neurons"]
                ax.plot(range(len(counts)), counts, marker=".", label=f"{name} ({neurons} neurons)")
        ax.set_title(f"(a) IL on digits MLP, threshold {chosen['label']}: messages per tick\n"
                     f"(batch of {PROBE}, initial weights; {chosen['messages']} messages in the step)")
        ax.legend(fontsize=8)
    ax.set_xlabel("tick")
    ax.set_ylabel("messages sent")

    for ax, key, title, ylabel in ((axes[0, 1], "test_accuracy", "(b) test accuracy after training vs threshold",
                                    "test accuracy"),
                                   (axes[1, 0], "synaptic_events", "(c) synaptic events per step vs threshold\n"
                                    f"(batch of {PROBE}; dashed: dense)", "synaptic events per step")):
        thresholds = sorted({r["threshold"] for r in accuracy if r["threshold"] is not None})
        low = _log_axis(ax, thresholds, (1e-4, 1e-3, 1e-2, 1e-1, 1.0))
        for (kind, name), color in colors.items():
            sel = [r for r in accuracy if r["net"] == kind and r["variant"] == name]
            dense = [r for r in sel if r["threshold"] is None]
            events = [r for r in sel if r["threshold"] is not None and r[key] is not None]
            if not sel:
                continue
            if events:
                xs = [r["threshold"] if r["threshold"] > 0 else low for r in events]
                ax.plot(xs, [r[key] for r in events], marker="o", color=color, label=f"{name}, {kind}")
            if dense and dense[0][key] is not None:
                ax.axhline(dense[0][key], color=color, linestyle="--", linewidth=1)
        if key == "synaptic_events":
            if all(r[key] > 0 for r in accuracy):
                ax.set_yscale("log")
            else:  # a step that sends nothing at all
                ax.set_yscale("symlog", linthresh=1)
                ax.set_ylim(bottom=0)
        ax.set_xlabel("send-on-delta threshold (0 at the left edge)")
        ax.set_ylabel(ylabel)
        if key == "test_accuracy":
            epochs = report["settings"]["epochs"]
            title += f"\n(dashed: dense; MLP {epochs['mlp']} epochs, CNN {epochs['cnn']} epochs, same seed)"
        ax.set_title(title, fontsize=10)
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)

    ax = axes[1, 1]  # (d) speed-up vs active fraction
    cost = report["cost"]
    if cost:
        groups = {}
        for r in cost:
            groups.setdefault((r["case"], r["T"], r["batch"]), []).append(r)
        low = _log_axis(ax, [r["active_fraction"] for r in cost], (1e-3, 1e-2, 1e-1, 1.0))
        for (case, T, batch), rows in groups.items():
            rows = sorted(rows, key=lambda r: r["active_fraction"])
            line, = ax.plot([r["active_fraction"] if r["active_fraction"] > 0 else low for r in rows],
                            [r["speedup"] for r in rows], marker="o", label=f"{case}, T={T}, batch {batch}")
            if "ceiling" in rows[0]:  # the same colour, dotted: dense step / dense step with one tick
                ax.axhline(rows[0]["ceiling"], color=line.get_color(), linestyle=":", linewidth=1)
        ax.axhline(1.0, color="gray", linewidth=1)
        ax.axhline(TARGET, color="red", linestyle="--", linewidth=1, label=f"{TARGET:g}x")
        ax.set_ylim(0, 1.08 * max(max(r["speedup"], r.get("ceiling", 0.0)) for r in cost))
        ax.axvline(SPARSE, color="gray", linestyle=":", linewidth=1, label=f"{SPARSE:.0%} active")
        ax.legend(fontsize=8)
    ax.set_xlabel("active fraction (neurons sending per tick; 0 at the left edge)")
    ax.set_ylabel("speed-up, dense ms / events ms")
    ax.set_title("(d) IL training step, float32, 1 BLAS thread: events' speed-up\nvs active fraction "
                 "(dotted: ceiling, dense step / its time outside the ticks)", fontsize=10)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    for path in paths:
        _atomic(path, lambda temporary: fig.savefig(temporary, dpi=120, format="png"))
        _log(f"saved {path}")
    plt.close(fig)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="3 thresholds, 1 epoch on a 720-sample subset, fewer and shorter timing rounds")
    parser.add_argument("--out", default=None,
                        help=f"JSON path, the PNG goes next to it (default {DEFAULT_OUT.relative_to(ROOT)}; "
                             f"quick: {QUICK_OUT.relative_to(ROOT)})")
    parser.add_argument("--docs", action="store_true", help="also save the figure to docs/img/bench_events.png")
    parser.add_argument("--epochs-mlp", type=int, default=None, help=f"default {EPOCHS['mlp']} (quick 1)")
    parser.add_argument("--epochs-cnn", type=int, default=None, help=f"default {EPOCHS['cnn']} (quick 1)")
    parser.add_argument("--rounds", type=int, default=None, help="timing rounds (default 9; quick 3)")
    parser.add_argument("--min-seconds", type=float, default=None,
                        help="seconds of back-to-back steps per timing sample (default 0.15; quick 0.02)")
    parser.add_argument("--skip-cost", action="store_true", help="part 1 only")
    args = parser.parse_args(argv)
    one_blas_thread()
    started = time.perf_counter()
    thresholds = QUICK_SWEEP if args.quick else SWEEP
    epochs = {"mlp": args.epochs_mlp or (1 if args.quick else EPOCHS["mlp"]),
              "cnn": args.epochs_cnn or (1 if args.quick else EPOCHS["cnn"])}
    train_samples = QUICK_TRAIN if args.quick else None
    rounds = args.rounds or (3 if args.quick else 9)
    min_seconds = args.min_seconds or (0.02 if args.quick else 0.15)

    accuracy = []
    for kind in NETS:
        for name, hyper in VARIANTS.items():
            _log(f"[{time.perf_counter() - started:6.1f}s] sweep {name} on {kind}")
            accuracy += sweep(kind, name, hyper, thresholds, epochs[kind], train_samples)
    cost, verdicts = [], []
    if not args.skip_cost:
        for label, sizes, T, batch, levels in (QUICK_COST_CASES if args.quick else COST_CASES):
            _log(f"[{time.perf_counter() - started:6.1f}s] timing IL T={T} on {label}, batch {batch}")
            rows = measure_case(label, sizes, T, batch, levels, rounds, min_seconds)
            cost += rows
            verdicts.append(verdict(rows))

    report = {
        "benchmark": "events", "quick": args.quick, "machine": platform.machine(),
        "processor": platform.processor(), "python": platform.python_version(), "numpy": np.__version__,
        "cpus": os.cpu_count(),
        "settings": {"variants": VARIANTS, "optimizers": OPTIMIZERS, "epochs": epochs, "batch_size": BATCH_SIZE,
                     "train_samples": train_samples, "probe_batch": PROBE, "seed": SEED,
                     "thresholds": list(thresholds), "collapse": "accuracy < 0.5 x dense or <= chance + 0.05 "
                     "(chance 0.1) or diverged; the sweep stops there",
                     "cost": {"dtype": "float32", "blas_threads": 1, "lr": COST_LR, "pool": POOL, "rounds": rounds,
                              "min_seconds": min_seconds, "speedup": "median dense ms / median events ms, same run"}},
        "accuracy": accuracy, "cost": cost, "verdicts": verdicts,
    }

    print("## Part 1: messages, cosine to BP and test accuracy per threshold (float64)\n")
    print(accuracy_table(accuracy))
    if cost:
        print("\n## Part 2: training-step wall clock, events vs dense (float32, 1 BLAS thread)\n")
        print(cost_table(cost))
        print()
        for line in verdicts:
            print("verdict: " + line)
    out = Path(args.out or (QUICK_OUT if args.quick else DEFAULT_OUT))
    paths = [out.with_suffix(".png")] + ([DOCS_FIGURE] if args.docs else [])
    report["figures"] = [str(path) for path in paths]
    figure(report, paths)
    report["seconds"] = time.perf_counter() - started
    write_json_atomic(out, report)
    _log(f"saved {out}")
    print(f"\nwall time {report['seconds']:.1f} s")
    return report


if __name__ == "__main__":
    main()
