"""Exact counts of the work a simulation does, recorded where each kernel runs.

Every kernel call goes through :mod:`neurosim.circuit.ops`, which reports what that call did
(always: to the process-wide :func:`totals`; with every tick and layer inside a :func:`count` block): multiply-accumulates (``macs``), elementwise operations (``ops``:
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
from dataclasses import dataclass


@dataclass(frozen=True)
class Event:
    """One kernel's work on one layer at one tick. ``tick = -1`` marks work outside inference.

    ``source`` is the population (or connection) whose state the work reads and whose ``messages``
    it sends; ``target`` the population (or connection) it writes, where the ``macs`` and ``ops``
    are done. Names as in :mod:`neurosim.circuit.populations`: ``value[l]``, ``error[l]``,
    ``W[l]`` (synapses into layer ``l``), ``decorrelated[l]``, ``R[l]``.
    """

    kernel: str
    tick: int
    layer: int
    macs: int = 0
    ops: int = 0
    messages: int = 0
    source: str = ""
    target: str = ""

    def __post_init__(self):
        if not self.source or not self.target:
            source, target = endpoints(self.kernel, self.layer)
            object.__setattr__(self, "source", self.source or source)
            object.__setattr__(self, "target", self.target or target)


# Who sends and who receives, per kernel: (source, target) with {l} the event's layer. Plastic
# events target the connection they change. Kernels not listed fall back to ("value[l]", "value[l]").
ENDPOINTS = {
    "feedforward": ("value[{l-1}]", "value[{l}]"),
    "prediction": ("value[{l-1}]", "error[{l}]"),
    "feedback": ("error[{l}]", "value[{l-1}]"),
    "value_update": ("error[{l}]", "value[{l}]"),
    "weight_update": ("error[{l}]", "W[{l}]"),
    "hebbian": ("error[{l}]", "W[{l}]"),
    "output_delta": ("value[{l}]", "error[{l}]"),
    "derivative": ("value[{l}]", "error[{l}]"),
    "error": ("value[{l}]", "error[{l}]"),
    "decorrelate": ("value[{l-1}]", "decorrelated[{l}]"),
    "input_moments": ("decorrelated[{l}]", "R[{l}]"),
    "copi_weights": ("error[{l}]", "W[{l}]"),
    "decorrelation_update": ("decorrelated[{l}]", "R[{l}]"),
    "effective_weights": ("R[{l}]", "W[{l}]"),
    "solver_forward": ("value[{l-1}]", "value[{l}]"),
    "solver_output": ("value[{l}]", "error[{l}]"),
    "solver_gradient": ("error[{l}]", "W[{l}]"),
    "solver_backward": ("error[{l}]", "error[{l-1}]"),
    "solver_prox": ("W[{l}]", "W[{l}]"),
    "solver_norm": ("W[{l}]", "W[{l}]"),
    "solver_step": ("W[{l}]", "W[{l}]"),
}
_ENDPOINT_CACHE: dict = {}


def endpoints(kernel: str, layer: int) -> tuple:
    """``(source, target)`` population names of ``kernel``'s work on ``layer`` (see :data:`ENDPOINTS`)."""
    key = (kernel, layer)
    found = _ENDPOINT_CACHE.get(key)
    if found is None:
        source, target = ENDPOINTS.get(kernel, ("value[{l}]", "value[{l}]"))
        found = _ENDPOINT_CACHE[key] = (_name(source, layer), _name(target, layer))
    return found


def _name(template: str, layer: int) -> str:
    return template.replace("{l-1}", str(layer - 1)).replace("{l}", str(layer))


@dataclass(frozen=True)
class _Repeat:
    """The same events on every tick ``first..last``, in ``template`` order within each tick.

    A fused kernel running T identical ticks is recorded as one of these, so recording costs O(L)
    per call instead of O(T L); :attr:`Counter.events` expands it in execution order.
    """

    template: tuple
    first: int
    last: int

    def expand(self):
        for tick in range(self.first, self.last + 1):
            for kernel, layer, macs, ops, messages, source, target in self.template:
                yield Event(kernel, tick, layer, macs, ops, messages, source, target)


