"""Placing a circuit's populations and synapses on the cores of neuromorphic chips.

A circuit is the populations of :mod:`neurosim.circuit.populations` (``value[l]``, ``error[l]`` and,
for COPI, ``decorrelated[l]``) and the links between them:

    W[l]            value[l-1] -> error[l]        dense, stored at error[l]     (the prediction)
    W[l]^T / B[l]   error[l]   -> value[l-1]      dense, stored at value[l-1]   (the feedback, l >= 2)
    R[l]            value[l-1] -> decorrelated[l] dense, stored at decorrelated[l] (COPI)
    value[l]        -> error[l], error[l] -> value[l]   one-to-one (the error and its value neuron)

Synapses live on the core of the neuron they drive (as on Loihi and TrueNorth). A convolution is
stored unrolled: every output position keeps its own copy of the kernel. Symmetric feedback stores
``W[l]`` a second time as ``W[l]^T`` at the layer below (the weight-transport cost of PC and BP on
a chip).

Placement, per population in layer order: the most neurons a core can hold under the spec's limits
(neurons per core; synaptic memory at the spec's weight precision; fan-in, the distinct source
neurons a core's synapses listen to; one output axon a neuron at least); the population split
evenly over that many cores. Fan-out, the (neuron, destination core) pairs a core sends to, then
follows from the targets' splits; a population whose neurons need more output axons than a core
has sends through splitter neurons ``relay[P]`` (each listens to one axon and sends to one core,
as TrueNorth's one-target-per-neuron rule requires), placed next to it; cores filled in order, several small
populations sharing a core when every limit allows and ``pack=True`` (by default each population
takes cores of its own, so populations work in parallel, as a chip's compiler would lay them out). Cores are numbered along the mesh row by row,
``cores_per_tile`` to a tile, ``cores_per_chip`` to a chip.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from .spec import ChipSpec, load_spec


@dataclass(frozen=True)
class Link:
    """Synapses or a one-to-one wire from ``source`` to ``target`` (the population they drive).

    kind: ``"dense"`` (every source neuron may reach every target core) or ``"one_to_one"``;
    synapses: synapses stored at the target, per sample pass (0 for a wire); fan_in: synapses per
    target neuron; stored: takes synaptic memory; plastic: changed by learning.
    """

    name: str
    source: str
    target: str
    layer: int
    kind: str
    synapses: int = 0
    fan_in: float = 1.0
    stored: bool = False
    plastic: bool = False


@dataclass
class Core:
    """One core: its place (chip, tile x, y) and the population slices ``(name, start, stop)`` on it."""

    index: int
    chip: int
    x: int
    y: int
    slices: list = field(default_factory=list)
    neurons: int = 0
    memory_bytes: float = 0.0
    axons_in: float = 0.0
    axons_out: float = 0.0


def circuit(net, variant) -> tuple:
    """``(populations, links)`` of ``net`` under ``variant``: ``{name: size}`` in layer order and
    the :class:`Link` list (see the module docstring)."""
    from ..circuit.network import Network

    if not isinstance(net, Network):
        raise TypeError(f"net must be a neurosim Network, got {type(net).__name__}")
    if not hasattr(net, "blocks"):
        raise ValueError("hardware mapping places feed-forward networks (dense and convolutional layers); "
                         "a recurrent network has no fixed depth before it sees a sequence")
    feedback = _feedback_kind(variant)
    populations = {p.name: p.size for p in net.populations()}
    decorrelated = getattr(variant, "name", "") == "copi"
    links = []
    for connection in net.connections(feedback):
        layer = connection.layer
        size = populations[connection.target]
        source = connection.source
        if decorrelated and connection.role == "prediction":
            source = f"decorrelated[{layer}]"
        links.append(Link(connection.name, source, connection.target, layer, "dense", connection.synapses,
                          connection.synapses / size, stored=True, plastic=connection.plastic))
    if decorrelated:  # decorrelated[l] sits right after value[l-1], whose activity it whitens for W[l]
        ordered = {}
        for name, size in populations.items():
            ordered[name] = size
            layer = int(name[name.index("[") + 1:-1])
            if name.startswith("value") and layer < net.n_layers:
                ordered[f"decorrelated[{layer + 1}]"] = size
        populations = ordered
        for layer in range(1, net.n_layers + 1):
            size = populations[f"value[{layer - 1}]"]
            links.append(Link(f"R[{layer}]", f"value[{layer - 1}]", f"decorrelated[{layer}]", layer, "dense",
                              size * size, size, stored=True, plastic=True))
    for layer in range(1, net.n_layers + 1):
        links.append(Link(f"value[{layer}]->error[{layer}]", f"value[{layer}]", f"error[{layer}]", layer, "one_to_one"))
        if layer < net.n_layers:
            links.append(Link(f"error[{layer}]->value[{layer}]", f"error[{layer}]", f"value[{layer}]", layer,
                              "one_to_one"))
    return populations, links


def _feedback_kind(variant) -> str:
    hyper = getattr(variant, "hyper", {}) or {}
    if hyper.get("credit") == "fa":
        return "random"
    kind = hyper.get("feedback", "symmetric")
    return kind if kind in ("symmetric", "random", "learned") else "symmetric"


class Mapping:
    """Where every population and synapse of ``net`` under ``variant`` sits on ``spec``'s cores.

    Attributes: ``spec``, ``net``, ``variant``, ``populations`` (``{name: size}``), ``links``,
    ``cores`` (the used :class:`Core` list), ``placement`` (``{population: [(core, start, stop)]}``),
    ``chips`` (chips used), ``notes`` (what the chip cannot do, or does at extra cost).
    Build it with :func:`map`.
    """

    def __init__(self, net, variant, spec: ChipSpec, max_chips=None, pack: bool = False):
        self.net, self.variant, self.spec = net, variant, spec
        self.max_chips, self.pack = max_chips, pack
        self.populations, self.links = circuit(net, variant)
        self._place()
        self.notes = self._notes()

    # -- placement --------------------------------------------------------------------------------
    def _place(self) -> None:
        spec = self.spec
        per_core = int(spec.core["neurons"].value)
        per_chip = int(spec.core["cores_per_chip"].value)
        total = sum(self.populations.values())
        if self.max_chips is not None:
            capacity = self.max_chips * spec.neurons_per_chip
            if total > capacity:
                raise ValueError(
                    f"the circuit needs {total:,} neurons (value and error populations); {self.max_chips} "
                    f"{spec.name} chip{'s' if self.max_chips != 1 else ''} hold{'s' if self.max_chips == 1 else ''} "
                    f"{capacity:,} (core.neurons {per_core:,} x core.cores_per_chip {per_chip:,}"
                    f"{f' x {self.max_chips} chips' if self.max_chips != 1 else ''})")
        # 1. each population's cores from its own limits (neurons, memory, fan-in, and at most
        #    fan_out neurons, each of which needs an output axon); no other population's split enters
        split = {name: math.ceil(size / self._chunk_limit(name)) for name, size in self.populations.items()}
        # 2. destination cores per neuron follow from the targets' splits; a chunk whose neurons
        #    need more output axons than a core has sends through splitter neurons (``relay[P]``),
        #    as TrueNorth's one-axon-per-neuron rule demands
        fan_out = spec.core["fan_out"].value
        self.destinations = {name: self._destinations(name, split) for name in self.populations}
        self.relays = {}
        for name, size in self.populations.items():
            chunk = math.ceil(size / split[name])
            if chunk * self.destinations[name] > fan_out:
                self.relays[name] = size * self.destinations[name]
        self.split = split
        cores, placement = [], {}
        current = None
        for name, size in list(self.populations.items()):
            for group, group_size in ((name, size), (f"relay[{name}]", self.relays.get(name, 0))):
                if not group_size:
                    continue
                placement[group] = []
                if not self.pack:
                    current = None  # each population on cores of its own: its work runs in parallel
                pieces = split[name] if group == name else math.ceil(group_size / self._relay_chunk())
                bounds = np.linspace(0, group_size, pieces + 1).round().astype(int)
                for start, stop in zip(bounds[:-1], bounds[1:]):
                    need = self._needs(group, int(stop - start))
                    if current is None or not self._fits(current, need):
                        current = self._new_core(len(cores))
                        cores.append(current)
                    current.slices.append((group, int(start), int(stop)))
                    current.neurons += need[0]
                    current.memory_bytes += need[1]
                    current.axons_in += need[2]
                    current.axons_out += need[3]
                    placement[group].append((current.index, int(start), int(stop)))
        for name, size in self.relays.items():
            self.populations[f"relay[{name}]"] = size
        order = {name: index for index, name in enumerate(placement)}
        self.populations = dict(sorted(self.populations.items(), key=lambda item: order[item[0]]))
        self.cores, self.placement = cores, placement
        self.chips = cores[-1].chip + 1 if cores else 0
        if self.max_chips is not None and self.chips > self.max_chips:
            raise ValueError(
                f"the circuit needs {len(cores)} {spec.name} cores ({self.chips} chips) under the per-core "
                f"limits (core.neurons, core.synaptic_memory at {spec.core['weight_bits'].value:g}-bit weights, "
                f"core.fan_in, core.fan_out); max_chips={self.max_chips} gives {self.max_chips * per_chip}")

    def _destinations(self, name: str, split: dict) -> int:
        """Cores one neuron of ``name`` sends to: every core of a dense target (at most as many
        as the synapses it drives), one for a one-to-one wire."""
        total = 0
        for link in self.links:
            if link.source == name:
                if link.kind == "one_to_one":
                    total += 1
                else:
                    driven = link.synapses / self.populations[name]
                    total += min(split[link.target], max(1, math.ceil(driven)))
        return total

    def _relay_chunk(self) -> int:
        """Splitter neurons a core holds: each listens to one axon and sends to one core."""
        core = self.spec.core
        return int(min(core["neurons"].value, core["fan_out"].value, core["fan_in"].value))

    def _needs(self, name: str, neurons: int) -> tuple:
        """``(neurons, memory bytes, input axons, output axons)`` of ``neurons`` of ``name`` on a core."""
        if name.startswith("relay["):
            return neurons, 0.0, float(neurons), float(neurons)
        bits = self.spec.core["weight_bits"].value
        memory = axons_in = 0.0
        for link in self.links:
            if link.target == name:
                if link.stored:
                    memory += neurons * link.fan_in * bits / 8
                source = self.populations[link.source]
                axons_in += neurons if link.kind == "one_to_one" else min(source, neurons * link.fan_in)
        destinations = getattr(self, "destinations", {}).get(name)
        if destinations is None:  # sizing a chunk: each neuron needs at least one output axon
            axons_out = float(neurons)
        elif name in getattr(self, "relays", {}):
            axons_out = float(neurons)  # one axon each, to its splitter neurons
        else:
            axons_out = float(neurons * destinations)
        return neurons, memory, axons_in, axons_out

    def _chunk_limit(self, name: str) -> int:
        """The most neurons of ``name`` one core can hold under its own limits."""
        spec = self.spec
        limits = {"core.neurons": spec.core["neurons"].value, "core.synaptic_memory": spec.core["synaptic_memory"].value,
                  "core.fan_in": spec.core["fan_in"].value, "core.fan_out": spec.core["fan_out"].value}
        size = self.populations[name]
        low, high = 0, min(size, int(limits["core.neurons"]))
        while low < high:  # largest k whose needs fit; needs grow with k
            mid = (low + high + 1) // 2
            if self._within(self._needs(name, mid), limits):
                low = mid
            else:
                high = mid - 1
        if low == 0:
            need = self._needs(name, 1)
            for (key, limit), value, what in zip(limits.items(), need,
                                                 ("neurons", "bytes of synapses", "input axons", "output axons")):
                if value > limit:
                    raise ValueError(f"{name}: one neuron needs {value:,.0f} {what}; a {spec.name} core has "
                                     f"{key} = {limit:,.0f}")
        return max(low, 1)

    @staticmethod
    def _within(need, limits) -> bool:
        return all(value <= limit for value, limit in zip(need, limits.values()))

    def _fits(self, core: Core, need) -> bool:
        spec = self.spec
        return (core.neurons + need[0] <= spec.core["neurons"].value
                and core.memory_bytes + need[1] <= spec.core["synaptic_memory"].value
                and core.axons_in + need[2] <= spec.core["fan_in"].value
                and core.axons_out + need[3] <= spec.core["fan_out"].value)

    def _new_core(self, index: int) -> Core:
        spec = self.spec
        per_chip = int(spec.core["cores_per_chip"].value)
        per_tile = int(spec.core["cores_per_tile"].value)
        width = int(spec.core["mesh_width"].value)
        chip, local = divmod(index, per_chip)
        tile = local // per_tile
        return Core(index, chip, tile % width, tile // width)

    def _notes(self) -> list:
        notes = []
        for name, size in self.relays.items():
            notes.append(f"{name} sends to {self.destinations[name]} cores a neuron, more than a core's "
                         f"fan-out allows: {size:,} splitter neurons (relay[{name}]) relay its messages")
        symmetric = [link.name for link in self.links if link.name.endswith("^T")]
        if symmetric:
            notes.append(f"symmetric feedback stores W twice ({', '.join(symmetric)}): weight transport; a "
                         f"training step must update both copies")
        if not self.spec.features["on_chip_learning"].value:
            notes.append(f"{self.spec.name} has no on-chip learning: a training step's weight updates must run "
                         f"off chip (their energy is not counted)")
        if self.spec.core["weight_bits"].value < 4:
            notes.append(f"{self.spec.name} stores {self.spec.core['weight_bits'].value:g}-bit weights: "
                         f"real-valued weights need several synapses or axon types each")
        return notes

    # -- reading the placement ------------------------------------------------------------------
    @property
    def n_cores(self) -> int:
        return len(self.cores)

    def cores_of(self, population: str) -> list:
        """``[(core index, neurons)]`` holding ``population``."""
        return [(core, stop - start) for core, start, stop in self.placement[population]]

    def utilisation(self) -> dict:
        """Fractions of the used cores' capacity taken: ``neurons``, ``synaptic_memory``, ``fan_in``,
        ``fan_out``; and ``cores``: used cores over the chips' cores."""
        spec, n = self.spec, max(self.n_cores, 1)
        fraction = lambda attr, key: sum(getattr(c, attr) for c in self.cores) / (n * spec.core[key].value)
        return {"cores": self.n_cores / max(self.chips * spec.core["cores_per_chip"].value, 1),
                "neurons": fraction("neurons", "neurons"),
                "synaptic_memory": fraction("memory_bytes", "synaptic_memory"),
                "fan_in": fraction("axons_in", "fan_in"),
                "fan_out": fraction("axons_out", "fan_out")}

    def table(self) -> str:
        """One row per population: neurons, cores, neurons per core, synaptic memory per core."""
        lines = [f"{self.spec.title}: {self.n_cores} cores on {self.chips} chip{'s' if self.chips != 1 else ''}",
                 f"{'population':<18}{'neurons':>9}{'cores':>7}{'per core':>10}{'KB/core':>10}"]
        for name, size in self.populations.items():
            cores = self.cores_of(name)
            memory = max((self.cores[c].memory_bytes for c, _ in cores), default=0) / 1024
            lines.append(f"{name:<18}{size:>9}{len({c for c, _ in cores}):>7}{max(n for _, n in cores):>10}"
                         f"{memory:>10.1f}")
        return "\n".join(lines + [f"note: {note}" for note in self.notes])

    def cost(self, x, y=None, events=None):
        """The cost of one training step on ``(x, y)`` (inference alone when ``y`` is ``None``): a
        :class:`neurosim.hardware.cost.Cost`. ``events`` as for :meth:`neurosim.Variant.gradients`."""
        from .cost import step_cost

        return step_cost(self, x, y, events)

    def plot(self, cost=None, axes=None):
        """Cores as a grid coloured by load (synaptic memory used, or busy time of ``cost``) and, with
        a ``cost``, its energy by category; returns the figure."""
        from .plots import plot_mapping

        return plot_mapping(self, cost, axes)

    def __repr__(self) -> str:
        return (f"Mapping({getattr(self.variant, 'name', self.variant)!r} on {self.spec.name}: "
                f"{self.n_cores} cores, {self.chips} chip{'s' if self.chips != 1 else ''})")


