"""Measured device data for the fit: quasi-static I-V sweeps and pulse trains, read from CSV.

I-V sweeps (one row per sample, rows of a sweep together and in time order)::

    t,v,i,cycle,device[,compliance]

``t`` time (s), ``v`` the voltage the source-measure unit was programmed to (V, top electrode
minus bottom), ``i`` the measured current (A), ``cycle`` an integer numbering the sweeps of a
device, ``device`` a label, ``compliance`` the current limit (A, > 0; empty or absent: none).

Pulse trains (one row per pulse, in pulse order)::

    amplitude,width,g_read,cycle,device[,v_read]

``amplitude`` (V, + SET, - RESET; 0 for a read with no pulse before it), ``width`` the flat top
(s), ``g_read`` the read conductance I/V after the pulse (S) at ``v_read`` (V; a column or the
reader's ``v_read`` argument).  Each train (a ``cycle`` of a ``device``) starts with a read
(amplitude 0): the state the first pulse starts from.

Every refusal is one ValueError line naming the file, the line and what is accepted; data
whose scale suggests another unit (currents in uA or mA, conductances in uS) give one
:class:`UnitWarning` naming the likely unit.  See docs/fitting.md.
"""
from __future__ import annotations

import csv
import hashlib
import math
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import units
from ..io import LIMITS, read_bytes, write_atomic

IV_COLUMNS = ("t", "v", "i", "cycle", "device")
IV_OPTIONAL = ("compliance",)
PULSE_COLUMNS = ("amplitude", "width", "g_read", "cycle", "device")
PULSE_OPTIONAL = ("v_read",)
#: Above these the numbers look like another unit (a filamentary cell passes well under 10 mA).
MAX_PLAUSIBLE_CURRENT = 1e-2
MAX_PLAUSIBLE_CONDUCTANCE = 1.0
#: Data files memsim fits are read up to this size.
DATA_LIMIT = LIMITS["results"]


class UnitWarning(UserWarning):
    """Numbers whose scale suggests another unit than the one the format asks for."""


@dataclass(frozen=True)
class Sweep:
    """One I-V sweep: arrays of equal length, time strictly increasing."""

    device: str
    cycle: int
    t: np.ndarray
    v: np.ndarray
    i: np.ndarray
    compliance: np.ndarray  # A per sample, inf where none

    @property
    def key(self) -> tuple[str, int]:
        return self.device, self.cycle


@dataclass(frozen=True)
class PulseTrain:
    """One pulse train: per row amplitude (V), width (s), read conductance after it (S); row 0
    is the initial read (amplitude 0)."""

    device: str
    cycle: int
    amplitude: np.ndarray
    width: np.ndarray
    g_read: np.ndarray
    v_read: float

    @property
    def key(self) -> tuple[str, int]:
        return self.device, self.cycle


@dataclass(frozen=True)
class Dataset:
    """What one file held: its sweeps or trains in file order, and the SHA-256 of its bytes."""

    kind: str  # "iv" or "pulses"
    path: str
    sha256: str
    groups: tuple

    @property
    def devices(self) -> list[str]:
        return list(dict.fromkeys(group.device for group in self.groups))

    def select(self, device: str | None = None, cycle: int | None = None) -> "Dataset":
        """The groups of one device and/or one cycle (same file hash)."""
        groups = tuple(g for g in self.groups if (device is None or g.device == device)
                       and (cycle is None or g.cycle == cycle))
        if not groups:
            raise ValueError(f"{self.path} has no {self.kind} data for device={device!r} cycle={cycle!r}")
        return Dataset(self.kind, self.path, self.sha256, groups)

    def __len__(self) -> int:
        return sum(len(g.t if self.kind == "iv" else g.amplitude) for g in self.groups)


