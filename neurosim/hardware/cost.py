"""Latency and energy of a mapped circuit, from the work the simulator counted.

One training step runs under :func:`neurosim.counting.count`; every counted event (a kernel's work
on one layer at one tick, with its sending and receiving populations) is charged to the cores that
hold the population doing the work, in proportion to the neurons each holds:

- synaptic operations (``feedforward``, ``prediction``, ``feedback`` and the solvers' passes): one
  per multiply-accumulate, on the cores storing the synapses (``W[l]`` at ``error[l]``, the feedback
  at ``value[l-1]``, ``R[l]`` at ``decorrelated[l]``);
- synaptic updates (``hebbian``, ``weight_update`` and the other plasticity kernels): one per
  multiply-accumulate, on the same cores; with symmetric feedback the copy ``W[l]^T`` is updated too;
- messages: the event's scalars sent, routed from the sender's cores to every core of a dense
  link's target (one core for a one-to-one wire); a message costs ``spike_in_tile`` plus a hop
  cost per tile crossed east-west and north-south (dimension-order routing), plus
  ``chip_crossing`` between chips;
- neuron updates: every placed neuron is updated once per timestep, ``active`` if its population
  worked in that timestep, else ``inactive``.

Timesteps: events run as soon as what they read is ready (the dependency model of
:func:`neurosim.counting.critical_path`): a synaptic pass starts a new timestep, elementwise work
joins the timestep of its inputs, and a state written on one tick is written again on a later tick
no sooner than the next timestep (a neuron updates once a timestep; so every tick takes at least
one, even one in which send-on-delta sends nothing). A chip has no batch dimension, so a batch of ``B`` samples runs
one after another: per sample, timestep ``k`` takes

    t_k = max(min_tick, max_c compute_c,k + routing_k + barrier)
    compute_c,k = synaptic ops * t_synaptic_op + synaptic updates * t_synaptic_update
                  + active neurons * t_neuron_active + inactive neurons * t_neuron_inactive
    routing_k = the longest route's latency (spike_in_tile + hops, + chip_crossing)
    barrier = barrier_min + (barrier_max - barrier_min) * (tiles used - 1) / (tiles per chip - 1)

and ``latency = B * sum_k t_k``. Energies are the counts times the spec's energy per event.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field

import numpy as np

from .. import counting

SYNAPTIC = {"feedforward": "prediction", "prediction": "prediction", "solver_forward": "prediction",
            "feedback": "feedback", "solver_backward": "feedback", "decorrelate": "decorrelation"}
PLASTIC = {"hebbian": "prediction", "weight_update": "prediction", "copi_weights": "prediction",
           "solver_gradient": "prediction", "solver_prox": "prediction", "solver_norm": "prediction",
           "solver_step": "prediction", "effective_weights": "prediction",
           "input_moments": "decorrelation", "decorrelation_update": "decorrelation"}
# Data dependencies of the kernels counting.DEPENDENCIES does not list (COPI, the proximal solvers).
EXTRA_DEPENDENCIES = {
    "decorrelate": (("a{l-1}", "R{l}"), ("d{l}",)),
    "input_moments": (("d{l}",), ("M{l}",)),
    "decorrelation_update": (("M{l}", "R{l}"), ("R{l}",)),
    "copi_weights": (("e{l}", "d{l}", "W{l}"), ("W{l}",)),
    "effective_weights": (("R{l}", "W{l}"), ("W{l}",)),
    "solver_forward": (("s{l-1}", "V{l}"), ("s{l}",)),
    "solver_output": (("s{l}",), ("g{l}",)),
    "solver_gradient": (("g{l}", "s{l-1}"), ("G{l}",)),
    "solver_backward": (("g{l}", "V{l}"), ("g{l-1}",)),
    "solver_prox": (("G{l}", "V{l}"), ("P{l}",)),
    "solver_norm": (("P{l}",), ("N{l}",)),
    "solver_step": (("P{l}", "N{l}"), ("V{l}",)),
}
CATEGORIES = ("synaptic", "neuron_update", "messages", "weight_update")


def _host(kind: str, layer: int, feedback_name: str) -> str:
    if kind == "prediction":
        return f"error[{layer}]"
    if kind == "feedback":
        return f"value[{layer - 1}]"
    return f"decorrelated[{layer}]"


@dataclass
class Timestep:
    """One chip timestep of one sample: the variant's tick it belongs to, its time split into the
    slowest core's compute, routing and barrier (seconds), and which core was slowest."""

    tick: int
    seconds: float
    compute_s: float
    routing_s: float
    barrier_s: float
    slowest_core: int


