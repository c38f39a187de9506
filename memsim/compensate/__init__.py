"""Compensation strategies: IR drop (pre-distortion, per-column digital correction) and drift
(global drift compensation, BatchNorm re-calibration, VeRA+ with its drift-aware schedule).

Each strategy is a small class with ``fit`` (offline) and ``apply`` (at inference) and
reports ``storage_bytes``, what it keeps on chip.  Tile level: :mod:`.ir_drop`; network
level: :mod:`.network` (``compensated(net)`` view with digital hooks, IR drop) and
:mod:`.drift`; files: :mod:`.store` (versioned ``.npz``, no pickle).
"""
from .._lazy import lazy_getattr
from .ir_drop import ColumnCorrection, PreDistortion, quantize_columns

__all__ = ["ColumnCorrection", "PreDistortion", "quantize_columns", "compensated", "NetworkPreDistortion",
           "NetworkColumnCorrection", "headroom_conductances", "GlobalDriftCompensation", "BNRecalibration",
           "VeRAPlus", "DriftSampler", "save", "load"]

_MODULES = {"compensated": "network", "NetworkPreDistortion": "network", "NetworkColumnCorrection": "network",
            "headroom_conductances": "network", "GlobalDriftCompensation": "drift", "BNRecalibration": "drift",
            "VeRAPlus": "drift", "DriftSampler": "drift", "save": "store", "load": "store"}
__getattr__ = lazy_getattr(__name__, globals(), {name: (f"{__name__}.{module}", name)
                                                 for name, module in _MODULES.items()})
