"""How a network is laid onto crossbars: :class:`HardwareConfig`, one frozen dataclass.

Every non-ideality defaults to off; :func:`memsim.nn.analog` takes a config and a torch
model and returns the analog copy.  Its fields come in four groups, each a small frozen
dataclass that a config can be built from: :class:`ArrayConfig` (the crossbar and its cells),
:class:`ConverterConfig` (DAC, ADC, bound management), :class:`NoiseConfig` (noise models)
and :class:`NumericsConfig` (precision, solver tolerance, threads, the exact path)::

    HardwareConfig(array=ArrayConfig(tile=64, cells="1t1r", r_wire=2.5),
                   converters=ConverterConfig(dac_bits=8, adc_bits=8))

is ``HardwareConfig(tile=64, cells="1t1r", r_wire=2.5, dac_bits=8, adc_bits=8)``; the flat
keywords and attributes (``cfg.r_wire``) stay, and ``cfg.array`` etc. give the groups back.
"""
from __future__ import annotations

import functools
import inspect
import math
from dataclasses import dataclass, fields, replace

import numpy as np

from .. import units
from . import noise as noise_models
from .mapping import Conductances, check_tile, conductances

CELLS = ("ohmic", "device", "1t1r")
INPUTS = ("amplitude", "bit-serial")
DTYPES = ("float32", "float64")


def _check_bits(value, name):
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not 1 <= value <= 24:
        raise ValueError(f"{name} must be an integer number of bits in [1, 24] or None (ideal), got {value!r}")
    return int(value)


def _check_number(value, name, minimum=0.0, strict=False) -> float:
    """``value`` through memsim's one numeric check (finite, booleans and huge ints refused,
    -0.0 made 0.0), at least ``minimum`` (above it with ``strict``)."""
    number = units.real(value, name, low=minimum)
    if strict and number == minimum:
        raise ValueError(f"{name} must be a finite number > {minimum}, got {units.shown(number)}")
    return number


