"""Neuromorphic hardware mapping: chip specs with provenance, placement on cores, latency and energy.

    spec = ns.hardware.load_spec("loihi")            # or "loihi2", "truenorth", "spinnaker2", a path
    mapping = ns.hardware.map(net, ns.variant("il"), spec)
    cost = mapping.cost(x, y)                          # one training step; mapping.cost(x): inference
    print(mapping.table(), cost.table())
    cost.energy_j                                      # {"synaptic", "neuron_update", "messages", "weight_update"}

Costs follow the work the simulator counts, population by population and tick by tick, so a
send-on-delta run (``mapping.cost(x, y, events=ns.events.SendOnDelta(0.01))``) costs the messages
it actually sends. See :mod:`neurosim.hardware.spec` for the spec format,
:mod:`neurosim.hardware.mapping` for placement and :mod:`neurosim.hardware.cost` for the model.
"""
from .cost import Cost, Timestep, processors
from .mapping import Core, Link, Mapping, circuit, map
from .plots import plot_energy
from .spec import CHIPS, ChipSpec, Figure, available, load_spec

__all__ = ["load_spec", "available", "map", "Mapping", "Cost", "Timestep", "ChipSpec", "Figure", "Core",
           "Link", "circuit", "processors", "plot_energy", "compare", "CHIPS"]


def compare(net, variants, spec="loihi", x=None, y=None, events=None, max_chips=None) -> list:
    """The cost of one training step of each variant on the same chip, data and network:
    ``[(variant, mapping, cost)]``; ``variants`` are names or :func:`neurosim.variant` objects."""
    from ..variants import variant as make_variant

    if x is None:
        raise ValueError("compare needs a batch x (and y for a training step) to cost")
    spec = load_spec(spec)
    out = []
    for item in variants:
        chosen = make_variant(item) if isinstance(item, str) else item
        mapping = map(net, chosen, spec, max_chips=max_chips)
        use_events = events if getattr(chosen, "has_ticks", False) else None
        out.append((chosen, mapping, mapping.cost(x, y, events=use_events)))
    return out
