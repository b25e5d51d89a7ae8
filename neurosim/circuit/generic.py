"""The tick protocol for every non-dense circuit (conv networks, unrolled RNNs), layer by layer.

Same functions, arguments and counting as :mod:`neurosim.circuit.ops` (which dispatches here when
``net.is_dense`` is False), written on the per-layer view a network gives of itself:

    net.layer_predict(l, ws)        mu_l = W_l * T_l(phi(x_{l-1})) + b_l             (B, *shape_l)
    net.layer_feedback(l, e_l)      T_l^T(W_l^T * e_l), the VJP of mu_l wrt phi(x_{l-1})  (B, *shape_{l-1})
    net.layer_hebbian(l, e_l, ws, scale, grads)   scale * (local Hebbian term) into grads
    net.layer_macs(l, B)            multiply-accumulates of one of those calls

``ws`` is a :class:`neurosim.kernels.layout.ShapedWorkspace` (or any workspace with the same flat
buffers and ``layer(name, l)`` views). Population ``l``'s activity is ``phi_l(x_l)``: the identity
for the input ``l = 0`` and the linear readout ``l = L``, the network's activation otherwise. The
equations are those of the dense kernels (see :mod:`neurosim.kernels.dense`), with matmuls replaced
by the layer's maps:

    relaxation  x_l <- x_l + gamma * (-e_l + f'(x_l) * feedback_l),  feedback_l = VJP_{l+1}(e_{l+1})
    BP          d_L = x_L - y,  d_l = f'(x_l) * VJP_{l+1}(d_{l+1})

Event-driven evaluation: a layer's prediction is recomputed only when the activities it reads
(``net.layer_inputs(l, ws)``) or the parameters changed since it was last computed, its feedback only
when its error changed, and a hidden layer's value update is skipped when its error and feedback are
both zero (the update would add exactly zero). The layer maps are deterministic, so the state is
bit-identical to recomputing everything; what is skipped is simulator work, not circuit work: the
counters still record every population's computation on every tick, as a parallel circuit does it.
Under Z-IL this is what keeps a tick cheap: only layers the error wave has reached change.
"""
from __future__ import annotations

import numpy as np

from .. import activations, counting
from . import work


def _is_hidden(net, layer: int) -> bool:
    return 0 < layer < net.n_layers


def _energy(ws) -> float:
    errors = ws.errors[ws.s_off[1]:]
    # einsum, not np.dot: a BLAS call is slower than the reduction itself at these sizes.
    return float(0.5 * np.einsum("i,i->", errors, errors, dtype=np.float64) / ws.batch)


class _Memo:
    """What each layer's prediction and feedback were last computed from (see module docstring)."""

    def __init__(self, params):
        self.params = params.copy()
        self.inputs = {}   # layer -> copies of the arrays its prediction read
        self.errors = {}   # layer -> copy of the error its feedback was computed from


def _memo(net, ws) -> _Memo:
    memo = getattr(ws, "memo", None)
    if memo is None or memo.params.shape != net.params.shape or not np.array_equal(memo.params, net.params):
        memo = ws.memo = _Memo(net.params)
    return memo


def _forget(ws) -> None:
    ws.memo = None


def _predict(net, ws, layer: int, memo: _Memo) -> None:
    """preds_l = mu_l, unless the inputs it was computed from are unchanged."""
    inputs = net.layer_inputs(layer, ws)
    seen = memo.inputs.get(layer)
    if seen is not None and all(np.array_equal(a, b) for a, b in zip(inputs, seen)):
        return
    ws.layer("preds", layer)[...] = net.layer_predict(layer, ws)
    memo.inputs[layer] = [np.array(a, copy=True) for a in inputs]


def _feedback(net, ws, layer: int, memo: _Memo) -> None:
    """feedback_{l-1} = VJP_l(e_l), unless e_l is the error it was computed from."""
    error = ws.layer("errors", layer)
    seen = memo.errors.get(layer)
    if seen is not None and np.array_equal(error, seen):
        return
    ws.layer("feedback", layer - 1)[...] = net.layer_feedback(layer, error)
    memo.errors[layer] = error.copy()


def feedforward(net, ws, x) -> None:
    """Tick 0: clamp the input and set x_l = mu_l for every layer (all errors 0)."""
    ws.layer("values", 0)[...] = x
    ws.layer("acts", 0)[...] = x
    memo = ws.memo = _Memo(net.params)
    for layer in range(1, net.n_layers + 1):
        _predict(net, ws, layer, memo)
        mu = ws.layer("preds", layer)
        ws.layer("values", layer)[...] = mu
        ws.layer("acts", layer)[...] = activations.apply(net.activation, mu) if _is_hidden(net, layer) else mu
    ws.errors[...] = 0.0
    ws.feedback[...] = 0.0  # = VJP_l(0): every feedback is that of a zero error
    for layer in range(2, net.n_layers + 1):
        memo.errors[layer] = ws.layer("errors", layer).copy()
    counter = counting.sink()
    if counter is not None:
        work.emit(counter, 0, [work.feedforward(net, ws.batch, l) for l in range(1, net.n_layers + 1)])


