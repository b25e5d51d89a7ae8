"""Hardware mapping: chip specs, placement on cores, latency and energy.

Oracles: the spec files themselves (every figure sourced); hand counts on a circuit small enough to
place and cost on paper, with a spec of round numbers; the chips' limits (no core over any of
them, every neuron placed once, on random circuits); the counter (energies are its counts times
the spec's figures); Z-IL, which does BP's work, costing exactly what BP costs.
"""
import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import neurosim as ns
from neurosim import counting, hardware
from neurosim.hardware import spec as spec_module

ROOT = Path(__file__).resolve().parents[1]


def _raw(name="generic"):
    return spec_module.tomllib.loads((spec_module.SPEC_DIR / f"{name}.toml").read_text())


def _round_spec(**changes):
    """A spec of round numbers: 1 core per tile, an 8 x 8 mesh, easy energies and times."""
    raw = _raw("generic")
    figures = {
        "energy": {"synaptic_op": 1e-12, "synaptic_update": 10e-12, "neuron_update_active": 2e-12,
                   "neuron_update_inactive": 1e-12, "spike_in_tile": 0.5e-12, "hop_east_west": 3e-12,
                   "hop_north_south": 4e-12, "chip_crossing": 100e-12},
        "time": {"synaptic_op": 1e-9, "synaptic_update": 2e-9, "neuron_update_active": 0.0,
                 "neuron_update_inactive": 0.0, "spike_in_tile": 1e-9, "hop_east_west": 5e-9,
                 "hop_north_south": 7e-9, "chip_crossing": 50e-9, "barrier_min": 100e-9,
                 "barrier_max": 730e-9, "min_tick": 0.0},
    }
    for section, values in figures.items():
        for key, value in values.items():
            raw[section][key] = {"value": value, "unit": "J" if section == "energy" else "s",
                                 "status": "assumed", "source": "test"}
    for dotted, value in changes.items():
        section, key = dotted.split(".")
        raw[section][key]["value"] = value
    return spec_module.parse(raw, "round-numbers")


# -- specs -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", hardware.CHIPS)
def test_every_shipped_spec_loads_with_every_figure_sourced(name):
    spec = hardware.load_spec(name)
    assert spec.name == name and spec.references
    figures = spec.figures()
    assert len(figures) == sum(len(keys) for keys in spec_module.SCHEMA.values())
    for dotted, figure in figures.items():
        assert figure.source.strip(), dotted
        assert figure.status in spec_module.STATUSES, dotted
        if figure.unit != "bool":
            assert math.isfinite(figure.value) and figure.value >= 0, dotted
    assert spec.core["cores_per_chip"].value <= (spec.core["cores_per_tile"].value * spec.core["mesh_width"].value
                                                  * spec.core["mesh_height"].value)
    assert name in spec.table()


def test_loihi_figures_are_the_published_ones():
    spec = hardware.load_spec("loihi")
    assert spec.value("energy.synaptic_op") == pytest.approx(23.6e-12)
    assert spec.value("time.synaptic_op") == pytest.approx(3.5e-9)
    assert spec.value("energy.neuron_update_active") == pytest.approx(81e-12)
    assert spec.value("energy.neuron_update_inactive") == pytest.approx(52e-12)
    assert spec.value("energy.synaptic_update") == pytest.approx(120e-12)
    assert spec.value("energy.spike_in_tile") == pytest.approx(1.7e-12)
    assert spec.value("energy.hop_east_west") == pytest.approx(3.0e-12)
    assert spec.value("energy.hop_north_south") == pytest.approx(4.0e-12)
    assert spec.neurons_per_chip == 131072
    assert spec.value("core.synaptic_memory") == 128 * 1024
    assert spec.energy["synaptic_op"].status == "measured"
    assert hardware.load_spec("loihi2").energy["synaptic_op"].status == "assumed"
    truenorth = hardware.load_spec("truenorth")
    assert truenorth.value("energy.synaptic_op") == pytest.approx(26e-12)
    assert truenorth.value("time.min_tick") == pytest.approx(1e-3)
    assert truenorth.value("features.on_chip_learning") is False
    assert hardware.load_spec("spinnaker2").value("core.cores_per_chip") == 152


