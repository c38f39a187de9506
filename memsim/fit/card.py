"""A fitted device card: RRAMParams fields + Variability, tied to the data by SHA-256 (JSON).

Format ``memsim-device-card`` version 1::

    {"format": "memsim-device-card", "version": 1,
     "params": {<every RRAMParams field, SI>}, "variability": {<every Variability field>},
     "v_read": 0.2, "g_lrs": S, "g_hrs": S,
     "data": [{"kind": "iv"|"pulses"|"spread", "file": name, "sha256": hex}, ...],
     "fit": {"fitted": [...], "held": {name: why}, "rel_error": {...}, "residuals": {...}}}

Loading checks the tag and version (:func:`memsim.io.check_format`) and every number through
RRAMParams and Variability, whose own checks apply.  The loaded :class:`DeviceCard` gives
what the rest of memsim takes: ``params`` (Crossbar(device_params=...), netlists, the solver,
learn/), ``preset()`` (a DevicePreset with levels between the measured HRS and LRS), and
``hardware_config()`` (memsim.nn tiles with this device's conductances and variability).
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .. import units
from ..devices.presets import DevicePreset, Variability
from ..devices.rram import RRAMParams
from ..io import check_format, read_bytes, read_json, write_atomic

FORMAT = "memsim-device-card"
VERSION = 1
KINDS = ("iv", "pulses", "spread")


def file_sha256(path: str | Path) -> str:
    """SHA-256 of a data file's bytes."""
    from .data import DATA_LIMIT

    return hashlib.sha256(read_bytes(path, "data file", DATA_LIMIT, ValueError)).hexdigest()


@dataclass(frozen=True)
class DeviceCard:
    """A fitted device: compact-model parameters, variability, measured read states, provenance."""

    params: RRAMParams
    variability: Variability
    v_read: float
    g_lrs: float
    g_hrs: float
    data: tuple = ()  # ({"kind", "file", "sha256"}, ...)
    fit: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {"format": FORMAT, "version": VERSION, "params": dataclasses.asdict(self.params),
                "variability": dataclasses.asdict(self.variability), "v_read": self.v_read,
                "g_lrs": self.g_lrs, "g_hrs": self.g_hrs, "data": [dict(d) for d in self.data], "fit": self.fit}

    def save(self, path: str | Path) -> Path:
        """Write the card as JSON, atomically."""
        return write_atomic(path, json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n")

    def check_data(self, path: str | Path) -> None:
        """Refuse, in one line, a data file that is not one this card was fitted to."""
        digest = file_sha256(path)
        if not any(d["sha256"] == digest for d in self.data):
            raise ValueError(f"{path} (sha256 {digest[:12]}...) is not among the data this card was fitted to: "
                             + ", ".join(f"{d['file']} ({d['sha256'][:12]}...)" for d in self.data))

    def preset(self, levels: int = 8, name: str = "fitted") -> DevicePreset:
        """A DevicePreset: ``levels`` conductances evenly between the measured HRS and LRS at
        ``v_read``, this card's parameters and variability."""
        levels = units.integer(levels, "levels", low=2, high=1024)
        lo, hi = self.params.g_range(self.v_read)
        g_low, g_high = max(self.g_hrs, lo), min(self.g_lrs, hi)
        return DevicePreset(name, tuple(np.linspace(g_low, g_high, levels)), self.v_read, self.params,
                            self.variability, source="memsim fit: " + ", ".join(d["file"] for d in self.data))

    def hardware_config(self, levels: int = 8, **options):
        """A memsim.nn HardwareConfig whose cells have this device's levels, model parameters
        (``device`` or ``1t1r`` cells) and variability (the ``rram`` noise model)."""
        from ..nn import noise as noise_models
        from ..nn.config import HardwareConfig
        from ..nn.mapping import Conductances

        preset = self.preset(levels)
        conductances = Conductances("fitted", preset.levels[0], preset.levels[-1], levels=preset.levels,
                                    source=preset.source)
        options.setdefault("noise", noise_models.model("rram", variability=self.variability))
        options.setdefault("v_read", self.v_read)
        return HardwareConfig(conductances=conductances, device=self.params, **options)


def load_card(path: str | Path) -> DeviceCard:
    """Read and check a device card; one ValueError line for a foreign, newer or malformed file."""
    path = Path(path)
    data = read_json(path, "device card", ValueError)
    check_format(data, path, "device card", FORMAT, VERSION, ValueError, advice="rerun memsim fit")
    try:
        params = RRAMParams(**_fields(data["params"], RRAMParams, path))
        variability = Variability(**_fields(data["variability"], Variability, path))

        v_read = units.real(data["v_read"], f"{path}: v_read", low=1e-3, high=1.0, unit="V")
        g_lrs = units.real(data["g_lrs"], f"{path}: g_lrs", low=0.0, unit="S")
        g_hrs = units.real(data["g_hrs"], f"{path}: g_hrs", low=0.0, unit="S")
        entries = []
        for entry in data["data"]:
            if (not isinstance(entry, dict) or entry.get("kind") not in KINDS or not isinstance(entry.get("file"), str)
                    or not re.fullmatch(r"[0-9a-f]{64}", str(entry.get("sha256")))):
                raise ValueError(f"{path}: each data entry needs kind ({', '.join(KINDS)}), file and a 64-hex sha256")
            entries.append({"kind": entry["kind"], "file": entry["file"], "sha256": entry["sha256"]})
        fit = data.get("fit", {})
        if not isinstance(fit, dict):
            raise ValueError(f"{path}: fit must be an object")
    except KeyError as err:
        raise ValueError(f"{path}: device card lacks {err}; rerun memsim fit") from None
    except TypeError as err:
        raise ValueError(f"{path}: malformed device card ({err}); rerun memsim fit") from None
    return DeviceCard(params, variability, v_read, g_lrs, g_hrs, tuple(entries), fit)


def _fields(values, cls, path) -> dict:
    names = [f.name for f in dataclasses.fields(cls)]
    if not isinstance(values, dict) or set(values) != set(names):
        got = sorted(values) if isinstance(values, dict) else type(values).__name__
        raise ValueError(f"{path}: {cls.__name__} needs exactly the fields {','.join(names)}, got {got}")
    return values
