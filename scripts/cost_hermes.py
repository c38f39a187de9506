"""Energy efficiency of one 256x256 core of IBM's HERMES chip (M. Le Gallo et al., "A 64-core
mixed-signal in-memory compute chip based on phase-change memory for deep neural network
inference", Nature Electronics 6, 680-693, 2023), estimated by memsim.cost, beside the chip's
reported 9.76 TOPS/W and 63.1 TOPS (8-bit inputs and outputs, one-phase read mode).

What the chip reports and what memsim assumes are printed with the result; the table in
examples/cost/README.md is this script's output.
"""
from __future__ import annotations

import argparse
import sys

import numpy as np


#: The chip's reported figures (abstract of the paper): 8-bit input/output MVMs, one-phase mode.
REPORTED_TOPS_PER_W = 9.76
REPORTED_TOPS = 63.1
CORES, SIZE = 64, 256


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
    print("\n".join(lines))
    gap = ops / REPORTED_TOPS_PER_W / 1e12 - total_pwm
    print(f"\nmemsim / reported TOPS/W: {ratio:.2f} (duration-coded, SAR), {(ops / total_ramp / 1e12) / REPORTED_TOPS_PER_W:.2f} "
          f"(ramp); what memsim leaves out would be "
          f"{gap * 1e9:.2f} nJ per MVM, {gap / SIZE * 1e12:.1f} pJ per output; wires {args.r_wire:g} ohm, read {args.v_read:g} V, "
          f"{args.vectors} random signed 8-bit vectors, mean device conductance "
          f"{float(np.mean([t.g.mean() for t in tiles])) * 1e6:.2f} uS")
    return 0


if __name__ == "__main__":
    sys.exit(main())