def clamp_output(net, ws, y) -> None:
    """Clamp the output value neurons to the target: x_L = y."""
    ws.layer("values", net.n_layers)[...] = y
    ws.layer("acts", net.n_layers)[...] = y


def output_error(net, ws, output, y) -> None:
    """e_L = y - yhat at the output (BP's -d_L)."""
    ws.layer("errors", net.n_layers)[...] = y - output
    counter = counting.sink()
    if counter is not None:
        work.emit(counter, 0, [work.output_error(net, ws.batch)])


def feedback(net, ws, layer: int, tick: int = 0) -> None:
    """feedback_{l-1} = VJP_l(e_l) for one layer, from its current errors."""
    _feedback(net, ws, layer, _memo(net, ws))
    counter = counting.sink()
    if counter is not None:
        work.emit(counter, tick, [work.feedback(net, ws.batch, layer)])


def predict_errors(net, ws, first_layer: int = 1, tick: int = 0) -> float:
    """mu_l, e_l for l >= first_layer, feedback_{l-1} = VJP_l(e_l) for l >= 2; returns the energy."""
    for layer in range(1, first_layer):
        ws.layer("errors", layer)[...] = ws.layer("values", layer) - ws.layer("preds", layer)
    memo = _memo(net, ws)
    for layer in range(first_layer, net.n_layers + 1):
        _predict(net, ws, layer, memo)
        ws.layer("errors", layer)[...] = ws.layer("values", layer) - ws.layer("preds", layer)
        if layer >= 2:
            _feedback(net, ws, layer, memo)
    counter = counting.sink()
    if counter is not None:
        for layer in range(first_layer, net.n_layers + 1):
            work.emit(counter, tick, work.prediction(net, ws.batch, layer, layer >= 2))
    return _energy(ws)


def _update_values(net, ws, gamma: float) -> None:
    """x_l += gamma (-e_l + f'(x_l) * feedback_l); a_l = f(x_l), hidden layers l = 1..L-1."""
    for layer in range(1, net.n_layers):
        error, fb = ws.layer("errors", layer), ws.layer("feedback", layer)
        if not (error.any() or fb.any()):
            continue  # the update would add exactly zero
        x = ws.layer("values", layer)
        x += gamma * (-error + activations.derivative(net.activation, x) * fb)
        ws.layer("acts", layer)[...] = activations.apply(net.activation, x)


def relax_tick(net, ws, gamma: float, tick: int) -> float:
    """One parallel relaxation tick of every hidden layer; returns the energy after it."""
    _update_values(net, ws, gamma)
    counter = counting.sink()
    if counter is not None:  # recorded before the predictions that read the new values
        work.emit(counter, tick, work.value_updates(net, ws.batch))
    return predict_errors(net, ws, first_layer=2, tick=tick) if net.n_layers >= 2 else _energy(ws)


def hebbian(net, ws, layer: int, scale: float, grads: np.ndarray, tick: int) -> None:
    """Write layer ``layer``'s Hebbian term ``scale * hebbian(e_l, T_l(phi(x_{l-1})))`` into ``grads``."""
    net.layer_hebbian(layer, ws.layer("errors", layer), ws, scale, grads)
    counter = counting.sink()
    if counter is not None:
        work.emit(counter, tick, work.cached(net, ws, ("hebbian", layer), lambda: [work.hebbian(net, ws.batch, layer)]))


def _first_nonfinite_layer(net, ws) -> int:
    """First layer whose values, errors or squared-error sum are not finite (as the dense kernel)."""
    for layer in range(1, net.n_layers + 1):
        errors = ws.layer("errors", layer)
        with np.errstate(over="ignore", invalid="ignore"):
            total = float(np.sum(errors * errors))
        if not (np.all(np.isfinite(ws.layer("values", layer))) and np.all(np.isfinite(errors))
                and np.isfinite(total)):
            return layer
    return -1


def relax(net, ws, gamma: float, n_ticks: int, update_tick: np.ndarray, grad_scale: float,
          grads: np.ndarray) -> tuple:
    """The inference phase (as :func:`neurosim.circuit.ops.relax`): ticks 1..n_ticks, Hebbian terms at
    ``update_tick[l]``. Returns ``(energies (n_ticks + 1,), (tick, layer))``, ``(-1, -1)`` if finite."""
    return _run_ticks(net, ws, lambda tick: relax_tick(net, ws, gamma, tick), n_ticks, update_tick,
                      grad_scale, grads)


def _run_ticks(net, ws, tick_once, n_ticks, update_tick, grad_scale, grads) -> tuple:
    """``tick_once(tick)`` for ticks 1..n_ticks, each layer's Hebbian term at its ``update_tick``."""
    energies = np.zeros(n_ticks + 1, dtype=np.float64)
    energies[0] = _energy(ws)
    for tick in range(n_ticks + 1):
        if tick > 0:
            energies[tick] = tick_once(tick)
            if not np.isfinite(energies[tick]):
                return energies, (tick, _first_nonfinite_layer(net, ws))
        for layer in range(1, net.n_layers + 1):
            if update_tick[layer] == tick:
                hebbian(net, ws, layer, grad_scale, grads, tick)
    return energies, (-1, -1)


