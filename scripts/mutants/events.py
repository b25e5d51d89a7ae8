"""Mutants of the event model (neurosim/events/); its kernels are in kernels.py."""
from . import mutant

mutant("events-feedback-fan-out", "neurosim/events/record.py",
       find="                self.error_fan[k] = fan[layer][1]\n",
       replace="                self.error_fan[k] = fan[layer][0]\n",
       description="error messages use the forward fan-out for their synaptic events",
       tests=["tests/test_events.py"])

mutant("events-trace-last-tick-dropped", "neurosim/events/record.py",
       find="        keep = self.tick <= last\n",
       replace="        keep = self.tick < last\n",
       description="the event trace leaves out the messages of its last tick (off by one)",
       tests=["tests/test_events.py"])

mutant("events-negative-threshold-accepted", "neurosim/events/__init__.py",
       find="if not math.isfinite(threshold) or threshold < 0:",
       replace="if not math.isfinite(threshold):",
       description="a negative send-on-delta threshold is accepted (every neuron sends every tick)",
       tests=["tests/test_events.py"])

mutant("events-active-fraction-tick-0", "neurosim/events/trace.py",
       find="return float(self.sent[1:, relaxing].sum()) / capacity if capacity else 0.0",
       replace="return float(self.sent[:, relaxing].sum()) / capacity if capacity else 0.0",
       description="the active fraction counts the tick-0 messages against the relaxation ticks' capacity",
       tests=["tests/test_events.py", "tests/test_oracles_counts.py"])

mutant("events-totals-recompute-column", "neurosim/kernels/events.py",
       find="value_macs += np.int64(np.rint(count * value_fan[k])) + messages[k, 2] * value_recompute[k]",
       replace="value_macs += np.int64(np.rint(count * value_fan[k])) + messages[k, 3] * value_recompute[k]",
       description="the running totals charge a prediction's recomputation by the error column's flag",
       tests=["tests/test_events.py"])