@dataclass
class Cost:
    """The cost of one step (training, or inference alone) of a mapped circuit on a batch.

    ticks: the variant's inference ticks; timesteps: chip timesteps per sample (:class:`Timestep`);
    batch: samples, run one after another; latency_s: the batch's time; energy_j: joules by
    category (``synaptic``, ``neuron_update``, ``messages``, ``weight_update``); synaptic_events,
    synaptic_updates, messages, packets (messages times destination cores), neuron_updates:
    counts for the batch; macs: every multiply-accumulate counted (for the processor comparison);
    cores, chips: used; busy: per-core seconds of compute; processor_energy_j: ``{processor: J}``
    for the same MACs on conventional processors; notes: what the chip cannot do for this step, or
    does at an extra cost (weight transport), reported, not hidden; message_trace: per chip
    timestep, ``{(source, target, one_to_one): messages}`` for the batch (what
    :func:`neurosim.hardware.sanafe.replay` plays back).
    """

    variant: str
    chip: str
    phase: str
    ticks: int
    batch: int
    timesteps: list
    latency_s: float
    energy_j: dict
    synaptic_events: int
    synaptic_updates: int
    messages: int
    packets: float
    neuron_updates: float
    macs: int
    cores: int
    chips: int
    busy: np.ndarray
    processor_energy_j: dict = field(default_factory=dict)
    notes: list = field(default_factory=list)
    message_trace: list = field(default_factory=list, repr=False)

    @property
    def total_energy_j(self) -> float:
        return float(sum(self.energy_j.values()))

    @property
    def time_per_timestep_s(self) -> float:
        """Mean time of one chip timestep of one sample."""
        return self.latency_s / max(self.batch * len(self.timesteps), 1)

    @property
    def time_per_tick_s(self) -> float:
        """Mean time of one of the variant's ticks for one sample (feed-forward sweep included);
        NaN for a variant without ticks."""
        return self.latency_s / (self.batch * self.ticks) if self.ticks else float("nan")

    @property
    def utilisation(self) -> float:
        """Mean fraction of the step's time the used cores spend computing."""
        return float(np.sum(self.busy) / max(self.cores * self.latency_s, 1e-300))

    def as_dict(self) -> dict:
        return {"variant": self.variant, "chip": self.chip, "phase": self.phase, "ticks": self.ticks,
                "timesteps": len(self.timesteps), "batch": self.batch, "latency_s": self.latency_s,
                "time_per_timestep_s": self.time_per_timestep_s,
                "time_per_tick_s": None if not self.ticks else self.time_per_tick_s, "energy_j": dict(self.energy_j),
                "total_energy_j": self.total_energy_j, "synaptic_events": self.synaptic_events,
                "synaptic_updates": self.synaptic_updates, "messages": self.messages,
                "packets": self.packets, "neuron_updates": self.neuron_updates, "macs": self.macs,
                "cores": self.cores, "chips": self.chips, "utilisation": self.utilisation,
                "processor_energy_j": dict(self.processor_energy_j), "notes": list(self.notes)}

    def to_json(self) -> str:
        return json.dumps(self.as_dict(), indent=1)

    def table(self) -> str:
        """The cost as aligned text: counts, time, energy by category, processors beside."""
        rows = [("variant", self.variant), ("chip", self.chip), ("phase", self.phase),
                ("batch (samples in turn)", self.batch), ("variant ticks", self.ticks),
                ("chip timesteps per sample", len(self.timesteps)),
                ("cores / chips", f"{self.cores} / {self.chips}"),
                ("latency", _si(self.latency_s, "s")), ("time per timestep", _si(self.time_per_timestep_s, "s")),
                ("time per variant tick", _si(self.time_per_tick_s, "s") if self.ticks else "-"),
                ("core utilisation", f"{self.utilisation:.1%}"),
                ("synaptic events", f"{self.synaptic_events:,}"), ("synaptic updates", f"{self.synaptic_updates:,}"),
                ("messages", f"{self.messages:,}"), ("packets", f"{self.packets:,.0f}")]
        rows += [(f"energy: {key}", _si(value, "J")) for key, value in self.energy_j.items()]
        rows.append(("energy: total", _si(self.total_energy_j, "J")))
        rows += [(f"same MACs on {name}", _si(value, "J")) for name, value in self.processor_energy_j.items()]
        width = max(len(label) for label, _ in rows) + 2
        lines = [f"{label:<{width}}{value}" for label, value in rows]
        return "\n".join(lines + [f"note: {note}" for note in self.notes])

    def plot(self, ax=None):
        """Energy by category as one stacked bar beside the processors' energy for the same MACs."""
        from .plots import plot_energy

        return plot_energy([self], ax=ax)


