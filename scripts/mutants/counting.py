"""Mutants of counting and closed forms (neurosim/counting.py, neurosim/circuit/work.py,
neurosim/complexity.py)."""
from . import mutant

COUNT_TESTS = ["tests/test_complexity.py", "tests/test_populations.py", "tests/test_oracles_counts.py"]

mutant("work-value-update-ops", "neurosim/circuit/work.py",
       find='return ("value_update", layer, 0, 3 * batch * _size(net, layer), batch * _size(net, layer))',
       replace='return ("value_update", layer, 0, 2 * batch * _size(net, layer), batch * _size(net, layer))',
       description="a value update is counted as 2 elementwise ops per neuron instead of 3",
       tests=COUNT_TESTS)

mutant("work-feedback-messages-at-receiver", "neurosim/circuit/work.py",
       find='return ("feedback", layer, net.feedback_macs(layer, batch), 0, batch * _size(net, layer))',
       replace='return ("feedback", layer, net.feedback_macs(layer, batch), 0, batch * _size(net, layer - 1))',
       description="feedback messages counted by the receiving layer's size instead of the sending errors'",
       tests=COUNT_TESTS)

mutant("work-feedforward-output-activation", "neurosim/circuit/work.py",
       find="batch * _size(net, layer) * (2 if hidden else 1), batch * _size(net, layer - 1))",
       replace="batch * _size(net, layer) * 2, batch * _size(net, layer - 1))",
       description="the feed-forward count charges an activation to the linear output layer",
       tests=COUNT_TESTS)

mutant("counting-critical-path-elementwise", "neurosim/counting.py",
       find="        level += 1 if event.macs > 0 else 0\n",
       replace="        level += 1\n",
       description="the critical path counts elementwise work as sequential products",
       tests=COUNT_TESTS)

mutant("counting-totals-calls", "neurosim/counting.py",
       find="            row[0] += times * calls\n",
       replace="            row[0] += calls\n",
       description="the running totals count a repeated tick template once, not once per tick",
       tests=COUNT_TESTS)

mutant("complexity-updated-any", "neurosim/complexity.py",
       find="updated = all(np.any(step.grads[start:stop] != 0) for start, stop in net.param_groups())",
       replace="updated = any(np.any(step.grads[start:stop] != 0) for start, stop in net.param_groups())",
       description="a step counts as updating every layer when any one layer moved",
       tests=COUNT_TESTS)