def backprop_layer(net, ws, layer: int, tick: int) -> None:
    """BP's step down one layer on the error buffer: e_l = f'(x_l) * VJP_{l+1}(e_{l+1})."""
    _forget(ws)  # errors and feedback now hold deltas
    fb = ws.layer("feedback", layer)
    fb[...] = net.layer_feedback(layer + 1, ws.layer("errors", layer + 1))
    ws.layer("errors", layer)[...] = activations.derivative(net.activation, ws.layer("values", layer)) * fb
    counter = counting.sink()
    if counter is not None:
        work.emit(counter, tick, work.cached(net, ws, ("backprop_layer", layer), lambda: [
            work.feedback(net, ws.batch, layer + 1), work.derivative(net, ws.batch, layer)]))


def backprop(net, ws, y, grads: np.ndarray) -> None:
    """Backpropagation from the feed-forward state in ``ws`` (deltas d_l land in ``ws.errors``)."""
    n_layers = net.n_layers
    _forget(ws)
    ws.layer("errors", n_layers)[...] = ws.layer("values", n_layers) - y
    counter = counting.sink()
    if counter is not None:
        work.emit(counter, 0, work.cached(net, ws, ("output_error",), lambda: [work.output_error(net, ws.batch)]))
    for layer in range(n_layers, 0, -1):
        tick = n_layers - layer
        hebbian(net, ws, layer, 1.0 / ws.batch, grads, tick)
        if layer > 1:
            backprop_layer(net, ws, layer - 1, tick + 1)


# -- Z-IL's event-driven wavefront ------------------------------------------------------------------
def _wavefront_divergence(net, ws) -> tuple:
    """``(tick, layer)`` of the first non-finite layer of a Z-IL wavefront, ``(-1, -1)`` if none.

    Layer l changes only on tick L - l and passes a non-finite error on to every layer below, so the
    first failure is the highest hidden layer whose values, errors or squared-error sum are not
    finite. One dot over the error buffer decides the common case (the float64 sum when it fails:
    float32 squares can overflow a float32 sum long before the energy is non-finite); the caller
    holds ``np.errstate(over="ignore", invalid="ignore")``.
    """
    errors = ws.errors[ws.s_off[1]:]
    if np.isfinite(np.dot(errors, errors)) or np.isfinite(_energy(ws)):
        return -1, -1
    for layer in range(net.n_layers - 1, 0, -1):
        error = ws.layer("errors", layer)
        if not (np.all(np.isfinite(ws.layer("values", layer))) and np.all(np.isfinite(error))
                and np.isfinite(np.sum(error * error))):
            return net.n_layers - layer, layer
    return net.n_layers - 1, -1  # finite layer by layer, only the sum over layers overflowed


def zil_wavefront(net, ws, grad_scale: float, grads: np.ndarray) -> tuple:
    """Z-IL's step as an event-driven schedule (see :mod:`neurosim.variants.zil`), after
    :func:`feedforward`, the clamp and :func:`output_error`:

        tick 0:      Hebbian term of layer L, fb_{L-1} = VJP_L(e_L)
        tick L - l:  x_l += f'(x_l) * fb_l,  e_l = x_l - mu_l,  fb_{l-1} = VJP_l(e_l),  Hebbian term of l

    Only the layer on the error front does any work; the arithmetic of each line is that of
    :func:`relax_tick` with gamma = 1 on that layer, so the result is the full circuit's bit for bit.
    Returns ``(tick, layer)`` of the first non-finite value or error, ``(-1, -1)`` if finite (checked
    once at the end: non-finite numbers only propagate, and every step here ran).
    """
    n_layers = net.n_layers
    _forget(ws)  # errors and feedback change outside the memo
    with np.errstate(over="ignore", invalid="ignore"):
        top = ws.layer("errors", n_layers)
        net.layer_hebbian(n_layers, top, ws, grad_scale, grads)
        if n_layers >= 2:
            ws.layer("feedback", n_layers - 1)[...] = net.layer_feedback(n_layers, top)
        for layer in range(n_layers - 1, 0, -1):
            x, error = ws.layer("values", layer), ws.layer("errors", layer)
            x += activations.derivative(net.activation, x) * ws.layer("feedback", layer)
            np.subtract(x, ws.layer("preds", layer), out=error)
            if layer >= 2:
                ws.layer("feedback", layer - 1)[...] = net.layer_feedback(layer, error)
            net.layer_hebbian(layer, error, ws, grad_scale, grads)
        stopped = _wavefront_divergence(net, ws)
    counter = counting.sink()
    if counter is not None:
        work.emit_schedule(counter, net, ws, ("wavefront",), lambda: work.wavefront(net, ws.batch))
    return stopped
