"""Training-side HORQ layers (public API)."""
from .layers import HORQConv2d, HORQLinear
from .quantizers import GRANULARITIES

__all__ = ["HORQConv2d", "HORQLinear", "GRANULARITIES"]
