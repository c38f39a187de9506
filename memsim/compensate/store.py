"""Fitted compensations as one versioned ``.npz``: a JSON header string plus plain arrays.

No pickle anywhere: :func:`load` opens the file with ``allow_pickle=False``, checks the
format name and version, that every strategy is a known kind and that every array named in
the header is present with the recorded dtype and shape and holds no NaN or infinity; a
foreign, truncated or tampered file is refused with a ``ValueError`` saying what is wrong.  Values round-trip exactly.
"""
from __future__ import annotations

import io
import json
import math

import numpy as np

from .. import units
from ..errors import check_limit
from ..io import LIMITS, check_format, parse_json, read_bytes, read_npz, write_atomic

FORMAT = "memsim-compensation"
VERSION = 1


def _kinds():
    from .drift import BNRecalibration, GlobalDriftCompensation, VeRAPlus
    from .network import NetworkColumnCorrection, NetworkPreDistortion

    return {cls.name: cls for cls in (GlobalDriftCompensation, BNRecalibration, VeRAPlus,
                                      NetworkPreDistortion, NetworkColumnCorrection)}


def to_bytes(strategies, info: dict | None = None) -> bytes:
    """The ``.npz`` bytes of ``strategies`` (objects with name, meta(), arrays())."""
    kinds = _kinds()
    header = {"format": FORMAT, "version": VERSION, "info": info or {}, "strategies": []}
    arrays = {}
    for k, strategy in enumerate(strategies):
        if strategy.name not in kinds:
            raise ValueError(f"cannot store a strategy of kind {strategy.name!r}")
        entry = {"kind": strategy.name, "meta": strategy.meta(), "arrays": {}}
        for key, value in strategy.arrays().items():
            value = np.asarray(value)
            if value.dtype == object:
                raise ValueError(f"array {key!r} of {strategy.name} is not numeric")
            arrays[f"s{k}_{key}"] = value
            entry["arrays"][key] = {"dtype": value.dtype.str, "shape": list(value.shape)}
        header["strategies"].append(entry)
    buffer = io.BytesIO()
    np.savez(buffer, header=np.array(json.dumps(header, sort_keys=True)), **arrays)
    return buffer.getvalue()


def save(path, strategies, info: dict | None = None):
    """Write ``strategies`` to ``path`` (atomically)."""
    return write_atomic(path, to_bytes(strategies, info))


def _check_shapes(meta, name: str, kind: str) -> None:
    """Refuse a meta entry ``*_shape`` (the layer shapes a strategy redraws its arrays for) that
    is not a list of positive integers or asks for more elements than a compensation file may
    hold, before anything is drawn."""
    if not isinstance(meta, dict):
        raise ValueError(f"{name}: the {kind!r} entry is malformed (meta is not an object)")
    limit = LIMITS["compensation"]
    for key, shape in meta.items():
        if not str(key).endswith("_shape"):
            continue
        if not isinstance(shape, list) or not 1 <= len(shape) <= 8:
            raise ValueError(f"{name}: the {kind!r} entry's {key} must be a list of 1 to 8 sizes, got {units.shown(shape)}")
        sizes = [units.integer(size, f"{name}: the {kind!r} entry's {key} size", 1) for size in shape]
        shown = sizes if max(sizes) < 10 ** 15 else "(" + ", ".join(map(units.shown, sizes)) + ")"
        check_limit(f"{name}: the {kind!r} entry's {key} {shown}", math.prod(sizes), limit, "elements",
                    "the most a compensation file holds (memsim.io.LIMITS['compensation'])")


def load(path_or_bytes):
    """Read a file written by :func:`save`: returns (strategies, info).  Only a regular file
    is read, within memsim's size limit; an archive that would inflate beyond it, an array whose
    header declares more, NaN or infinity in any array, and layer shapes beyond the limit are
    refused (:func:`memsim.io.read_npz`) before anything large is allocated."""
    if isinstance(path_or_bytes, bytes):
        raw, name = path_or_bytes, "the data"
    else:
        raw, name = read_bytes(path_or_bytes, "compensation file", LIMITS["compensation"]), str(path_or_bytes)
    try:
        contents = read_npz(raw, name, LIMITS["compensation"], ValueError)
    except ValueError as exc:
        if "not a readable" not in str(exc):
            raise
        raise ValueError(f"{name} is not a readable memsim compensation file (truncated or foreign): "
                         f"{str(exc).split(': ', 1)[-1]}") from None
    if "header" not in contents:
        raise ValueError(f"{name} is not a memsim compensation file (no header)")
    header_array = contents.pop("header")
    if header_array.shape != () or header_array.dtype.kind != "U":
        raise ValueError(f"{name} is not a memsim compensation file (its header is not one JSON string)")
    header = parse_json(str(header_array[()]), f"{name} header", ValueError)
    check_format(header, name, "compensation file", FORMAT, VERSION, ValueError)
    kinds = _kinds()
    strategies = []
    entries = header.get("strategies", [])
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        raise ValueError(f"{name} has a malformed header (strategies)")
    for k, entry in enumerate(entries):
        kind = entry.get("kind")
        if not isinstance(entry.get("arrays", {}), dict):
            raise ValueError(f"{name}: the {kind!r} entry is malformed (arrays)")
        if kind not in kinds:
            raise ValueError(f"{name}: unknown compensation kind {units.shown(kind)}; known: {sorted(kinds)}")
        _check_shapes(entry.get("meta", {}), name, kind)
        arrays = {}
        for key, spec in entry.get("arrays", {}).items():
            full = f"s{k}_{key}"
            if full not in contents:
                raise ValueError(f"{name}: array {full!r} named in the header is missing (truncated file?)")
            value = contents[full]
            if not isinstance(spec, dict) or value.dtype.str != spec.get("dtype") \
                    or list(value.shape) != list(spec.get("shape", [])):
                raise ValueError(f"{name}: array {full!r} is {value.dtype.str} {list(value.shape)}, which the "
                                 f"header does not say ({spec!r})")
            arrays[key] = value
        try:
            strategies.append(kinds[kind].from_arrays(arrays, entry.get("meta", {})))
        except (KeyError, TypeError, ValueError, IndexError, AttributeError, OverflowError) as exc:
            raise ValueError(f"{name}: the {kind!r} entry is malformed ({type(exc).__name__}: {exc})") from None
    return strategies, header.get("info", {})
