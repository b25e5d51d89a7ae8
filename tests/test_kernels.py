"""numba kernels against their NumPy references (oracle: a second implementation).

Every kernel of :mod:`neurosim.kernels.dense` is run on random circuits (depth 1-5, widths 1-20) in
both of its code paths -- hand-written loops (batch < ``BLAS_MIN_BATCH``) and BLAS GEMMs (batch >=
``BLAS_MIN_BATCH``) -- for every activation, and compared with :mod:`neurosim.kernels.reference`:
to 1e-12 in float64, and to ~1e-4 (relative) in float32 against the float64 reference evaluated on
the same float32-rounded inputs. The activation functions are checked against central finite
differences, and the numba scalar versions against the NumPy ones.
"""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import neurosim as ns
from neurosim import activations
from neurosim.circuit.schedule import Schedule, dense_events
from neurosim.kernels import dense
from neurosim.kernels import schedule as schedule_kernels
from neurosim.kernels import reference as ref
from neurosim.kernels.layout import DenseWorkspace, param_offsets

ACTS = activations.names()
TOL = {"float64": 1e-12, "float32": 1e-4}
EXAMPLES = 20


# --------------------------------------------------------------------------- helpers
@st.composite
def circuits(draw, path, min_depth=1):
    depth = draw(st.integers(min_depth, 5))
    sizes = draw(st.lists(st.integers(1, 20), min_size=depth + 1, max_size=depth + 1))
    if path == "loops":
        batch = draw(st.integers(1, dense.BLAS_MIN_BATCH - 1))
    else:
        batch = draw(st.integers(dense.BLAS_MIN_BATCH, 40))
    act = draw(st.sampled_from(ACTS))
    seed = draw(st.integers(0, 2**32 - 1))
    return sizes, batch, act, seed


