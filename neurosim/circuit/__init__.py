"""The circuit: populations of value and error neurons, synapse layers, and the ops that run them."""
from .layers import AvgPool2d, Conv2d, Dense, Flatten
from .network import Network, ParameterList, mlp
from .populations import Connection, Population, connections, populations
from .recurrent import RNN, rnn

__all__ = ["AvgPool2d", "Conv2d", "Dense", "Flatten", "Network", "ParameterList", "RNN", "mlp", "rnn",
           "Population", "Connection", "populations", "connections"]
