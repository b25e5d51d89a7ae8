"""neurosim: tick-by-tick simulation of predictive-coding circuits.

    import neurosim as ns
    net = ns.mlp([64, 128, 128, 10], activation="tanh", seed=0)
    grads = ns.variant("zil").gradients(net, x, y)      # equals backprop's
    trace = ns.Simulator(net, ns.variant("il", T=20, gamma=0.1)).run(x, y, record=("energy", "errors"))
    cost = ns.hardware.map(net, ns.variant("il"), "loihi").cost(x, y)  # latency and energy on a chip
"""
from . import activations, backends, complexity, counting, datasets, events, hardware, optim
from .circuit import RNN, Dense, Network, mlp, rnn
from .circuit import layers
import sys as _sys

_sys.modules.setdefault(__name__ + ".layers", layers)  # ``from neurosim.layers import Conv2d`` works too
from .errors import DivergenceError
from .simulator import Simulator, Trace
from .training import History, Trainer, evaluate, train
from .variants import Step, Variant, available, register, variant

__version__ = "0.1.0"

__all__ = ["activations", "backends", "complexity", "counting", "datasets", "events", "hardware", "optim", "Dense", "Network", "RNN", "mlp", "rnn", "layers",
           "DivergenceError", "Simulator", "Trace", "History", "Trainer", "evaluate", "train", "Step", "Variant",
           "available", "register", "variant"]