class Case:
    """Random parameters, a workspace full of NaN (so unwritten entries show), and per-layer views."""

    def __init__(self, sizes, batch, act, seed, dtype):
        rng = self.rng = np.random.default_rng(seed)
        self.sizes = np.asarray(sizes, dtype=np.int64)
        self.L = len(sizes) - 1
        self.batch = batch
        self.act = act
        self.code = activations.code(act)
        self.dtype = np.dtype(dtype)
        self.w_off, self.b_off, n_params = param_offsets(self.sizes)
        params = np.empty(n_params)
        for l in range(1, self.L + 1):
            n_out, n_in = self.sizes[l], self.sizes[l - 1]
            params[self.w_off[l]:self.b_off[l]] = rng.uniform(-1, 1, n_out * n_in) * 1.5 / np.sqrt(n_in)
            params[self.b_off[l]:self.b_off[l] + n_out] = rng.uniform(-0.5, 0.5, n_out)
        self.params = params.astype(self.dtype)
        p64 = self.params.astype(np.float64)
        self.weights = [p64[self.w_off[l]:self.b_off[l]].reshape(self.sizes[l], self.sizes[l - 1])
                        for l in range(1, self.L + 1)]
        self.biases = [p64[self.b_off[l]:self.b_off[l] + self.sizes[l]] for l in range(1, self.L + 1)]
        self.ws = DenseWorkspace(self.sizes, batch, self.dtype)
        for name in DenseWorkspace.BUFFERS:
            getattr(self.ws, name)[:] = np.nan
        self.x = rng.normal(size=(batch, self.sizes[0])).astype(self.dtype)
        self.y = rng.normal(size=(batch, self.sizes[-1])).astype(self.dtype)
        self.tol = TOL[self.dtype.name]

    def cast(self, value):
        return self.dtype.type(value)

    def feedforward(self):
        ws = self.ws
        ws.layer("values", 0)[...] = self.x
        ws.layer("acts", 0)[...] = self.x
        dense.feedforward(self.params, self.w_off, self.b_off, ws.s_off, ws.sizes, ws.batch, self.code,
                          ws.values, ws.acts, ws.preds, ws.errors, ws.feedback)

    def run(self, schedule, grads=None):
        """Run every tick of ``schedule`` through the compiled loop; ``(energies, grads, (tick, layer))``."""
        ws = self.ws
        code, args, tick_start = schedule.encoded()
        energies = np.full(schedule.n_ticks + 1, np.nan)
        grads = np.zeros(self.params.shape, dtype=self.dtype) if grads is None else grads
        scratch = np.empty(int(max(self.sizes[l] * self.sizes[l - 1] for l in range(1, self.L + 1))),
                           dtype=self.dtype)
        predicted = np.empty((ws.batch, self.sizes[-1]), dtype=self.dtype)
        where = schedule_kernels.run_schedule(
            code, args, tick_start, 0, schedule.n_ticks, self.params, self.params, self.w_off, self.b_off,
            ws.s_off, ws.sizes, ws.batch, self.code, self.y, ws.values, ws.acts, ws.preds, ws.errors,
            ws.feedback, grads, scratch, predicted, energies, dense_events(self.dtype))
        return energies, grads, tuple(int(v) for v in where)

    def predict_errors(self, first_layer=1):
        """mu_l, e_l for l >= first_layer with the feedback e_l W_l formed in the same pass, e_l
        refreshed below; returns the energy (the ops IL's ticks end with)."""
        schedule = Schedule(output="mse").new_tick()
        for layer in range(1, first_layer):
            schedule.error(layer)
        for layer in range(first_layer, self.L + 1):
            schedule.predict(layer, with_feedback=True)
        return self.run(schedule.energy())[0][0]

    def il_schedule(self, gamma, n_ticks, update_tick, scale_b=-1.0, check_tick_0=True):
        """IL's ticks as schedule ops (tick 0: the energy, unless ``check_tick_0`` is False, and the
        Hebbian terms due then)."""
        schedule = Schedule(output="mse").new_tick()
        for tick in range(n_ticks + 1):
            if tick > 0:
                schedule.new_tick()
                for layer in range(1, self.L):
                    schedule.relax(layer, gamma)
                if self.L >= 2:
                    schedule.error(1)
                for layer in range(2, self.L + 1):
                    schedule.predict(layer, with_feedback=True)
            if tick > 0 or check_tick_0:
                schedule.energy()
            for layer in range(1, self.L + 1):
                if update_tick[layer] == tick:
                    schedule.hebbian(layer, scale_b)
        return schedule

    def perturbed_state(self, noise=0.3):
        """Feed-forward, clamp x_L = y, move hidden values off their predictions, keep acts = phi(x)."""
        self.feedforward()
        ws = self.ws
        ws.layer("values", self.L)[...] = self.y
        ws.layer("acts", self.L)[...] = self.y
        for l in range(1, self.L):
            v = ws.layer("values", l)
            v[...] = v + noise * self.rng.normal(size=v.shape)
            ws.layer("acts", l)[...] = activations.apply(self.act, v.astype(np.float64))

    def snapshot(self) -> ref.ReferenceState:
        """A float64 reference state holding a copy of the workspace (errors[0] = 0)."""
        ws = self.ws
        take = lambda name: [ws.layer(name, l).astype(np.float64) for l in range(self.L + 1)]
        state = ref.ReferenceState(take("values"), take("acts"), take("preds"), take("errors"))
        state.preds[0] = np.zeros_like(state.values[0])
        state.errors[0] = np.zeros_like(state.values[0])
        return state

    def close(self, actual, expected, tol=None, what="", magnitude=0.0):
        """Equal to ``tol`` relative to the larger of the expected values and ``magnitude`` (the size
        of the operands a difference was formed from: an error x - mu carries the rounding of x)."""
        tol = self.tol if tol is None else tol
        expected = np.asarray(expected, dtype=np.float64)
        actual = np.asarray(actual, dtype=np.float64)
        assert actual.shape == expected.shape, what
        finite = expected[np.isfinite(expected)]
        scale = max(1.0, magnitude, float(np.max(np.abs(finite))) if finite.size else 1.0)
        np.testing.assert_allclose(actual, expected, rtol=tol, atol=tol * scale, err_msg=what)

    def close_layers(self, buffer, expected, layers, what="", tol=None):
        for l in layers:
            magnitude = float(np.max(np.abs(self.ws.layer("values", l)))) if buffer == "errors" else 0.0
            self.close(self.ws.layer(buffer, l), expected[l], tol=tol, what=f"{what} {buffer}[{l}]",
                       magnitude=magnitude if np.isfinite(magnitude) else 0.0)