def test_a_spec_loads_from_a_path_and_converts_units(tmp_path):
    text = (spec_module.SPEC_DIR / "generic.toml").read_text()
    path = tmp_path / "mychip.toml"
    path.write_text(text.replace('chip_crossing = { value = 100, unit = "pJ"', 'chip_crossing = { value = 0.1, unit = "nJ"'))
    spec = hardware.load_spec(str(path))
    assert spec.value("energy.chip_crossing") == pytest.approx(100e-12)
    assert spec.value("time.barrier_max") == pytest.approx(500e-9)
    assert hardware.load_spec(path).name == "generic"


def _write_broken(tmp_path, section, key, entry):
    raw = _raw("loihi")
    if entry is None:
        del raw[section][key]
    else:
        raw[section][key] = entry
    lines = []
    for table, body in raw.items():
        lines.append(f"[{table}]")
        for name, value in body.items():
            lines.append(f"{name} = {_toml(value)}")
    path = tmp_path / "broken.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


def _toml(value):
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {_toml(v)}" for k, v in value.items()) + " }"
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value)
    return repr(value)


@pytest.mark.parametrize("section, key, entry, match", [
    ("energy", "synaptic_op", None, "missing figure energy.synaptic_op"),
    ("energy", "synaptic_op", {"value": -1.0, "unit": "pJ", "status": "measured", "source": "x"}, "energy.synaptic_op must be finite and >= 0"),
    ("time", "hop_east_west", {"value": "fast", "unit": "ns", "status": "measured", "source": "x"}, "time.hop_east_west must be a number"),
    ("core", "neurons", {"value": True, "unit": "neurons", "status": "design", "source": "x"}, "core.neurons must be a number"),
    ("core", "neurons", {"value": 10.5, "unit": "neurons", "status": "design", "source": "x"}, "core.neurons must be a whole number"),
    ("energy", "synaptic_op", {"value": 1.0, "unit": "pJ", "status": "measured"}, "energy.synaptic_op has no source"),
    ("energy", "synaptic_op", {"value": 1.0, "unit": "pJ", "status": "guessed", "source": "x"}, "energy.synaptic_op.status"),
    ("energy", "synaptic_op", {"value": 1.0, "unit": "kWh", "status": "measured", "source": "x"}, "energy.synaptic_op.unit"),
    ("core", "fan_in", {"value": 4, "unit": "bytes", "status": "design", "source": "x"}, "core.fan_in.unit"),
    ("features", "graded_spikes", {"value": 1, "status": "design", "source": "x"}, "features.graded_spikes must be true or false"),
    ("energy", "laser", {"value": 1.0, "unit": "pJ", "status": "measured", "source": "x"}, "unknown figure"),
])
def test_a_bad_spec_file_names_the_field(tmp_path, section, key, entry, match):
    path = _write_broken(tmp_path, section, key, entry)
    with pytest.raises(ValueError, match=match) as raised:
        hardware.load_spec(path)
    assert "broken.toml" in str(raised.value)


def test_unknown_chips_and_unreadable_files_are_refused(tmp_path):
    with pytest.raises(ValueError, match="unknown chip 'loihi3'.*loihi, loihi2, truenorth"):
        hardware.load_spec("loihi3")
    with pytest.raises(ValueError, match="does not exist"):
        hardware.load_spec(str(tmp_path / "missing.toml"))
    bad = tmp_path / "bad.toml"
    bad.write_text("[chip\nname = ")
    with pytest.raises(ValueError, match="bad.toml: not valid TOML"):
        hardware.load_spec(bad)
    binary = tmp_path / "binary.toml"
    binary.write_bytes(b"\xff\xfe\x00\x81")
    with pytest.raises(ValueError, match="binary.toml"):
        hardware.load_spec(binary)
    with pytest.raises(TypeError, match="chip name or a path"):
        hardware.load_spec(3)


# -- placement ---------------------------------------------------------------------------------------
def test_the_impossible_fit_names_the_neuron_limit():
    net = ns.mlp([64, 80000, 10])
    with pytest.raises(ValueError, match=r"160,084 neurons.*131,072.*core.neurons"):
        hardware.map(net, "il", "loihi", max_chips=1)
    with pytest.raises(ValueError, match=r"error\[2\].*80,001 input axons.*core.fan_in = 4,096"):
        hardware.map(net, "il", "loihi")


