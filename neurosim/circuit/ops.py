"""The one place where circuit kernels are called, and where their work is counted.

Variants and the simulator call these functions, never the kernels directly. Each function runs one
kernel of :mod:`neurosim.kernels.dense` on a network and its workspace, then reports to the active
:class:`neurosim.counting.Counter` exactly what that kernel did (see that module for the units).
Counts are derived from the same loop bounds the kernels run, event by event per layer and tick.

Networks that are not a plain dense chain (``net.is_dense`` False: convolutional networks, unrolled
RNNs) run the same functions from :mod:`neurosim.circuit.generic`, through the layer contract.
"""
from __future__ import annotations

import numpy as np

from .. import backends, counting
from ..kernels import dense
from . import generic, work


def _generic(net, back=None) -> bool:
    """Whether the layer-contract path runs this op: a non-dense network, or the NumPy reference
    backend (:mod:`neurosim.backends`). A ValueError when that path lacks what was asked for."""
    if net.is_dense and not backends.is_reference():
        return False
    if back is not None:
        where = "the numpy backend" if net.is_dense else "a non-dense network"
        raise ValueError(f"separate feedback matrices (feedback='random' or 'learned') are not provided "
                         f"by {where} for this op; use the numba backend on a dense network")
    return True


def feedforward(net, ws, x) -> None:
    """Tick 0: clamp the input and set x_l = mu_l for every layer (all errors 0)."""
    if _generic(net):
        return generic.feedforward(net, ws, x)
    ws.layer("values", 0)[...] = x
    ws.layer("acts", 0)[...] = x
    dense.feedforward(net.params, net.w_off, net.b_off, ws.s_off, ws.sizes, ws.batch, net.act_code,
                      ws.values, ws.acts, ws.preds, ws.errors, ws.feedback)
    counter = counting.sink()
    if counter is not None:
        work.emit(counter, 0, work.cached(net, ws, ("feedforward",), lambda: [
            work.feedforward(net, ws.batch, l) for l in range(1, net.n_layers + 1)]))


def _back(net, back):
    """The feedback matrices to use: ``back``, or the weights themselves (symmetric feedback)."""
    if back is None:
        return net.params
    if back.shape != net.params.shape or back.dtype != net.params.dtype:
        raise ValueError(f"back must be laid out like net.params {net.params.shape} {net.params.dtype}, "
                         f"got {back.shape} {back.dtype}")
    return back


def clamp_output(net, ws, y) -> None:
    """Clamp the output value neurons to the target: x_L = y."""
    if _generic(net):
        return generic.clamp_output(net, ws, y)
    ws.layer("values", net.n_layers)[...] = y
    ws.layer("acts", net.n_layers)[...] = y


def output_error(net, ws, output, y) -> None:
    """e_L = y - yhat at the output (BP's -d_L), without recomputing the prediction."""
    if _generic(net):
        return generic.output_error(net, ws, output, y)
    ws.layer("errors", net.n_layers)[...] = y - output
    counter = counting.sink()
    if counter is not None:
        work.emit(counter, 0, work.cached(net, ws, ("output_error",), lambda: [work.output_error(net, ws.batch)]))


def feedback(net, ws, layer: int, tick: int = 0, back=None) -> None:
    """feedback_{l-1} = e_l W_l for one layer (l >= 2), from its current errors.

    ``back``: feedback matrices ``B_l`` laid out like ``net.params`` (dense networks; ``None``:
    ``B = W``), here and in the other ops that carry errors down.
    """
    if _generic(net, back):
        return generic.feedback(net, ws, layer, tick)
    dense._feedback_layer(_back(net, back), net.w_off, ws.s_off, ws.sizes, ws.batch, layer, ws.errors,
                          ws.feedback)
    counter = counting.sink()
    if counter is not None:
        work.emit(counter, tick, work.cached(net, ws, ("feedback", layer), lambda: [work.feedback(net, ws.batch, layer)]))


def predict_errors(net, ws, first_layer: int = 1, tick: int = 0, back=None) -> float:
    """mu_l, e_l for l >= first_layer (and feedback); returns the energy (batch mean)."""
    if _generic(net, back):
        return generic.predict_errors(net, ws, first_layer, tick)
    energy = dense.predict_errors(net.params, _back(net, back), net.w_off, net.b_off, ws.s_off, ws.sizes, ws.batch,
                                  first_layer, ws.values, ws.acts, ws.preds, ws.errors, ws.feedback)
    counter = counting.sink()
    if counter is not None:
        for layer in range(first_layer, net.n_layers + 1):
            work.emit(counter, tick, work.prediction(net, ws.batch, layer, layer >= 2))
    return float(energy)