LOOPS_EXIST = dense.BLAS_MIN_BATCH > 1
PATH_PARAMS = [pytest.param("loops", marks=pytest.mark.skipif(
    not LOOPS_EXIST, reason="BLAS_MIN_BATCH <= 1: no hand-written-loop path")), "blas"]


def params_and_dtypes(fn):
    fn = pytest.mark.parametrize("path", PATH_PARAMS)(fn)
    return pytest.mark.parametrize("dtype", ["float64", "float32"])(fn)


# --------------------------------------------------------------------------- kernels
@params_and_dtypes
def test_feedforward(path, dtype):
    @settings(max_examples=EXAMPLES, deadline=None)
    @given(circuits(path))
    def check(shape):
        c = Case(*shape, dtype)
        c.feedforward()
        expect = ref.feedforward(c.weights, c.biases, c.act, c.x.astype(np.float64))
        layers = range(1, c.L + 1)
        c.close_layers("values", expect.values, layers)
        c.close_layers("acts", expect.acts, layers)
        c.close_layers("preds", expect.preds, layers)
        for l in layers:
            assert np.all(c.ws.layer("errors", l) == 0.0)
        assert np.all(c.ws.feedback == 0.0)
        # the output is a linear readout: acts[L] is x_L itself
        np.testing.assert_array_equal(c.ws.layer("acts", c.L), c.ws.layer("values", c.L))

    check()


@params_and_dtypes
@pytest.mark.parametrize("first_layer", [1, 2])
def test_predict_errors(path, dtype, first_layer):
    @settings(max_examples=EXAMPLES, deadline=None)
    @given(circuits(path))
    def check(shape):
        c = Case(*shape, dtype)
        c.perturbed_state()
        ws = c.ws
        # mu_1 of a stale tick: first_layer = 2 must keep it and only refresh e_1 = x_1 - mu_1
        mu1 = ws.layer("preds", 1)
        mu1[...] = mu1 + c.rng.normal(size=mu1.shape)
        ws.errors[:] = np.nan
        ws.feedback[:] = np.nan
        state = c.snapshot()
        energy = c.predict_errors(first_layer)
        expect_energy = ref.predict_errors(c.weights, c.biases, state, first_layer)
        expect_fb = ref.feedback(c.weights, state)
        layers = range(1, c.L + 1)
        c.close_layers("preds", state.preds, layers)
        c.close_layers("errors", state.errors, layers)
        c.close_layers("feedback", expect_fb, range(1, c.L))
        c.close(energy, expect_energy, what="energy")
        assert np.isfinite(energy) and energy > 0

    check()


@params_and_dtypes
def test_compute_feedback(path, dtype):
    @settings(max_examples=EXAMPLES, deadline=None)
    @given(circuits(path))
    def check(shape):
        c = Case(*shape, dtype)
        ws = c.ws
        ws.errors[:] = c.rng.normal(size=ws.errors.shape)
        ws.feedback[:] = np.nan
        state = c.snapshot()
        schedule = Schedule().new_tick()
        for layer in range(2, c.L + 1):
            schedule.feedback(layer)
        c.run(schedule)
        c.close_layers("feedback", ref.feedback(c.weights, state), range(1, c.L))

    check()


@params_and_dtypes
def test_relax_tick(path, dtype):
    @settings(max_examples=EXAMPLES, deadline=None)
    @given(circuits(path), st.floats(0.01, 1.0))
    def check(shape, gamma):
        c = Case(*shape, dtype)
        c.perturbed_state()
        c.predict_errors(1)  # leaves the feedback relax_tick expects
        state = c.snapshot()
        ws = c.ws
        energies, _, _ = c.run(c.il_schedule(gamma, 1, np.full(c.L + 1, -1)))
        energy = energies[1]
        expect_energy = ref.relax_tick(c.weights, c.biases, c.act, gamma, state)
        layers = range(1, c.L + 1)
        for buffer, expect in (("values", state.values), ("acts", state.acts), ("preds", state.preds),
                               ("errors", state.errors)):
            c.close_layers(buffer, expect, layers)
        c.close_layers("feedback", ref.feedback(c.weights, state), range(1, c.L))
        c.close(energy, expect_energy, what="energy")
        # the clamped layers do not move
        np.testing.assert_array_equal(ws.layer("values", 0), c.x)
        np.testing.assert_array_equal(ws.layer("values", c.L), c.y)

    check()


