"""Oracle: hand counts on a chip of round numbers, this time on a mesh two tiles wide, so that
messages travel north-south as well as east-west, and on cores small enough to fill exactly.
"""
from __future__ import annotations

import numpy as np
import pytest

import neurosim as ns
from neurosim import hardware
from neurosim.hardware import spec as spec_module

ENERGY = {"synaptic_op": 1e-12, "synaptic_update": 10e-12, "neuron_update_active": 2e-12,
          "neuron_update_inactive": 1e-12, "spike_in_tile": 0.5e-12, "hop_east_west": 3e-12,
          "hop_north_south": 4e-12, "chip_crossing": 100e-12}
TIME = {"synaptic_op": 1e-9, "synaptic_update": 2e-9, "neuron_update_active": 0.0, "neuron_update_inactive": 0.0,
        "spike_in_tile": 1e-9, "hop_east_west": 5e-9, "hop_north_south": 7e-9, "chip_crossing": 50e-9,
        "barrier_min": 100e-9, "barrier_max": 730e-9, "min_tick": 0.0}


def _spec(**core):
    """The generic chip with round energies and times and the given ``core`` figures."""
    raw = spec_module.tomllib.loads((spec_module.SPEC_DIR / "generic.toml").read_text())
    for section, values in (("energy", ENERGY), ("time", TIME)):
        for key, value in values.items():
            raw[section][key] = {"value": value, "unit": "J" if section == "energy" else "s",
                                 "status": "assumed", "source": "test"}
    for key, value in core.items():
        raw["core"][key]["value"] = value
    return spec_module.parse(raw, "round-numbers")


def test_inference_cost_on_a_two_wide_mesh_by_hand():
    """mlp 3-4-2, batch 2, one population per core, cores numbered along rows of 2 tiles:
    value[0] @ (0,0), value[1] @ (1,0), error[1] @ (0,1), value[2] @ (1,1), error[2] @ (0,2).

    value[0] -> error[1]: 1 hop north-south (0.5 + 4 pJ, 1 + 7 ns); value[1] -> error[2]: 1 hop
    east-west and 2 north-south (0.5 + 3 + 8 pJ, 1 + 5 + 14 ns). Barrier for 5 of 16 tiles:
    100 ns + 630 ns * 4 / 15.
    """
    spec = _spec(mesh_width=2, cores_per_chip=16)
    mapping = hardware.map(ns.mlp([3, 4, 2], seed=0), "bp", spec)
    assert [(core.x, core.y) for core in mapping.cores] == [(0, 0), (1, 0), (0, 1), (1, 1), (0, 2)]
    cost = mapping.cost(np.random.default_rng(0).random((2, 3)))
    assert cost.messages == 2 * (3 + 4)
    assert cost.energy_j["messages"] == pytest.approx(2 * (3 * (0.5 + 4) + 4 * (0.5 + 3 + 2 * 4)) * 1e-12,
                                                      rel=1e-12)
    barrier = 100e-9 + 630e-9 * 4 / 15
    per_sample = (12 * 1e-9 + (1 + 7) * 1e-9 + barrier) + (8 * 1e-9 + (1 + 5 + 14) * 1e-9 + barrier)
    assert [step.routing_s for step in cost.timesteps] == pytest.approx([8e-9, 20e-9], rel=1e-12)
    assert cost.latency_s == pytest.approx(2 * per_sample, rel=1e-12)


def test_packing_fills_a_core_to_its_last_neuron():
    """Cores of 4 neurons, mlp 2-2-2 packed: the five populations of 2 neurons take 3 cores,
    (value[0], value[1]), (error[1], value[2]), (error[2],), the first two full."""
    mapping = hardware.map(ns.mlp([2, 2, 2], seed=0), "bp", _spec(neurons=4), pack=True)
    assert [core.neurons for core in mapping.cores] == [4, 4, 2]
    assert [[name for name, _, _ in core.slices] for core in mapping.cores] == [
        ["value[0]", "value[1]"], ["error[1]", "value[2]"], ["error[2]"]]