def relax_tick(net, ws, gamma: float, tick: int, back=None) -> float:
    """One parallel relaxation tick of every hidden layer; returns the energy after it."""
    if _generic(net, back):
        return generic.relax_tick(net, ws, gamma, tick)
    energy = dense.relax_tick(net.params, _back(net, back), net.w_off, net.b_off, ws.s_off, ws.sizes, ws.batch,
                              net.act_code, ws.values.dtype.type(gamma),
                              ws.values, ws.acts, ws.preds, ws.errors, ws.feedback)
    counter = counting.sink()
    if counter is not None:
        work.emit(counter, tick, work.cached(net, ws, ("relax_tick",), lambda: work.relax_tick(net, ws.batch)))
    return float(energy)


def hebbian(net, ws, layer: int, scale: float, grads: np.ndarray, tick: int) -> None:
    """Write layer ``layer``'s Hebbian term ``scale * e_l^T phi(x_{l-1})`` into ``grads``."""
    if _generic(net):
        return generic.hebbian(net, ws, layer, scale, grads, tick)
    dense.hebbian_update(net.w_off, net.b_off, ws.s_off, ws.sizes, ws.batch, layer,
                         ws.values.dtype.type(scale), ws.errors, ws.acts, grads)
    counter = counting.sink()
    if counter is not None:
        work.emit(counter, tick, work.cached(net, ws, ("hebbian", layer), lambda: [work.hebbian(net, ws.batch, layer)]))


def relax(net, ws, gamma: float, n_ticks: int, update_tick: np.ndarray, grad_scale: float,
          grads: np.ndarray, back=None) -> tuple:
    """The fused inference phase (see :func:`neurosim.kernels.dense.relax`).

    Returns ``(energies (n_ticks + 1,), (tick, layer))``; ``(tick, layer) = (-1, -1)`` when every
    value stayed finite.
    """
    if _generic(net, back):
        return generic.relax(net, ws, gamma, n_ticks, update_tick, grad_scale, grads)
    energies = np.zeros(n_ticks + 1, dtype=np.float64)
    dtype = ws.values.dtype.type
    tick, layer = dense.relax(net.params, _back(net, back), net.w_off, net.b_off, ws.s_off, ws.sizes, ws.batch,
                              net.act_code, dtype(gamma), n_ticks, ws.values, ws.acts, ws.preds,
                              ws.errors, ws.feedback, update_tick, dtype(grad_scale), grads, energies)
    counter = counting.sink()
    if counter is not None:
        work.emit_phase(counter, net, ws, work.cached(net, ws, ("relax_tick",), lambda: work.relax_tick(net, ws.batch)),
                        update_tick, n_ticks, tick)
    return energies, (int(tick), int(layer))


def relax_and_learn(net, ws, x, y, gamma: float, n_ticks: int, lr: float, output: np.ndarray,
                    scratch: np.ndarray, back=None) -> tuple:
    """A whole IL training step with plain SGD in one kernel call (see
    :func:`neurosim.kernels.dense.relax_and_learn`): dense networks only.

    Counts exactly what the unfused path counts (feed-forward, output error, its feedback, the
    relaxation ticks and the Hebbian terms at the last tick). Returns
    ``(status, tick, layer, loss, energies)`` with the kernel's status codes.
    """
    dtype = ws.values.dtype.type
    energies = np.zeros(n_ticks + 1, dtype=np.float64)
    param_bound = np.zeros(net.n_layers + 1, dtype=np.float64)
    status, tick, layer, loss = dense.relax_and_learn(
        net.params, _back(net, back), net.w_off, net.b_off, ws.s_off, ws.sizes, ws.batch, net.act_code, dtype(gamma),
        n_ticks, x, y, ws.values, ws.acts, ws.preds, ws.errors, ws.feedback, dtype(lr / ws.batch),
        _SAFE_LIMIT[ws.values.dtype], energies, output, param_bound, scratch)
    counter = counting.sink()
    if counter is not None:
        stopped_at = tick if status == 1 else -1
        plan = ws.__dict__.setdefault("_work_templates", {}).get(("learn_plan", n_ticks, stopped_at))
        if plan is None:
            plan = _learn_plan(net, ws, n_ticks, stopped_at)
        for template, first, last in plan:
            counter.record_ticks(template, first, last)
    return int(status), int(tick), int(layer), float(loss), energies


