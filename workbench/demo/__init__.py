"""Demo enterprises and a demo region: the plants (:mod:`.plants`, :mod:`.steel`, :mod:`.textile`)
on shared machinery (:mod:`.engine`), a regional population (:mod:`.region`), and loading them
through the ordinary ingest path (:mod:`.load`).
"""
from workbench.demo.plants import (
    ANOMALY_KINDS,
    DEFAULT_METER_COUNT,
    DEFAULT_SEED,
    GENERATOR_VERSION,
    PLANTS,
    enterprise_dir,
    generate,
)

__all__ = ["generate", "enterprise_dir", "ANOMALY_KINDS", "DEFAULT_METER_COUNT", "DEFAULT_SEED",
           "GENERATOR_VERSION", "PLANTS"]
