"""What a training step costs in time and work, measured by the counters and in closed form.

Zahid, Guo & Fountas 2023 ("Predictive coding as a neuromorphic alternative to backpropagation: a
critical evaluation", Neural Computation 35:1881) compare PC variants with BP under a maximally
parallel model: every layer updates at once within a tick, so a step's latency is set by its longest
chain of dependent matrix products. This module measures, for one training step:

- ``macs``: multiply-accumulates of every matrix product (forward, feedback, Hebbian);
- ``ops``: elementwise operations; ``messages``: scalars sent between populations;
- ``ticks``: inference ticks after the feed-forward initialisation (tick 0);
- ``critical_path``: sequential matrix products on the longest dependency chain
  (:func:`neurosim.counting.critical_path`).

:func:`analytic` gives the same quantities in closed form (derived in ``docs/complexity.md``) and the
tests hold the two equal. Notation: ``P_l`` the MACs of one call of layer ``l`` on the batch
(``net.layer_macs``), ``F_l`` those of its feedback (``net.feedback_macs``; ``F_l = P_l`` except for an
RNN's time copies), ``S = sum_l P_l``, ``R = sum_{l>=2} F_l``, ``Q = sum_{l>=2} P_l``:

| variant | macs | ticks | critical path |
|---|---|---|---|
| ``bp``  | ``2 S + R`` | ``L - 1`` | ``2 L`` |
| ``il``  | ``2 S + F_L + T (Q + R)`` | ``T`` | ``L + 1 + 2 T`` |
| ``zil`` | ``2 S + R`` (wavefront; full circuit: ``2 S + F_L + (L - 1)(Q + R)``) | ``L - 1`` | ``2 L`` (full: ``3 L - 1``) |
| ``fpa`` | ``2 S + T R`` | ``T`` | ``2 L`` if ``T >= L - 1`` |
| ``seqil`` | ``2 S + T (Q + R)`` | ``T`` | ``2 L + 2 T - 1`` |

(for ``L = 1`` there is no feedback: ``F_L`` and ``R`` are 0 and ``il``'s path is 2.) ``zil``'s
training step (``compute``, what :func:`measure` counts) is the event-driven wavefront of
:mod:`neurosim.variants.zil`; ``ns.Simulator`` still runs its full circuit, IL's form with ``T = L - 1``.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from . import counting
from .circuit.network import Network, mlp
from .variants.base import REGISTRY, Variant, available, variant as make_variant

ANALYTIC = tuple(name for name in available() if REGISTRY[name].has_closed_form())


@dataclass
class Report:
    """Measured cost of one training step of ``variant`` on ``network`` (exact integers)."""

    variant: str
    network: str
    batch_size: int
    n_layers: int
    macs: int
    ops: int
    messages: int
    ticks: int
    critical_path: int
    all_layers_updated: bool = True
    counter: counting.Counter = field(repr=False, default=None)

    def as_dict(self) -> dict:
        return {key: getattr(self, key) for key in
                ("variant", "network", "batch_size", "n_layers", "macs", "ops", "messages", "ticks",
                 "critical_path", "all_layers_updated")}

    def table(self) -> str:
        """The counts, then the work per kernel."""
        head = " ".join(f"{key}={value}" for key, value in self.as_dict().items())
        return head + "\n" + self.counter.table()

    def activity(self) -> np.ndarray:
        """``(L, ticks + 1)`` MACs of each layer (rows 1..L) on each tick (columns 0..ticks)."""
        grid = np.zeros((self.n_layers, self.ticks + 1), dtype=np.int64)
        for (tick, layer), macs in self.counter.timeline().items():
            if 1 <= layer <= self.n_layers and 0 <= tick <= self.ticks:
                grid[layer - 1, tick] += macs
        return grid

    def plot_timeline(self, ax=None, max_tick=None):
        """Gantt-style chart: layers x ticks, dark where a layer does matrix work, blank when idle.
        ``max_tick`` fixes the x range (to share one scale across panels)."""
        import matplotlib.pyplot as plt
        from matplotlib.colors import ListedColormap
        from matplotlib.ticker import MaxNLocator

        grid = self.activity()
        if ax is None:
            _, ax = plt.subplots(figsize=(min(2 + 0.35 * grid.shape[1], 12), 1 + 0.4 * grid.shape[0]),
                                 layout="constrained")
        ax.imshow(grid > 0, aspect="auto", origin="lower", interpolation="nearest", vmin=0, vmax=1,
                  cmap=ListedColormap(["white", "#2c5d8a"]),
                  extent=[-0.5, grid.shape[1] - 0.5, 0.5, grid.shape[0] + 0.5])
        ax.set_xlim(-0.5, (grid.shape[1] - 1 if max_tick is None else max_tick) + 0.5)
        # at most ~20 labelled ticks and ~10 labelled layers, so labels never overlap
        ax.xaxis.set_major_locator(MaxNLocator(nbins=20, integer=True))
        ax.yaxis.set_major_locator(MaxNLocator(nbins=10, integer=True))
        ax.set_xlabel("tick (0 = feed-forward initialisation)")
        ax.set_ylabel("layer")
        ax.set_title(f"{self.variant}: layers doing matrix work per tick "
                     f"(critical path {self.critical_path}, {self.macs} MACs)", fontsize=9)
        return ax


def _random_batch(net, batch_size, seed, x):
    rng = np.random.default_rng(seed)
    if x is None:
        shape = getattr(net, "input_shape", None)
        if shape is None:
            raise ValueError("x is required for this network (an RNN's sequence length sets its depth)")
        x = rng.standard_normal((batch_size,) + tuple(shape))
    x = net.check_input(x, "x")
    y = rng.standard_normal((x.shape[0], net.n_outputs))
    return x, y


def _as_variant(spec) -> Variant:
    if isinstance(spec, Variant):
        return spec
    if isinstance(spec, str):
        return make_variant(spec)
    if isinstance(spec, tuple) and len(spec) == 2:
        return make_variant(spec[0], **spec[1])
    raise TypeError(f"variant must be a name, (name, hyper) or neurosim.variant(...), got {spec!r}")


def label(variant: Variant) -> str:
    """``"il, T=3"``: the name and the hyper-parameters that differ from the variant's defaults."""
    changed = [f"{key}={value}" for key, value in variant.hyper.items()
               if key in variant.defaults and variant.defaults[key] != value]
    return ", ".join([variant.name] + changed)