def _table(raw: bytes, path, required: tuple, optional: tuple, what: str):
    """(column -> list of text, line numbers) of a CSV with a header naming ``required`` (any
    order) and optionally ``optional``."""
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ValueError(f"{what} {path} is not UTF-8 text") from None
    lines = [(n, line) for n, line in enumerate(text.splitlines(), 1)
             if line.strip() and not line.lstrip().startswith("#")]
    accepted = ",".join(required) + "".join(f"[,{name}]" for name in optional)
    if not lines:
        raise ValueError(f"{what} {path} is empty; expected a header {accepted} and data rows")
    rows = list(csv.reader(line for _, line in lines))
    header = [name.strip().lower() for name in rows[0]]
    missing = [name for name in required if name not in header]
    if missing:
        raise ValueError(f"{what} {path}: missing column(s) {','.join(missing)}; the header must name {accepted} "
                         f"(any order), got {','.join(header)[:200]}")
    unknown = [name for name in header if name not in required + optional]
    if unknown or len(set(header)) != len(header):
        bad = unknown or sorted({name for name in header if header.count(name) > 1})
        raise ValueError(f"{what} {path}: {'unknown' if unknown else 'repeated'} column(s) {','.join(bad)[:200]}; "
                         f"accepted: {accepted}")
    if len(rows) == 1:
        raise ValueError(f"{what} {path} has a header and no data rows")
    columns = {name: [] for name in header}
    numbers = []
    for (number, _), row in zip(lines[1:], rows[1:]):
        if len(row) != len(header):
            raise ValueError(f"{what} {path} line {number}: {len(row)} fields, the header has {len(header)}")
        for name, field in zip(header, row):
            columns[name].append(field.strip())
        numbers.append(number)
    return columns, np.array(numbers)


def _numbers(columns, name, lines, path, what, *, optional=False, positive=False) -> np.ndarray:
    values = np.empty(len(lines))
    for k, field in enumerate(columns[name]):
        if optional and field == "":
            values[k] = math.inf
            continue
        try:
            values[k] = float(field)
        except ValueError:
            raise ValueError(f"{what} {path} line {lines[k]}: column {name} must be a number, got {field[:40]!r}") from None
        if not math.isfinite(values[k]):
            raise ValueError(f"{what} {path} line {lines[k]}: column {name} is {field[:40]!r}; "
                             "NaN and infinite values are refused (leave out the row)")
        if positive and not values[k] > 0:
            raise ValueError(f"{what} {path} line {lines[k]}: column {name} must be > 0, got {field[:40]!r}")
    return values


def _cycles(columns, lines, path, what) -> np.ndarray:
    cycles = np.empty(len(lines), dtype=np.int64)
    for k, field in enumerate(columns["cycle"]):
        try:
            cycles[k] = int(field)
        except ValueError:
            raise ValueError(f"{what} {path} line {lines[k]}: cycle must be an integer, got {field[:40]!r}") from None
    for k, field in enumerate(columns["device"]):
        if not field:
            raise ValueError(f"{what} {path} line {lines[k]}: device is empty; give every row a device label")
    return cycles


def _groups(devices, cycles, lines, path, what) -> list[tuple[str, int, np.ndarray]]:
    """(device, cycle, row indices) of each contiguous block; refuses a block that recurs (rows
    of one sweep interleaved with another's)."""
    keys = list(zip(devices, cycles.tolist()))
    starts = [0] + [k for k in range(1, len(keys)) if keys[k] != keys[k - 1]]
    seen = {}
    blocks = []
    for start, end in zip(starts, starts[1:] + [len(keys)]):
        key = keys[start]
        if key in seen:
            raise ValueError(f"{what} {path}: the rows of device {key[0]!r} cycle {key[1]} are interleaved with "
                             f"another's (lines {lines[seen[key]]} and {lines[start]}); keep each one's rows together")
        seen[key] = start
        blocks.append((key[0], key[1], np.arange(start, end)))
    return blocks


def _likely_unit(values, scales) -> str:
    """The unit among ``scales`` ({name: factor}) that brings the largest |value| nearest 100 uA."""
    peak = float(np.max(np.abs(values)))
    return min(scales, key=lambda name: abs(math.log10(peak * scales[name] / 1e-4)))


def read_iv(path: str | Path) -> Dataset:
    """I-V sweeps from a CSV file (format in the module docstring and docs/fitting.md)."""
    what = "I-V data"
    raw = read_bytes(path, what, DATA_LIMIT, ValueError)
    columns, lines = _table(raw, path, IV_COLUMNS, IV_OPTIONAL, what)
    t = _numbers(columns, "t", lines, path, what)
    v = _numbers(columns, "v", lines, path, what)
    i = _numbers(columns, "i", lines, path, what)
    compliance = (_numbers(columns, "compliance", lines, path, what, optional=True, positive=True)
                  if "compliance" in columns else np.full(len(lines), math.inf))
    cycles = _cycles(columns, lines, path, what)
    sweeps = []
    for device, cycle, rows in _groups(columns["device"], cycles, lines, path, what):
        if rows.size < 3:
            raise ValueError(f"{what} {path}: device {device!r} cycle {cycle} has {rows.size} rows; a sweep needs >= 3")
        steps = np.diff(t[rows])
        if np.any(steps <= 0):
            bad = rows[1:][steps <= 0][0]
            raise ValueError(f"{what} {path} line {lines[bad]}: time is not increasing within device {device!r} "
                             f"cycle {cycle} (t = {t[bad]:g} s after {t[bad - 1]:g} s); sort each sweep by time")
        sweeps.append(Sweep(device, cycle, t[rows], v[rows], i[rows], compliance[rows]))
    median = float(np.median(np.abs(i)))
    if median > MAX_PLAUSIBLE_CURRENT:
        unit = _likely_unit(i, {"uA": 1e-6, "mA": 1e-3})
        warnings.warn(f"{what} {path}: the currents look like {unit}, not A (median |i| = {median:.3g}); "
                      "the i column must be in amperes", UnitWarning, stacklevel=2)
    return Dataset("iv", str(path), hashlib.sha256(raw).hexdigest(), tuple(sweeps))


