"""Mutants of the optimisers (neurosim/optim.py)."""
from . import mutant

mutant("optim-sgd-sign", "neurosim/optim.py",
       find="return params - self.lr * grads, {}",
       replace="return params + self.lr * grads, {}",
       description="plain SGD ascends the loss",
       tests=["tests/test_optim.py", "tests/test_oracles_optim.py"])

mutant("optim-sgd-momentum-dampened", "neurosim/optim.py",
       find="else self.momentum * self.velocity + grads",
       replace="else self.momentum * self.velocity + (1 - self.momentum) * grads",
       description="SGD momentum dampens the new gradient by (1 - momentum), not PyTorch's convention",
       tests=["tests/test_optim.py", "tests/test_oracles_optim.py"])

mutant("optim-adam-no-v-bias-correction", "neurosim/optim.py",
       find="v_hat = v / (1 - self.beta2 ** t)",
       replace="v_hat = v",
       description="Adam forgets the bias correction of its second moment",
       tests=["tests/test_optim.py", "tests/test_oracles_optim.py"])

mutant("optim-adam-t-stuck", "neurosim/optim.py",
       find="t = 1 if fresh else self.t + 1",
       replace="t = 1 if fresh else self.t",
       description="Adam's step counter never advances after the first step",
       tests=["tests/test_optim.py", "tests/test_oracles_optim.py"])

mutant("optim-mq-rho-off-by-one", "neurosim/optim.py",
       find="rho = min(n_steps / (n_steps + 1), self.rho_max)",
       replace="rho = min((n_steps + 1) / (n_steps + 2), self.rho_max)",
       description="MQ's running-average weight counts one step too many",
       tests=["tests/test_optim.py", "tests/test_oracles_optim.py"])

mutant("optim-state-not-checked", "neurosim/optim.py",
       find='for name, value in (("parameters", params), *state.items()):',
       replace='for name, value in (("parameters", params),):',
       description="an optimiser step writes a non-finite running state without refusing it",
       tests=["tests/test_optim.py", "tests/test_training.py", "tests/test_oracles_optim.py"])
