"""``bp``: backpropagation, the reference every variant is compared with.

Forward pass ``h_l = W_l phi(h_{l-1}) + b_l``, output ``yhat = h_L``,
loss ``mean_b 1/2 ||y_b - yhat_b||^2`` (``output="mse"``, the default) or the cross-entropy of
``softmax(yhat)`` against ``y`` (``output="ce"``, the loss of the variants with a soft
cross-entropy target: compare them with this), deltas

    d_L = yhat - y  (mse)   or   d_L = softmax(yhat) - y  (ce),    d_l = f'(h_l) * (d_{l+1} W_{l+1}),
    dloss/dW_l = (1/B) d_l^T phi(h_{l-1}),   dloss/db_l = (1/B) sum_b d_l.

In the circuit BP runs on the same populations as PC: values hold the forward pass, error neurons hold
``e_l = -d_l`` (the sign PC's errors have), and one tick carries the error down one layer, so the
backward pass takes ``L - 1`` ticks after the forward one. Rumelhart, Hinton & Williams 1986.

As a schedule (:mod:`neurosim.circuit.schedule`): tick 0 ``error L`` (``e_L = y - yhat``, the output
being clamped), ``feedback L``, ``hebbian L``; tick ``t`` (``l = L - t``) ``delta l``
(``e_l = f'(h_l) * fb_l``), ``feedback l``, ``hebbian l``. The energy each tick reports is
``1/2 sum_l ||e_l||^2`` of the deltas so far (the loss at tick 0).
"""
from __future__ import annotations

from ..circuit import work
from ..circuit.schedule import Schedule
from ._common import check_output
from .base import register
from .scheduled import Scheduled


@register
class BP(Scheduled):
    name = "bp"
    defaults: dict = {"output": "mse"}
    has_ticks = False  # its schedule is the backward pass, not a relaxation: nothing to send on delta

    def validate(self) -> None:
        self.hyper["output"] = check_output(self.hyper["output"])

    def __repr__(self) -> str:
        return "variant('bp')" if self.hyper["output"] == "mse" else f"variant('bp', output={self.hyper['output']!r})"

    def n_ticks(self, net) -> int:
        return net.n_layers - 1

    def closed_form(self, net, batch_size: int = 1) -> dict:
        """Forward S, deltas R, weight terms S; the chain forward then back: 2L products."""
        S, _, R, _ = work.layer_sums(net, batch_size)
        return {"macs": 2 * S + R, "ticks": self.n_ticks(net), "critical_path": 2 * net.n_layers}

    def build_schedule(self, net) -> Schedule:
        """The error wave with BP's step ``e_l = f'(h_l) * fb_l`` on each layer's tick."""
        return Schedule.error_wave(net.n_layers, lambda schedule, layer: schedule.delta(layer),
                                   output=self.hyper["output"])