def measure(net: Network, variant, batch_size: int = 1, seed: int = 0, x=None) -> Report:
    """Run one training step's inference and weight terms with the counters on.

    ``x`` defaults to a standard-normal batch of ``batch_size`` samples (required for an RNN, whose
    depth is its sequence length); targets are random. Counts do not depend on the data.
    """
    variant = _as_variant(variant)
    if not isinstance(net, Network):
        raise TypeError(f"net must be a neurosim Network, got {type(net).__name__}")
    if not variant.counted:
        raise ValueError(f"variant {variant.name!r} does not report all of its work to the counters "
                         f"(counted = False), so its counts would be wrong; measure one of "
                         f"{', '.join(name for name in available() if REGISTRY[name].counted)}")
    x, y = _random_batch(net, batch_size, seed, x)
    with counting.count() as counter:
        step = variant.compute(net, x, y)
    # Measured, not assumed: with too few ticks the error never reaches the lowest layers
    # (Zahid et al. 2023, Lemma 1) and their update is exactly zero.
    updated = all(np.any(step.grads[start:stop] != 0) for start, stop in net.param_groups())
    arch = "-".join(str(int(n)) for n in net.sizes)
    return Report(variant=variant.name, network=arch, batch_size=x.shape[0], n_layers=net.n_layers,
                  macs=counter.macs, ops=counter.ops, messages=counter.messages,
                  ticks=variant.n_ticks(net), critical_path=counter.critical_path,
                  all_layers_updated=bool(updated), counter=counter)