@params_and_dtypes
def test_hebbian_update(path, dtype):
    @settings(max_examples=EXAMPLES, deadline=None)
    @given(circuits(path), st.data())
    def check(shape, data):
        c = Case(*shape, dtype)
        ws = c.ws
        layer = data.draw(st.integers(1, c.L))
        scale = data.draw(st.floats(-2.0, 2.0).filter(lambda s: abs(s) > 1e-3))
        ws.errors[:] = c.rng.normal(size=ws.errors.shape)
        ws.acts[:] = c.rng.normal(size=ws.acts.shape)
        schedule = Schedule().new_tick().hebbian(layer, scale * c.batch)  # the op scales by 1/B
        _, grads, _ = c.run(schedule)
        e = ws.layer("errors", layer).astype(np.float64)
        a = ws.layer("acts", layer - 1).astype(np.float64)
        dW, db = ref.hebbian_update(e, a, scale)
        w_slice = slice(c.w_off[layer], c.b_off[layer])
        b_slice = slice(c.b_off[layer], c.b_off[layer] + c.sizes[layer])
        c.close(grads[w_slice].reshape(dW.shape), dW, what="dW")
        c.close(grads[b_slice], db, what="db")
        untouched = np.ones(grads.shape, dtype=bool)
        untouched[w_slice] = untouched[b_slice] = False
        assert np.all(grads[untouched] == 0.0), "the Hebbian op wrote outside its layer"

    check()


@params_and_dtypes
def test_relax(path, dtype):
    @settings(max_examples=EXAMPLES, deadline=None)
    @given(circuits(path), st.integers(0, 8), st.floats(0.02, 0.6), st.data())
    def check(shape, n_ticks, gamma, data):
        c = Case(*shape, dtype)
        c.feedforward()
        ws = c.ws
        ws.layer("values", c.L)[...] = c.y
        ws.layer("acts", c.L)[...] = c.y
        c.predict_errors(1)
        state = c.snapshot()
        update_tick = np.array([0] + data.draw(st.lists(st.integers(0, n_ticks), min_size=c.L,
                                                        max_size=c.L)), dtype=np.int64)
        scale = -1.0 / c.batch
        energy, grads, (tick, layer) = c.run(c.il_schedule(gamma, n_ticks, update_tick))
        expect_grads, expect_energy, expect_where = ref.relax(c.weights, c.biases, c.act, gamma, n_ticks,
                                                              state, update_tick, scale)
        assert (tick, layer) == expect_where == (-1, -1)
        # Up to 8 ticks of a possibly growing iteration amplify rounding: 100x the one-op tolerance
        # in float64 (1e-10), 10x in float32 (1e-3; hypothesis found 1.1e-3 after 6 ticks at
        # gamma 0.5 through one-neuron layers).
        tol = 100 * c.tol if dtype == "float64" else 10 * c.tol
        c.close(energy, expect_energy, tol=tol, what="energies")
        for l in range(1, c.L + 1):
            dW, db = expect_grads[l - 1]
            c.close(grads[c.w_off[l]:c.b_off[l]].reshape(dW.shape), dW, tol=tol, what=f"dW_{l}")
            c.close(grads[c.b_off[l]:c.b_off[l] + c.sizes[l]], db, tol=tol, what=f"db_{l}")
        c.close_layers("values", state.values, range(1, c.L + 1), tol=tol)
        c.close_layers("errors", state.errors, range(1, c.L + 1), tol=tol)

    check()


