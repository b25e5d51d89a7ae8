"""Learning variants, one module each, registered by name (``neurosim.variant(name, **hyper)``)."""
from . import bp, il, zil  # noqa: F401  (registers the variants)
from .base import REGISTRY, Step, Variant, available, register, variant

__all__ = ["REGISTRY", "Step", "Variant", "available", "register", "variant"]