def test_a_784_512_512_10_il_circuit_maps_on_one_loihi_chip():
    net = ns.mlp([784, 512, 512, 10])
    mapping = hardware.map(net, "il", "loihi", max_chips=1)
    assert mapping.chips == 1
    # error[1]: 784 8-bit synapses a neuron, 128 KB a core -> 167 a core -> 4 cores of 128
    assert len(mapping.cores_of("error[1]")) == 4
    assert {n for _, n in mapping.cores_of("error[1]")} == {128}
    # value[1] stores W[2]^T: 512 synapses a neuron -> 256 a core -> 2 cores
    assert len(mapping.cores_of("value[1]")) == 2
    assert mapping.n_cores == 12
    assert f"{mapping.n_cores} cores on 1 chip" in mapping.table()
    _assert_within_limits(mapping)


def _assert_within_limits(mapping):
    spec = mapping.spec
    for core in mapping.cores:
        assert core.neurons <= spec.value("core.neurons")
        assert core.memory_bytes <= spec.value("core.synaptic_memory") + 1e-9
        assert core.axons_in <= spec.value("core.fan_in") + 1e-9
        assert core.axons_out <= spec.value("core.fan_out") + 1e-9
    for name, size in mapping.populations.items():
        pieces = sorted((start, stop) for _, start, stop in mapping.placement[name])
        assert pieces[0][0] == 0 and pieces[-1][1] == size
        assert all(a[1] == b[0] for a, b in zip(pieces, pieces[1:])), name
    utilisation = mapping.utilisation()
    assert all(0 <= value <= 1 + 1e-9 for value in utilisation.values())


@settings(max_examples=25, deadline=None)
@given(sizes=st.lists(st.integers(1, 700), min_size=2, max_size=4),
       chip=st.sampled_from(["loihi", "loihi2", "truenorth", "spinnaker2", "generic"]),
       variant=st.sampled_from(["il", "bp", "fpa", "copi"]), pack=st.booleans())
def test_no_core_exceeds_any_limit_and_every_neuron_is_placed_once(sizes, chip, variant, pack):
    net = ns.mlp(sizes, seed=0)
    try:
        mapping = hardware.map(net, variant, chip, pack=pack)
    except ValueError as exc:  # a circuit a chip cannot hold must say which limit
        assert "core." in str(exc)
        return
    _assert_within_limits(mapping)
    if not pack:  # a population never shares a core with another
        for core in mapping.cores:
            assert len({name for name, _, _ in core.slices}) == 1


def test_packing_shares_cores_and_keeps_the_limits():
    net = ns.mlp([64, 128, 128, 10])
    spread = hardware.map(net, "il", "loihi")
    packed = hardware.map(net, "il", "loihi", pack=True)
    assert spread.n_cores == 7 and packed.n_cores == 1
    _assert_within_limits(packed)


def test_copi_places_its_decorrelating_populations():
    net = ns.mlp([6, 5, 3])
    mapping = hardware.map(net, "copi", "generic")
    assert list(mapping.populations) == ["value[0]", "decorrelated[1]", "value[1]", "decorrelated[2]", "error[1]",
                                         "value[2]", "error[2]"]
    links = {link.name: link for link in mapping.links}
    assert links["W[1]"].source == "decorrelated[1]"
    assert links["R[2]"].synapses == 25


def test_a_conv_network_maps_and_a_recurrent_one_is_refused():
    from neurosim import config as configs

    net = configs.build_model(configs.validate(configs.load(ROOT / "models" / "cnn_digits.toml"))["model"])
    mapping = hardware.map(net, "il", "loihi")
    _assert_within_limits(mapping)
    with pytest.raises(ValueError, match="recurrent"):
        hardware.map(ns.rnn(3, 5, 2), "il", "loihi")


