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

Runs as a schedule (:mod:`neurosim.circuit.schedule`): tick 0 ``error L, feedback L``; tick t
``relax 1..L-1, error 1, predict 2..L`` (each prediction in the same pass over ``W_l`` as the
feedback ``e_l B_l`` for the next tick), then the Hebbian terms due at t (``update_ticks``). A
training step with plain SGD is one compiled call that writes the update straight into the weights,
only if every new parameter is finite; a subclass that changes ``update_ticks`` or ``n_ticks``
changes the schedule, and the same loop runs it.
"""
from __future__ import annotations

import numpy as np

from ..circuit import work
from ..circuit.schedule import Schedule
from ..validation import MAX_TICKS, check_float, check_int
from .base import register
from .feedback import FEEDBACK_DEFAULTS, FeedbackPathway
from .scheduled import Scheduled


@register
class IL(FeedbackPathway, Scheduled):
    name = "il"
    defaults = {"T": 20, "gamma": 0.1, **FEEDBACK_DEFAULTS}

    def validate(self) -> None:
        self.hyper["T"] = check_int(self.hyper["T"], "T", minimum=1, maximum=MAX_TICKS)
        self.hyper["gamma"] = check_float(self.hyper["gamma"], "gamma", positive=True)
        self._validate_feedback()

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

    def build_schedule(self, net) -> Schedule:
        L, T, gamma = net.n_layers, self.n_ticks(net), self.hyper["gamma"]
        due = self.update_ticks(net)
        if len(due) != L + 1 or any(not 0 <= int(due[l]) <= T for l in range(1, L + 1)):
            raise ValueError(f"{self.name}: update_ticks must give every layer 1..{L} a tick in 0..{T}, "
                             f"got {list(due)}")
        schedule = Schedule(output="mse").new_tick().error(L)
        if L >= 2:
            schedule.feedback(L)
        schedule.energy()
        for tick in range(T + 1):
            if tick > 0:
                schedule.new_tick()
                for layer in range(1, L):
                    schedule.relax(layer, gamma)
                if L >= 2:
                    schedule.error(1)  # against mu_1, which reads only the clamped input
                for layer in range(2, L + 1):
                    schedule.predict(layer, with_feedback=True)
                schedule.energy()
            for layer in range(1, L + 1):
                if int(due[layer]) == tick:
                    schedule.hebbian(layer, -1.0)
        return schedule
