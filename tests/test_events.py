"""Send-on-delta events (neurosim.events).

Oracles: the dense simulation (threshold 0 sends every change, so gradients, values and errors must
equal it, float64, 1e-12, for every variant with ticks on every layer type and both backends); the
NumPy reference of the event model against the compiled kernels (same messages op by op, same
gradients); Z-IL's wavefront (threshold 0 sends exactly its messages) and Lemma 1 (nothing below the
error front sends); hand counts of messages and synaptic events.
"""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import neurosim as ns
from neurosim.circuit.schedule import Run
from neurosim.events import SendOnDelta
from test_conformance import LAYER_TYPES, _batch, _network, _supported, _variant

TICKED = [name for name in ns.available() if ns.variant(name).has_ticks]
CASES = [(name, kind) for name in TICKED for kind in LAYER_TYPES]


def _flat(grads):
    if isinstance(grads, dict):
        return np.concatenate([np.ravel(grads[k]) for k in sorted(grads)])
    return np.concatenate([np.concatenate([w.ravel(), b.ravel()]) for w, b in grads])


def test_tick_based_variants_are_the_ones_users_expect():
    assert set(TICKED) >= {"il", "fpa", "zil", "seqil", "ipc", "ilprox"}
    assert not {"bp", "implicit_sgd", "copi"} & set(TICKED)


@pytest.mark.parametrize("backend", ["numba", "numpy"])
@pytest.mark.parametrize("name,kind", CASES)
def test_threshold_zero_equals_dense(name, kind, backend):
    if not _supported(name, kind):
        pytest.skip(f"{name} does not run on {kind} layers (checked in test_conformance)")
    x, y = _batch(kind)
    variant = _variant(name)
    record = ("errors", "values")
    with ns.backends.use(backend):
        dense = ns.Simulator(_network(kind), variant).run(x, y, record=record)
        events = ns.Simulator(_network(kind), variant, events=SendOnDelta(0.0)).run(x, y, record=record)
        dense_grads = variant.gradients(_network(kind), x, y)
        event_grads = variant.gradients(_network(kind), x, y, events=SendOnDelta(0.0))
    assert np.max(np.abs(_flat(event_grads) - _flat(dense_grads))) < 1e-12
    assert np.max(np.abs(_flat(events.grads) - _flat(dense.grads))) < 1e-12
    for quantity in record:
        for dense_layer, event_layer in zip(getattr(dense, quantity), getattr(events, quantity)):
            assert np.max(np.abs(event_layer - dense_layer), initial=0.0) < 1e-12
    assert np.allclose(events.energy, dense.energy, rtol=1e-12, atol=1e-14)
    assert dense.events is None and events.events.total() > 0


@pytest.mark.parametrize("name", TICKED)
def test_compiled_kernels_agree_with_the_reference(name):
    """Above threshold 0 the two backends must make the same sends op by op (random data, float64:
    no value sits within rounding of the threshold) and reach the same gradients."""
    net, (x, y) = _network("dense"), _batch("dense", batch=4, seed=3)
    for threshold, relative in ((0.003, False), (0.05, True)):
        events = SendOnDelta(threshold, relative=relative)
        with ns.backends.use("numba"):
            fast = _variant(name).compute(net, x, y, events=events)
        with ns.backends.use("numpy"):
            reference = _variant(name).compute(net, x, y, events=events)
        fast_run, reference_run = fast.state.extra["run"], reference.state.extra["run"]
        assert np.array_equal(fast_run._event_buffers[3], reference_run._event_buffers[3])
        assert np.max(np.abs(fast.grads - reference.grads)) < 1e-12
        assert fast.events.total() == reference.events.total()


def test_fused_training_step_equals_compute_and_sgd():
    """The one-call step (Hebbian terms straight into the weights) against the reference's
    gradients and an SGD update, with events."""
    x, y = _batch("dense", batch=4, seed=5)
    events = SendOnDelta(0.01)
    for name in ("il", "seqil", "ipc", "fpa"):
        fused, reference = _network("dense"), _network("dense")
        step = ns.Trainer(fused, _variant(name), ns.optim.SGD(lr=0.1), events=events).step(x, y)
        assert step.grads is None and step.events.total() > 0
        with ns.backends.use("numpy"):
            ns.Trainer(reference, _variant(name), ns.optim.SGD(lr=0.1), events=events).step(x, y)
        assert np.max(np.abs(fused.params - reference.params)) < 1e-12, name


