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
working weights of the current tick). Runs as a schedule (:mod:`neurosim.circuit.schedule`) on
dense, convolutional and recurrent networks (an RNN's time copies move their shared weights by the
sum of their terms); non-symmetric feedback needs a dense network.
"""
from __future__ import annotations

from ..circuit.schedule import Schedule
from ._common import SmallBlas, check_positive, check_ticks
from .base import register
from .feedback import FEEDBACK_DEFAULTS, FeedbackPathway
from .scheduled import Scheduled


@register
class IPC(SmallBlas, FeedbackPathway, Scheduled):
    name = "ipc"
    defaults = {"T": 20, "gamma": 0.1, "lr_weights": 0.01, **FEEDBACK_DEFAULTS}

    def validate(self) -> None:
        self._validate_feedback()
        self.hyper["T"] = check_ticks(self.hyper["T"])
        self.hyper["gamma"] = check_positive(self.hyper["gamma"], "gamma")
        self.hyper["lr_weights"] = check_positive(self.hyper["lr_weights"], "lr_weights")

    def build_schedule(self, net) -> Schedule:
        """Tick 0: every error. Tick t: feedback and weight terms from the state at the start of the
        tick, values and weights step together, then every prediction with the new weights."""
        L = net.n_layers
        schedule = Schedule(output="mse").new_tick()
        for layer in range(1, L + 1):
            schedule.error(layer)
        schedule.energy()
        for tick in range(1, self.hyper["T"] + 1):
            schedule.new_tick()
            if tick == 1:  # later ticks got theirs with the last tick's predictions (same W, same e)
                for layer in range(2, L + 1):
                    schedule.feedback(layer)
            for layer in range(2, L + 1):
                schedule.learn(layer, self.hyper["lr_weights"])
            for layer in range(1, L):
                schedule.relax(layer, self.hyper["gamma"])
            # W_1's term reads e_1 and the clamped input, which the relaxation leaves alone, so it
            # is taken next to the prediction it feeds: the compiled loop then reads W_1 once for both
            schedule.learn(1, self.hyper["lr_weights"])
            for layer in range(1, L + 1):
                schedule.predict(layer, with_feedback=True)
            schedule.energy()
        return schedule
