"""Study configuration: a grid of array parameters and the metrics to compute on it.

A config is a TOML or JSON file (or the same content as a dict)::

    name = "sneak_paths"                       # results file stem: <out>/<name>.csv
    metrics = ["read_margin", "margin_crossover"]

    [grid]                                     # every axis is a list; each defaults to one value
    size = [16, 32, 64, 128, 256, 512, 1024]   # N: N x N arrays (2 to 1024)
    r_wire = [0.0, 1.0, 2.5]                   # ohm per wire segment, rows and columns alike
    cell = ["device", "1t1r"]                  # "device" (selector-less), "1t1r", "ohmic" (linear)
    scheme = ["floating", "v/2", "v/3", "grounded"]
    preset = ["rram8"]                         # device preset (memsim.devices.preset)
    levels = [8]                               # level count over the preset's range (default: its own)
    tile = [64]                                # tile size T (T x T cells) of the tile metrics
    adc_bits = [8]                             # ADC resolution of network_cost
    seed = [0]                                 # seeds of the random states and inputs

    [options]                                  # scalars; see OPTIONS for every key, default and range
    spice_max_size = 64

Validation refuses unknown keys, wrong types and values out of range with a message naming
the key (``grid.size[3]: ...``).  Each metric uses only some axes (:data:`METRIC_AXES`); a
point is one metric at one combination of its own axes, so a metric is never repeated over
an axis it does not depend on.  An axis with more than one value that no chosen metric uses
is refused (it would only repeat identical points).
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path

from .. import units
from ..errors import check_limit
from ..io import LIMITS, parse_json, read_text

AXES = ("size", "r_wire", "cell", "scheme", "preset", "levels", "tile", "seed", "adc_bits")
#: The axes each metric depends on, in file-column order.
METRIC_AXES = {
    "read_margin": ("size", "r_wire", "cell", "scheme", "preset"),
    "margin_crossover": ("r_wire", "cell", "scheme", "preset"),
    "mvm": ("size", "r_wire", "cell", "preset", "levels", "seed"),
    "write_disturb": ("size", "r_wire", "cell", "scheme", "preset"),
    "tile": ("tile", "r_wire", "cell", "preset", "levels", "seed"),
    "network_accuracy": ("tile", "r_wire", "cell", "preset", "levels", "seed"),
    "network_cost": ("tile", "r_wire", "adc_bits", "cell", "preset", "seed"),
}
METRICS = tuple(METRIC_AXES)
METRIC_HELP = {
    "read_margin": "sneak-path read margin (I_LRS - I_HRS) / I_LRS of the far-corner cell, every other cell at "
                   "LRS (fast solver; ngspice spot check for N <= spice_max_size)",
    "margin_crossover": "smallest N whose read margin is below margin_threshold (search up to crossover_max_size)",
    "mvm": "largest and mean MVM error against the ideal product, power and energy per MVM",
    "write_disturb": "half-select disturb of one SET pulse, ngspice transient (N <= disturb_max_size)",
    "tile": "a random differential weight matrix (tile_matrix) on T x T tiles: output error and argmax "
            "agreement with the ideal product (a stand-in for network accuracy)",
    "network_accuracy": "test accuracy of a trained MLP mapped onto T x T tiles (needs memsim.nn)",
    "network_cost": "test accuracy beside energy per inference, latency, area, TOPS/W and TOPS/mm^2 (memsim.cost) "
                    "of a built-in network on T x T tiles with adc_bits-bit ADCs (needs memsim.nn)",
}
CELLS = ("device", "1t1r", "ohmic")
SCHEMES = ("floating", "v/2", "v/3", "grounded")  # the same names as memsim.circuit.bias.SCHEMES
PRESETS = ("rram8", "rram64")                     # memsim.devices.PRESETS (checked again on use)
MAX_SIZE = 1024
#: Most points a study's grid may expand to (the product of its axes' lengths, summed over the
#: metrics), refused before anything is expanded.
MAX_POINTS = 1_000_000
DEFAULTS = {"size": [32], "r_wire": [1.0], "cell": ["device"], "scheme": ["v/2"], "preset": ["rram8"],
            "levels": [None], "tile": [64], "seed": [0], "adc_bits": [8]}
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")


@dataclass(frozen=True)
class Option:
    default: object
    kind: type            # int, float, bool, str or list (two numbers)
    low: float | None = None
    high: float | None = None
    help: str = ""
    choices: tuple = ()


OPTIONS = {
    "v_read": Option(0.2, float, 0.01, 1.0, "read voltage, V (levels are defined at it)"),
    "v_gate": Option(1.8, float, 0.0, 5.0, "1T1R gate voltage of a selected word line, V"),
    "read_time": Option(10e-9, float, 1e-12, 1e-3, "duration of one MVM read, s (energy = power x read_time)"),
    "inputs": Option(4, int, 1, 1024, "random input vectors per MVM point"),
    "tile_inputs": Option(64, int, 1, 4096, "random input vectors per tile point"),
    "transistor": Option("bsim4", str, help="1T1R transistor: bsim4 (the shipped BSIM4 card in ngspice, its committed "
                         "calibration in the fast solver) or level1 (the level-1 card in both)",
                         choices=("bsim4", "level1")),
    "g_range": Option(None, list, 1e-9, 1.0, "[g_min, g_max] in S: override the preset's level range"),
    "margin_threshold": Option(0.1, float, 1e-6, 0.999, "sensing limit on the read margin (0.1: 10 %)"),
    "crossover_max_size": Option(1024, int, 4, MAX_SIZE, "largest N the crossover search tries"),
    "spice_max_size": Option(64, int, 0, 128, "ngspice spot checks for N (or tile) <= this; 0: none"),
    "spice_timeout": Option(600.0, float, 1.0, 86400.0, "timeout of one ngspice run, s"),
    "disturb_max_size": Option(16, int, 0, 32, "write-disturb transients for N <= this; 0: none"),
    "v_write": Option(1.8, float, 0.1, 5.0, "SET pulse amplitude on the selected row, V"),
    "t_write": Option(50e-9, float, 1e-10, 1e-5, "SET pulse width, s"),
    "disturb_steps": Option(200, int, 50, 5000, "transient steps per pulse (ngspice max step = t_stop / steps)"),
    "tile_matrix": Option([256, 32], list, 1, 4096, "[inputs, outputs] of the tile metric's weight matrix"),
    "network": Option("mlp-digits", str, help="memsim.nn network of network_accuracy"),
    "network_samples": Option(360, int, 1, 100000, "test samples of network_accuracy and network_cost"),
    "cost_samples": Option(16, int, 1, 1000, "test samples network_cost reads for energy (the mean per inference)"),
    "adc_kind": Option("sar", str, help="ADC of network_cost: sar, flash or ramp (memsim.cost.CostConfig)",
                       choices=("sar", "flash", "ramp")),
}


@dataclass(frozen=True)
class StudyConfig:
    """A validated study config: ``name``, ``metrics`` (tuple), ``grid`` and ``options`` (dicts)."""

    name: str
    metrics: tuple
    grid: dict = field(default_factory=dict)
    options: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {"name": self.name, "metrics": list(self.metrics), "grid": {k: list(v) for k, v in self.grid.items()},
                "options": dict(self.options)}


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value) -> bool:
    """A finite number for memsim (:func:`memsim.units.real`: no bools, no ints beyond a double)."""
    try:
        units.real(value)
    except ValueError:
        return False
    return isinstance(value, (int, float))


def _check_keys(table, allowed, where):
    if not isinstance(table, dict):
        raise ValueError(f"{where} must be a table (a dict), got {type(table).__name__}")
    unknown = sorted(set(table) - set(allowed))
    if unknown:
        raise ValueError(f"unknown key{'s' if len(unknown) > 1 else ''} {', '.join(map(repr, unknown))} in "
                         f"{where}; allowed: {', '.join(allowed)}")


def _axis_value(axis: str, value, where: str):
    if axis == "size":
        if not _is_int(value) or not 2 <= value <= MAX_SIZE:
            raise ValueError(f"{where}: array size N must be an integer in [2, {MAX_SIZE}], got {units.shown(value)}")
        return value
    if axis == "r_wire":
        if not _is_number(value) or not 0.0 <= value <= 1e3:
            raise ValueError(f"{where}: wire resistance must be a number of ohms in [0, 1000], got {units.shown(value)}")
        return units.real(value)  # -0.0 is 0.0: one point, one key
    if axis == "cell":
        if value not in CELLS:
            raise ValueError(f"{where}: cell kind must be one of {', '.join(CELLS)}, got {units.shown(value)}")
        return value
    if axis == "scheme":
        if value not in SCHEMES:
            raise ValueError(f"{where}: bias scheme must be one of {', '.join(SCHEMES)}, got {units.shown(value)}")
        return value
    if axis == "preset":
        if value not in PRESETS:
            raise ValueError(f"{where}: device preset must be one of {', '.join(PRESETS)}, got {units.shown(value)}")
        return value
    if axis == "levels":
        if value is not None and (not _is_int(value) or not 2 <= value <= 256):
            raise ValueError(f"{where}: level count must be an integer in [2, 256], got {units.shown(value)}")
        return value
    if axis == "tile":
        if not _is_int(value) or not 2 <= value <= MAX_SIZE:
            raise ValueError(f"{where}: tile size must be an integer in [2, {MAX_SIZE}], got {units.shown(value)}")
        return value
    if axis == "adc_bits":
        if not _is_int(value) or not 1 <= value <= 16:
            raise ValueError(f"{where}: ADC resolution must be an integer number of bits in [1, 16], got "
                             f"{units.shown(value)}")
        return value
    if axis == "seed":
        if not _is_int(value) or not 0 <= value < 2 ** 32:
            raise ValueError(f"{where}: seed must be an integer in [0, 2**32), got {units.shown(value)}")
        return value
    raise AssertionError(axis)


def _option_value(key: str, value):
    spec = OPTIONS[key]
    where = f"options.{key}"
    if spec.kind is list:
        if value is None and spec.default is None:
            return None
        if not isinstance(value, list) or len(value) != 2 or not all(_is_number(x) for x in value):
            raise ValueError(f"{where} must be a list of two numbers, got {value!r}")
        if not all(spec.low <= x <= spec.high for x in value):
            raise ValueError(f"{where} values must lie in [{spec.low:g}, {spec.high:g}], got {value!r}")
        if key == "g_range":
            if not value[0] < value[1]:
                raise ValueError(f"{where} must be [g_min, g_max] with g_min < g_max (S), got {value!r}")
            return [float(x) for x in value]
        if not all(_is_int(x) for x in value):
            raise ValueError(f"{where} must be two integers, got {value!r}")
        return list(value)
    if spec.kind is str:
        if spec.choices and value not in spec.choices:
            raise ValueError(f"{where} must be one of {', '.join(spec.choices)}, got {value!r}")
        if not isinstance(value, str) or not _NAME.fullmatch(value):
            raise ValueError(f"{where} must be a plain name (letters, digits, _ . -), got {value!r}")
        return value
    if spec.kind is int:
        if not _is_int(value):
            raise ValueError(f"{where} must be an integer, got {units.shown(value)}")
    elif not _is_number(value):
        raise ValueError(f"{where} must be a finite number, got {units.shown(value)}")
    if not spec.low <= value <= spec.high:
        raise ValueError(f"{where} must lie in [{spec.low:g}, {spec.high:g}], got {units.shown(value)}")
    return spec.kind(units.real(value)) if spec.kind is float else value


def validate(data) -> StudyConfig:
    """Check a config dict (parsed TOML/JSON) and return a :class:`StudyConfig` (ValueError if bad)."""
    _check_keys(data, ("name", "metrics", "grid", "options"), "the study config")
    name = data.get("name")
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise ValueError(f"name must be a plain file-name stem (letters, digits, _ . -; up to 64 characters), "
                         f"got {name!r}")
    metrics = data.get("metrics")
    if not isinstance(metrics, list) or not metrics:
        raise ValueError(f"metrics must be a non-empty list of names from {', '.join(METRICS)}, got {metrics!r}")
    for k, metric in enumerate(metrics):
        if metric not in METRIC_AXES:
            raise ValueError(f"metrics[{k}]: unknown metric {metric!r}; choose from {', '.join(METRICS)}")
    if len(set(metrics)) != len(metrics):
        raise ValueError(f"metrics lists a name twice: {metrics!r}")
    grid_in = data.get("grid", {})
    _check_keys(grid_in, AXES, "[grid]")
    grid = {}
    for axis in AXES:
        values = grid_in.get(axis, DEFAULTS[axis])
        if not isinstance(values, list) or not values:
            raise ValueError(f"grid.{axis} must be a non-empty list, got {values!r}")
        if len(values) > MAX_POINTS:
            check_limit(f"grid.{axis}", len(values), MAX_POINTS, "values")
        checked = [_axis_value(axis, value, f"grid.{axis}[{k}]") for k, value in enumerate(values)]
        if len(set(checked)) != len(checked):
            raise ValueError(f"grid.{axis} lists a value twice: {values!r}")
        grid[axis] = checked
    used = {axis for metric in metrics for axis in METRIC_AXES[metric]}
    for axis in AXES:
        if axis not in used and len(grid[axis]) > 1:
            raise ValueError(f"grid.{axis} has {len(grid[axis])} values but none of the metrics {metrics} depends on "
                             f"the {axis} axis; give one value (or add a metric that uses it)")
    estimate = sum(math.prod(len(grid[axis]) for axis in METRIC_AXES[metric]) for metric in metrics)
    check_limit("the study grid", estimate, MAX_POINTS, "points",
                "each point is a circuit solve or more; split the study or give fewer values per axis")
    options_in = data.get("options", {})
    _check_keys(options_in, tuple(OPTIONS), "[options]")
    options = {key: (_option_value(key, options_in[key]) if key in options_in else spec.default)
               for key, spec in OPTIONS.items()}
    if options["g_range"] is None and "g_range" in options_in:
        raise ValueError("options.g_range must be a list of two numbers [g_min, g_max] in S")
    return StudyConfig(name, tuple(metrics), grid, options)


def load(source) -> StudyConfig:
    """A validated config from a :class:`StudyConfig`, a dict, or a ``.toml`` / ``.json`` file path."""
    if isinstance(source, StudyConfig):
        return source
    if isinstance(source, dict):
        return validate(source)
    if not isinstance(source, (str, Path)):
        raise ValueError(f"a study config must be a dict or the path of a .toml or .json file, got "
                         f"{type(source).__name__}")
    path = Path(source)
    suffix = path.suffix.lower()
    if suffix not in (".toml", ".json"):
        raise ValueError(f"study config {path} must end in .toml or .json")
    text = read_text(path, "study config", LIMITS["config"])
    if suffix == ".toml":
        try:
            import tomllib
        except ModuleNotFoundError:  # Python 3.10: the same parser as the tomli package
            try:
                import tomli as tomllib
            except ModuleNotFoundError:
                raise ValueError("TOML study configs need Python >= 3.11 (tomllib) or the tomli package; "
                                 "pip install tomli, or write the config as JSON") from None
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as err:
            raise ValueError(f"study config {path} is not valid TOML: {err}") from None
        except RecursionError:
            raise ValueError(f"study config {path} nests arrays or tables too deeply") from None
    else:
        data = parse_json(text, f"study config {path}")
    try:
        return validate(data)
    except ValueError as err:
        raise ValueError(f"{path}: {err}") from None