circuits = st.tuples(st.lists(st.integers(1, 7), min_size=2, max_size=5), st.integers(1, 3),
                     st.sampled_from(["tanh", "relu", "sigmoid", "linear"]), st.integers(0, 10_000))


@settings(max_examples=25, deadline=None)
@given(circuit=circuits, name=st.sampled_from(TICKED), relative=st.booleans())
def test_messages_never_grow_with_the_threshold(circuit, name, relative):
    sizes, batch, activation, seed = circuit
    variant = _variant(name)
    if variant.hyper.get("output") == "ce":
        sizes = sizes[:-1] + [max(sizes[-1], 2)]  # a softmax cross-entropy target needs 2 outputs
    rng = np.random.default_rng(seed)
    net = ns.mlp(sizes, activation=activation, seed=seed)
    x, y = rng.normal(size=(batch, sizes[0])), rng.normal(size=(batch, sizes[-1]))
    counts = []
    for threshold in (0.0, 1e-4, 1e-3, 1e-2, 0.1, 1.0):
        try:
            step = variant.compute(net, x, y, events=SendOnDelta(threshold, relative=relative))
        except ns.DivergenceError:
            continue
        counts.append(step.events.total())
    assert all(later <= earlier for earlier, later in zip(counts, counts[1:])), counts


def _wavefront_messages(net, batch):
    """Messages of Z-IL's wavefront as its schedule counts them (feed-forward sweep included)."""
    variant = ns.variant("zil")
    with ns.counting.count() as counter:
        variant.compute(net, *_batch_for(net, batch))
    return counter.by_kernel()["feedforward"]["messages"] + counter.by_kernel()["feedback"]["messages"]


def _batch_for(net, batch, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(batch, int(net.sizes[0]))), rng.normal(size=(batch, int(net.sizes[-1])))


@pytest.mark.parametrize("sizes", [[5, 4, 3], [6, 7, 5, 3], [4, 6, 6, 5, 2]])
def test_zil_at_threshold_zero_sends_exactly_its_wavefront(sizes):
    net = ns.mlp(sizes, activation="tanh", seed=1)
    x, y = _batch_for(net, 3)
    step = ns.variant("zil").compute(net, x, y, events=SendOnDelta(0.0))
    assert step.events.total() == _wavefront_messages(net, 3)
    bp = ns.variant("bp").gradients(net, x, y)
    assert np.max(np.abs(step.grads - np.concatenate([np.concatenate([w.ravel(), b]) for w, b in bp]))) < 1e-12


def test_nothing_below_the_error_front_sends():
    """Lemma 1 as events: on Z-IL's full circuit at threshold 0, tick t has no message from any
    population below layer L - t."""
    net = ns.mlp([4, 6, 6, 5, 3], activation="tanh", seed=2)
    x, y = _batch_for(net, 2)
    trace = ns.Simulator(net, ns.variant("zil"), events=SendOnDelta(0.0)).run(x, y).events
    L = net.n_layers
    for tick in range(trace.ticks + 1):
        front = L - tick
        for p, name in enumerate(trace.populations):
            layer = int(name.split("[")[1].rstrip("]"))
            if (name.startswith("value") and layer < front - 1) or (name.startswith("error") and layer < front):
                assert trace.sent[tick, p] == 0, (tick, name)
    assert trace.sent[0, trace.populations.index(f"error[{L}]")] == 2 * 3  # the output error, tick 0


def test_counts_follow_the_messages():
    """A hand-checked 2-3-2 IL step: synaptic events are messages times fan-out, the counters agree
    with the trace, and the running totals with the detailed counter."""
    net = ns.mlp([2, 3, 2], activation="tanh", seed=0)
    x, y = np.array([[0.5, -0.3]]), np.array([[0.2, 0.9]])
    variant = ns.variant("il", T=4)
    with ns.counting.count() as counter:
        step = variant.compute(net, x, y, events=SendOnDelta(0.01))
    trace = step.events
    by_kernel = counter.by_kernel()
    sent = trace.sent
    value_1, error_2 = trace.populations.index("value[1]"), trace.populations.index("error[2]")
    assert by_kernel["prediction"]["messages"] == int(sent[:, value_1].sum())
    assert by_kernel["feedback"]["messages"] == int(sent[:, error_2].sum())
    # value[1] -> error[2]: 2 synapses per message; error[2] -> value[1]: 3 per message
    assert trace.per_connection()["W[2]"]["synaptic_events"] == 2 * int(sent[:, value_1].sum())
    assert trace.per_connection()["W[2]^T"]["synaptic_events"] == 3 * int(sent[:, error_2].sum())
    assert by_kernel["prediction"]["macs"] == 2 * int(sent[:, value_1].sum())
    assert by_kernel["feedback"]["macs"] == 3 * int(sent[:, error_2].sum())
    assert trace.total() == int(sent.sum()) + 2 + 3  # the feed-forward sweep: value[0], value[1]
    for event in counter.events:
        assert event.source and event.target
    ns.counting.reset_totals()
    variant.compute(net, x, y, events=SendOnDelta(0.01))
    totals = ns.counting.totals().by_kernel()
    for kernel in ("prediction", "feedback", "value_update", "hebbian"):
        assert totals[kernel] == by_kernel[kernel], kernel


