"""Feedback pathways for the IL-family variants (``il``, ``seqil``, ``ilprox``, ``ilprox_fast``, ``ipc``).

The error feedback reaching hidden layer ``l`` is ``e_{l+1} B_{l+1}``, with ``B`` of ``W``'s shape
``(n_{l+1}, n_l)``:

- ``feedback="symmetric"`` (default): ``B_l = W_l``, the energy gradient (weight transport).
- ``feedback="random"``: a fixed random ``B_l`` (feedback alignment, Lillicrap et al. 2016, Nature
  Communications 7:13276), drawn once per network with ``feedback_seed`` from PyTorch's default
  uniform initialisation ``U(-1/sqrt(n_in), 1/sqrt(n_in))``.
- ``feedback="learned"``: Kolen-Pollack (Kolen & Pollack 1994; Akrout et al. 2019, NeurIPS):
  ``B_l`` starts random and receives the *same* update as ``W_l`` plus weight decay on both. Our
  contract: the variant adds ``feedback_decay * W_l`` to the returned loss gradient of ``W_l`` and
  applies ``B_l <- B_l - feedback_lr * (g_l + feedback_decay * B_l)`` itself after each ``compute``
  (``g_l`` the step's loss gradient of ``W_l``). **With ``ns.optim.SGD(lr=feedback_lr)``**, ``W`` and
  ``B`` get identical updates and ``W_l - B_l`` shrinks by ``1 - feedback_lr * feedback_decay`` per
  step, so ``B`` aligns with ``W``.

The matrices live in the variant, keyed weakly to the network, in one flat array laid out like
``net.params`` (``variant.feedback_params(net)``, bias slots unused; the numba kernels read it
there) with per-layer views ``variant.feedback_matrices(net)``. ``compute`` commits the learned
``B`` (a training step), the simulator and ``gradients`` do not. A subclass without the
``feedback`` hyper-parameter (``zil``) is symmetric.
"""
from __future__ import annotations

import weakref

import numpy as np

from ..validation import check_float, check_int

FEEDBACKS = ("symmetric", "random", "learned")
FEEDBACK_DEFAULTS = {"feedback": "symmetric", "feedback_seed": 0, "feedback_lr": 0.05,
                     "feedback_decay": 1e-3}


class FeedbackPathway:
    """Mixin for NumPy IL-family variants: hyper-parameters in ``FEEDBACK_DEFAULTS``."""

    def _validate_feedback(self) -> None:
        hyper = self.hyper
        if hyper["feedback"] not in FEEDBACKS:
            raise ValueError(f"feedback must be one of {', '.join(repr(f) for f in FEEDBACKS)}, "
                             f"got {hyper['feedback']!r}")
        hyper["feedback_seed"] = check_int(hyper["feedback_seed"], "feedback_seed", minimum=0)
        hyper["feedback_lr"] = check_float(hyper["feedback_lr"], "feedback_lr", minimum=0.0)
        hyper["feedback_decay"] = check_float(hyper["feedback_decay"], "feedback_decay", minimum=0.0)
        self._feedback_state = weakref.WeakKeyDictionary()

    def __repr__(self) -> str:
        """Without the feedback hyper-parameters while feedback is symmetric (they have no effect)."""
        shown = {key: value for key, value in self.hyper.items()
                 if self.feedback_kind != "symmetric" or key not in FEEDBACK_DEFAULTS}
        args = ", ".join(f"{key}={value!r}" for key, value in shown.items())
        return f"variant({self.name!r}{', ' if args else ''}{args})"

    @property
    def feedback_kind(self) -> str:
        return self.hyper.get("feedback", "symmetric")

    def feedback_params(self, net):
        """``B`` laid out like ``net.params`` for ``"random"``/``"learned"``; ``None`` if symmetric."""
        if self.feedback_kind == "symmetric":
            return None
        flat = self._feedback_state.get(net)
        if flat is None:
            rng = np.random.default_rng([self.hyper["feedback_seed"], 0xFB])  # not the init's stream
            flat = np.zeros_like(net.params)
            for l in range(1, net.n_layers + 1):
                bound = 1.0 / np.sqrt(net.sizes[l - 1])
                flat[net.w_off[l]:net.b_off[l]] = rng.uniform(
                    -bound, bound, size=int(net.sizes[l]) * int(net.sizes[l - 1]))
            self._feedback_state[net] = flat
        return flat

    def feedback_matrices(self, net):
        """``[B_1, ..., B_L]`` (``B_1`` unused; views of :meth:`feedback_params`), ``None`` if symmetric."""
        flat = self.feedback_params(net)
        if flat is None:
            return None
        return [flat[net.w_off[l]:net.b_off[l]].reshape(int(net.sizes[l]), int(net.sizes[l - 1]))
                for l in range(1, net.n_layers + 1)]

    def learned_state(self, net) -> dict:
        """The feedback matrices ``B`` (laid out like ``net.params``) once drawn; ``{}`` if symmetric."""
        flat = None if self.feedback_kind == "symmetric" else self._feedback_state.get(net)
        return {} if flat is None else {"feedback": flat.copy()}

    def restore_learned_state(self, net, state: dict) -> None:
        unknown = set(state) - {"feedback"}
        if unknown:
            raise ValueError(f"variant {self.name!r}: unknown learned state {', '.join(sorted(unknown))}")
        if "feedback" in state:
            flat = np.asarray(state["feedback"])
            if self.feedback_kind == "symmetric" or flat.shape != net.params.shape:
                raise ValueError(f"variant {self.name!r}: feedback state of shape {flat.shape} does not fit "
                                 f"feedback={self.feedback_kind!r} on this network")
            self._feedback_state[net] = flat.astype(net.params.dtype, copy=True)
        elif self.feedback_kind != "symmetric":  # not drawn yet when the state was taken
            self._feedback_state.pop(net, None)

    def _finish_feedback(self, state) -> None:
        """For ``"learned"``: add the decay to ``W``'s gradient and prepare the new ``B`` (in
        ``state.extra["feedback"]``)."""
        net, grads = state.net, state.grads
        if self.feedback_kind != "learned":
            return
        lr, decay = self.hyper["feedback_lr"], self.hyper["feedback_decay"]
        mats = self.feedback_matrices(net)
        pending = []
        for l in range(1, net.n_layers + 1):
            gW = grads[net.w_off[l]:net.b_off[l]].reshape(mats[l - 1].shape)
            pending.append(mats[l - 1] - lr * (gW + decay * mats[l - 1]))
            gW += decay * net.weights[l - 1]
        state.extra["feedback"] = pending

    def _commit_feedback(self, net, state) -> None:
        """Make the learned ``B`` prepared in ``state`` current (after a training step)."""
        pending = None if state is None else state.extra.get("feedback")
        if pending is not None:
            for matrix, new in zip(self.feedback_matrices(net), pending):
                matrix[...] = new

    def end(self, state) -> None:
        super().end(state)
        self._finish_feedback(state)

    def compute(self, net, x, y, events=None):
        step = super().compute(net, x, y, events=events)
        self._commit_feedback(net, step.state)
        return step

    def gradients(self, net, x, y, events=None) -> list:
        """The step's gradients; a learned ``B`` is left as it was."""
        flat = self.feedback_params(net)
        saved = None if flat is None else flat.copy()
        try:
            return super().gradients(net, x, y, events=events)
        finally:
            if saved is not None:
                flat[...] = saved
