"""What the populations of one step sent: messages per tick and population, synaptic events per
connection (see :mod:`neurosim.events`)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class EventTrace:
    """Messages of one step under send-on-delta (or dense) events.

    populations: the sending populations, ``value[0..L-1]`` then ``error[2..L]``; neurons: ``(P,)``
    their neurons times the batch (the most one tick can send); sent: ``(T + 1, P)`` messages per tick
    (tick 0 is the tick after the feed-forward sweep); feedforward: ``(P,)`` messages of the
    feed-forward sweep (every value neuron once); connections: names (``W[l]``, ``W[l]^T``/``B[l]``);
    synaptic: ``(T + 1, C)`` synaptic events per tick and connection (each message times its
    fan-out: the synapse rows the receiver reads); recomputed: ``(T + 1, C)`` receivers that
    recomputed their whole input after their synapses changed (iPC; MACs, no message).
    """

    populations: tuple
    neurons: np.ndarray
    sent: np.ndarray
    feedforward: np.ndarray
    connections: tuple
    synaptic: np.ndarray
    recomputed: np.ndarray

    @property
    def ticks(self) -> int:
        return self.sent.shape[0] - 1

    def total(self) -> int:
        """Messages sent in the step, the feed-forward sweep included (an int)."""
        return int(self.sent.sum() + self.feedforward.sum())

    def synaptic_events(self) -> int:
        """Synaptic events in the step's ticks (messages times fan-out)."""
        return int(self.synaptic.sum())

    def _relaxing(self) -> np.ndarray:
        """Which populations may send during the ticks (``value[0]`` is the clamped input)."""
        return np.array([name != "value[0]" for name in self.populations])

    def active_fraction(self) -> float:
        """Messages per tick over the neurons that may send per tick (ticks 1..T; ``value[0]``, the
        clamped input, excluded): the mean fraction of neurons that send on a tick."""
        relaxing = self._relaxing()
        ticks = max(self.ticks, 1)
        capacity = ticks * float(self.neurons[relaxing].sum())
        return float(self.sent[1:, relaxing].sum()) / capacity if capacity else 0.0

    def per_population(self) -> dict:
        """``{population: {"messages", "feedforward", "neurons", "active"}}``: messages in the ticks,
        in the feed-forward sweep, its neurons times the batch, and the mean fraction of them that
        sent per tick (ticks 1..T)."""
        ticks = max(self.ticks, 1)
        return {name: {"messages": int(self.sent[:, p].sum()), "feedforward": int(self.feedforward[p]),
                       "neurons": int(self.neurons[p]),
                       "active": float(self.sent[1:, p].sum()) / (ticks * float(self.neurons[p]))}
                for p, name in enumerate(self.populations)}

    def per_tick(self) -> dict:
        """``{tick: {"messages", "synaptic_events", "active", population: messages, ...}}``."""
        relaxing = self._relaxing()
        capacity = float(self.neurons[relaxing].sum())
        out = {}
        for tick in range(self.sent.shape[0]):
            row = {"messages": int(self.sent[tick].sum()), "synaptic_events": int(self.synaptic[tick].sum()),
                   "active": float(self.sent[tick, relaxing].sum()) / capacity if capacity else 0.0}
            row.update({name: int(self.sent[tick, p]) for p, name in enumerate(self.populations)})
            out[tick] = row
        return out

    def per_connection(self) -> dict:
        """``{connection: {"synaptic_events", "recomputed"}}`` over the ticks."""
        return {name: {"synaptic_events": int(self.synaptic[:, c].sum()),
                       "recomputed": int(self.recomputed[:, c].sum())}
                for c, name in enumerate(self.connections)}

    def table(self, by: str = "population") -> str:
        """A text table: ``by="population"``, ``"tick"`` or ``"connection"``."""
        if by == "population":
            rows = self.per_population()
            columns = ("messages", "feedforward", "neurons", "active")
        elif by == "tick":
            rows = {tick: {key: row[key] for key in ("messages", "synaptic_events", "active")}
                    for tick, row in self.per_tick().items()}
            columns = ("messages", "synaptic_events", "active")
        elif by == "connection":
            rows = self.per_connection()
            columns = ("synaptic_events", "recomputed")
        else:
            raise ValueError(f"by must be 'population', 'tick' or 'connection', got {by!r}")
        width = max([len(by), 5] + [len(str(key)) for key in rows]) + 2
        lines = [f"{by:<{width}}" + "".join(f"{column:>16}" for column in columns)]
        for key, row in rows.items():
            cells = "".join(f"{row[c]:>16.3f}" if isinstance(row[c], float) else f"{row[c]:>16}"
                            for c in columns)
            lines.append(f"{str(key):<{width}}{cells}")
        return "\n".join(lines)

    def plot(self, ax=None):
        """Messages per tick of each population that sends during the ticks; returns the axes."""
        import matplotlib.pyplot as plt

        if ax is None:
            _, ax = plt.subplots(figsize=(6, 3.6), layout="constrained")
        ticks = np.arange(self.sent.shape[0])
        for p, name in enumerate(self.populations):
            if name == "value[0]":
                continue
            ax.plot(ticks, self.sent[:, p], marker=".", label=name)
        ax.set_xlabel("tick (0 = the feed-forward sweep)")
        ax.set_ylabel("messages sent")
        ax.set_title(f"messages per tick ({self.total()} in the step)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize="small", ncol=2)
        return ax
