"""Exact counts of the work a simulation does, recorded where each kernel runs.

Every kernel call goes through :mod:`neurosim.circuit.ops`, which reports what that call did to the
active :class:`Counter` (if any): multiply-accumulates (``macs``), elementwise operations (``ops``:
bias additions, activation and derivative evaluations, value and error updates), and ``messages``
(scalars sent from one population to another: activities up to the error neurons they predict,
errors down to the value neurons they drive). Each event carries its tick and layer, so the counts
can be read per population, per tick, or as totals.

    with neurosim.counting.count() as counter:
        variant.gradients(net, x, y)
    counter.macs, counter.ticks, counter.table()
"""
from __future__ import annotations

from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Event:
    """One kernel's work on one layer at one tick. ``tick = -1`` marks work outside inference."""

    kernel: str
    tick: int
    layer: int
    macs: int = 0
    ops: int = 0
    messages: int = 0


@dataclass
class Counter:
    """Accumulates :class:`Event` records; totals are exact integers."""

    events: list = field(default_factory=list)

    def record(self, kernel: str, tick: int, layer: int, macs: int = 0, ops: int = 0,
               messages: int = 0) -> None:
        self.events.append(Event(kernel, int(tick), int(layer), int(macs), int(ops), int(messages)))

    @property
    def macs(self) -> int:
        return sum(event.macs for event in self.events)

    @property
    def ops(self) -> int:
        return sum(event.ops for event in self.events)

    @property
    def messages(self) -> int:
        return sum(event.messages for event in self.events)

    @property
    def ticks(self) -> int:
        """Number of relaxation ticks run (tick 0, the feed-forward initialisation, not included)."""
        ticks = {event.tick for event in self.events if event.tick > 0}
        return max(ticks) if ticks else 0

    @property
    def critical_path(self) -> int:
        """Sequential matrix products under the parallel-tick model (see :func:`critical_path`)."""
        return critical_path(self.events)

    def timeline(self) -> dict:
        """``{(tick, layer): macs}``: the work of every layer on every tick (tick 0 = initialisation)."""
        out = {}
        for event in self.events:
            key = (event.tick, event.layer)
            out[key] = out.get(key, 0) + event.macs
        return out

    def by_kernel(self) -> dict:
        """``{kernel: {"calls", "macs", "ops", "messages"}}``."""
        out = {}
        for event in self.events:
            row = out.setdefault(event.kernel, {"calls": 0, "macs": 0, "ops": 0, "messages": 0})
            row["calls"] += 1
            row["macs"] += event.macs
            row["ops"] += event.ops
            row["messages"] += event.messages
        return out

    def table(self) -> str:
        lines = [f"{'kernel':<18}{'events':>8}{'MACs':>14}{'ops':>12}{'messages':>12}"]
        for kernel, row in self.by_kernel().items():
            lines.append(f"{kernel:<18}{row['calls']:>8}{row['macs']:>14}{row['ops']:>12}"
                         f"{row['messages']:>12}")
        lines.append(f"{'total':<18}{len(self.events):>8}{self.macs:>14}{self.ops:>12}{self.messages:>12}")
        return "\n".join(lines)


# What each kernel reads and writes, per layer l: x values, a activities, mu predictions, e errors,
# fb feedback e_{l+1} W_{l+1} (stored at l), g frozen gains f'(x_l), dW the layer's weight term.
# The critical path follows these data dependencies through the recorded events.
DEPENDENCIES = {
    "feedforward": (("a{l-1}",), ("x{l}", "a{l}", "mu{l}")),
    "prediction": (("a{l-1}", "x{l}"), ("mu{l}", "e{l}")),
    "feedback": (("e{l}",), ("fb{l-1}",)),
    "value_update": (("x{l}", "e{l}", "fb{l}", "g{l}"), ("x{l}", "a{l}", "e{l}")),
    "hebbian": (("e{l}", "a{l-1}"), ("dW{l}",)),
    "output_delta": (("x{l}", "mu{l}"), ("e{l}",)),
    "derivative": (("x{l}", "fb{l}"), ("e{l}", "g{l}")),
    "error": (("x{l}", "mu{l}"), ("e{l}",)),
}


def _populations(templates, layer):
    return [t.replace("{l-1}", str(layer - 1)).replace("{l}", str(layer)) for t in templates]


def critical_path(events) -> int:
    """Sequential matrix products on the longest dependency chain of ``events``.

    The parallel-tick model: events run as soon as what they read is ready, so products on different
    layers within a tick overlap, and a product adds 1 to the chain it extends (elementwise work
    adds 0). Events must be in execution order, as recorded.
    """
    depth = {}
    longest = 0
    for event in events:
        reads, writes = DEPENDENCIES.get(event.kernel, ((), ()))
        level = max((depth.get(p, 0) for p in _populations(reads, event.layer)), default=0)
        level += 1 if event.macs > 0 else 0
        for population in _populations(writes, event.layer):
            depth[population] = level
        longest = max(longest, level)
    return longest


_ACTIVE: ContextVar = ContextVar("neurosim_counter", default=None)


def active() -> Counter | None:
    """The counter receiving events in this context, or ``None``."""
    return _ACTIVE.get()


@contextmanager
def count():
    """Record every kernel's work inside the ``with`` block into a fresh :class:`Counter`."""
    counter = Counter()
    token = _ACTIVE.set(counter)
    try:
        yield counter
    finally:
        _ACTIVE.reset(token)
