"""Training-side HORQ layers and blocks (public API)."""
from .blocks import BiRealBlock, DownsampleShortcut, LearnableShift
from .layers import HORQConv2d, HORQLinear
from .quantizers import GRANULARITIES

__all__ = ["HORQConv2d", "HORQLinear", "GRANULARITIES", "LearnableShift", "DownsampleShortcut", "BiRealBlock"]