def test_fan_out_overflow_goes_through_splitter_neurons():
    """TrueNorth: a neuron sends to one axon. value[2] of the digits CNN drives error[3] on 4 cores,
    so its 256 neurons need 1,024 splitters; the limits hold and each of its messages pays two legs."""
    from neurosim import config as configs

    net = configs.build_model(configs.validate(configs.load(ROOT / "models" / "cnn_digits.toml"))["model"])
    mapping = hardware.map(net, "il", "truenorth")
    assert mapping.relays == {"value[2]": 256 * 4}
    assert mapping.populations["relay[value[2]]"] == 1024
    assert any("splitter neurons" in note for note in mapping.notes)
    _assert_within_limits(mapping)
    data = ns.datasets.digits()
    x, y = net.as_input(data.x_train[:1]), data.targets(data.y_train[:1])
    cost = mapping.cost(x, y)
    direct = hardware.map(net, "il", "loihi").cost(x, y)  # the same messages, no splitters on Loihi
    assert cost.messages == direct.messages
    assert cost.packets > direct.packets


def test_a_variant_that_refuses_the_network_says_so_first():
    from neurosim import config as configs

    net = configs.build_model(configs.validate(configs.load(ROOT / "models" / "cnn_digits.toml"))["model"])
    with pytest.raises(ValueError, match="variant 'copi' runs on dense networks"):
        hardware.map(net, "copi", "truenorth")


def test_bad_arguments_to_map_are_refused():
    net = ns.mlp([4, 5, 3])
    with pytest.raises(TypeError, match="net must be a neurosim Network"):
        hardware.map("net", "il")
    with pytest.raises(ValueError, match="unknown"):
        hardware.map(net, "no-such-variant")
    with pytest.raises(TypeError, match="variant must be"):
        hardware.map(net, 3)
    with pytest.raises(ValueError, match="max_chips must be >= 1"):
        hardware.map(net, "il", max_chips=0)
    with pytest.raises(TypeError, match="max_chips must be a whole number"):
        hardware.map(net, "il", max_chips=1.5)
    with pytest.raises(TypeError, match="pack must be"):
        hardware.map(net, "il", pack="yes")
    mapping = hardware.map(net, "il")
    with pytest.raises(ValueError, match="x"):
        mapping.cost(np.zeros((2, 7)), np.zeros((2, 3)))
    with pytest.raises(ValueError, match="x"):
        mapping.cost(np.full((2, 4), np.nan), np.zeros((2, 3)))
    with pytest.raises(ValueError, match="y"):
        mapping.cost(np.zeros((2, 4)), np.zeros((2, 5)))


# -- cost, by hand ---------------------------------------------------------------------------------
def test_inference_cost_by_hand():
    """mlp 3-4-2, batch 2, one population per core on an 8-wide mesh, one core per tile:
    value[0] @ (0,0), value[1] @ (1,0), error[1] @ (2,0), value[2] @ (3,0), error[2] @ (4,0).

    Feed-forward: W[1] (12 synapses, stored at error[1]) then W[2] (8, at error[2]): two timesteps.
    Per sample, timestep k: t = synaptic ops * 1 ns + route + barrier, with the route from the
    sender's core to the synapses' core (value[0] -> error[1]: 2 hops east; value[1] -> error[2]:
    3 hops) and the barrier for 5 of 64 tiles: 100 ns + 630 ns * 4 / 63.
    """
    spec = _round_spec()
    net = ns.mlp([3, 4, 2], seed=0)
    mapping = hardware.map(net, "bp", spec)
    assert [(core.x, core.y) for core in mapping.cores] == [(0, 0), (1, 0), (2, 0), (3, 0), (4, 0)]
    x = np.random.default_rng(0).random((2, 3))
    cost = mapping.cost(x)
    assert cost.phase == "inference" and cost.batch == 2
    assert cost.synaptic_events == 2 * (12 + 8)
    assert cost.energy_j["synaptic"] == pytest.approx(cost.synaptic_events * 1e-12, rel=1e-12)
    barrier = 100e-9 + 630e-9 * 4 / 63
    route_1 = 1e-9 + 2 * 5e-9
    route_2 = 1e-9 + 3 * 5e-9
    per_sample = (12 * 1e-9 + route_1 + barrier) + (8 * 1e-9 + route_2 + barrier)
    assert len(cost.timesteps) == 2
    assert cost.latency_s == pytest.approx(2 * per_sample, rel=1e-12)
    # messages: value[0] sends 3 scalars a sample over 2 hops, value[1] sends 4 over 3 hops
    message_energy = 2 * (3 * (0.5e-12 + 2 * 3e-12) + 4 * (0.5e-12 + 3 * 3e-12))
    assert cost.messages == 2 * (3 + 4)
    assert cost.energy_j["messages"] == pytest.approx(message_energy, rel=1e-12)
    # neuron updates: every timestep updates all 15 neurons, the synapses' population active
    active = 4 + 2
    assert cost.energy_j["neuron_update"] == pytest.approx(2 * (active * 2e-12 + (2 * 15 - active) * 1e-12))
    assert cost.energy_j["weight_update"] == 0.0
    assert cost.time_per_timestep_s == pytest.approx(per_sample / 2)


