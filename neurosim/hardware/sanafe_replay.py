"""An independent check of the cost model: replay a mapped circuit's messages on SANA-FE's Loihi.

SANA-FE (Boyle et al., the UT Austin / Sandia architecture simulator; PyPI ``sanafe``, GPL-3.0,
installed by ``pip install -e ".[sanafe]"`` and imported only here) models Loihi event by event,
with energies and latencies calibrated on the chip. :func:`replay` costs one sample's step with
neurosim, then plays the same messages back through SANA-FE:

- every population becomes a group of Loihi LIF neurons on the same cores (same tile, same place
  on the mesh) that integrate but never fire;
- every link that carries messages gets a group of sender neurons beside its source population,
  one per source neuron and on the same core, with SANA-FE's zero-cost ``input`` model: at chip
  timestep ``k`` the first ``m`` of them spike, ``m`` the messages neurosim counted on that link
  at ``k``;
- dense links connect their senders to every neuron of the target, one-to-one wires neuron to
  neuron; weights are 0, as SANA-FE's costs do not depend on them.

So SANA-FE sees the same synaptic events, packets and routes, and costs them with its own model.
Where the two differ, and why (the test suite states by how much on small circuits):

- synaptic operations: SANA-FE charges 35.5 pJ per dense synaptic event (its calibrated figure)
  where neurosim charges Loihi's published minimum, 23.6 pJ; a one-to-one wire is a synapse in
  SANA-FE (one more synaptic event per message) and a plain message in neurosim;
- messages: SANA-FE charges 111 pJ per outgoing packet plus hops; neurosim charges the published
  1.7 pJ within-tile spike energy plus hops;
- neuron updates: SANA-FE charges every LIF neuron 51.2 pJ per timestep plus 21.6 pJ when it gets
  input; neurosim charges 52 pJ per inactive and 81 pJ per active neuron update, per population;
- latency: SANA-FE's barrier is 0.6-1.8 us by tiles used and a core handles each packet in 16 ns
  plus 3.8 ns per synapse; neurosim's barrier is Davies et al.'s 113-465 ns and a core's time is
  its synaptic operations at 3.5 ns each;
- weight updates are not replayed: SANA-FE's Loihi model has no learning.
"""
from __future__ import annotations

import contextlib
import io
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

LOIHI_LAYOUT = {"cores_per_tile": 4, "mesh_width": 8, "mesh_height": 4}


def _import():
    try:
        import sanafe
    except ImportError:
        raise ImportError("the SANA-FE check needs the optional extra: pip install -e \".[sanafe]\" "
                          "(SANA-FE is GPL-3.0 licensed)") from None
    return sanafe


@dataclass
class Replay:
    """neurosim's cost of one sample beside SANA-FE's, for the same messages.

    neurosim: the :class:`neurosim.hardware.Cost`; sanafe: ``{"energy_j": {total, synapse, soma,
    network, dendrite}, "latency_s", "synaptic_events", "packets", "spikes", "timesteps"}``;
    clipped: messages that did not fit in one timestep of a link's senders (0 unless a link
    carries more messages in a timestep than its source has neurons).
    """

    neurosim: object
    sanafe: dict
    clipped: int = 0
    notes: list = field(default_factory=list)

    @property
    def energy_ratio(self) -> float:
        """SANA-FE's energy over neurosim's, weight updates left out (SANA-FE does not learn)."""
        ours = self.neurosim.total_energy_j - self.neurosim.energy_j["weight_update"]
        return self.sanafe["energy_j"]["total"] / max(ours, 1e-300)

    @property
    def latency_ratio(self) -> float:
        return self.sanafe["latency_s"] / max(self.neurosim.latency_s, 1e-300)

    def table(self) -> str:
        ours, theirs = self.neurosim, self.sanafe
        rows = [
            ("synaptic events", f"{ours.synaptic_events:,}", f"{theirs['synaptic_events']:,}"),
            ("packets", f"{ours.packets:,.0f}", f"{theirs['packets']:,}"),
            ("synaptic energy (J)", f"{ours.energy_j['synaptic']:.4g}", f"{theirs['energy_j']['synapse']:.4g}"),
            ("message energy (J)", f"{ours.energy_j['messages']:.4g}", f"{theirs['energy_j']['network']:.4g}"),
            ("neuron energy (J)", f"{ours.energy_j['neuron_update']:.4g}", f"{theirs['energy_j']['soma']:.4g}"),
            ("energy, no learning (J)", f"{ours.total_energy_j - ours.energy_j['weight_update']:.4g}",
             f"{theirs['energy_j']['total']:.4g}"),
            ("latency (s)", f"{ours.latency_s:.4g}", f"{theirs['latency_s']:.4g}"),
            ("timesteps", f"{len(ours.timesteps)}", f"{theirs['timesteps']}"),
        ]
        width = max(len(r[0]) for r in rows) + 2
        lines = [f"{'':<{width}}{'neurosim':>14}{'SANA-FE':>14}"]
        lines += [f"{label:<{width}}{a:>14}{b:>14}" for label, a, b in rows]
        lines.append(f"SANA-FE / neurosim: energy {self.energy_ratio:.3g}, latency {self.latency_ratio:.3g}")
        return "\n".join(lines + [f"note: {note}" for note in self.notes])