def test_fewer_messages_less_work():
    net = ns.mlp([8, 16, 16, 4], seed=0)
    x, y = _batch_for(net, 2)
    variant = ns.variant("il")
    work = []
    for threshold in (0.0, 0.01, 0.1):
        with ns.counting.count() as counter:
            variant.compute(net, x, y, events=SendOnDelta(threshold))
        work.append(counter.macs)
    assert work[0] > work[1] > work[2]


def test_trace_tables_and_plot():
    import matplotlib
    matplotlib.use("Agg")
    net = ns.mlp([6, 7, 5, 3], seed=0)
    x, y = _batch("dense")
    trace = ns.Simulator(net, ns.variant("il", T=5), events=SendOnDelta(0.01)).run(x, y).events
    assert set(trace.per_population()) == {"value[0]", "value[1]", "value[2]", "error[2]", "error[3]"}
    assert sorted(trace.per_tick()) == list(range(6))
    assert sum(row["messages"] for row in trace.per_tick().values()) + int(trace.feedforward.sum()) == trace.total()
    assert 0.0 <= trace.active_fraction() <= 1.0
    for by in ("population", "tick", "connection"):
        assert "total" not in trace.table(by) and by in trace.table(by)
    with pytest.raises(ValueError, match="by"):
        trace.table("neuron")
    assert trace.plot().get_xlabel().startswith("tick")


def test_config_events_section(tmp_path):
    from neurosim import config
    base = config.load("models/mlp_digits.toml")
    base["events"] = {"kind": "send_on_delta", "threshold": 0.02, "relative": True}
    net, variant, optimizer, data, train_kwargs = config.build(base)
    assert train_kwargs["events"] == SendOnDelta(0.02, relative=True)
    base["events"] = {"kind": "send_on_delta", "threshold": -1.0}
    with pytest.raises(ValueError, match=r"\[events\].*threshold"):
        config.build(base)
    base["events"] = {"kind": "spikes"}
    with pytest.raises(ValueError, match="events.kind"):
        config.build(base)
    base["events"] = {"kind": "send_on_delta", "threshold": 0.1}
    base["variant"] = {"name": "bp"}
    with pytest.raises(ValueError, match=r"\[events\].*'bp'.*no ticks"):
        config.build(base)


@pytest.mark.parametrize("threshold", [-0.1, float("nan"), float("inf")])
def test_bad_threshold(threshold):
    with pytest.raises(ValueError, match="threshold"):
        SendOnDelta(threshold)


def test_bad_events_refused_before_any_kernel(monkeypatch):
    def trap(*args, **kwargs):
        raise AssertionError("a kernel ran before the events were checked")

    monkeypatch.setattr(Run, "ticks", trap)
    monkeypatch.setattr(Run, "step", trap)
    net = ns.mlp([6, 7, 5, 3], seed=0)
    x, y = _batch("dense")
    before = net.params.copy()
    with pytest.raises(TypeError, match="threshold"):
        SendOnDelta("0.1")
    with pytest.raises(TypeError, match="events"):
        ns.variant("il").gradients(net, x, y, events="send_on_delta")
    for name in ("bp", "implicit_sgd", "copi"):
        with pytest.raises(ValueError, match=f"'{name}' has no ticks"):
            ns.variant(name).gradients(net, x, y, events=SendOnDelta(0.1))
        with pytest.raises(ValueError, match=f"'{name}' has no ticks"):
            ns.Simulator(net, ns.variant(name), events=SendOnDelta(0.1))
        with pytest.raises(ValueError, match=f"'{name}' has no ticks"):
            ns.Trainer(net, ns.variant(name), events=SendOnDelta(0.1))
    assert np.array_equal(net.params, before)