@dataclass(frozen=True)
class HardwareConfig:
    """How a network is laid onto crossbars.  Every non-ideality defaults to off.

    Parameters
    ----------
    tile : int
        T: tiles of T x T cells (T inputs x T/2 differential outputs).
    conductances : str or Conductances
        Programmable conductances: ``rram8`` (8 levels 5-40 uS at 0.2 V), ``rram64``,
        ``analog`` (continuous 5-40 uS) or ``pcm`` (continuous 0-25 uS); see
        :func:`memsim.nn.mapping.conductances`.
    scale : "column" or "tile"
        Digital weight scale per tile column or per tile.
    cells : "ohmic", "device" or "1t1r"
        Linear cells; selector-less RRAM (the compact model's sinh read I-V, sneak paths
        through the wires); 1T1R (RRAM + NMOS, gates at ``v_gate``).
    r_wire : float
        Wire resistance per segment of rows and columns, ohm (0: ideal wires).
    v_read : float
        Read voltage of a full-scale input, V; the levels are defined at this voltage.
    v_gate : float
        1T1R gate voltage, V.
    inputs : "amplitude" or "bit-serial"
    dac_bits, adc_bits : int or None
        Converter resolutions (signed); None is an ideal converter.
    adc_range : "calibrated" or float
        ADC full scale: calibrated per tile on the calibration inputs (times
        ``adc_headroom``), or a bound in weight units (the tile output ``W x`` for inputs
        normalised to |x| <= 1; aihwkit's ``out_bound`` = 12).
    out_noise : float
        Gaussian output noise per tile output and read, weight units (aihwkit's
        ``out_noise``, default there 0.06).
    bound_management : bool
        When an output clips, repeat the read with the inputs halved (aihwkit's iterative
        bound management, at most 10 halvings).
    noise : str or model
        ``none``, ``rram``, ``pcm`` or a model object from :mod:`memsim.nn.noise`.
    dtype : "float32" or "float64"
        Precision of the tiles' tensors (the solver's effective matrices are computed in
        float64 and cast).
    verify_1t1r : bool
        Program 1T1R cells so that the whole cell (RRAM + transistor) reads the target at
        ``v_read`` (write-verify on the cell current); else the RRAM alone is set to it.
    tol : float
        Solver tolerance for nonlinear cells (relative node-voltage update).
    workers : int
        Threads for the nonlinear solves and effective matrices.
    exact : bool
        Selector-less cells with wire resistance and 1T1R cells: run the Numba solver per
        input vector (the reference) instead of the batched model
        (:class:`memsim.nn.tile.NonlinearBatched`, checked against the solver whenever it is
        programmed).
    device : RRAMParams or VerilogA, optional
        The compact model of ``device`` and ``1t1r`` cells: the built-in Stanford-PKU model
        with other parameters, or a compiled Verilog-A device (:class:`memsim.devices.VerilogA`,
        read through its table by the batched model and the solver); None is the built-in
        model with its published parameters.
    array, converters, numerics : ArrayConfig, ConverterConfig, NumericsConfig, optional
        Groups of the fields above (keyword only): each sets all its fields; a field given
        in a group is not given again as a keyword.  ``noise`` also takes a
        :class:`NoiseConfig` (``noise`` and ``out_noise``).  ``cfg.array``,
        ``cfg.converters``, ``cfg.numerics`` and ``cfg.groups`` give them back.
    """

    tile: int = 128
    conductances: object = "rram8"
    scale: str = "column"
    cells: str = "ohmic"
    r_wire: float = 0.0
    v_read: float = 0.2
    v_gate: float = 1.8
    inputs: str = "amplitude"
    dac_bits: int | None = None
    adc_bits: int | None = None
    adc_range: object = "calibrated"
    adc_headroom: float = 1.0
    out_noise: float = 0.0
    bound_management: bool = False
    noise: object = "none"
    dtype: str = "float32"
    verify_1t1r: bool = True
    tol: float = 1e-6
    workers: int = 1
    exact: bool = False
    device: object = None

    def __post_init__(self):
        object.__setattr__(self, "tile", check_tile(self.tile))
        if isinstance(self.conductances, str):
            conductances(self.conductances)  # raises for an unknown name
        elif not isinstance(self.conductances, Conductances):
            raise ValueError("conductances must be a name or a memsim.nn.mapping.Conductances")
        if self.scale not in ("column", "tile"):
            raise ValueError(f"scale must be 'column' or 'tile', got {self.scale!r}")
        if self.cells not in CELLS:
            raise ValueError(f"cells must be one of {CELLS}, got {self.cells!r}")
        for name, what, strict in (("r_wire", "r_wire (ohm)", False), ("v_read", "v_read (V)", True),
                                   ("v_gate", "v_gate (V)", False), ("adc_headroom", "adc_headroom", True),
                                   ("out_noise", "out_noise (weight units)", False), ("tol", "tol", True)):
            object.__setattr__(self, name, _check_number(getattr(self, name), what, strict=strict))
        if self.inputs not in INPUTS:
            raise ValueError(f"inputs must be one of {INPUTS}, got {self.inputs!r}")
        _check_bits(self.dac_bits, "dac_bits")
        _check_bits(self.adc_bits, "adc_bits")
        if self.inputs == "bit-serial" and self.dac_bits is None:
            raise ValueError("bit-serial inputs need dac_bits (the number of input bits)")
        if not (self.adc_range == "calibrated" or (not isinstance(self.adc_range, (str, bool))
                                                   and _check_number(self.adc_range, "adc_range", strict=True))):
            raise ValueError(f"adc_range must be 'calibrated' or a bound > 0 in weight units, got {self.adc_range!r}")
        if isinstance(self.noise, str):
            if self.noise not in noise_models.MODELS:
                raise ValueError(f"noise must be one of {noise_models.MODELS} or a model object, got {self.noise!r}")
        elif not all(hasattr(self.noise, name) for name in ("program", "at_time", "read_sigma")):
            raise ValueError("noise must be a name or an object with program, at_time and read_sigma")
        if self.dtype not in DTYPES:
            raise ValueError(f"dtype must be one of {DTYPES}, got {self.dtype!r}")
        if isinstance(self.workers, bool) or not isinstance(self.workers, (int, np.integer)) or self.workers < 1:
            raise ValueError(f"workers must be an integer >= 1, got {self.workers!r}")
        if not isinstance(self.exact, (bool, np.bool_)):
            raise ValueError(f"exact must be True or False, got {self.exact!r}")
        if self.device is not None:
            from ..devices import RRAMParams, VerilogA

            if not isinstance(self.device, (RRAMParams, VerilogA)):
                raise ValueError("device must be a memsim.devices.RRAMParams, a memsim.devices.VerilogA or None, "
                                 f"got {type(self.device).__name__}")
            if self.cells == "ohmic":
                raise ValueError("device applies to 'device' and '1t1r' cells; ohmic cells have no compact model")
        if self.cells != "ohmic" and self.cond.g_min <= 0:
            raise ValueError(f"{self.cells} cells need conductances > 0 S (the RRAM model has no open "
                             f"state); {self.cond.name!r} reaches 0 S, use rram8, rram64 or analog")

    @property
    def cond(self) -> Conductances:
        return conductances(self.conductances) if isinstance(self.conductances, str) else self.conductances

    def noise_model(self):
        if not isinstance(self.noise, str):
            return self.noise
        if self.noise == "rram":
            from ..devices import preset

            options = {}
            if self.cond.name in ("rram8", "rram64"):
                options["variability"] = preset(self.cond.name).variability
            return noise_models.model("rram", **options)
        if self.noise == "pcm":
            return noise_models.model("pcm", g_max=self.cond.g_max)
        return noise_models.model(self.noise)

    @property
    def torch_dtype(self):
        import torch

        return getattr(torch, self.dtype)

    def replace(self, **changes) -> "HardwareConfig":
        return replace(self, **changes)

    # -- the groups ------------------------------------------------------------------------
    @property
    def array(self) -> "ArrayConfig":
        """The crossbar and its cells (:class:`ArrayConfig`)."""
        return self._group(ArrayConfig)

    @property
    def converters(self) -> "ConverterConfig":
        """DAC, ADC and bound management (:class:`ConverterConfig`)."""
        return self._group(ConverterConfig)

    @property
    def numerics(self) -> "NumericsConfig":
        """Precision, solver tolerance, threads, the exact path (:class:`NumericsConfig`)."""
        return self._group(NumericsConfig)

    @property
    def groups(self) -> dict:
        """The four groups by their keyword: ``array``, ``converters``, ``noise``
        (:class:`NoiseConfig`; ``cfg.noise`` stays the noise model's name or object) and
        ``numerics``."""
        return {"array": self.array, "converters": self.converters, "noise": self._group(NoiseConfig),
                "numerics": self.numerics}

    def _group(self, cls):
        return cls(**{name: getattr(self, name) for name in _names(cls)})