def _si(value: float, unit: str) -> str:
    for scale, prefix in ((1.0, ""), (1e-3, "m"), (1e-6, "u"), (1e-9, "n"), (1e-12, "p"), (1e-15, "f")):
        if abs(value) >= scale:
            return f"{value / scale:.4g} {prefix}{unit}"
    return f"{value:.3g} {unit}"


def processors() -> dict:
    """``{name: (title, joules per MAC, source)}`` of the conventional processors in
    ``specs/processors.toml``."""
    from .spec import SPEC_DIR, _figure, tomllib

    path = SPEC_DIR / "processors.toml"
    out = {}
    for name, entry in tomllib.loads(path.read_text()).items():
        figure = _figure(entry.get("energy_per_mac"), f"{name}.energy_per_mac", "J", str(path))
        out[name] = (entry.get("title", name), figure.value, figure.source)
    return out


def count_step(net, variant, x, y=None, events=None):
    """``(counter, batch)``: the work of one step (inference alone when ``y`` is None), counted on
    a copy of ``net`` so its weights are never touched."""
    from ..circuit import ops

    work = net.copy()
    if y is None:
        x = work.check_input(x, "x")
        ws = work.workspace(x.shape[0])
        with counting.count() as counter:
            ops.feedforward(work, ws, x)
        return counter, x.shape[0]
    if events is not None:
        from ..events import resolve

        resolve(events, variant)
    with counting.count() as counter:
        variant.gradients(work, x, y, events=events)
    return counter, np.shape(x)[0]


def levels(events) -> list:
    """The chip timestep of each event (see the module docstring): 0 for work reading only the input."""
    table = dict(EXTRA_DEPENDENCIES)
    table.update(counting.DEPENDENCIES)
    depth, written, out = {}, {}, []
    for event in events:
        reads, writes = table.get(event.kernel, ((), ()))
        writes = counting._populations(writes, event.layer)
        level = max((depth.get(p, 0) for p in counting._populations(reads, event.layer)), default=0)
        if event.macs > 0 and event.kernel in SYNAPTIC:
            level += 1
        for name in writes:
            # a neuron updates once a timestep: a later tick's write to the same state waits for the next
            last = written.get(name)
            if last is not None and last[1] < event.tick:
                level = max(level, last[0] + 1)
        for name in writes:
            written[name] = (level, event.tick)
            depth[name] = level
        out.append(level)
    return out