def with_endpoints(event) -> tuple:
    """An event template ``(kernel, layer, macs, ops, messages, source, target)``; a 5-tuple gets
    its source and target from :func:`endpoints`."""
    event = tuple(event)
    if len(event) == 7:
        return event
    kernel, layer, macs, ops, messages = event
    return (kernel, layer, macs, ops, messages) + endpoints(kernel, layer)


def summarise(events) -> dict:
    """``{kernel: [events, macs, ops, messages]}`` of event templates ``(kernel, layer, macs, ops,
    messages[, source, target])``."""
    summary = {}
    for kernel, _, macs, ops, messages, *_ in events:
        row = summary.setdefault(kernel, [0, 0, 0, 0])
        row[0] += 1
        row[1] += macs
        row[2] += ops
        row[3] += messages
    return summary


class Totals:
    """Per-kernel sums ``{kernel: [calls, macs, ops, messages]}``: the always-on, cheap counter.

    Templates recorded by :meth:`record_ticks` are tallied lazily: a call costs one dict update,
    and the sums are formed when read.
    """

    def __init__(self):
        self._kernels = {}
        self._pending = {}  # id(template) -> [template, times]; holding it keeps the id unique
        self._later = []  # callables returning summaries, formed when read

    @property
    def kernels(self) -> dict:
        if self._pending:
            pending, self._pending = self._pending, {}
            for template, times in pending.values():
                self._add(template, times)
        if self._later:
            later, self._later = self._later, []
            for summarise in later:
                self.add_summary(summarise())
        return self._kernels

    def add_later(self, summarise) -> None:
        """Add ``summarise()`` (a summary as for :meth:`add_summary`) when the totals are next read,
        so a step pays for counting its messages only if someone looks."""
        self._later.append(summarise)
        if len(self._later) >= 256:  # bound what is held
            self.kernels

    def record(self, kernel: str, tick: int, layer: int, macs: int = 0, ops: int = 0,
               messages: int = 0) -> None:
        row = self._kernels.get(kernel)
        if row is None:
            row = self._kernels[kernel] = [0, 0, 0, 0]
        row[0] += 1
        row[1] += macs
        row[2] += ops
        row[3] += messages

    def add_summary(self, summary: dict) -> None:
        """Add per-kernel sums ``{kernel: [events, macs, ops, messages]}`` (work whose counts are
        known only after it ran, as send-on-delta messages)."""
        for kernel, (calls, macs, ops, messages) in summary.items():
            row = self._kernels.get(kernel)
            if row is None:
                row = self._kernels[kernel] = [0, 0, 0, 0]
            row[0] += calls
            row[1] += macs
            row[2] += ops
            row[3] += messages

    def record_ticks(self, template, first: int, last: int) -> None:
        """Record ``template`` events ``(kernel, layer, macs, ops, messages)`` on ticks first..last."""
        times = last - first + 1
        if times <= 0:
            return
        if getattr(template, "summary", None) is None:
            self._add(template, times)
            return
        entry = self._pending.get(id(template))
        if entry is None:
            self._pending[id(template)] = [template, times]
        else:
            entry[1] += times

    def _add(self, template, times) -> None:
        summary = getattr(template, "summary", None)
        if summary is None:
            summary = summarise(template)
        for kernel, (calls, macs, ops, messages) in summary.items():
            row = self._kernels.get(kernel)
            if row is None:
                row = self._kernels[kernel] = [0, 0, 0, 0]
            row[0] += times * calls
            row[1] += times * macs
            row[2] += times * ops
            row[3] += times * messages

    def _sum(self, index):
        return sum(row[index] for row in self.kernels.values())

    @property
    def macs(self) -> int:
        return self._sum(1)

    @property
    def ops(self) -> int:
        return self._sum(2)

    @property
    def messages(self) -> int:
        return self._sum(3)

    def by_kernel(self) -> dict:
        """``{kernel: {"calls", "macs", "ops", "messages"}}`` (``calls`` counts layer-tick events)."""
        return {kernel: dict(zip(("calls", "macs", "ops", "messages"), row))
                for kernel, row in self.kernels.items()}

    def table(self, by: str = "kernel") -> str:
        """A text table of the counts, one row per kernel (the totals keep no ticks or populations:
        record inside :func:`count` for ``by="population"`` or ``by="tick"``)."""
        if by != "kernel":
            raise ValueError(f"by={by!r} needs the events of a detailed counter (neurosim.counting.count()); "
                             f"the running totals tabulate by='kernel' only")
        return _format(self.by_kernel(), "kernel", ("calls", "macs", "ops", "messages"))

    def reset(self) -> None:
        self._kernels.clear()
        self._pending.clear()
        self._later.clear()


