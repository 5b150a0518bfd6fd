"""File digests: which bytes made an output (weights files, sources), recorded in provenance."""

from __future__ import annotations

import hashlib
from pathlib import Path


def file_sha256(path: "str | Path") -> str:
    """SHA-256 of a file's bytes (hex), read in 1 MiB pieces."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()
