"""Mutants of the NumPy reference backend (neurosim/backends/reference.py)."""
from . import mutant

BACKEND_TESTS = ["tests/test_conformance.py"]

mutant("backend-relax-sign", "neurosim/backends/reference.py",
       find='x += op.value * (-op.gain * ws.layer("errors", layer) + drive)',
       replace='x += op.value * (op.gain * ws.layer("errors", layer) + drive)',
       description="reference value update adds the error instead of subtracting it",
       tests=BACKEND_TESTS)

mutant("backend-relax-fixed-gain-from-values", "neurosim/backends/reference.py",
       find='gain = activations.derivative(net.activation, ws.layer("preds", layer))',
       replace='gain = activations.derivative(net.activation, ws.layer("values", layer))',
       description="reference FPA step uses f'(x_l) instead of the frozen f'(mu_l)",
       tests=BACKEND_TESTS)

mutant("backend-hebbian-no-1-over-b", "neurosim/backends/reference.py",
       find="scale = op.value / ws.batch / (_presynaptic_norm(ws, layer, op.eps) if op.flag else 1.0)",
       replace="scale = op.value / (_presynaptic_norm(ws, layer, op.eps) if op.flag else 1.0)",
       description="reference Hebbian term drops the 1/B batch mean",
       tests=BACKEND_TESTS)

mutant("backend-learn-grads-sign", "neurosim/backends/reference.py",
       find="                    run_state.grads -= change\n",
       replace="                    run_state.grads += change\n",
       description="reference iPC accumulates the weight change with the wrong sign",
       tests=BACKEND_TESTS)

mutant("backend-energy-drops-output", "neurosim/backends/reference.py",
       find='for layer in range(1, L + (output == "mse")):',
       replace="for layer in range(1, L):",
       description="reference energy leaves out the output layer's squared error",
       tests=BACKEND_TESTS)
