"""Energy, latency and area of a network converted with :func:`memsim.nn.convert`, per layer
and in total, from its tiles and an example input.

Per tile (``analog.tiles()``), for the example input ``x`` (``analog.tile_inputs``: one vector
per sample, or per output position of a convolution, or per time step):

- array: every read's source power from the Numba solver's node voltages x the read time
  (:func:`memsim.cost.array.read_energy`), the reads being the periphery's own (amplitude: one
  per vector; bit-serial: one per input bit);
- DAC: the row drivers charging their lines, C_row V^2 per row and read;
- ADC: one conversion per differential output and read (G+ and G- currents are subtracted
  before the converter, as ``memsim.nn`` quantises the difference), ``cols_per_adc`` outputs
  per ADC converted one after another;
- digital: shift-and-add per output and bit-serial read, a 32-bit accumulate and a 32-bit float
  scale per output and vector.

Latency: a tile's read takes max(read time, line settling) plus its ADCs' conversions; the
tiles of a layer run in parallel, the layers one after another (no pipelining).  Area: cells
plus ADCs.  Ops: 2 x rows x outputs per tile and vector (multiply and add); TOPS/W = ops per
inference / energy per inference; TOPS/mm^2 = ops per inference / latency / area.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..errors import check_limit
from . import array as arr
from . import periphery as per
from .config import CostConfig
from .latency import settling_time

#: Most input vectors (summed over tiles: samples x positions or steps) one estimate solves.
MAX_VECTORS = 1_000_000
#: Columns of :meth:`CostTable.rows`' dictionaries, with units.
COLUMNS = ("layer", "tiles", "vectors", "reads", "array_j", "dac_j", "adc_j", "digital_j", "energy_j",
           "latency_s", "area_m2", "ops", "tops_per_w", "tops_per_mm2")


@dataclass(frozen=True)
class CostTable:
    """Cost per inference of each analog layer and of the network (``total``); energies J,
    latency s, area m^2, ops per inference; ``adc_bits`` and ``config`` say what was assumed."""

    rows: list
    total: dict
    adc_bits: int
    config: CostConfig = field(repr=False)

    def format(self) -> str:
        """The table as text, one line per layer and a total."""
        head = (f"{'layer':<24} {'tiles':>5} {'reads':>8} {'array':>9} {'DAC':>9} {'ADC':>9} {'digital':>9} "
                f"{'energy':>9} {'latency':>9} {'area':>9} {'TOPS/W':>8} {'TOPS/mm2':>8}")
        units = (f"{'':<24} {'':>5} {'/input':>8} {'nJ':>9} {'nJ':>9} {'nJ':>9} {'nJ':>9} {'nJ':>9} {'us':>9} "
                 f"{'mm2':>9} {'':>8} {'':>8}")
        lines = [head, units]
        for row in [*self.rows, self.total]:
            lines.append(f"{row['layer'][:24]:<24} {row['tiles']:>5d} {row['reads']:>8.0f} {row['array_j'] * 1e9:>9.4g} "
                         f"{row['dac_j'] * 1e9:>9.4g} {row['adc_j'] * 1e9:>9.4g} {row['digital_j'] * 1e9:>9.4g} "
                         f"{row['energy_j'] * 1e9:>9.4g} {row['latency_s'] * 1e6:>9.4g} {row['area_m2'] * 1e6:>9.4g} "
                         f"{row['tops_per_w']:>8.3g} {row['tops_per_mm2']:>8.3g}")
        cfg = self.config
        lines.append(f"(per inference; {self.adc_bits}-bit {cfg.adc_kind.upper()} ADC, {cfg.cols_per_adc} outputs per ADC, "
                     f"read {cfg.read_time_s * 1e9:g} ns, F {cfg.feature_m * 1e9:g} nm; see docs/cost.md)")
        return "\n".join(lines)


def _tile_cost(tile, x_tile, n_inputs, model_cfg, bits, config):
    xb = tile.circuit.crossbar()
    _, reads = tile.periphery.drive(x_tile)
    vectors = x_tile.shape[0] / n_inputs
    outputs = tile.scale.numel()
    rows = xb.rows
    array_j = dac_j = 0.0
    for v, _ in reads:
        v64 = v.detach().cpu().double().numpy()
        array_j += float(np.sum(arr.read_energy(xb, v64, config)))
        dac_j += float(np.sum(arr.line_charge_energy(xb, v64, config)))
    n_reads = len(reads) * vectors  # per input
    adc_j = n_reads * outputs * per.adc_energy(bits, config)
    digital_j = vectors * outputs * (config.add32_j + config.fmul32_j)
    if len(reads) > 1:
        digital_j += n_reads * outputs * per.adder_energy(bits + (model_cfg.dac_bits or 0), config)
    c_row, c_col = arr.node_capacitance(xb, config)
    settle = max(settling_time(xb.cols, xb.r_row, c_row, config.r_driver_ohm, fraction=config.settle_fraction),
                 settling_time(xb.rows, xb.r_col, c_col, 0.0, fraction=config.settle_fraction))
    t_read = max(config.read_time_s, settle) + min(config.cols_per_adc, outputs) * per.adc_time(bits, config)
    n_adc = per.adcs_per_tile(outputs, config)
    return {"vectors": vectors, "reads": n_reads, "array_j": array_j / n_inputs, "dac_j": dac_j / n_inputs,
            "adc_j": adc_j, "digital_j": digital_j, "latency_s": n_reads * t_read,
            "area_m2": arr.array_area(xb, config) + n_adc * per.adc_area(bits, config),
            "ops": 2.0 * vectors * rows * outputs}


def _finish(row):
    row["energy_j"] = row["array_j"] + row["dac_j"] + row["adc_j"] + row["digital_j"]
    ops = row["ops"]
    row["tops_per_w"] = ops / row["energy_j"] / 1e12 if row["energy_j"] > 0 else float("nan")
    per_s = ops / row["latency_s"] if row["latency_s"] > 0 else float("nan")
    row["tops_per_mm2"] = per_s / (row["area_m2"] * 1e6) / 1e12 if row["area_m2"] > 0 else float("nan")
    return row


def network_cost(analog, x_example, config: CostConfig = CostConfig()) -> CostTable:
    """Energy, latency and area per inference of ``analog`` (a programmed
    :class:`memsim.nn.AnalogModel`) on the inputs ``x_example`` (a batch, as for the model),
    per analog layer and in total.  ``config.adc_bits`` None takes the model's ``adc_bits``
    (8 if it has none); the read voltage and the input encoding are the model's."""
    import torch

    if not isinstance(config, CostConfig):
        raise ValueError(f"config must be a memsim.cost.CostConfig, got {type(config).__name__}")
    if not hasattr(analog, "analog_layers") or not hasattr(analog, "tile_inputs"):
        raise ValueError(f"network_cost needs a converted model (memsim.nn.convert), got {type(analog).__name__}")
    if not analog.tiles() or analog.tiles()[0].g is None:
        raise ValueError("the model has no programmed tiles: convert it and call .program() first")
    try:
        x = analog.as_input(x_example)
    except (TypeError, ValueError, RuntimeError) as err:
        raise ValueError(f"x_example must be a numeric array or tensor of model inputs: {err}") from None
    if x.ndim == 0 or len(x) == 0:
        raise ValueError("x_example must be a non-empty batch of inputs")
    model_cfg = analog.config
    bits = config.adc_bits or model_cfg.adc_bits or 8
    with torch.no_grad():
        x_tiles = analog.tile_inputs(x)
    check_limit("network_cost", sum(int(t.shape[0]) for t in x_tiles), MAX_VECTORS, "tile input vectors",
                "each is one solve per read; pass fewer example inputs")
    rows, index = [], 0
    for name, layer in analog.analog_layers():
        row = {"layer": f"{name} {type(layer).__name__}".strip(), "tiles": len(layer.tiles), "vectors": 0.0, "reads": 0.0,
               "array_j": 0.0, "dac_j": 0.0, "adc_j": 0.0, "digital_j": 0.0, "latency_s": 0.0, "area_m2": 0.0,
               "ops": 0.0}
        for tile in layer.tiles:
            cost = _tile_cost(tile, x_tiles[index], len(x), model_cfg, bits, config)
            index += 1
            for key in ("array_j", "dac_j", "adc_j", "digital_j", "area_m2", "ops", "reads"):
                row[key] += cost[key]
            row["vectors"] = max(row["vectors"], cost["vectors"])
            row["latency_s"] = max(row["latency_s"], cost["latency_s"])  # tiles of a layer in parallel
        rows.append(_finish(row))
    total = {"layer": "total", "tiles": sum(r["tiles"] for r in rows)}
    for key in ("vectors", "reads", "array_j", "dac_j", "adc_j", "digital_j", "latency_s", "area_m2", "ops"):
        total[key] = sum(r[key] for r in rows)
    return CostTable(rows, _finish(total), bits, config)