def test_training_cost_follows_the_counter():
    spec = _round_spec()
    net = ns.mlp([5, 6, 4, 3], seed=1)
    rng = np.random.default_rng(1)
    x, y = rng.random((3, 5)), np.eye(3)[[0, 2, 1]]
    for name in ("bp", "il", "fpa", "seqil", "ipc", "copi"):
        variant = ns.variant(name)
        cost = hardware.map(net, variant, spec).cost(x, y)
        with counting.count() as counter:
            variant.gradients(net.copy(), x, y)
        by_kernel = counter.by_kernel()
        synaptic = sum(row["macs"] for kernel, row in by_kernel.items() if kernel in hardware.cost.SYNAPTIC)
        plastic = sum(row["macs"] for kernel, row in by_kernel.items() if kernel in hardware.cost.PLASTIC)
        assert cost.synaptic_events == synaptic, name
        assert cost.energy_j["synaptic"] == pytest.approx(synaptic * 1e-12), name
        assert cost.synaptic_updates >= plastic > 0, name
        assert cost.energy_j["weight_update"] == pytest.approx(cost.synaptic_updates * 10e-12), name
        assert cost.macs == counter.macs
        assert cost.processor_energy_j["horowitz_45nm_fp32"] == pytest.approx(counter.macs * 4.6e-12)
        assert cost.ticks == counter.ticks
        assert cost.latency_s == pytest.approx(3 * sum(step.seconds for step in cost.timesteps))
        for step in cost.timesteps:
            assert step.seconds == pytest.approx(step.compute_s + step.routing_s + step.barrier_s)


def test_symmetric_feedback_pays_for_its_weight_copy():
    net = ns.mlp([5, 6, 4, 3], seed=1)
    x, y = np.random.default_rng(2).random((2, 5)), np.eye(3)[[0, 2]]
    symmetric = hardware.map(net, ns.variant("il", T=4), "loihi")
    aligned = hardware.map(net, ns.variant("il", T=4, feedback="random"), "loihi")
    assert any("weight transport" in note for note in symmetric.notes)
    assert not any("weight transport" in note for note in aligned.notes)
    assert "B[2]" in {link.name for link in aligned.links}
    hebbian = 2 * (5 * 6 + 6 * 4 + 4 * 3)  # the step's weight terms, batch 2
    copies = 2 * (6 * 4 + 4 * 3)  # W[2]^T and W[3]^T follow W[2] and W[3]
    assert aligned.cost(x, y).synaptic_updates == hebbian
    assert symmetric.cost(x, y).synaptic_updates == hebbian + copies


def test_zil_does_on_chip_what_bp_does():
    """Z-IL's synaptic passes, weight updates and timesteps are BP's; only which neurons update
    differs (Z-IL's value neurons relax where BP's error units compute deltas)."""
    net = ns.mlp([8, 7, 6, 3], seed=0)
    x, y = np.random.default_rng(0).random((2, 8)), np.eye(3)[[1, 2]]
    bp = hardware.map(net, "bp", "loihi").cost(x, y)
    zil = hardware.map(net, "zil", "loihi").cost(x, y)
    assert zil.synaptic_events == bp.synaptic_events
    assert zil.synaptic_updates == bp.synaptic_updates
    assert zil.messages == bp.messages
    # forward 3, backward 2 (the first layer's error and every weight term join the last)
    assert len(zil.timesteps) == len(bp.timesteps) == 3 + 2
    assert zil.energy_j["synaptic"] == pytest.approx(bp.energy_j["synaptic"])
    assert zil.energy_j["weight_update"] == pytest.approx(bp.energy_j["weight_update"])
    assert zil.latency_s == pytest.approx(bp.latency_s, rel=0.05)


