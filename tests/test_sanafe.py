"""neurosim's cost model against SANA-FE's Loihi model, on the same messages.

SANA-FE is an optional extra (GPL-3.0; ``pip install -e ".[sanafe]"``, installed with the test
extra). The replay gives SANA-FE exactly the packets neurosim routes, so those must agree to the
packet; its synaptic events are ours plus one per message on a one-to-one wire (a synapse in
SANA-FE, a plain wire in neurosim). Energies and latencies differ by the calibrations each uses
(see :mod:`neurosim.hardware.sanafe_replay`); measured on these small circuits SANA-FE's energy,
weight updates left out, is 1.4-1.6x neurosim's (35.5 against 23.6 pJ a synaptic event, 111 against
1.7 pJ a packet) and its latency 2.8-3.9x on the 8-12-6-3 circuits, where barriers dominate (its
barrier is 0.6-1.8 us where Davies et al. give 113-465 ns, and it handles each packet in 16 ns plus
3.8 ns a synapse), 1.2x on 400-400-10, where synaptic operations do.
"""
import numpy as np
import pytest

import neurosim as ns
from neurosim import hardware

sanafe = pytest.importorskip("sanafe")
from neurosim.hardware.sanafe_replay import replay  # noqa: E402


def _one_to_one_messages(cost):
    return sum(count for step in cost.message_trace for (s, t, wire), count in step.items() if wire)


CASES = [("bp", None), ("il", None), ("il", 0.05), ("fpa", None), ("seqil", None)]


@pytest.mark.parametrize("name, threshold", CASES, ids=[f"{n}-{t}" for n, t in CASES])
def test_sanafe_sees_our_packets_and_synaptic_events(name, threshold):
    net = ns.mlp([8, 12, 6, 3], activation="tanh", seed=0)
    x, y = np.random.default_rng(0).random((1, 8)), np.eye(3)[[1]]
    variant = ns.variant(name, T=5) if name == "il" else ns.variant(name)
    events = None if threshold is None else ns.events.SendOnDelta(threshold)
    result = replay(hardware.map(net, variant, "loihi"), x, y, events=events)
    ours, theirs = result.neurosim, result.sanafe
    assert result.clipped == 0
    assert theirs["packets"] == round(ours.packets)
    assert theirs["synaptic_events"] == ours.synaptic_events + _one_to_one_messages(ours)
    assert theirs["spikes"] == ours.messages
    assert 1.3 <= result.energy_ratio <= 1.7
    assert 2.5 <= result.latency_ratio <= 4.5
    assert "SANA-FE / neurosim" in result.table()


def test_spread_over_tiles_the_routes_agree():
    """A layer split over several cores and tiles: packets fan out to every core of the target."""
    net = ns.mlp([400, 400, 10], seed=0)
    x, y = np.random.default_rng(1).random((1, 400)), np.eye(10)[[4]]
    mapping = hardware.map(net, ns.variant("il", T=3), "loihi")
    assert len({(c.x, c.y) for c in mapping.cores}) > 1 and len(mapping.cores_of("error[1]")) > 1
    result = replay(mapping, x)
    assert result.sanafe["packets"] == round(result.neurosim.packets)
    assert result.sanafe["synaptic_events"] == result.neurosim.synaptic_events
    assert 1.2 <= result.energy_ratio <= 2.0


def test_replay_refuses_what_it_cannot_model():
    net = ns.mlp([4, 5, 3])
    with pytest.raises(ValueError, match="core.cores_per_tile must be 4"):
        replay(hardware.map(net, "il", "truenorth"), np.zeros((1, 4)))
    with pytest.raises(ValueError, match="timing"):
        replay(hardware.map(net, "il", "loihi"), np.zeros((1, 4)), timing="cycle")


def test_a_missing_extra_says_how_to_install_it(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "sanafe", None)
    with pytest.raises(ImportError, match=r'pip install -e "\.\[sanafe\]"'):
        replay(hardware.map(ns.mlp([4, 5, 3]), "il", "loihi"), np.zeros((1, 4)))