class Counter(Totals):
    """Totals plus every event with its tick and layer (for timelines and the critical path)."""

    def __init__(self):
        super().__init__()
        self._records = []
        self._expanded = None

    def record(self, kernel: str, tick: int, layer: int, macs: int = 0, ops: int = 0,
               messages: int = 0) -> None:
        super().record(kernel, tick, layer, macs, ops, messages)
        self._records.append(Event(kernel, int(tick), int(layer), int(macs), int(ops), int(messages)))
        self._expanded = None

    def record_ticks(self, template, first: int, last: int) -> None:
        if last < first:
            return
        super().record_ticks(template, first, last)
        if not getattr(template, "complete", False):
            template = tuple(with_endpoints(event) for event in template)
        self._records.append(_Repeat(tuple(template), int(first), int(last)))
        self._expanded = None

    @property
    def events(self) -> list:
        """Every event in execution order (repeated ticks expanded)."""
        if self._expanded is None:
            out = []
            for record in self._records:
                if isinstance(record, Event):
                    out.append(record)
                else:
                    out.extend(record.expand())
            self._expanded = out
        return self._expanded

    @property
    def ticks(self) -> int:
        """Number of relaxation ticks run (tick 0, the feed-forward initialisation, not included)."""
        ticks = {event.tick for event in self.events if event.tick > 0}
        return max(ticks) if ticks else 0

    @property
    def critical_path(self) -> int:
        """Sequential matrix products under the parallel-tick model (see :func:`critical_path`)."""
        return critical_path(self.events)

    def by_population(self) -> dict:
        """``{population: {"events", "macs", "ops", "sent", "received"}}``.

        An event's MACs and ops are charged to its ``target`` (where the work is done), its messages
        to its ``source`` as ``sent`` and to its ``target`` as ``received``; so each column sums to
        the counter's totals (``macs``, ``ops``, ``messages``).
        """
        rows = {}
        for event in self.events:
            target = rows.setdefault(event.target, dict.fromkeys(_POPULATION_COLUMNS, 0))
            target["events"] += 1
            target["macs"] += event.macs
            target["ops"] += event.ops
            target["received"] += event.messages
            rows.setdefault(event.source, dict.fromkeys(_POPULATION_COLUMNS, 0))["sent"] += event.messages
        return dict(sorted(rows.items(), key=lambda item: _population_order(item[0])))

    def by_tick(self) -> dict:
        """``{tick: {"events", "macs", "ops", "messages"}}`` in tick order."""
        rows = {}
        for event in self.events:
            row = rows.setdefault(event.tick, dict.fromkeys(("events", "macs", "ops", "messages"), 0))
            row["events"] += 1
            row["macs"] += event.macs
            row["ops"] += event.ops
            row["messages"] += event.messages
        return dict(sorted(rows.items()))

    def table(self, by: str = "kernel") -> str:
        """A text table of the counts, one row per ``by``: ``"kernel"``, ``"population"`` (work
        charged to the receiving population, messages to sender and receiver) or ``"tick"``; the
        last row is the total of every column."""
        if by == "kernel":
            return _format(self.by_kernel(), "kernel", ("calls", "macs", "ops", "messages"))
        if by == "population":
            return _format(self.by_population(), "population", _POPULATION_COLUMNS)
        if by == "tick":
            return _format(self.by_tick(), "tick", ("events", "macs", "ops", "messages"))
        raise ValueError(f"by must be 'kernel', 'population' or 'tick', got {by!r}")

    def timeline(self) -> dict:
        """``{(tick, layer): macs}``: the work of every layer on every tick (tick 0 = initialisation)."""
        out = {}
        for event in self.events:
            key = (event.tick, event.layer)
            out[key] = out.get(key, 0) + event.macs
        return out


