"""Bad input gets a clear error naming the argument before any kernel runs; divergence is reported.

Each check raises ``ValueError``/``TypeError`` whose message names the offending argument, while
every numba kernel is replaced by a trap (so a kernel running first would fail the test), and no
message shows numba internals. Divergent runs raise ``DivergenceError`` naming tick and layer, and
training keeps the last good parameters.
"""
from __future__ import annotations

import numpy as np
import pytest

import neurosim as ns
from neurosim.kernels import dense
from neurosim.kernels import schedule as schedule_kernels

KERNELS = {dense: ("feedforward", "backprop_layer"),
           schedule_kernels: ("run_schedule", "run_step", "run_schedule_events", "run_step_events")}


@pytest.fixture
def no_kernels(monkeypatch):
    """Any numba kernel call fails the test: validation must come first."""
    calls = []

    def trap(name):
        def kernel(*args, **kwargs):
            calls.append(name)
            raise AssertionError(f"kernel {name} ran before the input was validated")
        return kernel

    for module, names in KERNELS.items():
        for name in names:
            monkeypatch.setattr(module, name, trap(name))
    yield calls
    assert calls == []


def assert_clear(info):
    message = str(info.value)
    assert "numba" not in message.lower()
    assert "typing" not in message.lower()
    cause = info.value.__cause__
    assert cause is None or "numba" not in type(cause).__module__


@pytest.fixture
def net():
    return ns.mlp([5, 4, 3], activation="tanh", seed=0)


X = np.ones((2, 5))
Y = np.zeros((2, 3))


def _entry_points(net, variant):
    return {
        "gradients": lambda x, y: variant.gradients(net, x, y),
        "compute": lambda x, y: variant.compute(net, x, y),
        "simulator": lambda x, y: ns.Simulator(net, variant).run(x, y),
    }


def _with_nan(a, value):
    a = a.copy()
    a[-1, -1] = value
    return a


BAD_DATA = [
    ("x wrong feature count", np.ones((2, 4)), Y, ValueError, r"^x\b"),
    ("x 1-D", np.ones(5), Y, ValueError, r"^x\b"),
    ("x 3-D", np.ones((2, 5, 1)), Y, ValueError, r"^x\b"),
    ("y wrong rows", X, np.zeros((3, 3)), ValueError, r"^y\b"),
    ("y wrong columns", X, np.zeros((2, 2)), ValueError, r"^y\b"),
    ("x NaN", _with_nan(X, np.nan), Y, ValueError, r"^x\b.*NaN"),
    ("x Inf", _with_nan(X, np.inf), Y, ValueError, r"^x\b.*Inf"),
    ("y NaN", X, _with_nan(Y, np.nan), ValueError, r"^y\b.*NaN"),
    ("y -Inf", X, _with_nan(Y, -np.inf), ValueError, r"^y\b.*Inf"),
    ("empty batch", np.ones((0, 5)), np.zeros((0, 3)), ValueError, r"^x\b.*empty"),
    ("x complex", X + 1j, Y, TypeError, r"^x\b"),
    ("x strings", np.full((2, 5), "a"), Y, TypeError, r"^x\b"),
    ("x objects", np.full((2, 5), object()), Y, TypeError, r"^x\b"),
    ("y complex", X, Y + 0j, TypeError, r"^y\b"),
    ("y strings", X, np.full((2, 3), "b"), TypeError, r"^y\b"),
    ("x ragged list", [[1.0] * 5, [1.0] * 4], Y, TypeError, r"^x\b"),
]


@pytest.mark.parametrize("entry", ["gradients", "compute", "simulator"])
@pytest.mark.parametrize("name,x,y,exc,match", BAD_DATA, ids=[case[0] for case in BAD_DATA])
@pytest.mark.parametrize("variant_name", ["bp", "il", "zil"])
def test_bad_data_is_rejected_before_any_kernel(no_kernels, net, entry, name, x, y, exc, match,
                                                variant_name):
    run = _entry_points(net, ns.variant(variant_name))[entry]
    before = net.params.copy()
    with ns.counting.count() as counter:
        with pytest.raises(exc, match=match) as info:
            run(x, y)
    assert_clear(info)
    assert counter.events == []
    np.testing.assert_array_equal(net.params, before)


def test_good_data_passes_the_same_checks(net):
    """The inputs above differ from valid ones only in the defect: valid ones (also int and list
    inputs, converted) go through."""
    for variant_name in ("bp", "il", "zil"):
        ns.variant(variant_name).gradients(net, X, Y)
        ns.variant(variant_name).gradients(net, X.astype(np.int64), Y.astype(np.int32))
        ns.variant(variant_name).gradients(net, X.tolist(), Y.tolist())
        ns.variant(variant_name).gradients(net, X.astype(np.float32), Y)