def test_train_with_events_learns_digits():
    data = ns.datasets.load("digits")
    accuracy = {}
    for events in (None, SendOnDelta(0.01)):
        net = ns.mlp([64, 32, 10], seed=0)
        history = ns.train(net, ns.variant("il"), data, ns.optim.SGD(lr=0.1), epochs=2, progress=False,
                           events=events)
        accuracy[events] = history.test_accuracy[-1]
    assert accuracy[SendOnDelta(0.01)] > 0.8
    assert accuracy[SendOnDelta(0.01)] > accuracy[None] - 0.05, accuracy
    with pytest.raises(ValueError, match="'bp' has no ticks"):
        ns.train(net, ns.variant("bp"), data, epochs=1, progress=False, events=SendOnDelta(0.01))


def _il_with_events_by_hand(net, x, y, T, gamma, threshold):
    """IL under send-on-delta written from the model alone (tanh, dense): every neuron keeps what
    it last sent; receivers sum deltas; the Hebbian term reads what the synapses received."""
    W = [w.copy() for w in net.weights]
    b = [v.copy() for v in net.biases]
    L = len(W)
    f, df = np.tanh, lambda v: 1.0 - np.tanh(v) ** 2
    values = [x]
    for l in range(L):
        pre = values[-1] if l == 0 else f(values[-1])
        values.append(pre @ W[l].T + b[l])
    mu = [None] + [v.copy() for v in values[1:]]
    sent_act = [x.copy()] + [f(v) for v in values[1:L]]  # the feed-forward sweep sent every value
    values[L] = y.copy()
    errors = [None] + [np.zeros_like(v) for v in values[1:]]
    sent_err = [None] + [np.zeros_like(v) for v in values[1:]]
    fb = [np.zeros_like(v) for v in values]

    def send(now, sent):
        delta = now - sent
        delta[np.abs(delta) <= threshold] = 0.0
        sent += delta
        return delta

    def send_errors(l):  # error[l] -> value[l-1]
        fb[l - 1] += send(errors[l], sent_err[l]) @ W[l - 1]

    errors[L] = values[L] - mu[L]
    if L >= 2:
        send_errors(L)
    for _ in range(T):
        for l in range(1, L):
            values[l] = values[l] + gamma * (-errors[l] + df(values[l]) * fb[l])
        errors[1] = values[1] - mu[1]
        for l in range(2, L + 1):
            mu[l] = mu[l] + send(f(values[l - 1]), sent_act[l - 1]) @ W[l - 1].T
            errors[l] = values[l] - mu[l]
            if l >= 2 and l <= L:
                send_errors(l)
    grads = []
    for l in range(1, L + 1):
        grads.append((-(errors[l].T @ sent_act[l - 1]) / len(x), -errors[l].sum(axis=0) / len(x)))
    return grads


@pytest.mark.parametrize("backend", ["numba", "numpy"])
def test_il_with_events_matches_the_model_written_by_hand(backend):
    net = ns.mlp([5, 8, 6, 3], activation="tanh", seed=4)
    x, y = _batch_for(net, 3, seed=7)
    for threshold in (0.0, 0.002, 0.02):
        with ns.backends.use(backend):
            grads = ns.variant("il", T=7, gamma=0.2).gradients(net, x, y, events=SendOnDelta(threshold))
        expected = _il_with_events_by_hand(net, x, y, 7, 0.2, threshold)
        assert np.max(np.abs(_flat(grads) - _flat(expected))) < 1e-12, threshold


@pytest.mark.parametrize("name", ["il", "seqil", "fpa", "ipc", "ilprox", "zil"])
@pytest.mark.parametrize("backend", ["numba", "numpy"])
def test_running_totals_sum_the_messages_as_the_detailed_counter_does(name, backend):
    """The running totals add a step's messages in one summary (recomputations after iPC's weight
    moves included); the detailed counter forms every event. They agree kernel by kernel, for a
    training step (the fused path) as for compute."""
    net = ns.mlp([5, 7, 6, 3], activation="tanh", seed=1)
    x, y = _batch_for(net, 2)
    variant = ns.variant(name)
    events = SendOnDelta(0.01)
    with ns.backends.use(backend):
        for run in (lambda n: variant.compute(n, x, y, events=events),
                    lambda n: ns.Trainer(n, variant, ns.optim.SGD(lr=1e-3), events=events).step(x, y)):
            with ns.counting.count() as counter:
                run(net.copy())
            ns.counting.reset_totals()
            run(net.copy())
            totals = ns.counting.totals().by_kernel()
            detailed = counter.by_kernel()
            assert sum(row["messages"] for row in detailed.values()) > 0
            for kernel in detailed:
                assert totals[kernel] == detailed[kernel], kernel
