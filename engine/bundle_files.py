"""The file names of a model bundle, apart from ``engine.bundle`` (which needs torch to load weights).

``engine.bundle`` writes and reads them; ``engine.rundir`` refuses to let an
export overwrite them. Pure: no imports.
"""
from __future__ import annotations

__all__ = ["WEIGHTS_FILE", "LEGACY_WEIGHTS_FILE", "GENOTYPE_FILE"]

WEIGHTS_FILE = "weights.safetensors"
LEGACY_WEIGHTS_FILE = "weights.pt"
GENOTYPE_FILE = "genotype.json"