class _Routes:
    """Per link: messages' destination cores, energy and worst latency per message."""

    def __init__(self, mapping):
        self.mapping = mapping
        spec = mapping.spec
        self.e = {k: spec.energy[k].value for k in ("spike_in_tile", "hop_east_west", "hop_north_south", "chip_crossing")}
        self.t = {k: spec.time[k].value for k in ("spike_in_tile", "hop_east_west", "hop_north_south", "chip_crossing")}
        self._cache = {}

    def _pair(self, a, b) -> tuple:
        ca, cb = self.mapping.cores[a], self.mapping.cores[b]
        dx, dy, chip = abs(ca.x - cb.x), abs(ca.y - cb.y), ca.chip != cb.chip
        energy = (self.e["spike_in_tile"] + dx * self.e["hop_east_west"] + dy * self.e["hop_north_south"]
                  + chip * self.e["chip_crossing"])
        latency = (self.t["spike_in_tile"] + dx * self.t["hop_east_west"] + dy * self.t["hop_north_south"]
                   + chip * self.t["chip_crossing"])
        return energy, latency

    def route(self, source: str, target: str, one_to_one: bool) -> tuple:
        """``(packets, joules, worst seconds, {source core: share})`` per message from ``source``;
        through ``source``'s splitter neurons when it has them (two legs, their costs added)."""
        key = (source, target, one_to_one)
        found = self._cache.get(key)
        if found is not None:
            return found
        relay = f"relay[{source}]"
        if relay in self.mapping.placement and not source.startswith("relay["):
            first = self._leg(source, relay, True)
            second = self._leg(relay, target, one_to_one)
            found = self._cache[key] = (first[0] + second[0], first[1] + second[1], first[2] + second[2], first[3])
            return found
        found = self._cache[key] = self._leg(source, target, one_to_one)
        return found

    def _leg(self, source: str, target: str, one_to_one: bool) -> tuple:
        mapping = self.mapping
        senders = mapping.placement[source]
        receivers = mapping.placement[target]
        size_s, size_t = mapping.populations[source], mapping.populations[target]
        packets = energy = worst = 0.0
        shares = {}
        for core_s, start_s, stop_s in senders:
            share = (stop_s - start_s) / size_s
            shares[core_s] = shares.get(core_s, 0.0) + share
            if one_to_one:
                # neuron i of the sender pairs with neuron i * size_t / size_s of the target
                for core_t, start_t, stop_t in receivers:
                    overlap = max(0.0, min(stop_s / size_s, stop_t / size_t) - max(start_s / size_s, start_t / size_t))
                    if overlap > 0:
                        e, t = self._pair(core_s, core_t)
                        packets += overlap
                        energy += overlap * e
                        worst = max(worst, t)
            else:
                for core_t in sorted({c for c, _, _ in receivers}):
                    e, t = self._pair(core_s, core_t)
                    packets += share
                    energy += share * e
                    worst = max(worst, t)
        return packets, energy, worst, shares


