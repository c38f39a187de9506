"""JSON array specs: a small, validated description of a crossbar and its inputs.

Example::

    {"kind": "device", "rows": 8, "cols": 8, "r_row": 1.0, "r_col": 1.0,
     "preset": "rram8", "seed": 0, "v_read": 0.2, "v_gate": 1.8}

Keys (all optional except ``kind``, ``rows`` and ``cols`` unless ``g`` is given):

- ``kind``: ``"ohmic"``, ``"device"`` or ``"1t1r"``;
- ``rows``, ``cols``: array size;
- ``r_row``, ``r_col``: wire resistance per segment, ohm (default 1.0);
- ``g``: the (rows, cols) conductance matrix in S (read conductance at ``v_read`` for RRAM
  cells); without it, cells take random levels of ``preset`` drawn with ``seed``;
- ``preset``: device preset name (``"rram8"``, ``"rram64"``), ``seed``: integer;
- ``v_read``: read voltage, V (default 0.2); ``v_gate``: 1T1R gate voltage, V (default 1.8);
- ``inputs``: the input voltage vector (default: every row at ``v_read``).

Unknown keys are refused, so a typo never silently falls back to a default.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .. import units
from ..devices.presets import preset as get_preset
from ..io import LIMITS, read_json
from .array import KINDS, Crossbar, as_real_array

#: Most cells a spec may ask for (4096 x 4096).
MAX_CELLS = 4096 * 4096
KEYS = {"kind", "rows", "cols", "r_row", "r_col", "g", "preset", "seed", "v_read", "v_gate", "inputs"}


def _int(spec, key, default=None, low=1, high=None):
    return units.integer(spec.get(key, default), f"spec {key!r}", low, high)


def _num(spec, key, default):
    return units.real(spec.get(key, default), f"spec {key!r}")


def build(spec: dict, device=None) -> tuple[Crossbar, np.ndarray]:
    """(Crossbar, input vector) from a spec dict; raises ValueError naming the bad key.

    ``device``: the RRAM cells' compact model (:class:`memsim.devices.VerilogA` or
    ``RRAMParams``; default the built-in model); conductances are read at ``v_read`` with it.
    """
    if not isinstance(spec, dict):
        raise ValueError(f"an array spec must be a JSON object, got {type(spec).__name__}")
    unknown = set(spec) - KEYS
    if unknown:
        raise ValueError(f"unknown spec key(s) {sorted(unknown)}; accepted keys: {sorted(KEYS)}")
    kind = spec.get("kind")
    if kind not in KINDS:
        raise ValueError(f"spec 'kind' must be one of {KINDS}, got {kind!r}")
    v_read = _num(spec, "v_read", 0.2)
    r_row, r_col = _num(spec, "r_row", 1.0), _num(spec, "r_col", 1.0)
    if "g" in spec:
        if not isinstance(spec["g"], list):
            raise ValueError("spec 'g' must be a list of rows of conductances (S)")
        g = as_real_array(spec["g"], "spec 'g' (conductances, S)", 2)
    else:
        rows, cols = _int(spec, "rows", high=MAX_CELLS), _int(spec, "cols", high=MAX_CELLS)
        if rows * cols > MAX_CELLS:
            raise ValueError(f"spec array {rows}x{cols} is larger than memsim accepts (4096x4096)")
        name = spec.get("preset", "rram8")
        if not isinstance(name, str):
            raise ValueError(f"spec 'preset' must be a preset name, got {name!r}")
        levels = np.asarray(get_preset(name).levels)
        rng = np.random.default_rng(_int(spec, "seed", 0, low=0, high=2 ** 64 - 1))
        g = levels[rng.integers(0, levels.size, (rows, cols))]
    if device is not None and kind == "ohmic":
        raise ValueError("a device model applies to 'device' and '1t1r' cells, not ohmic ones")
    xb = Crossbar.of_kind(kind, g, r_row=r_row, r_col=r_col, v_read=v_read, v_gate=_num(spec, "v_gate", 1.8),
                          **({} if device is None else {"params": device}))
    inputs = spec.get("inputs")
    if inputs is None:
        return xb, np.full(xb.rows, v_read)
    if not isinstance(inputs, list):
        raise ValueError(f"spec 'inputs' must be a list of {xb.rows} numbers (V)")
    v_in = as_real_array(inputs, "spec 'inputs' (V)", 1, shape=(xb.rows,))
    return xb, v_in


def load(path: str | Path, device=None) -> tuple[Crossbar, np.ndarray]:
    """Read a JSON spec file and build it (``device`` as for :func:`build`)."""
    return build(read_json(path, "spec file", limit=LIMITS["spec"]), device)
