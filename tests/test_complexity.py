"""Oracle: closed forms. Measured counts (per event, where each kernel runs) equal the analytic
formulas of neurosim.complexity for dense, convolutional and recurrent circuits; Lemma 1 of Zahid et
al. 2023 holds on the simulator's traces; the paper's conclusion (no variant beats BP's critical
path once every layer gets its update) holds on the measured table."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import neurosim as ns
from neurosim import complexity
from neurosim.cli import main

VARIANT_SPECS = st.one_of(
    st.just("bp"), st.just("zil"),
    st.builds(lambda T: ("il", {"T": T}), st.integers(1, 8)),
    st.builds(lambda T: ("fpa", {"T": T}), st.integers(1, 8)),
)
DENSE_SPECS = st.one_of(VARIANT_SPECS, st.builds(lambda T: ("seqil", {"T": T}), st.integers(1, 6)))


def assert_analytic_equals_measured(net, spec, batch, x=None):
    measured = complexity.measure(net, spec, batch_size=batch, x=x)
    closed = complexity.analytic(net, spec, batch_size=batch)
    assert (measured.macs, measured.ticks, measured.critical_path) == (
        closed["macs"], closed["ticks"], closed["critical_path"]), (spec, measured.as_dict(), closed)


@settings(max_examples=40, deadline=None)
@given(sizes=st.lists(st.integers(1, 9), min_size=2, max_size=7), batch=st.integers(1, 20),
       spec=DENSE_SPECS)
def test_dense_counts_equal_closed_forms(sizes, batch, spec):
    if isinstance(spec, tuple) and spec[0] == "seqil":
        sizes = sizes[:-1] + [max(sizes[-1], 2)]  # its softmax cross-entropy target needs 2 outputs
    assert_analytic_equals_measured(ns.mlp(sizes, seed=0), spec, batch)


@settings(max_examples=15, deadline=None)
@given(channels=st.integers(1, 3), stride=st.integers(1, 2), padding=st.integers(0, 1),
       pool=st.booleans(), batch=st.integers(1, 4), spec=VARIANT_SPECS)
def test_conv_counts_equal_closed_forms(channels, stride, padding, pool, batch, spec):
    layers = [ns.layers.Conv2d(1, channels, 3, stride=stride, padding=padding)]
    side = (8 + 2 * padding - 3) // stride + 1
    if pool and side >= 2:
        layers.append(ns.layers.AvgPool2d(2))
        side //= 2
    layers += [ns.layers.Conv2d(channels, 2, 1), ns.layers.Flatten(), ns.layers.Dense(2 * side * side, 3)]
    net = ns.Network(layers, activation="tanh", input_shape=(1, 8, 8), seed=0)
    assert_analytic_equals_measured(net, spec, batch)


@settings(max_examples=15, deadline=None)
@given(steps=st.integers(1, 6), hidden=st.integers(1, 5), batch=st.integers(1, 4), spec=VARIANT_SPECS)
def test_rnn_counts_equal_closed_forms(steps, hidden, batch, spec):
    net = ns.rnn(3, hidden, 2, seed=0)
    x = np.random.default_rng(0).standard_normal((batch, steps, 3))
    net.check_input(x)
    assert_analytic_equals_measured(net, spec, batch, x=x)


@settings(max_examples=30, deadline=None)
@given(sizes=st.lists(st.integers(1, 12), min_size=2, max_size=8), batch=st.integers(1, 8))
def test_bp_macs_closed_form_of_the_issue(sizes, batch):
    """3 * sum_l B n_{l-1} n_l - B n_0 n_1: forward, weight gradients, and deltas below layer 1."""
    report = complexity.measure(ns.mlp(sizes), "bp", batch_size=batch)
    total = sum(batch * sizes[i] * sizes[i + 1] for i in range(len(sizes) - 1))
    assert report.macs == 3 * total - batch * sizes[0] * sizes[1]
    assert report.critical_path == 2 * (len(sizes) - 1)


@pytest.mark.parametrize("name", ["il", "fpa", "zil"])
@pytest.mark.parametrize("depth", [2, 3, 5, 8])
def test_lemma_1_first_nonzero_error_at_tick_L_minus_l(name, depth):
    """From feed-forward initialisation e_l is exactly zero before tick L - l and non-zero at it."""
    net = ns.mlp([4] + [6] * (depth - 1) + [3], activation="tanh", seed=depth)
    rng = np.random.default_rng(depth)
    x, y = rng.standard_normal((2, 4)), rng.standard_normal((2, 3))
    hyper = {} if name == "zil" else {"T": depth + 2}
    trace = ns.Simulator(net, ns.variant(name, **hyper)).run(x, y, record=("errors",))
    for layer in range(1, depth + 1):
        first = depth - layer
        before = trace.errors[layer][:first]
        assert np.all(before == 0.0), (layer, first)
        if first <= trace.ticks:
            assert np.any(trace.errors[layer][first] != 0.0), (layer, first)


def test_no_variant_beats_bp_once_every_layer_is_updated():
    """Zahid et al. 2023: with every layer updated, no variant's critical path or work is below BP's.
    IL with T < L - 1 can be shorter, and the table says why: its lowest layers get no update."""
    table = complexity.compare(["bp", "il", ("il", {"T": 3}), "fpa", "zil", "seqil", "ilprox", "ipc"],
                               depths=range(2, 11), width=16)
    for row in table.rows:
        if row["all_layers_updated"]:
            assert row["critical_path_vs_bp"] >= 1.0, row
            assert row["macs_vs_bp"] >= 1.0, row
    short = [r for r in table.rows if r["variant"] == "il, T=3" and r["n_layers"] > 4]
    assert short and not any(r["all_layers_updated"] for r in short)
    assert any(r["critical_path_vs_bp"] < 1.0 for r in short)
    assert "every layer updated" in table.table()


def test_seqil_reaches_every_layer_in_three_ticks_at_bp_plus_five():
    """SeqIL with T = 3 updates every layer at any depth (one top-down sweep carries the error to
    layer 1), yet its critical path is 2L + 5, never below BP's 2L: it changes how many ticks are
    needed, not the serial cost of carrying the error down."""
    for depth in (2, 5, 9, 14):
        net = ns.mlp([8] * depth + [4], seed=depth)
        seq = complexity.measure(net, ("seqil", {"T": 3}))
        il = complexity.measure(net, ("il", {"T": 3}))
        assert seq.all_layers_updated
        assert seq.critical_path == 2 * depth + 5
        assert il.all_layers_updated == (depth <= 4)


def test_uncounted_variants_are_refused():
    class Uncounted(type(ns.variant("bp"))):  # a variant whose arithmetic bypasses the counted ops
        counted = False

    with pytest.raises(ValueError, match="counters"):
        complexity.measure(ns.mlp([3, 4, 2]), Uncounted())


def test_report_table_and_timeline():
    import matplotlib.pyplot as plt

    report = complexity.measure(ns.mlp([5, 6, 7, 3]), ("il", {"T": 4}), batch_size=2)
    grid = report.activity()
    assert grid.shape == (3, 5)
    assert np.all(grid[:, 0] > 0)          # tick 0: feed-forward through every layer
    assert grid[0, 1] == 0                 # layer 1's prediction never changes (input clamped)
    assert "hebbian" in report.table()
    ax = report.plot_timeline()
    assert ax.get_xlabel().startswith("tick")
    plt.close("all")


def test_analytic_rejects_unknown_variant_clearly():
    with pytest.raises(ValueError, match="closed form"):
        complexity.analytic(ns.mlp([3, 4, 2]), "ipc")


def test_cli_complexity_writes_table_and_plots(tmp_path, capsys):
    code = main(["complexity", "--variants", "bp,il:T=3,zil", "--depths", "2:4", "--width", "8",
                 "--out", str(tmp_path), "--quiet"])
    assert code == 0
    out = capsys.readouterr().out
    assert "| 4 | zil |" in out and "| 3 | il, T=3 |" in out and "x BP" in out
    for name in ("complexity_vs_depth.png", "timelines.png", "complexity.json"):
        assert (tmp_path / name).stat().st_size > 0


@pytest.mark.parametrize("name", ["bp", "il", "zil", "fpa", "seqil", "ipc"])
def test_always_on_totals_equal_the_detailed_counter(name):
    """Counting is on by default: the process-wide totals grow by exactly what a count() block sees."""
    net = ns.mlp([5, 7, 6, 3], seed=1)
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((4, 5)), rng.standard_normal((4, 3))
    variant = ns.variant(name)
    with ns.counting.count() as detailed:
        variant.compute(net, x, y)
    ns.counting.reset_totals()
    variant.compute(net, x, y)
    variant.compute(net, x, y)
    totals = ns.counting.totals()
    assert (totals.macs, totals.ops, totals.messages) == (2 * detailed.macs, 2 * detailed.ops,
                                                          2 * detailed.messages)
    assert {k: v["macs"] for k, v in totals.by_kernel().items()} == {
        k: 2 * v["macs"] for k, v in detailed.by_kernel().items()}
    ns.counting.set_enabled(False)
    try:
        variant.compute(net, x, y)
    finally:
        ns.counting.set_enabled(True)
    assert ns.counting.totals().macs == 2 * detailed.macs


def test_repeated_tick_records_expand_in_execution_order():
    net = ns.mlp([4, 5, 5, 2], seed=0)
    x, y = np.ones((1, 4)), np.zeros((1, 2))
    # Z-IL's full circuit fused (IL's kernel under Z-IL's schedule: Hebbian terms spread over the
    # ticks) against the Simulator; zil.compute itself runs the wavefront, which counts less.
    zil = ns.variant("zil")
    with ns.counting.count() as fused:
        zil.compute_with(net, x, y, zil.schedule(net))
    with ns.counting.count() as stepped:
        ns.Simulator(net, ns.variant("zil")).run(x, y)
    assert fused.events == stepped.events
    with ns.counting.count() as wavefront:
        ns.variant("zil").compute(net, x, y)
    for counter in (fused, wavefront):
        ticks = [event.tick for event in counter.events]
        assert ticks == sorted(ticks)


def test_public_api_as_in_the_issue():
    net = ns.mlp([64, 128, 128, 10], seed=0)
    rep = ns.complexity.measure(net, ns.variant("il", T=20), batch_size=1)
    assert all(isinstance(v, int) for v in (rep.macs, rep.ops, rep.ticks, rep.critical_path, rep.messages))
    assert ns.complexity.analytic(net, "il", T=20) == {"macs": rep.macs, "ticks": 20,
                                                      "critical_path": rep.critical_path}


def test_closed_forms_belong_to_the_class_that_defines_them():
    """Each variant owns its closed form; a subclass (a changed algorithm) does not inherit it."""
    class EarlyIL(ns.variants.il.IL):
        name = "early_il"

    assert ns.variants.il.IL.has_closed_form() and not EarlyIL.has_closed_form()
    with pytest.raises(ValueError, match="no closed form for variant 'early_il'"):
        complexity.analytic(ns.mlp([3, 4, 2]), EarlyIL())
    assert set(complexity.ANALYTIC) == {"bp", "il", "zil", "fpa", "seqil"}
