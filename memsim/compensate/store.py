"""Fitted compensations as one versioned ``.npz``: a JSON header string plus plain arrays.

No pickle anywhere: :func:`load` opens the file with ``allow_pickle=False``, checks the
format name and version, that every strategy is a known kind and that every array named in
the header is present with the recorded dtype and shape; a foreign, truncated or tampered
file is refused with a ``ValueError`` saying what is wrong.  Values round-trip exactly.
"""
from __future__ import annotations

import io
import json
import zipfile

import numpy as np

from ..io import LIMITS, check_format, parse_json, read_bytes, write_atomic

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


def _check_inflated(raw: bytes, name: str) -> None:
    """Refuse an archive whose members would inflate beyond memsim's limit (a zip bomb)."""
    try:
        with zipfile.ZipFile(io.BytesIO(raw)) as archive:
            total = sum(member.file_size for member in archive.infolist())
    except zipfile.BadZipFile as exc:
        raise ValueError(f"{name} is not a readable memsim compensation file (truncated or foreign): {exc}") from None
    if total > LIMITS["compensation"]:
        raise ValueError(f"{name} would inflate to {total / 2**20:.0f} MiB; a memsim compensation file holds at "
                         f"most {LIMITS['compensation'] / 2**20:.0f} MiB")


def load(path_or_bytes):
    """Read a file written by :func:`save`: returns (strategies, info).  Only a regular file
    is read, within memsim's size limit, and an archive that would inflate beyond it is refused."""
    if isinstance(path_or_bytes, bytes):
        raw, name = path_or_bytes, "the data"
    else:
        raw, name = read_bytes(path_or_bytes, "compensation file", LIMITS["compensation"]), str(path_or_bytes)
    _check_inflated(raw, name)
    source = io.BytesIO(raw)
    try:
        data = np.load(source, allow_pickle=False)
        if not hasattr(data, "files"):
            raise ValueError("not an .npz archive")
        with data:
            if "header" not in data.files:
                raise ValueError(f"{name} is not a memsim compensation file (no header)")
            header = parse_json(str(data["header"][()]), f"{name} header")
            contents = {key: data[key] for key in data.files if key != "header"}
    except (zipfile.BadZipFile, OSError, EOFError, json.JSONDecodeError, KeyError) as exc:
        raise ValueError(f"{name} is not a readable memsim compensation file (truncated or foreign): {exc}") from None
    except ValueError as exc:
        if "compensation file" in str(exc):
            raise
        raise ValueError(f"{name} is not a readable memsim compensation file (truncated or foreign): {exc}") from None
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
            raise ValueError(f"{name}: unknown compensation kind {kind!r}; known: {sorted(kinds)}")
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
        except (KeyError, TypeError, ValueError, IndexError, AttributeError) as exc:
            raise ValueError(f"{name}: the {kind!r} entry is malformed ({type(exc).__name__}: {exc})") from None
    return strategies, header.get("info", {})
