"""``copi``: constrained parameter inference with decorrelated layer inputs.

Ahmad, Schrader & van Gerven 2023, "Constrained parameter inference as a principle for learning",
TMLR (arXiv 2203.13203, code nasiryahm/ConstrainedParameterInference).

Each layer ``l`` first decorrelates its input with a lateral matrix ``R_l`` (``R_l = I`` at the
start), then applies its forward weights:

    x_l = R_l y_{l-1},     a_l = W_l x_l,     h_l = a_l + b_l,     y_l = f(h_l)   (y_0 the input)

Per batch (``<.>`` the batch mean):

    decorrelation   R_l <- R_l - eta_r C_l R_l,      C_l = <x_l x_l^T> * (1 - I)   (off-diagonal)
    weights (COPI)  W_ij <- W_ij + eta ( <(a_i + delta_i) x_j> - <x_j^2> W_ij )
    bias            b_i  <- b_i + eta <delta_i>

so each synapse regresses its target ``a_i + delta_i`` on its own decorrelated input; once the inputs
are decorrelated the weight rule is gradient descent (``<delta x^T>``). The credit ``delta`` (PC sign:
``delta = -d loss / d h``; ``delta_L = y - yhat``) comes from backpropagation through the effective
weights (``credit="bp"``: ``delta_l = f'(h_l) * (delta_{l+1} W_{l+1} R_{l+1})``) or from fixed random
feedback matrices (``credit="fa"``: ``delta_l = f'(h_l) * (delta_{l+1} B_{l+1})``, feedback alignment,
``B`` drawn once with ``seed`` from PyTorch's default uniform init).

How it maps onto a neurosim network (our choices):
- The network's weights hold the *effective* matrices ``M_l = W_l R_l``, so ``net.forward`` and
  :func:`neurosim.evaluate` compute exactly the COPI network's function. The variant keeps its own
  state per network (``R_l`` and, for ``"fa"``, ``B_l``) in a :class:`CopiState`, keyed weakly to
  the network object (``variant.state(net)``; ``variant.reset(net)`` forgets it). ``W_l`` is not
  stored: it is ``M_l R_l^{-1}`` (one ``n x n`` solve per layer per step).
- COPI carries its own learning rates ``eta`` (weights, bias) and ``eta_r`` (decorrelation).
  ``Step.grads = theta - theta_new`` (the whole parameter change, sign as a loss gradient), so
  **train with ``ns.optim.SGD(lr=1.0)``** to apply the COPI step exactly.
- ``compute`` commits the new ``R`` to the state (a training step); ``gradients`` and the simulator
  do not (they only look).
- ``a_l`` excludes the bias (the bias is not a synapse with a decorrelated input); the bias learns
  from ``<delta>``.

Stability (measured on digits, 64-128-128-10 tanh, batch 32): without decorrelation the rule's
``W C`` term (``C`` the off-diagonal input second moments, large for non-centred inputs and tanh
activities) grows ``W`` geometrically, so ``eta_r`` must keep up with ``eta``: ``eta = 0.01,
eta_r = 0.01`` trains; ``eta >= 0.03`` diverged at every ``eta_r`` we tried (0.01-0.1), so the
paper's very-high-learning-rate claim is not reproduced at this scale.

Tick protocol: tick 0 is the forward pass (``e_L = delta_L``); ticks 1..L-1 carry ``delta`` one layer
down (as ``bp``); the updates are formed in ``end``.
Hyper-parameters: ``eta`` (>= 0, default 0.01), ``eta_r`` (>= 0, default 0.01), ``credit``
("bp" | "fa"), ``seed`` (feedback matrices, int >= 0). Dense networks only.
"""
from __future__ import annotations

import weakref
from dataclasses import dataclass, field

import numpy as np

from .. import activations
from ..validation import check_float, check_int
from ._common import SmallBlas, layer_views, require_dense
from .base import Variant, register

CREDITS = ("bp", "fa")


@dataclass
class CopiState:
    """What COPI keeps between steps for one network: the decorrelation matrices ``R_l``
    ``(n_{l-1}, n_{l-1})`` and, for ``credit="fa"``, the fixed feedback matrices ``B_l`` ``(n_l, n_{l-1})``
    (index ``l - 1``; ``B_1`` is unused)."""

    decorrelation: list
    feedback: list = field(default_factory=list)
    steps: int = 0


