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


def hebbian(net, ws, layer: int, scale: float, grads: np.ndarray, tick: int) -> None:
    """Write layer ``layer``'s Hebbian term ``scale * e_l^T phi(x_{l-1})`` into ``grads``."""
    if _generic(net):
        return generic.hebbian(net, ws, layer, scale, grads, tick)
    dense.hebbian_update(net.w_off, net.b_off, ws.s_off, ws.sizes, ws.batch, layer,
                         ws.values.dtype.type(scale), ws.errors, ws.acts, grads)
    counter = counting.sink()
    if counter is not None:
        work.emit(counter, tick, work.cached(net, ws, ("hebbian", layer), lambda: [work.hebbian(net, ws.batch, layer)]))


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


