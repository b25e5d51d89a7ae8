"""``copi``: constrained parameter inference with decorrelated layer inputs.

Ahmad, Schrader & van Gerven 2023, "Constrained parameter inference as a principle for learning",
TMLR (arXiv 2203.13203, code nasiryahm/ConstrainedParameterInference).

Each layer ``l`` first decorrelates its input with a lateral matrix ``R_l`` (``R_l = I`` at the
start), then applies its forward weights:

    x_l = R_l y_{l-1},     a_l = W_l x_l,     h_l = a_l + b_l,     y_l = f(h_l)   (y_0 the input)

Per batch (``<.>`` the batch mean, ``g`` = ``loss_gain``):

    decorrelation   R_l <- R_l - eta_r C_l R_l,      C_l = <x_l x_l^T> * (1 - I)   (off-diagonal)
    weights (COPI)  W_ij <- W_ij + eta ( <(a_i + g delta_i) x_j> - <x_j^2> W_ij )
    bias            b_i  <- b_i + eta g <delta_i>

so each synapse regresses its target ``a_i + g delta_i`` on its own decorrelated input (fixed point
``W_ij = <(a_i + g delta_i) x_j> / <x_j^2>``). Once the inputs are decorrelated,
``<a_i x_j> = W_ij <x_j^2>`` and the rule is gradient descent with step ``eta * g`` (the **credit
rate**): ``W += eta g <delta x^T>``. Before that, it adds ``eta W C``, which grows ``W`` along the
top eigenvector of ``C`` at rate ``eta lambda_max(C)`` while the decorrelation removes it at
``eta_r lambda_max(C)``. The credit ``delta`` (PC sign: ``delta = -d loss / d h``;
``delta_L = y - yhat``) comes from backpropagation through the effective weights (``credit="bp"``:
``delta_l = f'(h_l) * (delta_{l+1} W_{l+1} R_{l+1})``) or from fixed random feedback matrices
(``credit="fa"``: ``delta_l = f'(h_l) * (delta_{l+1} B_{l+1})``, feedback alignment, ``B`` drawn
once with ``seed`` from PyTorch's default uniform init).

Learning rates, as in the public code: one rate ``lr`` for the regression terms and for ``R``, and
the loss multiplied by ``loss_multiplier`` (``lr = 1e-3``, ``loss_multiplier = 1000``: credit rate
1), i.e. ``eta = eta_r = lr``, ``loss_gain = loss_multiplier``. Tying the credit rate to the
regression rate (``g = 1``) makes the "learning rate" of COPI the rate of the ``W C`` term; with
``eta > eta_r`` that term outruns the decorrelation and the weights blow up (digits: ``eta = 0.1,
eta_r = 0.01`` collapses to chance). Measured on digits (64-128-128-10 tanh, batch 32, 10 epochs,
``benchmarks/reproduce_copi.py``): with ``eta = eta_r = 0.1`` COPI trains at credit rates up to
1.0 (test accuracy 0.919, best 0.936), where BP with SGD diverges at 0.5 and 1.0; credit rate 1.5
diverges. The paper's literal rates (``eta = eta_r = 1e-3``, ``g = 1000``) diverge on that tanh network: at
``eta_r lambda_max(C) = 0.01`` per step the inputs are far from decorrelated when the credit step
of 1 meets ``lambda_max(<y y^T>) = 10.5`` of the non-centred pixels (BP at that rate diverges too).

How it maps onto a neurosim network (our choices):
- The network's weights hold the *effective* matrices ``M_l = W_l R_l``, so ``net.forward`` and
  :func:`neurosim.evaluate` compute exactly the COPI network's function. The variant keeps its own
  state per network (``R_l``, ``W_l`` and, for ``"fa"``, ``B_l``) in a :class:`CopiState`, keyed
  weakly to the network object (``variant.state(net)``; ``variant.reset(net)`` forgets it). When the
  network's weights were changed from outside (not by applying ``Step.grads`` with ``SGD(lr=1)``),
  ``W_l`` is re-derived as ``M_l R_l^{-1}``.
- ``Step.grads = theta - theta_new`` (the whole parameter change, sign as a loss gradient), so
  **train with ``ns.optim.SGD(lr=1.0)``** to apply the COPI step exactly.
- ``compute`` commits the new ``R`` and ``W`` to the state (a training step); ``gradients`` and the
  simulator do not (they only look).
- ``a_l`` excludes the bias (the bias is not a synapse with a decorrelated input; the paper's
  networks have none); the bias learns from ``g <delta>``.

Tick protocol and counted work (:mod:`neurosim.counting`): tick 0 is the forward pass, the output
delta ``y - yhat`` and every layer's decorrelated input ``x_l = R_l y_{l-1}`` (``B n_{l-1}^2`` MACs
each); ticks 1..L-1 carry ``delta`` one layer down (as ``bp``: feedback and derivative); layer
``l``'s update is stamped at tick ``L - l``: input moments ``x^T x`` (``B n_{l-1}^2``), the weight
rule (``B n_l n_{l-1}``), ``C R`` (``n_{l-1}^3``) and the effective matrix ``W R``
(``n_l n_{l-1}^2``, bookkeeping of the simulation) -- see ``neurosim/circuit/work.py``.
The paper's network, and how to get it (``benchmarks/reproduce_copi.py --paper``):
- **Activation.** The public code uses leaky-ReLU with slope 0.1 after every layer: build the network
  with ``activation="leaky_relu_0.1"``. Its output is the last layer's pre-activation ``a_L`` (the
  loss is the squared error of ``a_L`` against one-hot targets, like neurosim's linear readout), but
  its output perturbation is multiplied by the derivative there:
  ``delta_L = g (y - a_L) * f'(a_L)``; ``output_derivative=True`` does the same (default ``False``:
  ``delta_L = g (y - a_L)``, the squared-error gradient).
- **No biases** in the public code: set the network's biases to zero (``for b in net.biases:
  b[...] = 0``) and pass ``learn_bias=False``, which keeps them where they are. The public code
  draws ``W`` Xavier-normal; neurosim's init is PyTorch's default uniform.

Hyper-parameters: ``eta`` (>= 0, default 0.1), ``eta_r`` (>= 0, default 0.1), ``loss_gain``
(>= 0, default 1), ``credit`` ("bp" | "fa"), ``seed`` (feedback matrices, int >= 0),
``output_derivative`` (bool, default False), ``learn_bias`` (bool, default True),
``warmup_steps`` (int >= 0, default 0): the first steps update only the decorrelation ``R``, as the
public code's ``training_loop`` does in its first epoch (``update_W=False``); with the paper's rates
(``eta = eta_r = 1e-3``, ``loss_gain = 1000``) a tanh network diverges without them and trains on
digits after about a thousand; the paper's leaky-ReLU network trains without them (measured in
``notebooks/copi_decorrelation.ipynb``). Dense networks only.
"""
from __future__ import annotations

