"""Energy efficiency of one 256x256 core of IBM's HERMES chip (M. Le Gallo et al., "A 64-core
mixed-signal in-memory compute chip based on phase-change memory for deep neural network
inference", Nature Electronics 6, 680-693, 2023), estimated by memsim.cost, beside the chip's
reported figures for 8-bit input/output MVMs: 63.1 TOPS at 9.76 TOPS/W in the one-phase read
mode, 16.1 TOPS at 2.48 TOPS/W in the four-phase mode (the paper's abstract), and the single
core's 10.5 TOPS/W (R. Khaddam-Aljameh et al., "HERMES-Core: a 1.59-TOPS/mm2 PCM on 14-nm CMOS
in-memory compute core using 300-ps/LSB linearized CCO-based ADCs", IEEE JSSC 57(4), 2022).

The two read modes split the chip's energy per MVM into a part paid once per MVM and a part
paid per modulation cycle (the four-phase mode applies each input polarity to each weight
polarity in its own cycle, so every device conducts for the same total time as in one phase,
while converters, modulators and clocks run four cycles): E = A + n C, n = 1 or 4.  That
split is set beside memsim's own.

What the chip reports and what memsim assumes are printed with the result; the tables in
examples/cost/README.md are this script's output.
"""
from __future__ import annotations

import argparse
import sys

import numpy as np


#: The chip's reported figures (abstract of the paper): 8-bit input/output MVMs, one-phase mode.
REPORTED_TOPS_PER_W = 9.76
REPORTED_TOPS = 63.1
#: The same in the four-phase (high-precision) read mode.
REPORTED_TOPS_PER_W_4PHASE = 2.48
REPORTED_TOPS_4PHASE = 16.1
#: One HERMES core on its own (Khaddam-Aljameh et al., IEEE JSSC 2022, abstract), at 1 GHz.
REPORTED_CORE_TOPS_PER_W = 10.5
CORES, SIZE = 64, 256


