"""Tick-by-tick simulation of a circuit under a variant, with traces for plotting.

One tick updates every population from the previous tick's state, as parallel hardware would. The
simulator runs a variant's tick protocol (see :mod:`neurosim.variants.base`) and copies out what was
asked for after every tick; the fused ``variant.gradients`` path is tested equal to it.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from . import events as event_models
from .circuit.network import Network
from .variants.base import Variant, raise_divergence

RECORDABLE = ("energy", "errors", "values", "predictions")


@dataclass
class Trace:
    """What a :meth:`Simulator.run` recorded.

    energy: ``(T+1,)`` batch-mean energy at ticks 0..T (tick 0 = after feed-forward init and clamp);
    errors[l], values[l], predictions[l]: ``(T+1, B, n_l)`` for ``l = 0..L`` (index 0 is the input
    layer; its errors are 0); ``(T+1, B, C_l, H_l, W_l)`` feature maps for a conv layer;
    grads: ``[(dW, db), ...]`` of the step, as loss gradients (a dict for an RNN);
    loss: batch mean 1/2 ||y - yhat||^2 at the feed-forward state;
    events: what each population sent per tick (:class:`neurosim.events.EventTrace`) when the
    simulator runs send-on-delta events, else ``None``.
    """

    energy: np.ndarray
    errors: list = field(default_factory=list)
    values: list = field(default_factory=list)
    predictions: list = field(default_factory=list)
    grads: list = field(default_factory=list)
    loss: float = float("nan")
    events: object = None

    @property
    def ticks(self) -> int:
        return len(self.energy) - 1

    def plot_energy(self, ax=None):
        """Energy against tick (log scale); returns the matplotlib axes."""
        import matplotlib.pyplot as plt

        if ax is None:
            _, ax = plt.subplots(figsize=(5.5, 3.6), layout="constrained")
        ax.semilogy(np.arange(len(self.energy)), np.maximum(self.energy, 1e-300), marker=".")
        ax.set_xlabel("tick (0 = after the feed-forward initialisation)")
        ax.set_ylabel("energy F (batch mean)")
        ax.set_title("energy during inference")
        ax.grid(alpha=0.3)
        return ax


class Simulator:
    """Runs ``variant`` on ``net`` one tick at a time.

    >>> sim = Simulator(net, variant("il", T=20, gamma=0.1))
    >>> trace = sim.run(x, y, record=("energy", "errors"))

    ``events``: :class:`neurosim.events.SendOnDelta` lets each population send only its changes
    (``trace.events`` then says who sent what on every tick); ``None`` or
    :class:`neurosim.events.Dense` simulates dense ticks.
    """

    def __init__(self, net: Network, variant: Variant, events=None):
        if not isinstance(net, Network):
            raise TypeError(f"net must be a neurosim Network, got {type(net).__name__}")
        if not isinstance(variant, Variant):
            raise TypeError(f"variant must come from neurosim.variant(...), got {type(variant).__name__}")
        self.net = net
        self.variant = variant
        self.events = event_models.resolve(events, variant)

    def run(self, x, y, record=("energy",)) -> Trace:
        """Simulate one training step's inference on a batch; the weights are not changed."""
        if isinstance(record, str):
            record = (record,)
        for name in record:
            if name not in RECORDABLE:
                raise ValueError(f"record: unknown quantity {name!r}; choose from {', '.join(RECORDABLE)}")
        net, variant = self.net, self.variant
        x, y, ws = variant.prepare(net, x, y)
        n_ticks = variant.n_ticks(net)
        grads = np.zeros_like(net.params)
        buffers = {"errors": "errors", "values": "values", "predictions": "preds"}
        series = {name: [np.zeros((n_ticks + 1,) + ws.layer(buffers[name], l).shape, dtype=net.dtype)
                         for l in range(net.n_layers + 1)]
                  for name in buffers if name in record}
        energy = np.zeros(n_ticks + 1)

        def snapshot(tick):
            for name, layers in series.items():
                for l, out in enumerate(layers):
                    out[tick] = ws.layer(buffers[name], l)

        # passed on only when set, so a variant written before events existed still runs dense
        state = variant.begin(net, ws, x, y, grads, **({"events": self.events} if self.events else {}))
        energy[0] = state.energy
        snapshot(0)
        for tick in range(1, n_ticks + 1):
            energy[tick] = variant.tick(state, tick)
            snapshot(tick)
            if not np.isfinite(energy[tick]):
                raise_divergence(variant, net, ws, tick)
        variant.end(state)
        if "errors" in series:
            for out in series["errors"][:1]:
                out[...] = 0.0
        grad_list = net.grad_views(grads)
        run = state.extra.get("run")
        return Trace(energy=energy, errors=series.get("errors", []), values=series.get("values", []),
                     predictions=series.get("predictions", []), grads=grad_list, loss=state.loss,
                     events=None if run is None else run.event_trace())