def analytic(net: Network, variant, batch_size: int = 1, **hyper) -> dict:
    """Closed-form ``{"macs", "ticks", "critical_path"}`` of one step (see the module table).

    ``variant``: a name (with ``hyper``, e.g. ``analytic(net, "il", T=20)``), a ``(name, hyper)``
    pair or a variant object. ``net`` must already know its depth (an RNN: after one
    ``check_input``).
    """
    variant = make_variant(variant, **hyper) if isinstance(variant, str) else _as_variant(variant)
    if not variant.has_closed_form():
        owners = ", ".join(name for name in available() if REGISTRY[name].has_closed_form())
        raise ValueError(f"no closed form for variant {variant.name!r}; closed forms exist for {owners} "
                         f"(use measure() for the others)")
    return variant.closed_form(net, batch_size)


@dataclass
class Comparison:
    """Counts of several variants over depths, with ratios to BP. ``rows``: one dict per (depth,
    variant) with the measured counts, ``*_vs_bp`` ratios and, where a closed form exists,
    ``analytic_*`` values."""

    rows: list
    width: int
    batch_size: int

    def table(self) -> str:
        """Markdown table, ratio to BP in every column."""
        lines = ["| L | variant | ticks | critical path | x BP | MACs | x BP | messages | x BP | "
                 "every layer updated |",
                 "|---|---|---|---|---|---|---|---|---|---|"]
        for r in self.rows:
            updated = "yes" if r["all_layers_updated"] else "**no** (too few ticks)"
            lines.append(f"| {r['n_layers']} | {r['variant']} | {r['ticks']} | {r['critical_path']} | "
                         f"{r['critical_path_vs_bp']:.2f} | {r['macs']} | {r['macs_vs_bp']:.2f} | "
                         f"{r['messages']} | {r['messages_vs_bp']:.2f} | {updated} |")
        return "\n".join(lines)

    def plot(self):
        """Critical path and work against depth, one line per variant; returns the figure."""
        import matplotlib.pyplot as plt

        from .plotting import style

        fig, axes = plt.subplots(1, 2, figsize=(10.5, 3.8), layout="constrained")
        for name in dict.fromkeys(r["variant"] for r in self.rows):
            rows = [r for r in self.rows if r["variant"] == name]
            depths = [r["n_layers"] for r in rows]
            look = {**style(name), "markersize": 4}
            axes[0].plot(depths, [r["critical_path"] for r in rows], label=name, **look)
            axes[1].plot(depths, [r["macs"] for r in rows], label=name, **look)
        axes[0].set_ylabel("critical path (sequential matrix products)")
        axes[1].set_ylabel(f"work (MACs, batch {self.batch_size})")
        axes[1].set_yscale("log")
        for ax in axes:
            ax.set_xlabel("depth L")
            ax.grid(alpha=0.3)
            ax.legend(fontsize=8)
        axes[0].set_title("critical path against depth")
        axes[1].set_title("work against depth")
        fig.suptitle(f"one training step, width {self.width}")
        return fig


def compare(variants=("bp", "il", "fpa", "zil"), depths=range(2, 17), width: int = 128,
            batch_size: int = 1, n_inputs: int | None = None, n_outputs: int = 10,
            progress: bool = False) -> Comparison:
    """Measure every variant on dense nets ``[n_inputs, width x (L-1), n_outputs]`` for each depth L.

    ``variants``: names, ``(name, hyper)`` pairs or variant objects; BP is always measured as the
    reference for the ratios.
    """
    from .progress import progress_bar as tqdm

    specs = [_as_variant(v) for v in variants]
    depths = [int(d) for d in depths]
    if not depths or min(depths) < 1:
        raise ValueError(f"depths must be >= 1, got {depths}")
    rows = []
    for depth in tqdm(depths, disable=not progress, desc="depths"):
        net = mlp([n_inputs or width] + [width] * (depth - 1) + [n_outputs], seed=0)
        reference = measure(net, "bp", batch_size)
        for spec in specs:
            report = reference if spec.name == "bp" and not spec.hyper else measure(net, spec, batch_size)
            row = report.as_dict()
            row["variant"] = label(spec)
            for key in ("critical_path", "macs", "messages", "ticks"):
                base = getattr(reference, key)
                row[f"{key}_vs_bp"] = getattr(report, key) / base if base else float("nan")
            if spec.has_closed_form():
                for key, value in analytic(net, spec, batch_size).items():
                    row[f"analytic_{key}"] = value
            rows.append(row)
    return Comparison(rows=rows, width=width, batch_size=batch_size)