def _relax_to_failure(c, gamma, n_ticks):
    state = c.snapshot()
    update_tick = np.full(c.L + 1, n_ticks, dtype=np.int64)
    energy, _, got = c.run(c.il_schedule(gamma, n_ticks, update_tick, check_tick_0=False))
    with np.errstate(all="ignore"):
        _, expect_energy, expect = ref.relax(c.weights, c.biases, c.act, gamma, n_ticks, state,
                                             update_tick, -1.0 / c.batch)
    return tuple(int(v) for v in got), expect, energy, expect_energy


@pytest.mark.parametrize("path", PATH_PARAMS)
@pytest.mark.parametrize("act", ACTS)
def test_relax_nonfinite_value_reports_tick_and_layer(path, act):
    """A value that is already infinite in hidden layer k poisons layer k-1 (through the feedback)
    on tick 1: both implementations report (1, first non-finite layer)."""
    batch = min(3, dense.BLAS_MIN_BATCH - 1) if path == "loops" else dense.BLAS_MIN_BATCH + 2
    sizes = [3, 5, 4, 6, 2]
    for k in (1, 2, 3):
        c = Case(sizes, batch, act, seed=k, dtype="float64")
        c.feedforward()
        ws = c.ws
        ws.layer("values", c.L)[...] = c.y
        ws.layer("acts", c.L)[...] = c.y
        ws.layer("values", k)[1, 0] = np.inf
        ws.layer("acts", k)[...] = activations.apply(act, ws.layer("values", k))
        with np.errstate(all="ignore"):
            c.predict_errors(1)
        got, expect, energy, expect_energy = _relax_to_failure(c, gamma=0.3, n_ticks=6)
        assert got == expect
        assert got[0] == 1 and got[1] == max(k - 1, 1)
        assert not np.isfinite(energy[1]) and not np.isfinite(expect_energy[1])


@pytest.mark.parametrize("path", PATH_PARAMS)
def test_relax_runaway_finite_values_agree_on_first_fault(path):
    """Run-away relaxation (gamma = 50, weights x 1e3): kernel and reference stop on the same tick and
    name the same layer, the first whose values, errors or squared-error sum overflowed."""
    batch = min(5, dense.BLAS_MIN_BATCH - 1) if path == "loops" else dense.BLAS_MIN_BATCH + 4
    c = Case([4, 6, 6, 3], batch, "linear", seed=0, dtype="float64")
    c.params *= 1e3
    for w in c.weights:
        w *= 1e3
    for b in c.biases:
        b *= 1e3
    c.feedforward()
    c.ws.layer("values", c.L)[...] = c.y
    c.ws.layer("acts", c.L)[...] = c.y
    c.predict_errors(1)
    got, expect, energy, _ = _relax_to_failure(c, gamma=50.0, n_ticks=100)
    # Both stop, the reference at a tick where some value or error is non-finite.
    assert expect[0] > 0 and expect[1] >= 1
    assert got[0] > 0 and not np.isfinite(energy[got[0]])
    assert got == expect


@params_and_dtypes
def test_backprop_layer(path, dtype):
    @settings(max_examples=EXAMPLES, deadline=None)
    @given(circuits(path, min_depth=2), st.data())
    def check(shape, data):
        c = Case(*shape, dtype)
        ws = c.ws
        layer = data.draw(st.integers(1, c.L - 1))
        ws.values[:] = c.rng.normal(size=ws.values.shape)
        ws.errors[:] = c.rng.normal(size=ws.errors.shape)
        state = c.snapshot()
        before = ws.errors.copy()
        dense.backprop_layer(c.params, c.w_off, ws.s_off, ws.sizes, ws.batch, c.code, layer,
                             ws.values, ws.errors, ws.feedback)
        ref.backprop_layer(c.weights, c.act, state, layer)
        c.close(ws.layer("errors", layer), state.errors[layer], what="e_l")
        c.close(ws.layer("feedback", layer), state.errors[layer + 1] @ c.weights[layer], what="feedback_l")
        # the schedule loop's ops for the same step: feedback from above, then the delta
        after = ws.errors.copy()
        ws.errors[:] = before
        ws.acts[:] = activations.apply(c.act, ws.values.astype(np.float64)).astype(c.dtype)
        c.run(Schedule().new_tick().feedback(layer + 1).delta(layer))
        c.close(ws.layer("errors", layer), state.errors[layer], what="delta op e_l")
        np.testing.assert_array_equal(np.delete(ws.errors, range(ws.s_off[layer], ws.s_off[layer] + c.batch * c.sizes[layer])),
                                      np.delete(after, range(ws.s_off[layer], ws.s_off[layer] + c.batch * c.sizes[layer])))
        ws.errors[:] = after
        for l in range(c.L + 1):
            if l != layer:
                start = ws.s_off[l]
                stop = start + c.batch * c.sizes[l]
                np.testing.assert_array_equal(ws.errors[start:stop], before[start:stop])

    check()