def read_pulses(path: str | Path, v_read: float | None = None) -> Dataset:
    """Pulse trains from a CSV file; ``v_read`` (V) where the file has no ``v_read`` column."""
    what = "pulse data"
    raw = read_bytes(path, what, DATA_LIMIT, ValueError)
    columns, lines = _table(raw, path, PULSE_COLUMNS, PULSE_OPTIONAL, what)
    amplitude = _numbers(columns, "amplitude", lines, path, what)
    width = _numbers(columns, "width", lines, path, what)
    g_read = _numbers(columns, "g_read", lines, path, what, positive=True)
    if "v_read" in columns:
        reads = _numbers(columns, "v_read", lines, path, what)
    elif v_read is None:
        raise ValueError(f"{what} {path}: no v_read column; give the read voltage (--v-read V)")
    else:
        reads = np.full(len(lines), units.real(v_read, "v_read", unit="V"))
    cycles = _cycles(columns, lines, path, what)
    trains = []
    for device, cycle, rows in _groups(columns["device"], cycles, lines, path, what):
        if amplitude[rows[0]] != 0:
            raise ValueError(f"{what} {path} line {lines[rows[0]]}: device {device!r} cycle {cycle} starts with a "
                             "pulse; start each train with a read (amplitude 0), the state before the first pulse")
        if np.any(reads[rows] != reads[rows[0]]) or reads[rows[0]] == 0 or abs(reads[rows[0]]) > 1.0:
            raise ValueError(f"{what} {path}: device {device!r} cycle {cycle} needs one read voltage, non-zero and "
                             f"within [-1, 1] V, got {sorted(set(reads[rows].tolist()))[:4]}")
        pulses = rows[amplitude[rows] != 0]
        if np.any(width[pulses] <= 0):
            bad = pulses[width[pulses] <= 0][0]
            raise ValueError(f"{what} {path} line {lines[bad]}: a pulse's width must be > 0 s, got {width[bad]:g}")
        trains.append(PulseTrain(device, cycle, amplitude[rows], width[rows], g_read[rows], float(reads[rows[0]])))
    peak = float(np.max(g_read))
    if peak > MAX_PLAUSIBLE_CONDUCTANCE:
        unit = "uS" if peak * 1e-6 > 1e-8 else "nS"
        warnings.warn(f"{what} {path}: the conductances look like {unit}, not S (largest g_read = {peak:.3g}); "
                      "the g_read column must be in siemens", UnitWarning, stacklevel=2)
    return Dataset("pulses", str(path), hashlib.sha256(raw).hexdigest(), tuple(trains))


def _num(value) -> str:
    return format(float(value), ".12g")


def write_iv(path: str | Path, sweeps) -> Path:
    """Write sweeps in the I-V format (atomically); the compliance column where any has one."""
    with_cc = any(np.isfinite(s.compliance).any() for s in sweeps)
    lines = [",".join(IV_COLUMNS + (IV_OPTIONAL if with_cc else ()))]
    for s in sweeps:
        for k in range(s.t.size):
            row = [_num((s.t[k])), _num((s.v[k])), _num((s.i[k])), str(s.cycle), s.device]
            if with_cc:
                row.append(_num((s.compliance[k])) if math.isfinite(s.compliance[k]) else "")
            lines.append(",".join(row))
    return write_atomic(path, "\n".join(lines) + "\n")


def write_pulses(path: str | Path, trains) -> Path:
    """Write pulse trains in the pulse format (atomically), with a v_read column."""
    lines = [",".join(PULSE_COLUMNS + PULSE_OPTIONAL)]
    for tr in trains:
        for k in range(tr.amplitude.size):
            lines.append(",".join([_num((tr.amplitude[k])), _num((tr.width[k])), _num((tr.g_read[k])),
                                   str(tr.cycle), tr.device, _num((tr.v_read))]))
    return write_atomic(path, "\n".join(lines) + "\n")
