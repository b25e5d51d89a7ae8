"""The bookkeeping of one schedule's messages: which population each op sends from, over which
connection, with what fan-out; turns the per-op message counts a backend returns into an
:class:`~neurosim.events.EventTrace` and into counted events."""
from __future__ import annotations

import numpy as np

from ..kernels.events import message_totals
from .trace import EventTrace

# Columns of the per-op message counts a backend fills (``messages[k, column]``).
VALUE_MESSAGES, ERROR_MESSAGES, VALUE_RECOMPUTED, ERROR_RECOMPUTED = range(4)


class EventBook:
    """What the ops of a schedule send, for one network and batch size.

    ``rows``: ``[(tick, name, layer, flag), ...]``, the schedule's ops in execution order (row ``k``
    of the backend's ``messages``); ``feedback_name``: how feedback connections are named
    (``"W[l]^T"`` for symmetric feedback, else ``"B[l]"``).
    """

    def __init__(self, rows, net, batch: int, symmetric: bool = True):
        L = net.n_layers
        sizes = [int(n) for n in net.sizes]
        self.n_ticks = max((row[0] for row in rows), default=0)
        self.batch = batch
        self.populations = tuple([f"value[{l}]" for l in range(L)] + [f"error[{l}]" for l in range(2, L + 1)])
        self.neurons = np.array([batch * sizes[l] for l in range(L)] + [batch * sizes[l] for l in range(2, L + 1)],
                                dtype=np.int64)
        self.feedforward = np.array([batch * sizes[l] for l in range(L)] + [0] * (L - 1), dtype=np.int64)
        names = []
        for l in range(1, L + 1):
            names.append(f"W[{l}]")
            if l >= 2:
                names.append(f"W[{l}]^T" if symmetric else f"B[{l}]")
        self.connections = tuple(names)
        index = {name: c for c, name in enumerate(names)}
        fan = {l: net.fan_out(l) for l in range(1, L + 1)}
        n = len(rows)
        self.tick = np.array([row[0] for row in rows], dtype=np.int64).reshape(n)
        self.layer = np.array([row[2] for row in rows], dtype=np.int64).reshape(n)
        # Per row: the sending population and connection of its value and error messages (-1: none)
        self.value_sender = np.full(n, -1, dtype=np.int64)
        self.error_sender = np.full(n, -1, dtype=np.int64)
        self.value_link = np.full(n, -1, dtype=np.int64)
        self.error_link = np.full(n, -1, dtype=np.int64)
        self.value_fan = np.zeros(n)
        self.error_fan = np.zeros(n)
        self.value_ops = np.zeros(n, dtype=np.int64)  # e_l = x_l - mu_l after the prediction
        self.value_recompute = np.zeros(n, dtype=np.int64)  # MACs of recomputing mu_l from sent
        self.error_recompute = np.zeros(n, dtype=np.int64)
        for k, (_, name, layer, flag) in enumerate(rows):
            sends_errors = name == "feedback" or (name == "predict" and flag and layer >= 2)
            if name == "predict":
                self.value_sender[k] = layer - 1
                self.value_link[k] = index[f"W[{layer}]"]
                self.value_fan[k] = fan[layer][0]
                self.value_recompute[k] = net.layer_macs(layer, batch)
                self.value_ops[k] = 2 * batch * sizes[layer]
            if sends_errors:
                self.error_sender[k] = L + layer - 2
                self.error_link[k] = index[f"W[{layer}]^T" if symmetric else f"B[{layer}]"]
                self.error_fan[k] = fan[layer][1]
                self.error_recompute[k] = net.feedback_macs(layer, batch)

    def trace(self, messages: np.ndarray, last: int | None = None) -> EventTrace:
        """The :class:`EventTrace` of ``messages`` (``(rows, 4)``, per op) over ticks ``0..last``."""
        last = self.n_ticks if last is None else last
        P, C = len(self.populations), len(self.connections)
        sent = np.zeros((last + 1, P), dtype=np.int64)
        synaptic = np.zeros((last + 1, C), dtype=np.int64)
        recomputed = np.zeros((last + 1, C), dtype=np.int64)
        keep = self.tick <= last
        for sender, link, fan, column, again in (
                (self.value_sender, self.value_link, self.value_fan, VALUE_MESSAGES, VALUE_RECOMPUTED),
                (self.error_sender, self.error_link, self.error_fan, ERROR_MESSAGES, ERROR_RECOMPUTED)):
            rows = keep & (sender >= 0)
            ticks = self.tick[rows]
            counts = messages[rows, column]
            np.add.at(sent, (ticks, sender[rows]), counts)
            np.add.at(synaptic, (ticks, link[rows]), np.rint(counts * fan[rows]).astype(np.int64))
            np.add.at(recomputed, (ticks, link[rows]), messages[rows, again])
        return EventTrace(self.populations, self.neurons.copy(), sent, self.feedforward.copy(),
                          self.connections, synaptic, recomputed)

    def row_events(self, k: int, messages: np.ndarray) -> list:
        """The counted events of row ``k``'s messages: ``[(kernel, layer, macs, ops, messages), ...]``
        for what its value and error neurons sent (synaptic events as MACs) and any recomputation."""
        layer = int(self.layer[k])
        out = []
        if self.value_sender[k] >= 0:
            count = int(messages[k, VALUE_MESSAGES])
            macs = int(round(count * self.value_fan[k]))
            macs += int(messages[k, VALUE_RECOMPUTED]) * int(self.value_recompute[k])
            out.append(("prediction", layer, macs, int(self.value_ops[k]), count))
        if self.error_sender[k] >= 0:
            count = int(messages[k, ERROR_MESSAGES])
            macs = int(round(count * self.error_fan[k]))
            macs += int(messages[k, ERROR_RECOMPUTED]) * int(self.error_recompute[k])
            out.append(("feedback", layer, macs, 0, count))
        return out

    def summary(self, messages: np.ndarray, first: int, last: int) -> dict:
        """``{kernel: [events, macs, ops, messages]}`` of the messages of ticks ``first..last`` (the
        sums of :meth:`row_events` over those rows, without forming them)."""
        cache = self.__dict__.setdefault("_static", {})
        static = cache.get((first, last))
        if static is None:  # what does not depend on the messages, per tick range
            start = int(np.searchsorted(self.tick, first, "left"))
            stop = int(np.searchsorted(self.tick, last, "right"))
            value_rows, error_rows = self.value_sender[start:stop] >= 0, self.error_sender[start:stop] >= 0
            static = cache[(first, last)] = (start, stop, int(value_rows.sum()),
                                             int(self.value_ops[start:stop][value_rows].sum()), int(error_rows.sum()))
        start, stop, value_calls, value_ops, error_calls = static
        # rows without a sender of a kind hold no messages of that kind, so all rows are summed
        value_messages, value_macs, error_messages, error_macs = message_totals(
            messages, start, stop, self.value_fan, self.value_recompute, self.error_fan,
            self.error_recompute)
        out = {}
        if value_calls:
            out["prediction"] = [value_calls, int(value_macs), value_ops, int(value_messages)]
        if error_calls:
            out["feedback"] = [error_calls, int(error_macs), 0, int(error_messages)]
        return out
