"""Mutants of the numba kernels (neurosim/kernels/*.py)."""
from . import mutant

KERNEL_TESTS = ["tests/test_conformance.py", "tests/test_kernels.py", "tests/test_dynamics.py",
                "tests/test_oracles_schedules.py"]

mutant("kernels-relax-tanh-sign", "neurosim/kernels/schedule.py",
       find="v = x[k] + rate * (fb[k] * (one - ak * ak) - e[k])",
       replace="v = x[k] + rate * (fb[k] * (one - ak * ak) + e[k])",
       description="tanh value update climbs its own error instead of descending it (sign flip)",
       tests=KERNEL_TESTS)

mutant("kernels-relax-generic-no-derivative", "neurosim/kernels/schedule.py",
       find="v = v + rate * (-gain * e[k] + activate_deriv_given(act_code, v, a[k]) * fb[k])",
       replace="v = v + rate * (-gain * e[k] + fb[k])",
       description="value update of non-tanh activations drops the factor f'(x_l) on the feedback",
       tests=KERNEL_TESTS)

mutant("kernels-hebbian-bias-no-1-over-b", "neurosim/kernels/schedule.py",
       find="        gb[i] += scale * s\n",
       replace="        gb[i] += s\n",
       description="Hebbian bias term drops its scale (the 1/B and the sign)",
       tests=KERNEL_TESTS)

mutant("kernels-energy-no-half", "neurosim/kernels/schedule.py",
       find="    total *= 0.5\n",
       replace="    total *= 1.0\n",
       description="energy loses the factor 1/2 of F = 1/2 sum ||e||^2",
       tests=KERNEL_TESTS)

mutant("kernels-soft-target-swapped", "neurosim/kernels/schedule.py",
       find="v = keep * target[b, i] + pi * s",
       replace="v = pi * target[b, i] + keep * s",
       description="soft output target blends y and s(mu_L) with swapped weights",
       tests=KERNEL_TESTS)

mutant("kernels-relax-fixed-gain-from-values", "neurosim/kernels/schedule.py",
       find="gain = activate_deriv_given(act_code, mu[k], a[k])",
       replace="gain = activate_deriv_given(act_code, x[k], a[k])",
       description="FPA's frozen gain f'(mu_l) read at the relaxed value x_l (non-tanh path)",
       tests=KERNEL_TESTS + ["tests/test_variants_zoo.py"])

mutant("kernels-feedforward-output-activation", "neurosim/kernels/dense.py",
       find="a[b, i] = activate(act_code, v) if layer < n_layers else v",
       replace="a[b, i] = activate(act_code, v) if layer <= n_layers else v",
       description="feed-forward applies the activation to the linear readout (off by one layer)",
       tests=KERNEL_TESTS)

mutant("kernels-sigmoid-derivative", "neurosim/kernels/scalar.py",
       find="        return a * (one - a)\n",
       replace="        return one - a * a\n",
       description="sigmoid derivative given the activity uses tanh's formula",
       tests=KERNEL_TESTS)

mutant("kernels-events-threshold-inclusive", "neurosim/kernels/events.py",
       find="    return abs(change) > threshold\n",
       replace="    return abs(change) >= threshold\n",
       description="send-on-delta sends when the change equals the threshold (a silent neuron sends 0)",
       tests=["tests/test_events.py", "tests/test_oracles_counts.py"])

mutant("kernels-events-relative-ignored", "neurosim/kernels/events.py",
       find="return abs(change) > threshold * abs(last)",
       replace="return abs(change) > threshold",
       description="relative send-on-delta compares the change with the bare threshold",
       tests=["tests/test_events.py", "tests/test_oracles_counts.py"])

mutant("kernels-conv-transposed-padding", "neurosim/kernels/conv.py",
       find="            r0 = i * stride - padding\n            for j in range(wo):\n                q0 = j * stride - padding\n                dcol[:] = 0.0\n",
       replace="            r0 = i * stride\n            for j in range(wo):\n                q0 = j * stride - padding\n                dcol[:] = 0.0\n",
       description="transposed convolution forgets the padding offset of the rows",
       tests=["tests/test_conv.py"])

mutant("kernels-reference-relax-sign", "neurosim/kernels/reference.py",
       find="x = x + gamma * (-state.errors[layer] + activations.derivative(activation, x) * fb[layer])",
       replace="x = x + gamma * (state.errors[layer] + activations.derivative(activation, x) * fb[layer])",
       description="NumPy reference of the IL tick adds the error instead of subtracting it",
       tests=["tests/test_kernels.py", "tests/test_fused_step.py"])

mutant("kernels-view-row-stride", "neurosim/kernels/views.py",
       find="strides=cgutils.pack_array(builder, [builder.mul(n_cols, itemsize), itemsize]),",
       replace="strides=cgutils.pack_array(builder, [builder.mul(n_rows, itemsize), itemsize]),",
       description="the hand-built 2-D view steps a row by the row count instead of the row length",
       tests=["tests/test_kernels.py"])

mutant("kernels-buffers-unaligned", "neurosim/kernels/layout.py",
       find="    start = -raw.ctypes.data % ALIGNMENT\n",
       replace="    start = 0\n",
       description="buffers meant to start on a cache line start wherever NumPy put them",
       tests=["tests/test_kernels.py"])

mutant("kernels-learn-predict-no-bias", "neurosim/kernels/dense.py",
       find="            bias[row] += rate * total\n",
       replace="            bias[row] += 0.0 * total\n",
       description="the one-pass learn-then-predict leaves the bias out of the Hebbian update",
       tests=["tests/test_conformance.py"])
