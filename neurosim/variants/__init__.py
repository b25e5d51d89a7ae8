"""Learning variants, one module each, registered by name (``neurosim.variant(name, **hyper)``)."""
from . import bp, il, zil  # noqa: F401  (registers the variants)
from . import copi, fpa, ilprox, implicit_sgd, ipc, seqil  # noqa: F401  (the variant zoo)
from .base import REGISTRY, Step, Variant, available, register, variant

__all__ = ["REGISTRY", "Step", "Variant", "available", "register", "variant"]
