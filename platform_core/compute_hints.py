"""What asset code declares about its step's needs: ``op_tags=compute_hints(cpu=..., gpu=...)``.

The hints are translated per target by the compute adapters (``adapters.compute.hints``).
"""

from adapters.compute.hints import compute_hints

__all__ = ["compute_hints"]