def _arch(sanafe, inputs_per_core: int, folder: Path):
    """SANA-FE's bundled Loihi with only as many input units per core as needed (it loads 10x
    faster; the costs are the same file's)."""
    from importlib.resources import files

    text = files("sanafe.examples").joinpath("loihi.yaml").read_text()
    marker = "loihi_inputs[0..1023]"
    if marker not in text:  # pragma: no cover - a SANA-FE whose Loihi file changed
        raise RuntimeError("SANA-FE's loihi.yaml has changed; update neurosim.hardware.sanafe_replay")
    path = folder / "loihi.yaml"
    path.write_text(text.replace(marker, f"loihi_inputs[0..{max(inputs_per_core, 1) - 1}]"))
    return sanafe.load_arch(str(path))


def _sanafe_core(core, spec) -> int:
    """SANA-FE numbers Loihi's tiles column by column (tile = x * height + y), 4 cores each."""
    per_tile = int(spec.core["cores_per_tile"].value)
    sub = (core.index % int(spec.core["cores_per_chip"].value)) % per_tile
    return (core.x * LOIHI_LAYOUT["mesh_height"] + core.y) * per_tile + sub


def replay(mapping, x, y=None, events=None, timing: str = "detailed") -> Replay:
    """Cost the first sample of ``x`` (and ``y``) with neurosim and replay its messages on
    SANA-FE's Loihi model (see the module docstring). The mapping must use Loihi's layout (4 cores a
    tile on an 8 x 4 mesh, one chip), as the ``loihi`` and ``loihi2`` specs do."""
    spec = mapping.spec
    for key, value in LOIHI_LAYOUT.items():
        if spec.core[key].value != value:
            raise ValueError(f"SANA-FE replays Loihi's layout: spec core.{key} must be {value}, "
                             f"{spec.name} has {spec.core[key].value:g}")
    if mapping.chips != 1:
        raise ValueError(f"SANA-FE's Loihi model is one chip; this mapping uses {mapping.chips}")
    if timing not in ("detailed", "simple"):
        raise ValueError(f"timing must be 'detailed' or 'simple', got {timing!r}")
    sanafe = _import()
    x = np.asarray(x)[:1]
    y = None if y is None else np.asarray(y)[:1]
    cost = mapping.cost(x, y, events=events)
    links = sorted({key for step in cost.message_trace for key in step})
    # one zero-cost input unit per sender neuron, unique on its core
    senders_per_core = {}
    for source, _, _ in links:
        for core, start, stop in mapping.placement[source]:
            senders_per_core[core] = senders_per_core.get(core, 0) + (stop - start)
    if max(senders_per_core.values(), default=0) > 1024:
        raise ValueError("the circuit is too large to replay: a core would need more than 1,024 SANA-FE "
                         "input units; replay a smaller circuit")
    with tempfile.TemporaryDirectory() as folder:
        arch = _arch(sanafe, max(senders_per_core.values(), default=1), Path(folder))
        cores = arch.cores()
        net = sanafe.Network()
        groups = {}
        for name, size in mapping.populations.items():
            group = net.create_neuron_group(name, size, model_attributes={"threshold": 1e30, "leak_decay": 0.0},
                                            soma_hw_name="loihi_lif")
            for core, start, stop in mapping.placement[name]:
                place = cores[_sanafe_core(mapping.cores[core], spec)]
                for index in range(start, stop):
                    group[index].map_to_core(place)
            groups[name] = group
        n_steps = len(cost.timesteps)
        next_unit, clipped = {}, 0
        for number, (source, target, one_to_one) in enumerate(links):
            size = mapping.populations[source]
            trains = np.zeros((size, n_steps), dtype=bool)
            for step, messages in enumerate(cost.message_trace):
                count = messages.get((source, target, one_to_one), 0)
                clipped += max(0, count - size)
                trains[:min(count, size), step] = True
            group = net.create_neuron_group(f"senders{number}", size)
            for core, start, stop in mapping.placement[source]:
                place = cores[_sanafe_core(mapping.cores[core], spec)]
                for index in range(start, stop):
                    unit = next_unit.get(core, 0)
                    next_unit[core] = unit + 1
                    group[index].set_attributes(soma_hw_name=f"loihi_inputs[{unit}]",
                                                model_attributes={"spikes": [bool(v) for v in trains[index]]})
                    group[index].map_to_core(place)
            receivers = groups[target]
            n_target = mapping.populations[target]
            if one_to_one:
                pairs = [(i, min(int(i * n_target / size), n_target - 1)) for i in range(size)]
                group.connect_neurons_sparse(receivers, {"weight": [0.0] * len(pairs)}, pairs)
            else:
                group.connect_neurons_dense(receivers, {"weight": [0.0] * (size * n_target)})
        chip = sanafe.SpikingChip(arch)
        chip.load(net)
        with contextlib.redirect_stdout(io.StringIO()):
            result = chip.sim(n_steps + 1, timing_model=timing)  # one more: the last inputs land
    energy = {key: float(value) for key, value in result["energy"].items()}
    measured = {"energy_j": energy, "latency_s": float(result["sim_time"]),
                "synaptic_events": int(result["spikes"]), "packets": int(result["packets_sent"]),
                "spikes": int(result["neurons_fired"]), "timesteps": n_steps + 1}
    notes = ["weight updates are not replayed: SANA-FE's Loihi model has no learning"] if y is not None else []
    return Replay(cost, measured, clipped, notes)