def test_forward_and_loss_validate(no_kernels, net):
    for call, match in ((lambda: net.forward(np.ones((2, 6))), r"^x\b"),
                        (lambda: net.forward(_with_nan(X, np.nan)), r"^x\b"),
                        (lambda: net.loss(X, np.zeros((2, 4))), r"^y\b"),
                        (lambda: net.loss(X, np.zeros((1, 3))), r"^y\b")):
        with pytest.raises(ValueError, match=match) as info:
            call()
        assert_clear(info)


BAD_CONSTRUCTION = [
    ("unknown variant", lambda: ns.variant("backprop"), ValueError, "variant"),
    ("variant not a string", lambda: ns.variant(3), TypeError, "variant"),
    ("unknown activation", lambda: ns.mlp([3, 2], activation="swish"), ValueError, "activation"),
    ("activation not a string", lambda: ns.mlp([3, 2], activation=None), TypeError, "activation"),
    ("unknown hyper-parameter", lambda: ns.variant("il", beta=0.1), TypeError, "beta"),
    ("hyper-parameter of zil", lambda: ns.variant("zil", gamma=0.5), TypeError, "gamma"),
    ("hyper-parameter of bp", lambda: ns.variant("bp", T=3), TypeError, "'T'"),
    ("T = 0", lambda: ns.variant("il", T=0), ValueError, r"^T\b"),
    ("T < 0", lambda: ns.variant("il", T=-4), ValueError, r"^T\b"),
    ("T float", lambda: ns.variant("il", T=2.5), TypeError, r"^T\b"),
    ("T integral float", lambda: ns.variant("il", T=3.0), TypeError, r"^T\b"),
    ("T string", lambda: ns.variant("il", T="10"), TypeError, r"^T\b"),
    ("T bool", lambda: ns.variant("il", T=True), TypeError, r"^T\b"),
    ("gamma = 0", lambda: ns.variant("il", gamma=0.0), ValueError, r"^gamma\b"),
    ("gamma < 0", lambda: ns.variant("il", gamma=-0.1), ValueError, r"^gamma\b"),
    ("gamma NaN", lambda: ns.variant("il", gamma=float("nan")), ValueError, r"^gamma\b"),
    ("gamma string", lambda: ns.variant("il", gamma="0.1"), TypeError, r"^gamma\b"),
    ("lr = 0", lambda: ns.optim.SGD(lr=0), ValueError, r"^lr\b"),
    ("lr < 0", lambda: ns.optim.SGD(lr=-0.1), ValueError, r"^lr\b"),
    ("lr inf", lambda: ns.optim.SGD(lr=float("inf")), ValueError, r"^lr\b"),
    ("Adam lr = 0", lambda: ns.optim.Adam(lr=0), ValueError, r"^lr\b"),
    ("dtype int32", lambda: ns.mlp([3, 2], dtype="int32"), ValueError, "dtype"),
    ("dtype complex", lambda: ns.mlp([3, 2], dtype=np.complex128), ValueError, "dtype"),
    ("dtype unknown", lambda: ns.mlp([3, 2], dtype="float3"), TypeError, "dtype"),
    ("layer size 0", lambda: ns.mlp([3, 0]), ValueError, r"sizes\[1\]"),
    ("layer size float", lambda: ns.mlp([3, 2.5]), TypeError, r"sizes\[1\]"),
    ("one size only", lambda: ns.mlp([3]), ValueError, "sizes"),
    ("seed < 0", lambda: ns.mlp([3, 2], seed=-1), ValueError, "seed"),
]


@pytest.mark.parametrize("name,call,exc,match", BAD_CONSTRUCTION, ids=[c[0] for c in BAD_CONSTRUCTION])
def test_bad_arguments_name_the_argument(no_kernels, name, call, exc, match):
    with pytest.raises(exc, match=match) as info:
        call()
    assert_clear(info)


@pytest.fixture(scope="module")
def digits():
    return ns.datasets.digits()


def test_train_rejects_mismatched_dataset(no_kernels, digits):
    for sizes, match in (([60, 8, 10], "dataset.*64 inputs"), ([64, 8, 7], "dataset.*10 outputs")):
        net = ns.mlp(sizes)
        with pytest.raises(ValueError, match=match) as info:
            ns.train(net, ns.variant("bp"), digits, ns.optim.SGD(lr=0.1), epochs=1, progress=False)
        assert_clear(info)


