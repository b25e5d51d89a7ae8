"""``ipc``: incremental predictive coding, weights and values updated on every tick.

Salvatori, Song, Yordanov, Millidge, Sha, Emde, Xu, Bogacz & Lukasiewicz 2024, "A stable, fast, and
fully automatic learning algorithm for predictive coding networks", ICLR (arXiv 2212.00720).

Tick 0: feed-forward initialisation ``x_l = mu_l``, output clamped ``x_L = y``. Ticks 1..T: from the
state at the start of the tick (values ``x``, weights ``theta_{t-1}``), both the value neurons and the
weights take one gradient step on the energy ``F = 1/2 sum_l ||e_l||^2`` -- there is no separate
inference phase:

    x_l      <- x_l + gamma * ( -e_l + f'(x_l) * (e_{l+1} W_{l+1}) ),     l = 1..L-1
    W_l      <- W_l + lr_weights * (1/B) e_l^T phi(x_{l-1}),   b_l <- b_l + lr_weights * mean_b e_l

then predictions and errors are recomputed with the new values *and* weights (so ``mu_1`` moves too).

Choices (the paper trains one network continuously; our training loop applies an optimiser step
per batch):
- The weight learning rate is the hyper-parameter ``lr_weights``; the weights move on a *working
  copy* during the ticks and the network itself is not modified by ``compute``/the simulator.
- ``Step.grads`` is the summed per-tick loss gradient ``sum_t -(1/B) e_l(t)^T phi(x_{l-1}(t))``, so
  ``theta_T = theta_0 - lr_weights * grads``. **Train with ``ns.optim.SGD(lr=lr_weights)`` to get
  iPC exactly**; another optimiser uses the summed direction with its own step rule.
- Values are re-initialised by a feed-forward pass for every batch (the paper's supervised setting).
- Defaults ``T = 20``, ``gamma = 0.1``, ``lr_weights = 0.01``.

Hyper-parameters: ``T`` (int >= 1), ``gamma`` (> 0), ``lr_weights`` (> 0), and the feedback pathway
``feedback`` ("symmetric" | "random" | "learned") with ``feedback_seed``, ``feedback_lr``,
``feedback_decay`` (see :mod:`neurosim.variants.feedback`; with ``"symmetric"`` the feedback uses the
working weights of the current tick). Dense networks only
(NumPy implementation writing the workspace buffers, so the simulator records every tick).
"""
from __future__ import annotations

import numpy as np

from ._common import SmallBlas, CircuitState, check_positive, check_ticks, require_dense
from .base import Variant, register
from .feedback import FEEDBACK_DEFAULTS, FeedbackPathway


@register
class IPC(SmallBlas, FeedbackPathway, Variant):
    name = "ipc"
    defaults = {"T": 20, "gamma": 0.1, "lr_weights": 0.01, **FEEDBACK_DEFAULTS}

    def validate(self) -> None:
        self._validate_feedback()
        self.hyper["T"] = check_ticks(self.hyper["T"])
        self.hyper["gamma"] = check_positive(self.hyper["gamma"], "gamma")
        self.hyper["lr_weights"] = check_positive(self.hyper["lr_weights"], "lr_weights")

    def check_network(self, net) -> None:
        super().check_network(net)
        require_dense(self, net)

    def n_ticks(self, net) -> int:
        return self.hyper["T"]

    def begin(self, net, ws, x, y, grads) -> float:
        self.feedforward_and_clamp(net, ws, x, y)
        self._params = net.params.copy()
        self._state = st = CircuitState(net, ws, self._params, self.feedback_matrices(net))
        st.hidden_errors()
        L = st.n_layers
        np.subtract(st.values[L], st.preds[L], out=st.errors[L])
        return self._energy(st)

    @staticmethod
    def _energy(st) -> float:
        return st.hidden_energy() + 0.5 * float(np.sum(st.errors[st.n_layers] ** 2)) / st.batch

    def tick(self, net, ws, tick, grads) -> float:
        st = self._state
        st.tick = tick
        L = st.n_layers
        lr = self.hyper["lr_weights"]
        # Both updates read the state at the start of the tick.
        feedback = [None] + [st.feedback(layer) for layer in range(1, L)]
        updates = [st.hebbian(layer, 1.0 / st.batch) for layer in range(1, L + 1)]
        for layer in range(1, L):
            st.relax_value(layer, self.hyper["gamma"], feedback[layer])
        for layer, (dW, db) in enumerate(updates, start=1):
            st.apply_weight_change(layer, dW, db, lr)
            grads[net.w_off[layer]:net.b_off[layer]] -= dW.ravel()
            grads[net.b_off[layer]:net.b_off[layer] + net.sizes[layer]] -= db
        for layer in range(1, L + 1):
            st.predict(layer)
        for layer in range(1, L + 1):
            np.subtract(st.values[layer], st.preds[layer], out=st.errors[layer])
        return self._energy(st)