_POPULATION_COLUMNS = ("events", "macs", "ops", "sent", "received")
_KIND_ORDER = {"value": 0, "error": 1, "decorrelated": 2, "W": 3, "B": 4, "R": 5}


def _population_order(name: str) -> tuple:
    kind, _, rest = name.partition("[")
    index = int(rest.rstrip("]")) if rest.rstrip("]").isdigit() else -1
    return (index, _KIND_ORDER.get(kind, 9), name)


def _format(rows: dict, label: str, columns) -> str:
    """Rows ``{key: {column: int}}`` as a fixed-width table with a total row."""
    width = max([len(label), len("total")] + [len(str(key)) for key in rows]) + 2
    header = {"calls": "events", "macs": "MACs"}
    lines = [f"{label:<{width}}" + "".join(f"{header.get(c, c):>14}" for c in columns)]
    for key, row in rows.items():
        lines.append(f"{str(key):<{width}}" + "".join(f"{row[c]:>14}" for c in columns))
    totals = {c: sum(row[c] for row in rows.values()) for c in columns}
    lines.append(f"{'total':<{width}}" + "".join(f"{totals[c]:>14}" for c in columns))
    return "\n".join(lines)


# What each kernel reads and writes, per layer l: x values, a activities, mu predictions, e errors,
# fb feedback e_{l+1} W_{l+1} (stored at l), g frozen gains f'(x_l), dW the layer's weight term,
# W the layer's weights (changed during inference only by iPC).
# The critical path follows these data dependencies through the recorded events.
DEPENDENCIES = {
    "feedforward": (("a{l-1}",), ("x{l}", "a{l}", "mu{l}")),
    "prediction": (("a{l-1}", "x{l}", "W{l}"), ("mu{l}", "e{l}")),
    "feedback": (("e{l}", "W{l}"), ("fb{l-1}",)),
    "weight_update": (("dW{l}",), ("W{l}",)),
    "value_update": (("x{l}", "e{l}", "fb{l}", "g{l}"), ("x{l}", "a{l}", "e{l}")),
    "hebbian": (("e{l}", "a{l-1}"), ("dW{l}",)),
    "output_delta": (("x{l}", "mu{l}"), ("x{l}", "e{l}")),
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
_TOTALS = Totals()
_ENABLED = [True]


def active() -> Counter | None:
    """The detailed counter receiving events in this context, or ``None``."""
    return _ACTIVE.get()


def sink():
    """Where ops report work: the active :class:`Counter`, else the process-wide :func:`totals`
    (counting is on by default), else ``None`` when disabled with :func:`set_enabled`."""
    counter = _ACTIVE.get()
    if counter is not None:
        return counter
    return _TOTALS if _ENABLED[0] else None


def totals() -> Totals:
    """The process-wide running totals, kept since start-up or the last :func:`reset_totals`."""
    return _TOTALS


def reset_totals() -> None:
    _TOTALS.reset()


def set_enabled(enabled: bool) -> None:
    """Switch the always-on totals on or off (a :func:`count` block records regardless)."""
    _ENABLED[0] = bool(enabled)


@contextmanager
def count():
    """Record every kernel's work inside the ``with`` block into a fresh :class:`Counter`.

        with neurosim.counting.count() as counter:
            variant.gradients(net, x, y)
        counter.macs, counter.ticks, counter.critical_path, counter.table()
    """
    counter = Counter()
    token = _ACTIVE.set(counter)
    try:
        yield counter
    finally:
        _ACTIVE.reset(token)