@pytest.mark.parametrize("kwargs,exc,match", [({"epochs": 0}, ValueError, "epochs"),
                                              ({"batch_size": 0}, ValueError, "batch_size"),
                                              ({"batch_size": 2.0}, TypeError, "batch_size"),
                                              ({"optimizer": "sgd"}, TypeError, "optimizer"),
                                              ({"variant": "bp"}, TypeError, "variant")])
def test_train_rejects_bad_arguments(no_kernels, digits, kwargs, exc, match):
    args = {"net": ns.mlp([64, 8, 10]), "variant": ns.variant("bp"), "dataset": digits,
            "optimizer": ns.optim.SGD(lr=0.1), "epochs": 1, "batch_size": 32, "progress": False}
    args.update(kwargs)
    with pytest.raises(exc, match=match) as info:
        ns.train(**args)
    assert_clear(info)


# --------------------------------------------------------------------------- divergence
@pytest.mark.parametrize("act", ["linear", "relu"])
@pytest.mark.parametrize("entry", ["gradients", "simulator"])
def test_divergence_names_tick_and_layer(act, entry):
    net = ns.mlp([4, 6, 6, 3], activation=act, seed=0)
    net.params *= 1e3
    before = net.params.copy()
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(5, 4)), rng.normal(size=(5, 3))
    variant = ns.variant("il", T=100, gamma=50.0)
    with pytest.raises(ns.DivergenceError) as info:
        _entry_points(net, variant)[entry](x, y)
    exc, message = info.value, str(info.value)
    assert_clear(info)
    assert isinstance(exc.tick, int) and 1 <= exc.tick <= 100
    assert f"tick {exc.tick}" in message
    assert "layer" in message and "gamma" in message
    np.testing.assert_array_equal(net.params, before)
    assert isinstance(exc.layer, int) and 1 <= exc.layer <= net.n_layers
    assert f"layer {exc.layer}" in message


@pytest.mark.parametrize("name", ["il", "zil"])
def test_divergence_in_the_forward_pass_names_the_layer(name):
    """Weights so large that the feed-forward pass overflows: tick 0, the first infinite layer."""
    net = ns.mlp([3, 4, 4, 2], activation="linear", seed=1)
    net.params *= 1e160  # x_1 ~ 1e160 is finite, x_2 ~ 1e320 is not
    with pytest.raises(ns.DivergenceError) as info:
        ns.variant(name).gradients(net, np.ones((2, 3)), np.zeros((2, 2)))
    assert_clear(info)
    exc = info.value
    assert (exc.tick, exc.layer) == (0, 2)
    assert "tick 0" in str(exc) and "layer 2" in str(exc)


def test_bp_divergence_names_a_layer():
    """BP has no ticks; its overflow surfaces as a non-finite gradient, named by layer."""
    net = ns.mlp([3, 4, 4, 2], activation="linear", seed=1)
    net.params *= 1e160
    with pytest.raises(ns.DivergenceError) as info:
        ns.variant("bp").gradients(net, np.ones((2, 3)), np.zeros((2, 2)))
    assert_clear(info)
    exc = info.value
    assert isinstance(exc.layer, int) and 1 <= exc.layer <= net.n_layers
    assert f"layer {exc.layer}" in str(exc)


def _recording(variant):
    """Wrap variant.compute to keep a copy of the parameters at the start of every step."""
    starts = []
    original_compute, original_fused = variant.compute, variant.sgd_step

    def compute(net, x, y):
        starts.append(net.params.copy())
        return original_compute(net, x, y)

    def sgd_step(net, x, y, lr, scratch):  # a fused step, or None and then compute
        starts.append(net.params.copy())
        step = original_fused(net, x, y, lr, scratch)
        if step is None:
            starts.pop()
        return step

    variant.compute, variant.sgd_step = compute, sgd_step
    return starts


@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning")
@pytest.mark.parametrize("name", ["bp", "zil"])
def test_train_divergence_keeps_last_good_state(digits, name):
    net = ns.mlp([64, 32, 10], activation="tanh", seed=0)
    variant = ns.variant(name)
    starts = _recording(variant)
    with pytest.raises(ns.DivergenceError) as info:
        ns.train(net, variant, digits, ns.optim.SGD(lr=1e6), epochs=3, batch_size=32, progress=False)
    exc, message = info.value, str(info.value)
    assert_clear(info)
    assert len(starts) >= 2  # some steps succeeded before the failure
    assert np.all(np.isfinite(net.params))
    # back at the state before the last batch whose loss was sound: here the one before the first
    # update, which lr = 1e6 ruined; never the exploded weights the failing batch was given
    np.testing.assert_array_equal(net.params, starts[0])
    assert "restored" in message
    assert exc.epoch == 1 and exc.step == len(starts)  # both counted from 1
    assert f"epoch 1, batch {exc.step}" in message
    assert isinstance(exc.history, ns.History)