def split_per_cycle(e_one_phase: float, e_four_phase: float) -> tuple[float, float]:
    """(A, C), J: the energy per MVM paid once (A) and per modulation cycle (C), from the energy
    per MVM in the one-phase and four-phase read modes, E = A + n C."""
    per_cycle = (e_four_phase - e_one_phase) / 3.0
    return e_one_phase - per_cycle, per_cycle


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--vectors", type=int, default=16, help="random 8-bit input vectors averaged (default 16)")
    parser.add_argument("--r-wire", type=float, default=1.0, help="wire resistance per segment, ohm (default 1)")
    parser.add_argument("--v-read", type=float, default=0.2, help="read voltage, V (default 0.2)")
    args = parser.parse_args(argv)
    if not 1 <= args.vectors <= 1000:
        parser.error(f"--vectors must be in [1, 1000], got {args.vectors}")

    import torch

    from memsim import nn as mnn
    from memsim.cost import CostConfig, network_cost
    from memsim.cost import array as arr
    from memsim.cost import periphery as per

    # One core: a 256x256 weight matrix (torch's default Linear initialisation, seed 0) on one
    # 256-row tile of PCM-like conductances (0-25 uS pairs), 8-bit DAC and ADC.
    torch.manual_seed(0)
    layer = torch.nn.Linear(SIZE, SIZE, bias=False).double()
    hw = mnn.HardwareConfig(tile=SIZE, conductances="pcm", r_wire=args.r_wire, v_read=args.v_read, dac_bits=8,
                            adc_bits=8, adc_range=10.0, dtype="float64")
    analog = mnn.convert(layer, hw, seed=0)
    rng = np.random.default_rng(0)
    x = np.round(rng.uniform(-1.0, 1.0, (args.vectors, SIZE)) * 127) / 127  # signed 8-bit inputs
    # 128 ns pulse-width window: 2^7 slots of the 1 GHz clock for the 7 magnitude bits; one
    # ADC per output (256 per core); feature size 14 nm.
    cfg = CostConfig(feature_m=14e-9, read_time_s=128e-9, cols_per_adc=1, adc_bits=8, v_read=args.v_read)
    # A tile holds T/2 differential outputs: the core's 256 x 256 weights are two 256 x 256 tiles
    # side by side (256 x 512 devices; the chip's unit cell holds each sign in two devices).
    tiles = analog.tiles()
    pwm_j = dac_j = 0.0
    on_rows = float(np.mean(np.sum(np.abs(x) > 0, axis=1)))
    for tile in tiles:
        xb = tile.circuit.crossbar()
        pwm_j += float(np.mean(arr.pwm_read_energy(xb, x, args.v_read, 128, cfg)))
        c_row = arr.node_capacitance(xb, cfg)[0] * xb.cols
        dac_j += on_rows * c_row * args.v_read ** 2  # each active row switches on once per MVM
    table = network_cost(analog, torch.as_tensor(x), cfg)
    row = table.total
    adc_j, digital_j = row["adc_j"], row["digital_j"]
    ops = 2.0 * SIZE * SIZE
    total_pwm = pwm_j + dac_j + adc_j + digital_j
    latency = cfg.read_time_s + per.adc_time(8, cfg)
    # The chip's CCO-based ADCs count an oscillator over the window, a time-domain conversion:
    # of memsim's three kinds, the ramp (2^bits clocks of a comparator) is the closest.
    ramp = cfg.replace(adc_kind="ramp")
    ramp_adc_j = SIZE * per.adc_energy(8, ramp)
    total_ramp = pwm_j + dac_j + ramp_adc_j + digital_j
    latency_ramp = cfg.read_time_s + per.adc_time(8, ramp)
    lines = [
        "| | array | DAC | ADC | digital | total | TOPS/W | TOPS (64 cores) |",
        "|---|---|---|---|---|---|---|---|",
        f"| memsim, duration-coded inputs (as the chip) | {pwm_j * 1e9:.3f} nJ | {dac_j * 1e9:.4f} nJ | "
        f"{adc_j * 1e9:.3f} nJ | {digital_j * 1e9:.3f} nJ | {total_pwm * 1e9:.3f} nJ | {ops / total_pwm / 1e12:.2f} | "
        f"{CORES * ops / latency / 1e12:.1f} |",
        f"| memsim, amplitude-coded inputs (`network_cost`) | {row['array_j'] * 1e9:.3f} nJ | {row['dac_j'] * 1e9:.4f} nJ | "
        f"{adc_j * 1e9:.3f} nJ | {digital_j * 1e9:.3f} nJ | {row['energy_j'] * 1e9:.3f} nJ | {row['tops_per_w']:.2f} | "
        f"{CORES * ops / row['latency_s'] / 1e12:.1f} |",
        f"| as the first row with a ramp (time-domain) ADC | {pwm_j * 1e9:.3f} nJ | {dac_j * 1e9:.4f} nJ | "
        f"{ramp_adc_j * 1e9:.3f} nJ | {digital_j * 1e9:.3f} nJ | {total_ramp * 1e9:.3f} nJ | "
        f"{ops / total_ramp / 1e12:.2f} | {CORES * ops / latency_ramp / 1e12:.1f} |",
        f"| HERMES, reported (one-phase, 8-bit) | | | | | {ops / REPORTED_TOPS_PER_W / 1e12 * 1e9:.3f} nJ | "
        f"{REPORTED_TOPS_PER_W:.2f} | {REPORTED_TOPS:.1f} |",
    ]
    ratio = (ops / total_pwm / 1e12) / REPORTED_TOPS_PER_W
    # The two read modes of the chip against memsim's own split: per MVM, the array (every device
    # conducts for the same time in both modes) and the digital scale of each output; per cycle,
    # one conversion and one accumulate per output.
    e1, e4 = ops / REPORTED_TOPS_PER_W / 1e12, ops / REPORTED_TOPS_PER_W_4PHASE / 1e12
    chip_once, chip_cycle = split_per_cycle(e1, e4)
    add_j = SIZE * cfg.add32_j
    mine_once = pwm_j + dac_j + digital_j - add_j
    split = [
        "",
        "| energy per MVM (one core) | paid once per MVM (A) | paid per modulation cycle (C) | per output and cycle |",
        "|---|---|---|---|",
        f"| HERMES, from its one-phase and four-phase figures | {chip_once * 1e9:.2f} nJ | {chip_cycle * 1e9:.2f} nJ | "
        f"{chip_cycle / SIZE * 1e12:.1f} pJ |",
        f"| memsim, SAR ADC at {cfg.fom_walden_j * 1e15:g} fJ/step | {mine_once * 1e9:.2f} nJ (array {pwm_j * 1e9:.2f}) | "
        f"{(adc_j + add_j) * 1e9:.2f} nJ | {(adc_j + add_j) / SIZE * 1e12:.1f} pJ |",
        f"| memsim, time-domain (ramp) ADC | {mine_once * 1e9:.2f} nJ (array {pwm_j * 1e9:.2f}) | "
        f"{(ramp_adc_j + add_j) * 1e9:.2f} nJ | {(ramp_adc_j + add_j) / SIZE * 1e12:.1f} pJ |",
    ]
    print("\n".join(lines + split))
    four_sar = mine_once + 4 * (adc_j + add_j)
    four_ramp = mine_once + 4 * (ramp_adc_j + add_j)
    print(f"\nfour-phase mode, memsim (array and scale once, conversions and accumulates four times): "
          f"{ops / four_sar / 1e12:.2f} TOPS/W (SAR), {ops / four_ramp / 1e12:.2f} (ramp) against the chip's "
          f"{REPORTED_TOPS_PER_W_4PHASE:.2f}; one core alone (HERMES-Core, JSSC 2022) {REPORTED_CORE_TOPS_PER_W:.1f} TOPS/W: "
          f"memsim / core {(ops / total_pwm / 1e12) / REPORTED_CORE_TOPS_PER_W:.2f} (SAR), "
          f"{(ops / total_ramp / 1e12) / REPORTED_CORE_TOPS_PER_W:.2f} (ramp)")
    print(f"the chip's per-cycle energy as one converter per output would be a Walden FoM of "
          f"{chip_cycle / SIZE / 2 ** 8 * 1e15:.0f} fJ/step (memsim's SAR default: {cfg.fom_walden_j * 1e15:g}); "
          f"its once-per-MVM energy bounds the array at {chip_once * 1e9:.2f} nJ, memsim's array at "
          f"{args.v_read:g} V is {pwm_j * 1e9:.2f} nJ")
    gap = ops / REPORTED_TOPS_PER_W / 1e12 - total_pwm
    print(f"\nmemsim / reported TOPS/W: {ratio:.2f} (duration-coded, SAR), {(ops / total_ramp / 1e12) / REPORTED_TOPS_PER_W:.2f} "
          f"(ramp); what memsim leaves out would be "
          f"{gap * 1e9:.2f} nJ per MVM, {gap / SIZE * 1e12:.1f} pJ per output; wires {args.r_wire:g} ohm, read {args.v_read:g} V, "
          f"{args.vectors} random signed 8-bit vectors, mean device conductance "
          f"{float(np.mean([t.g.mean() for t in tiles])) * 1e6:.2f} uS")
    return 0


if __name__ == "__main__":
    sys.exit(main())
