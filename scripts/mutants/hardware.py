"""Mutants of hardware mapping and costs (neurosim/hardware/cost.py, mapping.py)."""
from . import mutant

mutant("hardware-hop-energy-north-south", "neurosim/hardware/cost.py",
       find='dy * self.e["hop_north_south"]',
       replace='dy * self.e["hop_east_west"]',
       description="a north-south hop is charged the east-west hop energy",
       tests=["tests/test_hardware.py", "tests/test_oracles_hardware.py"])

mutant("hardware-latency-no-batch", "neurosim/hardware/cost.py",
       find="latency = batch * sum(step.seconds for step in timesteps)",
       replace="latency = sum(step.seconds for step in timesteps)",
       description="a batch's latency is one sample's (samples do not run in turn)",
       tests=["tests/test_hardware.py", "tests/test_oracles_hardware.py"])

mutant("hardware-barrier-fraction", "neurosim/hardware/cost.py",
       find="fraction = (min(tiles, per_chip_tiles) - 1) / max(per_chip_tiles - 1, 1)",
       replace="fraction = min(tiles, per_chip_tiles) / max(per_chip_tiles - 1, 1)",
       description="the barrier grows from one tile too many (off by one)",
       tests=["tests/test_hardware.py", "tests/test_oracles_hardware.py"])

mutant("hardware-mesh-transposed", "neurosim/hardware/mapping.py",
       find="return Core(index, chip, tile % width, tile // width)",
       replace="return Core(index, chip, tile // width, tile % width)",
       description="cores are numbered down the mesh columns instead of along the rows",
       tests=["tests/test_hardware.py", "tests/test_oracles_hardware.py"])

mutant("hardware-core-capacity-strict", "neurosim/hardware/mapping.py",
       find='return (core.neurons + need[0] <= spec.core["neurons"].value',
       replace='return (core.neurons + need[0] < spec.core["neurons"].value',
       description="a core is never filled to its last neuron slot (strict capacity check)",
       tests=["tests/test_hardware.py", "tests/test_oracles_hardware.py"])