def map(net, variant, spec="loihi", max_chips=None, pack: bool = False) -> Mapping:  # noqa: A001
    """Place ``net`` under ``variant`` on chips described by ``spec`` (a name, a path or a
    :class:`ChipSpec`); ``max_chips`` bounds the chips (``None``: as many as needed). By default each
    population gets cores of its own, so populations work in parallel; ``pack=True`` lets small
    populations share a core (fewest cores, longer timesteps). Raises ``ValueError`` naming the
    limit when the circuit cannot fit."""
    from ..variants.base import Variant

    spec = load_spec(spec)
    if isinstance(variant, str):
        from ..variants import variant as make_variant

        variant = make_variant(variant)
    if not isinstance(variant, Variant):
        raise TypeError(f"variant must be a name or come from neurosim.variant(...), got {type(variant).__name__}")
    variant.check_network(net)  # a variant that refuses this network says so before any placement
    if max_chips is not None:
        if isinstance(max_chips, bool) or not isinstance(max_chips, (int, np.integer)):
            raise TypeError(f"max_chips must be a whole number or None, got {type(max_chips).__name__}")
        if max_chips < 1:
            raise ValueError(f"max_chips must be >= 1, got {max_chips}")
        max_chips = int(max_chips)
    if not isinstance(pack, bool):
        raise TypeError(f"pack must be True or False, got {type(pack).__name__}")
    return Mapping(net, variant, spec, max_chips, pack)