@params_and_dtypes
def test_backprop(path, dtype):
    @settings(max_examples=EXAMPLES, deadline=None)
    @given(circuits(path))
    def check(shape):
        c = Case(*shape, dtype)
        c.feedforward()
        ws = c.ws
        state = c.snapshot()
        ws.layer("values", c.L)[...] = c.y  # clamped: error L is then y - yhat = -d_L
        ws.layer("acts", c.L)[...] = c.y
        _, grads, _ = c.run(ns.variant("bp").build_schedule(SimpleNamespace(n_layers=c.L)))
        deltas = -ws.errors  # the circuit's errors carry -d
        y64 = c.y.astype(np.float64)
        expect = ref.backprop(c.weights, c.act, state, y64)
        for l in range(1, c.L + 1):
            dW, db = expect[l - 1]
            c.close(grads[c.w_off[l]:c.b_off[l]].reshape(dW.shape), dW, what=f"dW_{l}")
            c.close(grads[c.b_off[l]:c.b_off[l] + c.sizes[l]], db, what=f"db_{l}")
        # the deltas left in the buffer: d_L = x_L - y and the chain of reference.backprop_layer
        state.errors[c.L] = state.values[c.L] - y64
        for l in range(c.L - 1, 0, -1):
            ref.backprop_layer(c.weights, c.act, state, l)
        for l in range(1, c.L + 1):
            start = ws.s_off[l]
            got = deltas[start:start + c.batch * c.sizes[l]].reshape(c.batch, c.sizes[l])
            c.close(got, state.errors[l], what=f"delta_{l}")

    check()


# --------------------------------------------------------------------------- activations
SAMPLES = np.concatenate([np.linspace(-6, 6, 241), [-30.0, -3e-3, 3e-3, 30.0]])


@pytest.mark.parametrize("name", ACTS)
def test_activation_derivative_matches_central_differences(name):
    x = SAMPLES[np.abs(SAMPLES) > 1e-3]  # away from the relu kink
    h = 1e-6
    fd = (activations.apply(name, x + h) - activations.apply(name, x - h)) / (2 * h)
    np.testing.assert_allclose(activations.derivative(name, x), fd, rtol=1e-7, atol=1e-9)


def test_activation_values_closed_forms():
    x = np.array([-2.0, -0.5, 0.0, 0.5, 2.0])
    np.testing.assert_array_equal(activations.apply("linear", x), x)
    np.testing.assert_allclose(activations.apply("tanh", x), np.tanh(x), rtol=0, atol=0)
    np.testing.assert_allclose(activations.apply("sigmoid", x), 1 / (1 + np.exp(-x)), rtol=1e-15)
    np.testing.assert_array_equal(activations.apply("relu", x), [0, 0, 0, 0.5, 2.0])
    np.testing.assert_allclose(activations.apply("leaky_relu", x), [-0.02, -0.005, 0, 0.5, 2.0], rtol=1e-15)
    # derivatives at the kink, as documented (PyTorch's choice for relu)
    assert activations.derivative("relu", np.array([0.0]))[0] == 0.0
    assert activations.derivative("leaky_relu", np.array([0.0]))[0] == activations.LEAKY_SLOPE
    np.testing.assert_allclose(activations.apply("leaky_relu_0.1", x), [-0.2, -0.05, 0, 0.5, 2.0], rtol=1e-15)
    np.testing.assert_allclose(activations.derivative("leaky_relu_0.1", x), [0.1, 0.1, 0.1, 1, 1], rtol=1e-15)
    # no overflow for large |x|
    with np.errstate(over="raise"):
        s = activations.apply("sigmoid", np.array([-800.0, 800.0]))
    np.testing.assert_array_equal(s, [0.0, 1.0])


