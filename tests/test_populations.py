"""Populations, connections and per-population counts.

Oracles: hand counts on a circuit small enough to count on paper; the running totals (every column
of the per-population and per-tick tables must sum to them); the network's own shapes.
"""
import numpy as np
import pytest

import neurosim as ns
from neurosim import counting
from neurosim.layers import AvgPool2d, Conv2d, Dense, Flatten


def _names(net):
    names = {p.name for p in net.populations()}
    for feedback in ("symmetric", "random"):
        names |= {c.name.replace("^T", "") for c in net.connections(feedback)}
    return names


def test_populations_and_connections_of_a_dense_circuit():
    net = ns.mlp([4, 8, 3])
    pops = net.populations()
    assert [p.name for p in pops] == ["value[0]", "value[1]", "error[1]", "value[2]", "error[2]"]
    assert [p.size for p in pops] == [4, 8, 8, 3, 3]
    assert pops[0].clamped and not pops[1].clamped
    conns = {c.name: c for c in net.connections()}
    assert set(conns) == {"W[1]", "W[2]", "W[2]^T"}
    assert (conns["W[2]"].source, conns["W[2]"].target) == ("value[1]", "error[2]")
    assert (conns["W[2]^T"].source, conns["W[2]^T"].target) == ("error[2]", "value[1]")
    assert conns["W[1]"].weights == 8 * 4 + 8 and conns["W[1]"].synapses == 32
    assert conns["W[2]^T"].weights == 0  # the transpose of stored weights, nothing new to store
    random = {c.name: c for c in net.connections("random")}
    assert random["B[2]"].weights == 3 * 8 + 3 and not random["B[2]"].plastic
    assert {c.name: c.plastic for c in net.connections("learned")}["B[2]"]
    with pytest.raises(ValueError, match="feedback"):
        net.connections("sideways")


def test_populations_of_conv_and_recurrent_circuits():
    cnn = ns.Network([Conv2d(1, 2, 3, padding=1), AvgPool2d(2), Flatten(), Dense(32, 10)],
                     input_shape=(1, 8, 8))
    pops = {p.name: p for p in cnn.populations()}
    assert pops["value[1]"].shape == (2, 8, 8) and pops["error[1]"].size == 128
    conns = {c.name: c for c in cnn.connections()}
    assert conns["W[1]"].weights == 2 * 9 + 2            # shared kernel
    assert conns["W[1]"].synapses == cnn.layer_macs(1, 1)  # one MAC per tap and position
    rnn = ns.rnn(8, 16, 10)
    rnn.check_input(np.zeros((2, 5, 8)))
    conns = {c.name: c for c in rnn.connections()}
    assert len(rnn.populations()) == 1 + 2 * 6
    assert conns["W[3]"].weights == 16 * (8 + 16 + 1)    # W_xh, W_hh, b_h shared by the steps
    assert conns["W[6]"].weights == 10 * 17


def test_hand_counted_il_step_per_population():
    """2-3-2 net, IL T=1, one sample. Tick 0: feed-forward sends 2 + 3 activities, e_2 W_2 sends 2
    errors; tick 1: e_1 -> x_1 (3), x_1 -> e_2 (3), e_2 -> x_1 (2): 15 messages. MACs: 6 per pass of
    W_1 or W_2; passes: feed-forward 2, feedback at tick 0, prediction and feedback at tick 1, two
    Hebbian terms: 7 x 6 = 42."""
    net = ns.mlp([2, 3, 2])
    with counting.count() as counter:
        ns.variant("il", T=1, gamma=0.1).gradients(net, np.ones((1, 2)), np.zeros((1, 2)))
    assert (counter.macs, counter.messages) == (42, 15)
    rows = counter.by_population()
    sent = {name: row["sent"] for name, row in rows.items() if row["sent"]}
    assert sent == {"value[0]": 2, "value[1]": 6, "error[1]": 3, "error[2]": 4}
    assert rows["W[1]"]["macs"] == 6 and rows["W[2]"]["macs"] == 6   # the Hebbian terms
    assert rows["error[2]"]["macs"] == 6                              # mu_2 recomputed at tick 1
    assert rows["value[1]"]["macs"] == 6 + 6 + 6                      # feed-forward, two feedbacks
    assert {tick: row["messages"] for tick, row in counter.by_tick().items()} == {0: 7, 1: 8}


@pytest.mark.parametrize("name", ["bp", "il", "zil", "fpa", "seqil", "ipc", "ilprox", "copi",
                                  "implicit_sgd"])
def test_every_event_names_source_and_target_and_tables_sum_to_totals(name):
    net = ns.mlp([5, 7, 6, 3], seed=1)
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(4, 5)), rng.normal(size=(4, 3))
    counting.reset_totals()
    with counting.count() as counter:
        ns.variant(name).gradients(net, x, y)
    known = _names(net) | {f"decorrelated[{l}]" for l in range(1, 4)} | {f"R[{l}]" for l in range(1, 4)}
    assert counter.events
    for event in counter.events:
        assert event.source in known and event.target in known, event
    by_population = counter.by_population()
    assert sum(row["macs"] for row in by_population.values()) == counter.macs
    assert sum(row["ops"] for row in by_population.values()) == counter.ops
    assert sum(row["sent"] for row in by_population.values()) == counter.messages
    assert sum(row["received"] for row in by_population.values()) == counter.messages
    assert sum(row["macs"] for row in counter.by_tick().values()) == counter.macs
    table = counter.table(by="population")
    assert table.splitlines()[-1].split()[2] == str(counter.macs)
    assert counter.table(by="tick").splitlines()[-1].split()[2] == str(counter.macs)


def test_conv_events_name_populations():
    net = ns.Network([Conv2d(1, 2, 3, padding=1), AvgPool2d(2), Flatten(), Dense(32, 4)],
                     input_shape=(1, 8, 8))
    x = np.random.default_rng(0).normal(size=(2, 1, 8, 8))
    with counting.count() as counter:
        ns.variant("il", T=3).gradients(net, x, np.zeros((2, 4)))
    assert {e.target for e in counter.events} <= _names(net)
    assert sum(r["macs"] for r in counter.by_population().values()) == counter.macs


def test_table_rejects_unknown_grouping():
    with counting.count() as counter:
        pass
    with pytest.raises(ValueError, match="by must be"):
        counter.table(by="core")
    with pytest.raises(ValueError, match="detailed counter"):
        counting.totals().table(by="population")
