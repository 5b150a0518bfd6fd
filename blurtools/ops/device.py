"""Device selection: ``auto|cpu|cuda|cuda:N``."""

from __future__ import annotations

import torch

from blurtools.errors import UsageError


def resolve_device(spec: str = "auto") -> torch.device:
    """Turn a user's device string into a ``torch.device``.

    Args:
        spec: ``auto`` (the first GPU when CUDA is available, else the CPU), ``cpu``, ``cuda`` or ``cuda:N``.

    Raises:
        UsageError: for an unknown spelling, or a CUDA device that this machine does not have.

    Example:
        >>> resolve_device("cpu")
        device(type='cpu')
    """
    spec = (spec or "auto").strip().lower()
    if spec == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if spec == "cpu":
        return torch.device("cpu")
    if spec == "cuda" or spec.startswith("cuda:"):
        if not torch.cuda.is_available():
            raise UsageError(f"--device {spec}: CUDA is not available on this machine (use --device cpu or auto)")
        index = 0
        if ":" in spec:
            try:
                index = int(spec.split(":", 1)[1])
            except ValueError:
                raise UsageError(f"--device {spec}: expected cuda:N with N an integer") from None
        if index >= torch.cuda.device_count():
            raise UsageError(f"--device {spec}: only {torch.cuda.device_count()} CUDA device(s) present")
        return torch.device("cuda", index)
    raise UsageError(f"--device {spec}: expected auto, cpu, cuda or cuda:N")
