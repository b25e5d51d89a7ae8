"""``il``: inference learning, the standard predictive-coding training step.

Whittington & Bogacz 2017, "An approximation of the error backpropagation algorithm in a predictive
coding network with local Hebbian synaptic plasticity", Neural Computation 29:1229.

Tick 0: feed-forward initialisation ``x_l = mu_l`` (all hidden errors 0), output clamped ``x_L = y``.
Ticks 1..T, every hidden layer in parallel from the previous tick's state:

    x_l <- x_l + gamma * ( -e_l + f'(x_l) * (e_{l+1} W_{l+1}) ),   l = 1..L-1
    e_l  = x_l - mu_l,   mu_l = W_l phi(x_{l-1}) + b_l

which is gradient descent on the energy ``F = 1/2 sum_l ||e_l||^2`` with step ``gamma``. After tick T
the Hebbian update ``dW_l = (1/B) e_l^T phi(x_{l-1})``, ``db_l = mean_b e_l`` is returned as the loss
gradient ``-dW_l`` (descent direction ``+dW_l``). It approximates BP when output errors are small; the
error reaches layer 1 only after ``L - 1`` ticks (Zahid et al. 2023, Lemma 1), so ``T < L - 1`` leaves
the lowest layers without an update.

Hyper-parameters: ``T`` (ticks, int >= 1, default 20), ``gamma`` (step, > 0, default 0.1), and the
feedback pathway (:mod:`neurosim.variants.feedback`): ``feedback="symmetric"`` (default, ``e_{l+1}
W_{l+1}`` above: the energy gradient), ``"random"`` (feedback alignment: ``e_{l+1} B_{l+1}`` with a
fixed random ``B``) or ``"learned"`` (Kolen-Pollack), with ``feedback_seed``, ``feedback_lr``,
``feedback_decay``. The kernels read ``B`` in place of ``W`` on the way down only, so symmetric
feedback runs exactly the same arithmetic as before the option existed; non-symmetric feedback
needs a dense network.
"""
from __future__ import annotations

import numpy as np

from .. import backends
from ..circuit import ops, work
from ..errors import DivergenceError
from ..validation import check_float, check_int
from ._common import require_dense
from .base import Step, Variant, raise_divergence, register
from .feedback import FEEDBACK_DEFAULTS, FeedbackPathway


@register
class IL(FeedbackPathway, Variant):
    name = "il"
    defaults = {"T": 20, "gamma": 0.1, **FEEDBACK_DEFAULTS}

    def validate(self) -> None:
        self.hyper["T"] = check_int(self.hyper["T"], "T", minimum=1)
        self.hyper["gamma"] = check_float(self.hyper["gamma"], "gamma", positive=True)
        self._validate_feedback()

    def check_network(self, net) -> None:
        super().check_network(net)
        if self.feedback_kind != "symmetric":
            require_dense(self, net, f"feedback={self.feedback_kind!r} keeps one matrix B_l per dense "
                                     f"layer; use feedback='symmetric'")

    def n_ticks(self, net) -> int:
        return self.hyper["T"]

    def closed_form(self, net, batch_size: int = 1) -> dict:
        """Forward S, the top feedback F_L at tick 0, each tick re-predicts layers 2..L (Q) and feeds
        back (R), the weight terms S; path L + 1 + 2T (L >= 2)."""
        S, Q, R, F_L = work.layer_sums(net, batch_size)
        ticks = self.n_ticks(net)
        path = net.n_layers + 1 + 2 * ticks if net.n_layers >= 2 else 2
        return {"macs": 2 * S + F_L + ticks * (Q + R), "ticks": ticks, "critical_path": path}

    def update_ticks(self, net) -> np.ndarray:
        """The tick at which each layer's Hebbian term is taken (index 0 unused): all at T."""
        return np.full(net.n_layers + 1, self.n_ticks(net), dtype=np.int64)

    def begin(self, net, ws, x, y, grads) -> float:
        self._initialise(net, ws, x, y)
        self._take(net, ws, 0, grads)
        return self._loss

    def tick(self, net, ws, tick, grads) -> float:
        energy = ops.relax_tick(net, ws, self.hyper["gamma"], tick, back=self.feedback_params(net))
        if np.isfinite(energy):
            self._take(net, ws, tick, grads)
        return energy

    def _initialise(self, net, ws, x, y) -> None:
        """Tick 0: feed-forward init, clamp, e_L = y - mu_L and its feedback e_L W_L.

        The hidden errors are 0 and mu_L is already known from the forward pass, so the only new
        matrix product is the feedback; the energy equals the loss.
        """
        self.feedforward_and_clamp(net, ws, x, y)
        ops.output_error(net, ws, self._output, y)
        if net.n_layers >= 2:
            ops.feedback(net, ws, net.n_layers, tick=0, back=self.feedback_params(net))

    def _take(self, net, ws, tick, grads) -> None:
        due = self.update_ticks(net)
        for layer in range(1, net.n_layers + 1):
            if due[layer] == tick:
                ops.hebbian(net, ws, layer, -1.0 / ws.batch, grads, tick)

    def sgd_step(self, net, x, y, lr, scratch):
        """The fused training step (:func:`neurosim.circuit.ops.relax_and_learn`) where it applies:
        a dense network, fixed feedback, and IL's own dynamics and schedule (a subclass that
        overrides any of them runs its ``compute`` instead)."""
        cls = type(self)
        if (not net.is_dense or backends.is_reference() or self.feedback_kind == "learned"
                or any(getattr(cls, name) is not getattr(IL, name)
                       for name in ("update_ticks", "compute", "tick", "begin", "n_ticks"))):
            return None
        n_ticks = self.n_ticks(net)
        x, y, ws = self.prepare(net, x, y)
        output = np.empty((ws.batch, net.n_outputs), dtype=net.dtype)
        status, tick, layer, loss, energies = ops.relax_and_learn(
            net, ws, x, y, self.hyper["gamma"], n_ticks, lr, output, scratch, back=self.feedback_params(net))
        self._output, self._loss = output, loss
        if status == 1:
            raise_divergence(self, net, ws, tick, layer)
        if status == 2:
            raise DivergenceError(f"{self.name}: the update would make parameters non-finite (loss "
                                  f"{loss:.3g}); lower the learning rate")
        return Step(None, loss, output, energies)

    def compute(self, net, x, y) -> Step:
        """The fused path: one numba call runs all ticks and takes the Hebbian terms."""
        x, y, ws = self.prepare(net, x, y)
        grads = np.zeros_like(net.params)
        self._initialise(net, ws, x, y)
        energies, (tick, layer) = ops.relax(net, ws, self.hyper["gamma"], self.n_ticks(net),
                                            self.update_ticks(net), -1.0 / ws.batch, grads,
                                            back=self.feedback_params(net))
        if tick >= 0:
            raise_divergence(self, net, ws, tick, layer)
        self._finish_feedback(net, grads)
        self._commit_feedback(net)
        return Step(grads, self._loss, self._output, energies)
