"""The circuit: populations of value and error neurons, synapse layers, and the ops that run them."""
from .layers import Dense
from .network import Network, ParameterList, mlp

__all__ = ["Dense", "Network", "ParameterList", "mlp"]