class PoisonAt(ns.optim.SGD):
    """SGD whose n-th update writes an infinity into the parameters."""

    def __init__(self, at):
        super().__init__(lr=0.05)
        self.at, self.calls = at, 0

    def _propose(self, net, params, grads):
        params, state = super()._propose(net, params, grads)
        self.calls += 1
        if self.calls == self.at:
            params[7] = np.inf
        return params, state


def test_train_restores_parameters_after_a_non_finite_update(digits):
    net = ns.mlp([64, 16, 10], activation="tanh", seed=0)
    variant = ns.variant("il", T=5, gamma=0.1)
    starts = _recording(variant)
    n_batches = -(-digits.n_train // 32)
    at = n_batches + 4  # in the second epoch
    with pytest.raises(ns.DivergenceError) as info:
        ns.train(net, variant, digits, PoisonAt(at), epochs=3, batch_size=32, progress=False)
    exc = info.value
    assert_clear(info)
    assert "restored" in str(exc)
    assert (exc.epoch, exc.step) == (2, 4)  # counted from 1
    assert len(starts) == at
    # the optimiser applied nothing, and training went back to the last state known sound: the
    # one before the previous batch (the failing batch's own loss was never confirmed)
    np.testing.assert_array_equal(net.params, starts[-2])
    assert len(exc.history.epoch) == 1  # the first epoch's metrics survive


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_all_finite_agrees_with_isfinite_on_every_kind_of_array(dtype):
    from neurosim.validation import all_finite

    big = np.finfo(dtype).max
    cases = [np.zeros(5), np.arange(7.0), np.array([1.0, np.nan]), np.array([np.inf, -np.inf]),
             np.array([big, big, -big]), np.array([big, big, np.nan]), np.array([-np.inf, 1.0]),
             np.zeros((3, 4)), np.full((2, 2), big)]
    for case in cases:
        case = case.astype(dtype)
        assert all_finite(case) == bool(np.isfinite(case).all()), case


def test_all_finite_raises_no_floating_point_error_where_numpy_would():
    from neurosim.validation import all_finite

    with np.errstate(all="raise"):
        assert not all_finite(np.array([np.nan, 1.0], dtype="float32"))
        assert all_finite(np.full(4, np.finfo("float32").max, dtype="float32"))


def test_check_array_takes_a_ready_batch_as_it_is_and_still_checks_its_values():
    """A batch already of the right dtype, shape and layout is returned itself (no copy); its shape
    and values are checked all the same, with the messages of the full checks."""
    from neurosim.validation import check_array

    x = np.ones((3, 4), dtype="float32")
    assert check_array(x, "x", (None, 4), "float32") is x
    assert check_array(x.astype(int), "x", (None, 4), "float32").dtype == np.float32
    assert check_array(x.T, "x", (None, 3), "float32").flags.c_contiguous
    with pytest.raises(ValueError, match=r"x must have shape \(B, 5\), got \(3, 4\) \(axis 1 is 4"):
        check_array(x, "x", (None, 5), "float32")
    with pytest.raises(ValueError, match="x must have 3 dimensions"):
        check_array(x, "x", (None, 4, 1), "float32")
    with pytest.raises(ValueError, match="empty batch"):
        check_array(x[:0], "x", (None, 4), "float32")
    for bad in (np.nan, np.inf):
        poisoned = x.copy()
        poisoned[2, 3] = bad
        with pytest.raises(ValueError, match="y contains NaN or Inf"):
            check_array(poisoned, "y", (None, 4), "float32")


def test_a_variant_checks_each_network_it_meets(no_kernels):
    """A network that passed a variant's checks is not checked again on every step, but every new
    network is: copi refuses a convolutional network after training a dense one."""
    from neurosim.layers import Conv2d, Dense, Flatten

    variant = ns.variant("copi")
    dense_net = ns.mlp([4, 3, 2], seed=0)
    for _ in range(2):
        variant.check_network_once(dense_net)
    conv = ns.Network([Conv2d(1, 2, 3), Flatten(), Dense(2 * 3 * 3, 2)], input_shape=(1, 5, 5), seed=0)
    with pytest.raises(ValueError, match="copi"):
        variant.prepare(conv, np.zeros((1, 1, 5, 5)), np.zeros((1, 2)))
    with pytest.raises(TypeError, match="net must be a neurosim Network"):
        variant.prepare([4, 3, 2], np.zeros((1, 4)), np.zeros((1, 2)))
