"""Compensation strategies: IR drop (pre-distortion, per-column digital correction) and drift
(global drift compensation, BatchNorm re-calibration, VeRA+ with its drift-aware schedule).

Every strategy implements :class:`~memsim.compensate.base.Compensation`: ``fit`` (offline),
``attach(model)`` onto an :class:`~memsim.nn.AnalogModel`'s public hooks, ``detach()``, and
``storage_bytes`` (what it keeps on chip).  Tile level: :mod:`.ir_drop`; network level:
:mod:`.network` (IR drop) and :mod:`.drift`; files: :mod:`.store` (versioned ``.npz``, no
pickle).
"""
from .._lazy import lazy_getattr
from .ir_drop import ColumnCorrection, PreDistortion, quantize_columns

__all__ = ["ColumnCorrection", "PreDistortion", "quantize_columns", "Compensation", "attach_all", "attached",
           "NetworkPreDistortion", "NetworkColumnCorrection", "headroom_conductances", "GlobalDriftCompensation",
           "BNRecalibration", "VeRAPlus", "save", "load"]

_MODULES = {"Compensation": "base", "attach_all": "base", "attached": "base",
            "NetworkPreDistortion": "network", "NetworkColumnCorrection": "network",
            "headroom_conductances": "network", "GlobalDriftCompensation": "drift", "BNRecalibration": "drift",
            "VeRAPlus": "drift", "save": "store", "load": "store"}
__getattr__ = lazy_getattr(__name__, globals(), {name: (f"{__name__}.{module}", name)
                                                 for name, module in _MODULES.items()})