import weakref
from dataclasses import dataclass, field

import numpy as np

from .. import activations, counting
from ..circuit import ops, work
from ..errors import DivergenceError
from ..validation import all_finite, check_float, check_int
from ._common import SmallBlas, layer_views, require_dense
from .base import Variant, register

CREDITS = ("bp", "fa")


@dataclass
class CopiState:
    """What COPI keeps between steps for one network: the decorrelation matrices ``R_l``
    ``(n_{l-1}, n_{l-1})``, the synaptic weights ``W_l`` ``(n_l, n_{l-1})`` and the effective matrices
    ``M_l = W_l R_l`` last handed to the network (to notice a network changed from outside), and,
    for ``credit="fa"``, the fixed feedback matrices ``B_l`` ``(n_l, n_{l-1})`` (index ``l - 1``;
    ``B_1`` is unused)."""

    decorrelation: list
    feedback: list = field(default_factory=list)
    steps: int = 0
    synaptic: list | None = None
    effective: list | None = None


@register
class COPI(SmallBlas, Variant):
    name = "copi"
    whole_step = True
    defaults = {"eta": 0.1, "eta_r": 0.1, "loss_gain": 1.0, "credit": "bp", "seed": 0, "warmup_steps": 0,
                "output_derivative": False, "learn_bias": True}

    def validate(self) -> None:
        self.hyper["eta"] = check_float(self.hyper["eta"], "eta", minimum=0.0)
        self.hyper["eta_r"] = check_float(self.hyper["eta_r"], "eta_r", minimum=0.0)
        self.hyper["loss_gain"] = check_float(self.hyper["loss_gain"], "loss_gain", minimum=0.0)
        if self.hyper["credit"] not in CREDITS:
            raise ValueError(f"credit must be 'bp' or 'fa', got {self.hyper['credit']!r}")
        self.hyper["seed"] = check_int(self.hyper["seed"], "seed", minimum=0)
        self.hyper["warmup_steps"] = check_int(self.hyper["warmup_steps"], "warmup_steps", minimum=0)
        for name in ("output_derivative", "learn_bias"):
            if not isinstance(self.hyper[name], (bool, np.bool_)):
                raise TypeError(f"{name} must be True or False, got {self.hyper[name]!r}")
            self.hyper[name] = bool(self.hyper[name])
        self._states = weakref.WeakKeyDictionary()

    def check_network(self, net) -> None:
        super().check_network(net)
        require_dense(self, net, "the paper defines its decorrelation and per-synapse rules for "
                                 "dense layers")

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

    def learned_state(self, net) -> dict:
        """``R_l``, the feedback ``B_l`` (``credit="fa"``), the kept ``W_l`` and ``M_l``, and the step count."""
        st = self._states.get(net)
        if st is None:
            return {}
        out = {"steps": np.array(st.steps)}
        for name in ("decorrelation", "feedback", "synaptic", "effective"):
            for index, matrix in enumerate(getattr(st, name) or []):
                out[f"{name}_{index}"] = np.array(matrix, copy=True)
        return out

    def restore_learned_state(self, net, state: dict) -> None:
        if not state:
            self._states.pop(net, None)
            return
        lists, used = {}, {"steps"}
        for name in ("decorrelation", "feedback", "synaptic", "effective"):
            lists[name] = []
            while f"{name}_{len(lists[name])}" in state:
                key = f"{name}_{len(lists[name])}"
                lists[name].append(np.array(state[key], dtype=net.params.dtype, copy=True))
                used.add(key)
        unknown = set(state) - used
        if unknown:
            raise ValueError(f"variant 'copi': unknown learned state {', '.join(sorted(unknown))}")
        if len(lists["decorrelation"]) != net.n_layers or any(
                r.shape != (n, n) for r, n in zip(lists["decorrelation"], net.sizes[:-1])):
            raise ValueError("variant 'copi': the decorrelation matrices do not fit this network")
        self._states[net] = CopiState(lists["decorrelation"], lists["feedback"], int(state.get("steps", 0)),
                                      lists["synaptic"] or None, lists["effective"] or None)

    def _synaptic(self, net, st, layer) -> np.ndarray:
        """``W_l``: the kept one while the network still holds the ``M_l = W_l R_l`` COPI gave it
        (up to the rounding of applying ``Step.grads``), else re-derived as ``M_l R_l^{-1}`` (after
        the weights were changed from outside: another optimiser or learning rate; bookkeeping of
        the simulation, not counted)."""
        M = net.weights[layer - 1]
        if st.synaptic is not None:
            kept = st.effective[layer - 1]
            tol = 64 * np.finfo(M.dtype).eps * max(1.0, float(np.max(np.abs(kept), initial=0.0)))
            if float(np.max(np.abs(M - kept), initial=0.0)) <= tol:
                return st.synaptic[layer - 1]
        R = st.decorrelation[layer - 1]
        if np.array_equal(R, np.eye(len(R), dtype=R.dtype)):
            return M.copy()
        return np.linalg.solve(R.T, M.T).T

    def synaptic_weights(self, net) -> list:
        """``W_l``, the weights acting on the decorrelated inputs (``M_l = W_l R_l``)."""
        st = self.state(net)
        return [self._synaptic(net, st, l) for l in range(1, net.n_layers + 1)]

    # -- tick protocol ---------------------------------------------------------------------------
    def n_ticks(self, net) -> int:
        return net.n_layers - 1

    def begin(self, net, ws, x, y, grads, events=None):
        """Tick 0: the forward pass, the output delta ``y - yhat`` and every layer's decorrelated
        input ``x_l = R_l y_{l-1}`` (kept in ``state.extra["inputs"]``)."""
        state = self.feedforward_and_clamp(net, ws, x, y, grads)
        ops.output_error(net, ws, state.output, y)
        if self.hyper["output_derivative"]:  # the public code's delta_L = (y - a_L) * f'(a_L)
            ws.layer("errors", net.n_layers)[...] *= activations.derivative(net.activation, state.output)
        st = self.state(net)
        acts = ws.layers("acts")
        state.extra["inputs"] = [None] + [acts[l - 1] @ st.decorrelation[l - 1].T
                                          for l in range(1, net.n_layers + 1)]
        counter = counting.sink()
        if counter is not None:
            work.emit(counter, 0, work.cached(net, ws, ("copi_decorrelate",), lambda: [
                work.copi_decorrelate(net, ws.batch, l) for l in range(1, net.n_layers + 1)]))
        return state

    def tick(self, state, tick) -> float:
        """Tick t: the delta moves one layer down, to ``l = L - t``."""
        net, ws = state.net, state.ws
        errors = ws.layers("errors")
        layer = net.n_layers - tick
        if self.hyper["credit"] == "bp":
            ops.backprop_layer(net, ws, layer, tick)       # f'(h_l) * (delta_{l+1} W_{l+1} R_{l+1})
        else:
            back = self.state(net).feedback[layer]
            gain = activations.derivative(net.activation, ws.layer("values", layer))
            errors[layer][...] = gain * (errors[layer + 1] @ back)
            counter = counting.sink()
            if counter is not None:
                work.emit(counter, tick, [work.feedback(net, ws.batch, layer + 1),
                                          work.derivative(net, ws.batch, layer)])
        return 0.5 * sum(float(np.vdot(e, e)) for e in errors[1:]) / ws.batch

    def end(self, state) -> None:
        """``Step.grads = theta - theta_new``, written layer by layer; the new ``R``, ``W`` and ``M``
        are left in ``state.extra["pending"]``. Layer l's update is stamped at tick ``L - l``, when
        its delta is known."""
        net = state.net
        st = self.state(net)
        weight_steps, bias_steps = layer_views(net, state.grads)
        counter = counting.sink()
        decorrelation, synaptic, effective = [], [], []
        # An overflow here is reported by compute as a DivergenceError, with nothing committed.
        with np.errstate(over="ignore", invalid="ignore"):
            self._update_layers(state, st, weight_steps, bias_steps, decorrelation, synaptic,
                                effective, counter)
        state.extra["pending"] = (decorrelation, synaptic, effective)

    def _update_layers(self, state, st, weight_steps, bias_steps, decorrelation, synaptic,
                       effective, counter) -> None:
        """Per layer: the new ``R``, ``W`` and ``M = W R`` appended to the lists, and
        ``theta - theta_new`` written into ``weight_steps``/``bias_steps``."""
        net, ws = state.net, state.ws
        inputs, errors, values = state.extra["inputs"], ws.layers("errors"), ws.layers("values")
        eta, eta_r, gain = self.hyper["eta"], self.hyper["eta_r"], self.hyper["loss_gain"]
        if st.steps < self.hyper["warmup_steps"]:
            eta = 0.0  # warm-up: the decorrelation learns alone, as the public code's first epoch
        batch = ws.batch
        L = net.n_layers
        for l in range(1, L + 1):
            R = st.decorrelation[l - 1]
            W = self._synaptic(net, st, l)
            b = net.biases[l - 1]
            x = inputs[l]                                  # decorrelated input (B, n_in)
            delta = errors[l]
            drive = state.output if l == L else values[l]
            # The rates are folded into the small (B, n) factors before the products, so each
            # (n, n) result is formed in one pass.
            corr = (x * (-eta_r / batch)).T @ x            # -eta_r <x x^T>
            np.fill_diagonal(corr, 0.0)                    # -eta_r C,  C = <x x^T> * (1 - I)
            variance = np.einsum("bj,bj->j", x, x) / batch  # <x_j^2>
            target = (drive - b) + gain * delta            # a + g delta, a = W x (bias excluded)
            # W + eta (<(a + g delta) x^T> - W diag<x^2>)
            W_new = (target * (eta / batch)).T @ x
            W_new += W * (1.0 - eta * variance)[None, :]
            if self.hyper["learn_bias"]:
                np.multiply(delta.sum(axis=0), -eta * gain / batch, out=bias_steps[l - 1])
            else:
                bias_steps[l - 1][...] = 0.0
            R_new = corr @ R                               # R - eta_r C R
            R_new += R
            M_new = W_new @ R_new                          # M = W R
            np.subtract(net.weights[l - 1], M_new, out=weight_steps[l - 1])
            decorrelation.append(R_new)
            synaptic.append(W_new)
            effective.append(M_new)
            if counter is not None:
                work.emit(counter, L - l, work.cached(net, ws, ("copi_update", l),
                                                      lambda: work.copi_update(net, batch, l)))

    def compute(self, net, x, y, events=None):
        step = super().compute(net, x, y, events=events)
        pending = step.state.extra["pending"]
        if not all(all_finite(matrix) for group in pending for matrix in group):
            raise DivergenceError(f"{self.name}: the step would make the decorrelation or synaptic "
                                  f"matrices non-finite (loss {step.loss:.3g}); nothing was "
                                  f"committed; lower eta or eta_r")
        st = self.state(net)
        st.decorrelation, st.synaptic, st.effective = pending
        st.steps += 1
        return step

    def gradients(self, net, x, y, events=None) -> list:
        """The step's parameter change as ``[(dW, db), ...]`` without committing the new state."""
        st = self.state(net)
        saved = (st.decorrelation, st.synaptic, st.effective, st.steps)
        try:
            return super().gradients(net, x, y, events=events)
        finally:
            st.decorrelation, st.synaptic, st.effective, st.steps = saved