def _names(cls) -> tuple:
    return tuple(f.name for f in fields(cls))


def _checked_group(group):
    """Validate a group's fields as a config with the other fields at their defaults, and keep
    their checked values (cross-field rules live inside one group each)."""
    config = HardwareConfig(**{name: getattr(group, name) for name in _names(type(group))})
    for name in _names(type(group)):
        object.__setattr__(group, name, getattr(config, name))


@dataclass(frozen=True)
class ArrayConfig:
    """The crossbar and its cells: fields as in :class:`HardwareConfig`."""

    tile: int = 128
    conductances: object = "rram8"
    scale: str = "column"
    cells: str = "ohmic"
    r_wire: float = 0.0
    v_read: float = 0.2
    v_gate: float = 1.8
    device: object = None
    verify_1t1r: bool = True

    __post_init__ = _checked_group


@dataclass(frozen=True)
class ConverterConfig:
    """DAC, ADC and bound management: fields as in :class:`HardwareConfig`."""

    inputs: str = "amplitude"
    dac_bits: int | None = None
    adc_bits: int | None = None
    adc_range: object = "calibrated"
    adc_headroom: float = 1.0
    bound_management: bool = False

    __post_init__ = _checked_group


@dataclass(frozen=True)
class NoiseConfig:
    """Noise: the programming, drift and read noise model and the output noise, fields as in
    :class:`HardwareConfig`; given as its ``noise`` keyword."""

    noise: object = "none"
    out_noise: float = 0.0

    __post_init__ = _checked_group


@dataclass(frozen=True)
class NumericsConfig:
    """Precision, solver tolerance, threads and the exact path: fields as in :class:`HardwareConfig`."""

    dtype: str = "float32"
    tol: float = 1e-6
    workers: int = 1
    exact: bool = False

    __post_init__ = _checked_group


GROUPS = {"array": ArrayConfig, "converters": ConverterConfig, "noise": NoiseConfig, "numerics": NumericsConfig}


def _grouped(flat_init):
    """HardwareConfig's __init__ taking the groups too: each group sets its fields; a field
    given both in a group and as a keyword is refused."""

    @functools.wraps(flat_init)
    def __init__(self, *args, array=None, converters=None, numerics=None, **flat):
        given = {"array": array, "converters": converters, "numerics": numerics}
        if isinstance(flat.get("noise"), NoiseConfig):
            given["noise"] = flat.pop("noise")
        for keyword, group in given.items():
            if group is None:
                continue
            cls = GROUPS[keyword]
            if not isinstance(group, cls):
                raise ValueError(f"{keyword} must be a memsim.nn.config.{cls.__name__}, got {type(group).__name__}")
            twice = [name for name in _names(cls) if name in flat]
            if twice:
                raise ValueError(f"{', '.join(twice)} given both in {keyword}= and as a keyword; give each field once")
            flat.update({name: getattr(group, name) for name in _names(cls)})
        flat_init(self, *args, **flat)

    signature = inspect.signature(flat_init)
    __init__.__signature__ = signature.replace(parameters=[*signature.parameters.values()] + [
        inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=None)
        for name in ("array", "converters", "numerics")])
    return __init__


HardwareConfig.__init__ = _grouped(HardwareConfig.__init__)