def step_cost(mapping, x, y=None, events=None) -> Cost:
    """See :meth:`neurosim.hardware.Mapping.cost`."""
    spec, variant = mapping.spec, mapping.variant
    counter, batch = count_step(mapping.net, variant, x, y, events)
    event_list = counter.events
    # a timestep is a level holding work; renumber so no empty timestep pays a barrier
    raw = levels(event_list)
    renumber = {level: index for index, level in enumerate(sorted(set(raw)))}
    steps = [renumber[level] for level in raw]
    n_steps = len(renumber)
    n_cores = mapping.n_cores
    synops = np.zeros((n_steps, n_cores))
    updates = np.zeros((n_steps, n_cores))
    active = np.zeros((n_steps, n_cores))
    message_energy = np.zeros(n_steps)
    routing = np.zeros(n_steps)
    step_tick = np.zeros(n_steps, dtype=int)
    totals = {"synops": 0, "updates": 0, "messages": 0, "packets": 0.0}
    routes = _Routes(mapping)
    symmetric = any(link.name.endswith("^T") for link in mapping.links)
    worked = [set() for _ in range(n_steps)]
    trace = [{} for _ in range(n_steps)]
    for event, step in zip(event_list, steps):
        step_tick[step] = max(step_tick[step], event.tick)
        if event.kernel in SYNAPTIC:
            host = _host(SYNAPTIC[event.kernel], event.layer, "")
            synops[step] += _spread(mapping, host, event.macs)
            totals["synops"] += event.macs
            source = event.source if event.source in mapping.populations else None
            if event.kernel == "feedforward" and mapping.populations.get(f"decorrelated[{event.layer}]"):
                source = f"decorrelated[{event.layer}]"
            one_to_one = False
        elif event.kernel in PLASTIC:
            host = _host(PLASTIC[event.kernel], event.layer, "")
            amount = event.macs
            updates[step] += _spread(mapping, host, amount)
            if symmetric and PLASTIC[event.kernel] == "prediction" and f"W[{event.layer}]^T" in _names(mapping):
                updates[step] += _spread(mapping, f"value[{event.layer - 1}]", amount)
                amount *= 2
            totals["updates"] += amount
            source, one_to_one = None, True
        else:
            host = event.target
            source = event.source if event.source != event.target else None
            one_to_one = True
        if host not in mapping.populations:
            continue
        if event.macs or event.ops or event.messages:
            worked[step].add(host)
            if event.messages and f"relay[{source}]" in mapping.placement:
                worked[step].add(f"relay[{source}]")
        if event.messages and source in mapping.populations:
            packets, energy, worst, shares = routes.route(source, host, one_to_one)
            totals["messages"] += event.messages
            totals["packets"] += event.messages * packets
            message_energy[step] += event.messages * energy
            key = (source, host, one_to_one)
            trace[step][key] = trace[step].get(key, 0) + event.messages
            routing[step] = max(routing[step], worst)
    for step, names in enumerate(worked):
        for name in names:
            for core, neurons in mapping.cores_of(name):
                active[step, core] += neurons
    placed = np.array([core.neurons for core in mapping.cores], dtype=float)
    inactive = placed[None, :] - active
    learning = y is not None and spec.features["on_chip_learning"].value
    unsupported = []
    if y is not None and not spec.features["on_chip_learning"].value and totals["updates"]:
        unsupported.append(f"{spec.name} has no on-chip learning: {totals['updates']:,} synaptic updates must run "
                           f"off chip; their energy and time are not counted")
        updates[:] = 0
    t = spec.time
    compute = (synops * t["synaptic_op"].value + updates * t["synaptic_update"].value) / batch \
        + active * t["neuron_update_active"].value + inactive * t["neuron_update_inactive"].value
    tiles = len({(core.chip, core.x, core.y) for core in mapping.cores})
    per_chip_tiles = spec.tiles_per_chip
    fraction = (min(tiles, per_chip_tiles) - 1) / max(per_chip_tiles - 1, 1)
    barrier = t["barrier_min"].value + (t["barrier_max"].value - t["barrier_min"].value) * fraction
    timesteps = []
    for step in range(n_steps):
        slowest = int(np.argmax(compute[step])) if n_cores else 0
        work = float(compute[step, slowest]) if n_cores else 0.0
        seconds = max(t["min_tick"].value, work + routing[step] + barrier)
        timesteps.append(Timestep(int(step_tick[step]), seconds, work, float(routing[step]), barrier, slowest))
    latency = batch * sum(step.seconds for step in timesteps)
    e = spec.energy
    energy = {"synaptic": totals["synops"] * e["synaptic_op"].value,
              "neuron_update": batch * float(np.sum(active) * e["neuron_update_active"].value
                                             + np.sum(inactive) * e["neuron_update_inactive"].value),
              "messages": float(np.sum(message_energy)),
              "weight_update": (totals["updates"] * e["synaptic_update"].value) if learning else 0.0}
    macs = counter.macs
    return Cost(variant=getattr(variant, "name", str(variant)), chip=spec.name,
                phase="training" if y is not None else "inference", ticks=counter.ticks, batch=batch,
                timesteps=timesteps, latency_s=latency, energy_j=energy, synaptic_events=int(totals["synops"]),
                synaptic_updates=int(totals["updates"]), messages=int(totals["messages"]),
                packets=float(totals["packets"]), neuron_updates=float(batch * np.sum(placed) * n_steps),
                macs=int(macs), cores=n_cores, chips=mapping.chips, busy=batch * compute.sum(axis=0),
                processor_energy_j={name: macs * joules for name, (_, joules, _) in processors().items()},
                notes=unsupported + [note for note in mapping.notes
                                     if not ("learning" in note or (y is None and "weight transport" in note))],
                message_trace=trace)


def _names(mapping) -> set:
    found = getattr(mapping, "_link_names", None)
    if found is None:
        found = mapping._link_names = {link.name for link in mapping.links}
    return found


def _spread(mapping, population: str, amount: float) -> np.ndarray:
    """``amount`` of work of ``population`` split over the cores holding it by neurons held."""
    out = np.zeros(mapping.n_cores)
    placement = mapping.placement.get(population)
    if not placement or not amount:
        return out
    size = mapping.populations[population]
    for core, start, stop in placement:
        out[core] += amount * (stop - start) / size
    return out