@pytest.mark.parametrize("name", ACTS)
def test_numba_activations_match_numpy(name):
    code = activations.code(name)
    xs = np.concatenate([SAMPLES, [0.0, -0.0, 1e-300, -1e-300, -800.0, 800.0]])
    f = np.array([dense.activate(code, float(v)) for v in xs])
    df = np.array([dense.activate_deriv(code, float(v)) for v in xs])
    np.testing.assert_allclose(f, activations.apply(name, xs), rtol=1e-15, atol=1e-300)
    # 1 - tanh^2 cancels: one ulp of tanh (libm vs NumPy) is 2.2e-16 absolute in the derivative
    np.testing.assert_allclose(df, activations.derivative(name, xs), rtol=1e-15, atol=1e-15)
    assert np.all(np.isfinite(f)) and np.all(np.isfinite(df))


def test_finite_detects_overflow_computed_under_fastmath():
    """np.isfinite is folded to True under nsz + reassoc; the kernels' own test must not be."""
    from numba import njit

    @njit(fastmath=dense.FASTMATH)
    def overflowed_is_finite(a, rate):
        total = a[0]
        total += rate * a[1]
        return dense.finite(total)

    for dtype, rate in ((np.float32, 1e38), (np.float64, 1e308)):
        a = np.array([1.0, 1e3], dtype=dtype)
        assert not overflowed_is_finite(a, dtype(rate))
        assert overflowed_is_finite(a, dtype(1.0))
        assert not overflowed_is_finite(np.array([np.nan, 1.0], dtype=dtype), dtype(1.0))
        assert not overflowed_is_finite(np.array([-np.inf, 1.0], dtype=dtype), dtype(1.0))


def test_float32_tanh_derivative_is_zero_where_its_tanh_is_flat():
    """The float32 tanh is clamped (a constant beyond |v| = 7.905), so its derivative there is 0:
    a saturated unit passes no gradient, in float32 as in float64 and on every path."""
    import neurosim as ns

    x, y = np.full((2, 4), 1e30), np.zeros((2, 3))
    for dtype in ("float32", "float64"):
        net = ns.mlp([4, 5, 3], seed=0, dtype=dtype)
        for name in ("bp", "zil", "il"):
            first_layer = ns.variant(name).gradients(net, x.astype(dtype), y)[0][0]
            assert np.all(first_layer == 0), (dtype, name)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_parameters_and_state_rows_start_on_a_cache_line(dtype):
    """The kernels' vector loads need buffers on ALIGNMENT-byte boundaries (NumPy guarantees 16):
    the parameters of every network kind, every state row of a workspace, and a schedule's copies."""
    from neurosim.kernels.layout import ALIGNMENT, aligned_copy, aligned_length, aligned_zeros

    nets = [ns.mlp([7, 5, 3], seed=0, dtype=dtype),
            ns.Network([ns.layers.Conv2d(1, 2, 3), ns.layers.Flatten(), ns.layers.Dense(2 * 4 * 4, 3)],
                       input_shape=(1, 6, 6), dtype=dtype),
            ns.rnn(3, 4, 2, seed=0, dtype=dtype)]
    for net in nets:
        assert net.params.ctypes.data % ALIGNMENT == 0
    for batch in (1, 3):
        ws = DenseWorkspace([7, 5, 3], batch, dtype)
        for name in DenseWorkspace.BUFFERS:
            row = getattr(ws, name)
            assert row.ctypes.data % ALIGNMENT == 0 and row.shape[0] >= batch * 15
            assert not row[batch * 15:].any()
    for n in (1, 5, 17, 1000):
        array = aligned_zeros((n, 3), dtype)
        assert array.shape == (n, 3) and array.dtype == dtype and array.flags.c_contiguous
        assert array.ctypes.data % ALIGNMENT == 0 and not array.any()
        source = np.arange(n, dtype=dtype)
        copied = aligned_copy(source)
        assert copied.ctypes.data % ALIGNMENT == 0 and np.array_equal(copied, source)
        assert aligned_length(n, dtype) % (ALIGNMENT // np.dtype(dtype).itemsize) == 0
        assert n <= aligned_length(n, dtype) < n + ALIGNMENT


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 6), st.integers(1, 7), st.integers(0, 5), st.sampled_from(["float32", "float64", "int64"]))
def test_matrix_view_is_the_reshape_of_its_slice(rows, cols, offset, dtype):
    """kernels.views.matrix builds the C-contiguous (rows, cols) view by hand: it must be the
    reshape, share the memory (a write through it lands in the buffer) and keep the buffer alive."""
    from numba import njit

    from neurosim.kernels.views import matrix

    @njit
    def view_and_write(buffer, start, rows, cols):
        block = matrix(buffer[start:start + rows * cols], rows, cols)
        if rows > 0:
            block[rows - 1, cols - 1] = -1
        return block

    buffer = np.arange(offset + rows * cols + 3).astype(dtype)
    expect = buffer[offset:offset + rows * cols].reshape(rows, cols).copy()
    if rows > 0:
        expect[rows - 1, cols - 1] = -1
    block = view_and_write(buffer, offset, rows, cols)
    del buffer  # the view holds the memory
    assert block.shape == (rows, cols) and block.flags.c_contiguous and block.dtype == dtype
    np.testing.assert_array_equal(block, expect)
    if rows > 0:
        assert block.base is not None