def test_il_needs_two_timesteps_a_tick():
    net = ns.mlp([8, 7, 6, 3], seed=0)
    x, y = np.random.default_rng(0).random((1, 8)), np.eye(3)[[1]]
    cost = hardware.map(net, ns.variant("il", T=5), "loihi").cost(x, y)
    # feed-forward (3), the output error's first feedback pass (1), then per tick a prediction and a
    # feedback pass (2 x 5); the weight terms join the last timestep
    assert len(cost.timesteps) == 3 + 1 + 2 * 5


def test_events_cost_the_messages_actually_sent():
    net = ns.mlp([64, 128, 128, 10], activation="tanh", seed=0)
    data = ns.datasets.digits()
    x, y = data.x_train[:4], data.targets(data.y_train[:4])
    mapping = hardware.map(net, ns.variant("il", T=20, gamma=0.1), "loihi")
    dense = mapping.cost(x, y)
    costs = [mapping.cost(x, y, events=ns.events.SendOnDelta(threshold)) for threshold in (0.0, 0.01, 0.1)]
    messages = [cost.messages for cost in costs]
    assert messages == sorted(messages, reverse=True)
    assert costs[-1].synaptic_events < costs[0].synaptic_events <= dense.synaptic_events
    assert costs[-1].energy_j["synaptic"] < dense.energy_j["synaptic"]
    assert costs[-1].latency_s < dense.latency_s
    with pytest.raises(ValueError, match="variant 'bp' has no ticks"):
        hardware.map(net, "bp", "loihi").cost(x, y, events=ns.events.SendOnDelta(0.1))


def test_truenorth_reports_what_it_cannot_do():
    net = ns.mlp([64, 128, 128, 10], seed=0)
    x, y = np.random.default_rng(0).random((1, 64)), np.eye(10)[[3]]
    mapping = hardware.map(net, "il", "truenorth")
    training = mapping.cost(x, y)
    assert any("no on-chip learning" in note for note in training.notes)
    assert training.energy_j["weight_update"] == 0.0 and training.synaptic_updates > 0
    assert training.time_per_timestep_s == pytest.approx(1e-3)  # the 1 kHz tick
    inference = mapping.cost(x)
    assert not any("learning" in note for note in inference.notes)
    assert any("1-bit weights" in note for note in mapping.notes)


def test_cost_reports_render_and_serialise():
    net = ns.mlp([6, 5, 3], seed=0)
    x, y = np.random.default_rng(0).random((2, 6)), np.eye(3)[[0, 1]]
    results = hardware.compare(net, ["bp", "il", "zil"], "loihi", x, y)
    assert [cost.variant for _, _, cost in results] == ["bp", "il", "zil"]
    mapping, cost = results[1][1], results[1][2]
    payload = json.loads(cost.to_json())
    assert payload["total_energy_j"] == pytest.approx(sum(payload["energy_j"].values()))
    assert set(payload["energy_j"]) >= {"synaptic", "neuron_update", "messages", "weight_update"}
    assert "latency" in cost.table() and "energy: total" in cost.table()
    figure = mapping.plot(cost)
    assert len(figure.axes) >= 2
    ax = hardware.plot_energy([c for _, _, c in results])
    assert ax.get_ylabel().startswith("energy per step")
    import matplotlib.pyplot as plt

    plt.close("all")


def test_neurosim_map_writes_its_outputs(tmp_path):
    out = tmp_path / "run"
    result = subprocess.run([sys.executable, "-m", "neurosim.cli", "map", str(ROOT / "models" / "mlp_digits.toml"),
                             "--hardware", "loihi", "--events", "0.01", "--batch-size", "2", "--out", str(out)],
                            capture_output=True, text=True, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert {p.name for p in out.iterdir()} == {"cost.txt", "cost.json", "mapping.png", "energy.png"}
    payload = json.loads((out / "cost.json").read_text())
    assert [c["variant"] for c in payload["costs"]] == ["il", "bp"]
    assert payload["events"] == {"threshold": 0.01, "relative": False}
    assert "energy / BP" in result.stdout
    bad = subprocess.run([sys.executable, "-m", "neurosim.cli", "map", str(ROOT / "models" / "mlp_digits.toml"),
                          "--hardware", "loihi9", "--out", str(out)], capture_output=True, text=True)
    assert bad.returncode == 2 and "unknown chip 'loihi9'" in bad.stderr and "Traceback" not in bad.stderr
