"""``bp``: backpropagation, the reference every variant is compared with.

Forward pass ``h_l = W_l phi(h_{l-1}) + b_l``, output ``yhat = h_L``,
loss ``mean_b 1/2 ||y_b - yhat_b||^2``, deltas

    d_L = yhat - y,    d_l = f'(h_l) * (d_{l+1} W_{l+1}),
    dloss/dW_l = (1/B) d_l^T phi(h_{l-1}),   dloss/db_l = (1/B) sum_b d_l.

In the circuit BP runs on the same populations as PC: values hold the forward pass, error neurons hold
``e_l = -d_l`` (the sign PC's errors have), and one tick carries the error down one layer, so the
backward pass takes ``L - 1`` ticks after the forward one. Rumelhart, Hinton & Williams 1986.
"""
from __future__ import annotations

import numpy as np

from ..circuit import ops, work
from .base import Step, Variant, check_finite_grads, register


@register
class BP(Variant):
    name = "bp"
    defaults: dict = {}

    def n_ticks(self, net) -> int:
        return net.n_layers - 1

    def closed_form(self, net, batch_size: int = 1) -> dict:
        """Forward S, deltas R, weight terms S; the chain forward then back: 2L products."""
        S, _, R, _ = work.layer_sums(net, batch_size)
        return {"macs": 2 * S + R, "ticks": self.n_ticks(net), "critical_path": 2 * net.n_layers}

    def begin(self, net, ws, x, y, grads):
        state = self.feedforward_and_clamp(net, ws, x, y, grads)
        ops.output_error(net, ws, state.output, y)
        ops.hebbian(net, ws, net.n_layers, -1.0 / ws.batch, grads, tick=0)
        return state

    def tick(self, state, tick) -> float:
        net, ws = state.net, state.ws
        layer = net.n_layers - tick
        ops.backprop_layer(net, ws, layer, tick)
        ops.hebbian(net, ws, layer, -1.0 / ws.batch, state.grads, tick=tick)
        errors = ws.errors[ws.s_off[1]:]
        return float(0.5 * np.dot(errors, errors) / ws.batch)

    def compute(self, net, x, y) -> Step:
        x, y, ws = self.prepare(net, x, y)
        grads = np.zeros_like(net.params)
        ops.feedforward(net, ws, x)
        output = ws.layer("values", net.n_layers).copy()
        ops.backprop(net, ws, y, grads)
        check_finite_grads(self, net, grads)
        loss = float(0.5 * np.sum((y - output) ** 2) / x.shape[0])
        return Step(grads, loss, output, None)
