"""Mutants of the learning variants (neurosim/variants/*.py)."""
from . import mutant

mutant("il-stale-error-1", "neurosim/variants/il.py",
       find="                    schedule.error(1)  # against mu_1, which reads only the clamped input\n",
       replace="                    pass\n",
       description="IL never refreshes e_1 after x_1 relaxed (stale error of the first hidden layer)",
       tests=["tests/test_dynamics.py", "tests/test_gradients.py", "tests/test_oracles_schedules.py"])

mutant("il-top-hidden-frozen", "neurosim/variants/il.py",
       find="                for layer in range(1, L):\n                    schedule.relax(layer, gamma)",
       replace="                for layer in range(1, L - 1):\n                    schedule.relax(layer, gamma)",
       description="IL relaxes hidden layers 1..L-2 only (off by one: the top hidden layer never moves)",
       tests=["tests/test_dynamics.py", "tests/test_gradients.py", "tests/test_oracles_schedules.py"])

mutant("il-closed-form-path", "neurosim/variants/il.py",
       find="path = net.n_layers + 1 + 2 * ticks if net.n_layers >= 2 else 2",
       replace="path = net.n_layers + 2 * ticks if net.n_layers >= 2 else 2",
       description="IL's closed-form critical path misses the top feedback product",
       tests=["tests/test_complexity.py", "tests/test_oracles_schedules.py"])

mutant("zil-update-tick-late", "neurosim/variants/zil.py",
       find="return np.array([0] + [net.n_layers - layer for layer in range(1, net.n_layers + 1)],",
       replace="return np.array([0] + [net.n_layers - 1 for layer in range(1, net.n_layers + 1)],",
       description="Z-IL takes every Hebbian term at the last tick, not layer l's at L - l (condition 3 broken)",
       tests=["tests/test_zil_wavefront.py", "tests/test_gradients.py", "tests/test_oracles_schedules.py"])

mutant("fpa-default-ticks", "neurosim/variants/fpa.py",
       find='return net.n_layers if self.hyper["T"] is None else self.hyper["T"]',
       replace='return net.n_layers - 1 if self.hyper["T"] is None else self.hyper["T"]',
       description="FPA's default runs L - 1 ticks instead of the documented L",
       tests=["tests/test_variants_zoo.py", "tests/test_complexity.py", "tests/test_oracles_schedules.py"])

mutant("fpa-unfrozen-jacobian", "neurosim/variants/fpa.py",
       find='schedule.relax_fixed(layer, self.hyper["gamma"]).error(layer)',
       replace='schedule.relax(layer, self.hyper["gamma"]).error(layer)',
       description="FPA relaxes with the live Jacobian and activity (not the fixed prediction assumption)",
       tests=["tests/test_variants_zoo.py", "tests/test_oracles_schedules.py"])

mutant("seqil-step-off-by-one", "neurosim/variants/seqil.py",
       find='schedule.feedback(layer + 1).relax(layer, self.hyper["gamma"] / tick).error(layer)',
       replace='schedule.feedback(layer + 1).relax(layer, self.hyper["gamma"] / (tick + 1)).error(layer)',
       description="SeqIL's step gamma / t taken as gamma / (t + 1) (off by one tick)",
       tests=["tests/test_variants_zoo.py", "tests/test_oracles_schedules.py"])

mutant("seqil-bottom-up", "neurosim/variants/seqil.py",
       find="            for layer in range(L - 1, 0, -1):\n",
       replace="            for layer in range(1, L):\n",
       description="SeqIL sweeps bottom-up, so each layer reads the stale error above it",
       tests=["tests/test_variants_zoo.py", "tests/test_oracles_schedules.py"])

mutant("seqil-pi-inverted", "neurosim/variants/seqil.py",
       find='return 1.0 / (1.0 + self.hyper["beta"])',
       replace='return self.hyper["beta"] / (1.0 + self.hyper["beta"])',
       description="SeqIL's soft target weights the prediction by beta / (1 + beta) instead of 1 / (1 + beta)",
       tests=["tests/test_variants_zoo.py", "tests/test_oracles_schedules.py"])

mutant("ipc-mu1-not-repredicted", "neurosim/variants/ipc.py",
       find="            for layer in range(1, L + 1):\n                schedule.predict(layer, with_feedback=True)",
       replace="            for layer in range(2, L + 1):\n                schedule.predict(layer, with_feedback=True)",
       description="iPC does not re-predict mu_1 after W_1 moved",
       tests=["tests/test_variants_zoo.py", "tests/test_oracles_schedules.py"])

mutant("ipc-learn-rate-gamma", "neurosim/variants/ipc.py",
       find='schedule.learn(layer, self.hyper["lr_weights"])',
       replace='schedule.learn(layer, self.hyper["gamma"])',
       description="iPC moves the weights at the value step gamma instead of lr_weights",
       tests=["tests/test_variants_zoo.py", "tests/test_oracles_schedules.py"])

mutant("bp-closed-form-path", "neurosim/variants/bp.py",
       find='return {"macs": 2 * S + R, "ticks": self.n_ticks(net), "critical_path": 2 * net.n_layers}',
       replace='return {"macs": 2 * S + R, "ticks": self.n_ticks(net), "critical_path": 2 * net.n_layers - 1}',
       description="BP's closed-form critical path is one product short",
       tests=["tests/test_complexity.py", "tests/test_oracles_schedules.py"])

mutant("ilprox-unnormalised", "neurosim/variants/ilprox.py",
       find="schedule.hebbian(layer, -1.0, normalise_eps=eps)",
       replace="schedule.hebbian(layer, -1.0)",
       description="IL-prox's Hebbian term is not divided by the presynaptic norm (NLMS dropped)",
       tests=["tests/test_variants_zoo.py", "tests/test_oracles_schedules.py"])

mutant("copi-decorrelation-sign", "neurosim/variants/copi.py",
       find="R_new = corr @ R ",
       replace="R_new = -(corr @ R) ",
       description="COPI's decorrelation rule correlates the inputs (sign flip)",
       tests=["tests/test_variants_zoo.py", "tests/test_oracles_schedules.py"])

mutant("implicit-sgd-no-alpha", "neurosim/variants/implicit_sgd.py",
       find='state.grads[...] = (state.net.params - solution) / self.hyper["alpha"]',
       replace="state.grads[...] = state.net.params - solution",
       description="implicit SGD's gradient drops the 1/alpha of the proximal step",
       tests=["tests/test_variants_zoo.py", "tests/test_oracles_schedules.py"])

mutant("feedback-seed-ignored", "neurosim/variants/feedback.py",
       find='rng = np.random.default_rng([self.hyper["feedback_seed"], 0xFB])',
       replace="rng = np.random.default_rng([0, 0xFB])",
       description="random feedback matrices ignore feedback_seed",
       tests=["tests/test_il_feedback.py", "tests/test_variants_zoo.py", "tests/test_oracles_schedules.py"])

mutant("ipc-working-copy-stale", "neurosim/circuit/schedule.py",
       find="    np.copyto(working, params)\n",
       replace="    pass\n",
       description="iPC's working weights start from the last step's moved weights, not net.params",
       tests=["tests/test_fused_step.py"])
