"""Synthetic behaviour logs with a known answer: interests that move at known times.

Used by the demo, the tests and the benchmarks. :func:`generate` returns lazy
DataFrames; :mod:`.writers` puts them on disk in the raw formats stage 1 reads.
"""
from .config import (INJECTION_KINDS, REJECT_REASON_OF_KIND, InjectionConfig, SyntheticConfig,
                     SyntheticJobConfig)
from .generator import RAW_COLUMNS, SyntheticData, generate, items, raw_schema
from .writers import write_raw, write_synthetic

__all__ = [
    "INJECTION_KINDS", "REJECT_REASON_OF_KIND", "InjectionConfig", "SyntheticConfig", "SyntheticJobConfig",
    "RAW_COLUMNS", "SyntheticData", "generate", "items", "raw_schema", "write_raw", "write_synthetic",
]
