"""Bridges to other simulators and formats: Brian2 (an independent simulation of the same
circuit) and NIR (the inference graph, for other simulators and chips).

    from neurosim.interop import brian2, nir
"""