# Parameters below a quarter of the dtype's largest value cannot overflow from one bounded update
# (see dense.hebbian_learn).
_SAFE_LIMIT = {np.dtype(name): 0.25 * float(np.finfo(name).max) for name in ("float32", "float64")}


def _learn_plan(net, ws, n_ticks, stopped_at) -> list:
    """The events of :func:`relax_and_learn` as ``(template, first tick, last tick)``, built once."""
    plan = [(work.cached(net, ws, ("feedforward",), lambda: [
        work.feedforward(net, ws.batch, l) for l in range(1, net.n_layers + 1)]), 0, 0)]
    if stopped_at != 0:
        plan.append((work.cached(net, ws, ("output_error",), lambda: [work.output_error(net, ws.batch)]), 0, 0))
        if net.n_layers >= 2:
            plan.append((work.cached(net, ws, ("feedback", net.n_layers),
                                     lambda: [work.feedback(net, ws.batch, net.n_layers)]), 0, 0))
        tick_events = work.cached(net, ws, ("relax_tick",), lambda: work.relax_tick(net, ws.batch))
        update_tick = np.full(net.n_layers + 1, n_ticks, dtype=np.int64)
        plan.extend(work.phase_plan(net, ws, tick_events, update_tick, n_ticks, stopped_at))
    ws.__dict__["_work_templates"][("learn_plan", n_ticks, stopped_at)] = plan
    return plan


def backprop_layer(net, ws, layer: int, tick: int) -> None:
    """BP's step down one layer on the error buffer: e_l = f'(x_l) * (e_{l+1} W_{l+1})."""
    if _generic(net):
        return generic.backprop_layer(net, ws, layer, tick)
    dense.backprop_layer(net.params, net.w_off, ws.s_off, ws.sizes, ws.batch, net.act_code, layer,
                         ws.values, ws.errors, ws.feedback)
    counter = counting.sink()
    if counter is not None:
        work.emit(counter, tick, [work.feedback(net, ws.batch, layer + 1), work.derivative(net, ws.batch, layer)])


def backprop(net, ws, y, grads: np.ndarray) -> None:
    """Backpropagation from the feed-forward state in ``ws`` (deltas land in ``ws.errors``)."""
    if _generic(net):
        return generic.backprop(net, ws, y, grads)
    dense.backprop(net.params, net.w_off, net.b_off, ws.s_off, ws.sizes, ws.batch, net.act_code,
                   ws.values, ws.acts, y, ws.errors, ws.feedback, grads)
    counter = counting.sink()
    if counter is not None:
        work.emit(counter, 0, [work.output_error(net, ws.batch)])
        for layer in range(net.n_layers, 0, -1):
            tick = net.n_layers - layer
            work.emit(counter, tick, work.cached(net, ws, ("hebbian", layer), lambda: [work.hebbian(net, ws.batch, layer)]))
            if layer > 1:
                work.emit(counter, tick + 1, [work.feedback(net, ws.batch, layer),
                                              work.derivative(net, ws.batch, layer - 1)])


# -- Z-IL's event-driven wavefront ------------------------------------------------------------------


def zil_wavefront(net, ws, grad_scale: float, grads: np.ndarray) -> tuple:
    """Z-IL's step as an event-driven schedule (see :mod:`neurosim.variants.zil`), after
    :func:`feedforward`, :func:`clamp_output` and :func:`output_error`:

        tick 0:      Hebbian term of layer L, fb_{L-1} = e_L W_L
        tick L - l:  x_l += f'(x_l) * fb_l,  e_l = x_l - mu_l,  fb_{l-1} = e_l W_l,  Hebbian term of l

    One call of :func:`neurosim.kernels.dense.zil_wavefront` (a composition of the dense kernels).
    Returns ``(tick, layer)`` of the first non-finite value or error, ``(-1, -1)`` if finite.
    """
    if _generic(net):
        return generic.zil_wavefront(net, ws, grad_scale, grads)
    tick, layer = dense.zil_wavefront(net.params, net.w_off, net.b_off, ws.s_off, ws.sizes, ws.batch,
                                          net.act_code, ws.values, ws.acts, ws.preds, ws.errors,
                                          ws.feedback, ws.values.dtype.type(grad_scale), grads)
    counter = counting.sink()
    if counter is not None:
        work.emit_schedule(counter, net, ws, ("wavefront", tick),
                           lambda: work.wavefront(net, ws.batch, stopped_at=tick))
    return int(tick), int(layer)
