"""A many-to-one Elman RNN as a predictive-coding circuit, unrolled in time.

Function (the same as ``torch.nn.RNN(n_in, n_hidden, batch_first=True, nonlinearity=f)`` followed by
``nn.Linear(n_hidden, n_out)`` on the last hidden state):

    h_0 = 0,   h_t = f(W_xh x_t + W_hh h_{t-1} + b_h),  t = 1..T,   yhat = W_hy h_T + b_y

with input ``x`` ``(B, T, n_in)``, ``W_xh`` ``(H, I)``, ``W_hh`` ``(H, H)``, ``W_hy`` ``(O, H)``.
torch's RNN has two biases, ``b_ih`` and ``b_hh``; they only ever appear summed, so ours has one,
``b_h = b_ih + b_hh`` (to copy torch weights in, set ``b_h`` to their sum). Initialisation follows
torch's distributions: ``W_xh, W_hh ~ U(-1/sqrt(H), 1/sqrt(H))``, ``b_h`` the sum of two such draws,
``W_hy, b_y ~ U(-1/sqrt(H), 1/sqrt(H))``.

The circuit (Salvatori et al. 2021, arXiv 2103.03725): populations ``l = 0..L`` with ``L = T + 1``:
``l = 0`` the clamped input sequence ``(B, T, I)``, ``l = t`` (1..T) the value neurons ``z_t``
(pre-activations, ``h_t = f(z_t)``), ``l = T + 1`` the linear output. Predictions

    mu_t = W_xh x_t + W_hh f(z_{t-1}) + b_h   (no W_hh term at t = 1),   mu_{T+1} = W_hy f(z_T) + b_y

Each time copy of a shared weight is a synapse layer of its own; the Hebbian term of the copy at time
``t`` is ``e_t^T x_t`` (W_xh), ``e_t^T f(z_{t-1})`` (W_hh, t >= 2), ``sum_b e_t`` (b_h), and the
copies' terms are **summed** into the shared parameter's slot of ``grads``. Under Z-IL layer ``t``
takes its term at tick ``L - t = T + 1 - t``, its distance from the output, so the sum is exactly
BPTT's gradient. The depth (``n_layers = T + 1``) follows the sequence length of the last input
checked (``check_input``). Runs on the generic path (:mod:`neurosim.circuit.generic`) with BLAS
matmuls per layer, as the dense kernels do from ``BLAS_MIN_BATCH`` samples on.
"""
from __future__ import annotations

import numpy as np

from .. import activations
from ..kernels import layout
from ..validation import check_array, check_dtype, check_int
from .network import DTYPES, SAVED_KINDS, Network, ParameterList

PARAMS = ("W_xh", "W_hh", "b_h", "W_hy", "b_y")


class UnknownDepth(ValueError, AttributeError):
    """The unrolled depth of an RNN is asked for before any input sequence fixed it (``hasattr`` is
    False for the depth-dependent attributes then)."""


class ElmanLayer:
    """The recurrent synapses of an :class:`RNN`, for listings (``net.layers``); the arithmetic lives
    in the network, which owns the shared weights of every unrolled time copy."""

    kind = "rnn"

    def __init__(self, n_in: int, n_hidden: int, n_out: int):
        self.n_in, self.n_hidden, self.n_out = n_in, n_hidden, n_out
        self.n_params = n_hidden * (n_in + n_hidden + 1) + n_out * (n_hidden + 1)

    def __repr__(self) -> str:
        return f"ElmanLayer({self.n_in}, {self.n_hidden}, {self.n_out})"


