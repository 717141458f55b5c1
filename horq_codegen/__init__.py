"""horq-codegen: HORQ binary neural networks to standalone C for ARM targets."""
__version__ = "0.1.0"

from .export import export  # noqa: E402

__all__ = ["export", "__version__"]