def test_kernel_entry_points_refuse_buffers_that_do_not_fit_the_layout():
    """The views inside the kernels are unchecked, so each entry point checks its buffers once."""
    net = ns.mlp([5, 4, 3], seed=0)
    ws = net.workspace(2)
    schedule = ns.variant("il", T=2).schedule(net)
    code, args, tick_start = schedule.encoded()
    y = np.zeros((2, 3))

    def run(params=net.params, values=ws.values, grads=np.zeros_like(net.params), scratch=np.empty(20),
            energies=np.zeros(3), target=y, last=2):
        return schedule_kernels.run_schedule(
            code, args, tick_start, 0, last, params, params, net.w_off, net.b_off, ws.s_off, ws.sizes, 2,
            net.act_code, target, values, ws.acts, ws.preds, ws.errors, ws.feedback, grads, scratch,
            np.empty((2, 3)), energies, dense_events(np.float64))

    for bad in ({"params": net.params[:-1]}, {"values": ws.values[:-2]}, {"grads": np.zeros(3)},
                {"scratch": np.empty(19)}, {"energies": np.zeros(2)}, {"target": np.zeros((1, 3))},
                {"last": 5}):
        with pytest.raises(ValueError, match="run_schedule|schedule kernel"):
            run(**bad)
    with pytest.raises(ValueError, match="feedforward"):
        dense.feedforward(net.params, net.w_off, net.b_off, ws.s_off, ws.sizes, 3, net.act_code,
                          ws.values, ws.acts, ws.preds, ws.errors, ws.feedback)
    from neurosim.circuit import ops
    with pytest.raises(ValueError, match="does not fit a network"):
        ops.feedback(ns.mlp([5, 6, 3], seed=0), ws, 2)


def test_matrix_view_falls_back_to_reshape_if_numba_moves_its_array_helpers(tmp_path):
    """views.matrix builds views with numba internals; without them it must still work (reshape)."""
    import os
    import subprocess
    import sys
    import textwrap

    code = textwrap.dedent("""
        import builtins
        real_import = builtins.__import__
        def blocked(name, globals=None, locals=None, fromlist=(), level=0):
            if name == "numba.np.arrayobj" and globals and globals.get("__name__") == "neurosim.kernels.views":
                raise ImportError("moved")
            return real_import(name, globals, locals, fromlist, level)
        builtins.__import__ = blocked
        import numpy as np
        from numba import njit
        from neurosim.kernels import views
        assert views.intrinsic is None
        view = njit(lambda flat: views.matrix(flat, 3, 4))(np.arange(12.0))
        assert view.shape == (3, 4) and np.array_equal(view, np.arange(12.0).reshape(3, 4))
        print("ok")
    """)
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path))
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr[-2000:]
