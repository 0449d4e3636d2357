"""Models on the shared :class:`~dsrecon.models.base.Model` interface."""
from .base import Model, autograd_jacobian, generate
from .plrnn import PLRNN

__all__ = ["Model", "PLRNN", "autograd_jacobian", "generate"]
