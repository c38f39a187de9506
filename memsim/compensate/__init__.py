"""Compensation strategies: IR drop (pre-distortion, per-column digital correction) and drift.

Each strategy is a small class with ``fit`` (offline) and ``apply`` (at inference) and
reports ``storage_bytes``, what it keeps on chip.
"""
from .ir_drop import ColumnCorrection, PreDistortion, quantize_columns

__all__ = ["ColumnCorrection", "PreDistortion", "quantize_columns"]