@register
class COPI(SmallBlas, Variant):
    name = "copi"
    counted = False  # its NumPy arithmetic does not report to neurosim.counting yet
    defaults = {"eta": 0.01, "eta_r": 0.01, "credit": "bp", "seed": 0}

    def validate(self) -> None:
        self.hyper["eta"] = check_float(self.hyper["eta"], "eta", minimum=0.0)
        self.hyper["eta_r"] = check_float(self.hyper["eta_r"], "eta_r", minimum=0.0)
        if self.hyper["credit"] not in CREDITS:
            raise ValueError(f"credit must be 'bp' or 'fa', got {self.hyper['credit']!r}")
        self.hyper["seed"] = check_int(self.hyper["seed"], "seed", minimum=0)
        self._states = weakref.WeakKeyDictionary()

    def check_network(self, net) -> None:
        super().check_network(net)
        require_dense(self, net)

    # -- state ---------------------------------------------------------------------------------
    def state(self, net) -> CopiState:
        """This network's COPI state (created with ``R_l = I`` on first use)."""
        st = self._states.get(net)
        if st is None:
            dtype = net.params.dtype
            rng = np.random.default_rng([self.hyper["seed"], 0xC0])  # not the init's stream
            feedback = []
            if self.hyper["credit"] == "fa":
                for l in range(1, net.n_layers + 1):
                    bound = 1.0 / np.sqrt(net.sizes[l - 1])
                    feedback.append(rng.uniform(-bound, bound, size=(net.sizes[l], net.sizes[l - 1]))
                                    .astype(dtype))
            st = CopiState([np.eye(int(n), dtype=dtype) for n in net.sizes[:-1]], feedback)
            self._states[net] = st
        return st

    def reset(self, net) -> None:
        """Forget the state kept for ``net`` (``R_l`` back to ``I`` on next use)."""
        self._states.pop(net, None)

    def synaptic_weights(self, net) -> list:
        """``W_l = M_l R_l^{-1}``, the weights acting on the decorrelated inputs."""
        st = self.state(net)
        return [np.linalg.solve(R.T, M.T).T for M, R in zip(net.weights, st.decorrelation)]

    # -- tick protocol ---------------------------------------------------------------------------
    def n_ticks(self, net) -> int:
        return net.n_layers - 1

    def begin(self, net, ws, x, y, grads) -> float:
        self.feedforward_and_clamp(net, ws, x, y)
        L = net.n_layers
        self._errors = ws.layers("errors")
        self._values = ws.layers("values")
        self._acts = ws.layers("acts")
        self._errors[L][...] = y - self._output
        return self._loss

    def tick(self, net, ws, tick, grads) -> float:
        layer = net.n_layers - tick
        if self.hyper["credit"] == "bp":
            back = net.weights[layer]
        else:
            back = self.state(net).feedback[layer]
        gain = activations.derivative(net.activation, self._values[layer])
        self._errors[layer][...] = gain * (self._errors[layer + 1] @ back)
        return 0.5 * sum(float(np.sum(e * e)) for e in self._errors[1:]) / ws.batch

    def end(self, net, ws, grads) -> None:
        grads[...] = net.params - self._updated(net, ws)

    def _updated(self, net, ws) -> np.ndarray:
        """The parameters after one COPI step; the new ``R`` is left in ``self._pending``."""
        st = self.state(net)
        eta, eta_r = self.hyper["eta"], self.hyper["eta_r"]
        new_params = net.params.copy()
        new_weights, new_biases = layer_views(net, new_params)
        pending = []
        batch = ws.batch
        for l in range(1, net.n_layers + 1):
            R = st.decorrelation[l - 1]
            M = net.weights[l - 1]
            W = np.linalg.solve(R.T, M.T).T
            x = self._acts[l - 1] @ R.T                    # decorrelated input (B, n_in)
            a = x @ W.T                                    # synaptic drive, bias excluded
            delta = self._errors[l]
            second = x.T @ x / batch
            dW = (a + delta).T @ x / batch - W * np.diag(second)[None, :]
            corr = second - np.diag(np.diag(second))
            R_new = R - eta_r * (corr @ R)
            new_weights[l - 1][...] = (W + eta * dW) @ R_new
            new_biases[l - 1][...] = net.biases[l - 1] + eta * delta.mean(axis=0)
            pending.append(R_new)
        self._pending = pending
        return new_params

    def compute(self, net, x, y):
        step = super().compute(net, x, y)
        st = self.state(net)
        st.decorrelation = self._pending
        st.steps += 1
        return step

    def gradients(self, net, x, y) -> list:
        """The step's parameter change as ``[(dW, db), ...]`` without committing the new ``R``."""
        st = self.state(net)
        saved = [R.copy() for R in st.decorrelation]
        steps = st.steps
        try:
            return super().gradients(net, x, y)
        finally:
            st.decorrelation, st.steps = saved, steps