class RNN(Network):
    """Elman RNN (many-to-one) as an unrolled predictive-coding circuit; see the module docstring.

    A :class:`Network` as far as variants, the simulator and training are concerned (``params``,
    ``weights`` = [W_xh, W_hh, W_hy], ``biases`` = [b_h, b_y], ``check_input``, ``forward``,
    ``workspace``); ``variant.gradients`` returns a dict keyed by ``W_xh, W_hh, W_hy, b_h, b_y``.
    """

    is_dense = False

    def __init__(self, n_in: int, n_hidden: int, n_out: int, activation: str = "tanh", seed: int = 0,
                 dtype: str = "float64"):
        self.n_in = check_int(n_in, "n_in", minimum=1)
        self.n_hidden = check_int(n_hidden, "n_hidden", minimum=1)
        self.n_out = check_int(n_out, "n_out", minimum=1)
        self.activation = activations.check(activation)
        self.dtype = check_dtype(dtype, DTYPES)
        self.seed = check_int(seed, "seed", minimum=0)
        shapes = {"W_xh": (self.n_hidden, self.n_in), "W_hh": (self.n_hidden, self.n_hidden),
                  "b_h": (self.n_hidden,), "W_hy": (self.n_out, self.n_hidden), "b_y": (self.n_out,)}
        self.slices, cursor = {}, 0
        for name in PARAMS:
            size = int(np.prod(shapes[name]))
            self.slices[name] = (slice(cursor, cursor + size), shapes[name])
            cursor += size
        self.params = layout.aligned_zeros(cursor, self.dtype)
        for name in PARAMS:
            setattr(self, name, self.view(self.params, name))
        rng = np.random.default_rng(self.seed)
        bound = 1.0 / np.sqrt(self.n_hidden)
        self.W_xh[...] = rng.uniform(-bound, bound, size=self.W_xh.shape)
        self.W_hh[...] = rng.uniform(-bound, bound, size=self.W_hh.shape)
        self.b_h[...] = (rng.uniform(-bound, bound, size=self.n_hidden)
                         + rng.uniform(-bound, bound, size=self.n_hidden))
        self.W_hy[...] = rng.uniform(-bound, bound, size=self.W_hy.shape)
        self.b_y[...] = rng.uniform(-bound, bound, size=self.n_out)
        self.weights = ParameterList([self.W_xh, self.W_hh, self.W_hy], "weights")
        self.biases = ParameterList([self.b_h, self.b_y], "biases")
        self.layers = [ElmanLayer(self.n_in, self.n_hidden, self.n_out)]
        self.input_shape = (None, self.n_in)
        self.seq_len = None
        self._workspaces = {}

    def view(self, flat: np.ndarray, name: str) -> np.ndarray:
        """The ``name`` block (``W_xh`` ...) of a flat array shaped like ``params``."""
        where, shape = self.slices[name]
        return flat[where].reshape(shape)

    # -- shape (depends on the sequence length of the last checked input) --------------------
    def _seq(self) -> int:
        if self.seq_len is None:
            raise UnknownDepth("rnn: the unrolled depth is not known before an input sequence is seen; "
                             "call check_input(x) (or run a variant) first")
        return self.seq_len

    @property
    def n_layers(self) -> int:
        """L = T + 1: the T hidden time steps and the output."""
        return self._seq() + 1

    @property
    def shapes(self) -> list:
        return [(self._seq(), self.n_in)] + [(self.n_hidden,)] * self._seq() + [(self.n_out,)]

    @property
    def sizes(self) -> np.ndarray:
        return np.array([int(np.prod(s)) for s in self.shapes], dtype=np.int64)

    @property
    def n_inputs(self) -> int:
        return self.n_in

    @property
    def n_outputs(self) -> int:
        return self.n_out

    # -- input checks ------------------------------------------------------------------------
    def check_input(self, x, name: str = "x") -> np.ndarray:
        """Validate ``(B, T, n_in)`` with ``T >= 1``; sets the unrolled depth to ``T + 1``."""
        shape = np.shape(x)
        if len(shape) != 3 or shape[2] != self.n_in:
            raise ValueError(f"rnn (Elman RNN, n_in={self.n_in}): {name} must have shape (B, T, "
                             f"{self.n_in}), got {tuple(shape)}")
        if shape[1] == 0:
            raise ValueError(f"rnn (Elman RNN): {name} is a sequence of length 0 (shape {tuple(shape)}); "
                             f"give at least one time step")
        x = check_array(x, name, (None, None, self.n_in), self.dtype)
        self.seq_len = int(x.shape[1])
        return x

    def check_target(self, y, batch: int, name: str = "y") -> np.ndarray:
        """Validate a batch of targets ``(B, n_out)`` for ``batch`` inputs."""
        y = check_array(y, name, (None, self.n_out), self.dtype)
        if y.shape[0] != batch:
            raise ValueError(f"{name} has {y.shape[0]} rows but x has {batch}; they must match")
        return y

    def as_input(self, features) -> np.ndarray:
        """Dataset features ``(N, ...)`` as sequences ``(N, T, n_in)``, ``T = features / n_in``
        (8x8 digits with ``n_in = 8``: 8 steps, one image row each)."""
        features = np.asarray(features)
        n = features.shape[0]
        return np.ascontiguousarray(features.reshape(n, -1, self.n_in), dtype=self.dtype)

    def check_features(self, n_features: int, source: str) -> None:
        if n_features % self.n_in:
            raise ValueError(f"{source} has {n_features} inputs per sample, not a whole number of "
                             f"steps of n_in={self.n_in}")

    # -- computation -------------------------------------------------------------------------
    def forward(self, x) -> np.ndarray:
        x = self.check_input(x)
        h = np.zeros((x.shape[0], self.n_hidden), dtype=self.dtype)
        for t in range(x.shape[1]):
            h = activations.apply(self.activation, x[:, t] @ self.W_xh.T + h @ self.W_hh.T + self.b_h)
        return h @ self.W_hy.T + self.b_y

    def workspace(self, batch: int) -> layout.ShapedWorkspace:
        key = (batch, self._seq())
        ws = self._workspaces.get(key)
        if ws is None:
            if len(self._workspaces) >= 4:
                self._workspaces.pop(next(iter(self._workspaces)))
            ws = self._workspaces[key] = layout.ShapedWorkspace(self.shapes, batch, self.dtype)
        return ws

    # -- the generic path's view of a layer ----------------------------------------------------
    def layer_inputs(self, layer: int, ws) -> list:
        """The activity arrays ``layer_predict(l, ws)`` reads: x_t and f(z_{t-1}), or f(z_T)."""
        if layer == self.n_layers:
            return [ws.layer("acts", layer - 1)]
        step = [ws.layer("acts", 0)[:, layer - 1]]
        return step + [ws.layer("acts", layer - 1)] if layer >= 2 else step

    def layer_predict(self, layer: int, ws) -> np.ndarray:
        if layer == self.n_layers:
            return ws.layer("acts", layer - 1) @ self.W_hy.T + self.b_y
        mu = ws.layer("acts", 0)[:, layer - 1] @ self.W_xh.T + self.b_h
        if layer >= 2:
            mu += ws.layer("acts", layer - 1) @ self.W_hh.T
        return mu

    def layer_feedback(self, layer: int, error: np.ndarray) -> np.ndarray:
        """VJP of mu_l wrt f(z_{l-1}): e W_hy at the output, e W_hh at a time step (l >= 2)."""
        if layer == self.n_layers:
            return error @ self.W_hy
        if layer < 2:
            raise ValueError("rnn: layer 1 has no population below it but the clamped input")
        return error @ self.W_hh

    def layer_hebbian(self, layer: int, error: np.ndarray, ws, scale: float, grads: np.ndarray) -> None:
        """Add ``scale *`` this time copy's Hebbian term to the shared parameters' slots (summed)."""
        if layer == self.n_layers:
            self.view(grads, "W_hy")[...] += scale * (error.T @ ws.layer("acts", layer - 1))
            self.view(grads, "b_y")[...] += scale * error.sum(axis=0)
            return
        self.view(grads, "W_xh")[...] += scale * (error.T @ ws.layer("acts", 0)[:, layer - 1])
        self.view(grads, "b_h")[...] += scale * error.sum(axis=0)
        if layer >= 2:
            self.view(grads, "W_hh")[...] += scale * (error.T @ ws.layer("acts", layer - 1))

    def layer_macs(self, layer: int, batch: int) -> int:
        if layer == self.n_layers:
            return batch * self.n_out * self.n_hidden
        return batch * self.n_hidden * (self.n_in + (self.n_hidden if layer >= 2 else 0))

    def feedback_macs(self, layer: int, batch: int) -> int:
        """Feedback reaches only the hidden state below, through W_hh (or W_hy from the output);
        the input sequence is clamped and receives none."""
        if layer == self.n_layers:
            return batch * self.n_out * self.n_hidden
        return batch * self.n_hidden * self.n_hidden if layer >= 2 else 0

    def fan_out(self, layer: int) -> tuple:
        """``(up, down)``: the hidden state at step ``l - 1`` drives ``n_hidden`` synapses of ``W_hh``
        (``n_out`` of ``W_hy`` into the output); the input is clamped and sends nothing after the
        feed-forward sweep."""
        up = self.n_out if layer == self.n_layers else self.n_hidden
        return float(up), self.feedback_macs(layer, 1) / int(self.sizes[layer])

    def layer_transmit(self, layer: int, change: np.ndarray) -> np.ndarray:
        """What a change of the hidden state below adds to ``mu_l`` (the clamped input adds none)."""
        if layer == self.n_layers:
            return change @ self.W_hy.T
        if layer < 2:
            return np.zeros((change.shape[0], self.n_hidden), dtype=change.dtype)
        return change @ self.W_hh.T

    def layer_parameters(self, layer: int) -> int:
        """Distinct parameters of time step ``l``'s synapses (``W_xh, W_hh, b_h``, shared by every
        step) or of the output (``W_hy, b_y``)."""
        if layer == self.n_layers:
            return self.n_out * (self.n_hidden + 1)
        return self.n_hidden * (self.n_in + self.n_hidden + 1)

    def param_groups(self) -> list:
        """Slices of ``params`` per weight matrix with its bias: ``W_xh``; ``W_hh, b_h``; ``W_hy, b_y``."""
        return [(self.slices["W_xh"][0].start, self.slices["W_xh"][0].stop),
                (self.slices["W_hh"][0].start, self.slices["b_h"][0].stop),
                (self.slices["W_hy"][0].start, self.slices["b_y"][0].stop)]

    def grad_views(self, grads: np.ndarray) -> dict:
        """``{"W_xh": ..., "W_hh": ..., "W_hy": ..., "b_h": ..., "b_y": ...}`` (views of ``grads``)."""
        return {name: self.view(grads, name) for name in ("W_xh", "W_hh", "W_hy", "b_h", "b_y")}

    # -- copies and files --------------------------------------------------------------------
    def copy(self) -> "RNN":
        clone = RNN(self.n_in, self.n_hidden, self.n_out, activation=self.activation, seed=self.seed,
                    dtype=self.dtype)
        clone.params[...] = self.params
        clone.seq_len = self.seq_len
        return clone

    def state_dict(self) -> dict:
        state = {"kind": np.array("rnn"), "activation": np.array(self.activation),
                 "dims": np.array([self.n_in, self.n_hidden, self.n_out])}
        for name in PARAMS:
            state[name] = getattr(self, name).copy()
        return state

    @classmethod
    def load(cls, path, dtype: str = "float64") -> "RNN":
        """An RNN saved by ``save``, checked as :meth:`Network.load` checks: every array present,
        of its exact shape (never broadcast) and finite."""
        from ..validation import read_npz, require_keys

        where = f"network file {path}"
        data = read_npz(path, "network file")
        require_keys(data, ("dims", "activation") + tuple(PARAMS), where)
        try:
            n_in, n_hidden, n_out = (int(n) for n in np.asarray(data["dims"]).reshape(-1))
            net = cls(n_in, n_hidden, n_out, activation=str(data["activation"]), dtype=dtype)
        except (ValueError, TypeError) as exc:
            raise ValueError(f"{where}: bad dims or activation ({exc})") from None
        for name in PARAMS:
            target, value = getattr(net, name), np.asarray(data[name])
            if value.shape != target.shape:
                raise ValueError(f"{where}: {name} has shape {value.shape}, expected {target.shape}")
            if not np.issubdtype(value.dtype, np.number) or not np.all(np.isfinite(value)):
                raise ValueError(f"{where}: {name} contains NaN, Inf or non-numbers")
            target[...] = value
        return net

    def __repr__(self) -> str:
        return (f"rnn({self.n_in}, {self.n_hidden}, {self.n_out}, activation={self.activation!r}, "
                f"dtype={self.dtype!r})")


def rnn(n_in: int, n_hidden: int, n_out: int, activation: str = "tanh", seed: int = 0,
        dtype: str = "float64") -> RNN:
    """An Elman RNN ``(B, T, n_in) -> (B, n_out)`` reading the last hidden state (see :class:`RNN`)."""
    return RNN(n_in, n_hidden, n_out, activation=activation, seed=seed, dtype=dtype)


SAVED_KINDS["rnn"] = RNN
