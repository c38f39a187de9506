"""Energy per operation of one core of the NeuRRAM chip (W. Wan et al., "A compute-in-memory chip
based on resistive random-access memory", Nature 608, 504-512, 2022), estimated by memsim.cost
from the chip's design parameters, beside its published breakdown at each input/output
precision (Extended Data Fig. 12b: word-line switching, neuron operations and control, input
pulses; Extended Data Fig. 12e: TOPS/W).

The chip: 48 cores of 256 x 256 1T1R RRAM in 130 nm CMOS, 4-bit signed weights as differential
conductance pairs, voltage-mode sensing (inputs are +-V_read pulses on the bit lines, the source
lines float and settle at the conductance-weighted mean of the inputs, the neurons sample and
integrate them), multi-bit inputs as 2^N - 1 unary pulse steps per phase (inputs of more than 3
magnitude bits in two phases), outputs 2 bits wider than inputs.

The published values are read off the paper's figure; the numbers typed below are the digitised
values of CiMLoop's reproduction of the same figure (T. Andrulis, J. S. Emer, V. Sze, "CiMLoop: a
flexible, accurate, and fast compute-in-memory modeling tool", ISPASS 2024; its
wan_nature_2022 macro tests), in fJ per operation (one MAC = two operations) and TOPS/W.
Nothing of them enters memsim's estimate: memsim computes the input pulses from its solver (the
array with floating columns) and the line charging, the word-line switching from the stated
capacitances and levels, and the neurons from their circuit (memsim.cost.periphery's
integrate-and-convert neuron: an amplifier biased to settle the source line it precharges,
capacitors sized by kT/C, the step counts and step times of the chip's scheme).

The table in examples/cost/README.md is this script's output.
"""
from __future__ import annotations

import argparse
import sys

import numpy as np

#: Extended Data Fig. 12b (two-phase mode): fJ/op of word-line switching (0.9 V <-> 2.2 V),
#: neuron operations and control (1.8 V) and input pulses (V_read = 0.5 V), keyed by
#: (input bits, output bits), sign included; Extended Data Fig. 12e: TOPS/W.
PUBLISHED_FJ_PER_OP = {
    (1, 3): (8.99015248, 10.6186848, 3.446220545),
    (2, 4): (8.270951256, 12.38674172, 3.955661604),
    (3, 5): (15.46307324, 20.11826462, 7.73153662),
    (4, 6): (21.75617998, 29.1084171, 11.50740478),
    (5, 7): (30.92613276, 44.21188287, 14.0246365),
    (6, 8): (37.2192395, 52.48282041, 19.23892768),
    (7, 9): (43.69214654, 61.83258722, 22.83498524),
    (8, 10): (50.52466791, 75.85721686, 27.50986693),
}
PUBLISHED_TOPS_PER_W = {(1, 3): 43.07875866, (2, 4): 40.33412834, (3, 5): 23.09069279, (4, 6): 15.95409517,
                        (5, 7): 11.03166076, (6, 8): 8.257196816, (7, 9): 7.750037817, (8, 10): 6.437388185}

# The chip's stated design (Wan et al. 2022), as CiMLoop's model of the chip reads it (its
# wan_nature_2022 macro: arch.yaml, variables and tests; the figure legends name the voltages).
ROWS = COLS = 256            # one core: 256 x 256 1T1R cells
FEATURE = 130e-9             # 130 nm CMOS
V_READ = 0.5                 # input pulse amplitude on the bit lines, V
V_WL_LOW, V_WL_HIGH = 0.9, 2.2  # word-line levels, V
WEIGHT_LEVELS = 7            # 4-bit signed weights: sign and 3 magnitude bits per conductance pair
MAX_BITS_ONE_PHASE = 3       # inputs of more magnitude bits are applied in two phases
#: Word-line capacitance, F: 48 fF of driver plus 1.5 fF of access-transistor gate and 0.6 fF of
#: coupling per cell on the line (the chip's figures as quoted by CiMLoop's model of it).
C_WORDLINE = 48e-15 + (1.5e-15 + 0.6e-15) * COLS

# The neurons (Extended Data Fig. 4: initialize, sample and integrate once per input pulse step,
# then compare and add or subtract a charge once per output step).
V_DD_NEURON = 1.8            # neuron supply, V (the figure's legend: neuron operations at 1.8 V)
#: Step times, s, as CiMLoop's model of the chip reads them (its wan_nature_2022 variables:
#: LATENCY_INTEGRATE, LATENCY_ADC_STEP, LATENCY_INTER_PHASE): one sample-and-integrate, one
#: compare-and-decrement, one initialization per phase.
T_INTEGRATE, T_STEP, T_INIT = 0.27e-6, 0.3e-6, 0.3e-6
#: Charge-decrement level on C_sample, V: 0.12 V above the reference, the level the chip's own
#: test software sets for inference (W. Wan, NeuRRAM chip testing software, github.com/weierwan/
#: Neurram_48core, cifar10_resnet_chip_inference.ipynb: vreset_plus = 0.12).
V_DECREMENT = 0.12
#: The neuron is one design for every precision: sized for the largest output precision of the
#: published figure (10 bits; CiMLoop's SUPPORTED_OUTPUT_BITS).
DESIGN_OUTPUT_BITS = 10

# Not stated in what memsim's authors could read of the paper: memsim's assumptions.
G_MIN, G_MAX = 1e-6, 4e-6    # conductance window, S (1 MOhm - 250 kOhm: CiMLoop's cell for this chip)
PULSE = 10e-9                # how long one input pulse holds the lines, s (CiMLoop's read pulse)
R_WIRE = 1.0                 # wire resistance per cell segment, ohm
#: Input and weight histogram over -7..7 (CiMLoop's reading of the chip's Fig. 7e distributions).
HISTOGRAM = np.array([5, 5, 6, 6, 7, 7, 8, 8, 8, 7, 7, 6, 6, 5, 5], dtype=float)


def phases(magnitude_bits: int) -> tuple[int, ...]:
    """Magnitude bits per phase: one phase up to MAX_BITS_ONE_PHASE bits, else two (high half first)."""
    if magnitude_bits <= MAX_BITS_ONE_PHASE:
        return (magnitude_bits,)
    return ((magnitude_bits + 1) // 2, magnitude_bits // 2)


def draw(rng, shape, levels: int) -> np.ndarray:
    """Signed integers in [-levels, levels] from :data:`HISTOGRAM` rescaled to that range."""
    h = rng.choice(np.arange(-7, 8), size=shape, p=HISTOGRAM / HISTOGRAM.sum())
    return np.rint(h / 7.0 * levels).astype(int)


def core(rng):
    """The core's crossbar: 128 signed 4-bit weights per output column on differential row pairs
    (row 2k holds G+ and takes +x_k, row 2k+1 holds G- and takes -x_k), 256 outputs."""
    import memsim

    w = draw(rng, (ROWS // 2, COLS), WEIGHT_LEVELS)
    step = (G_MAX - G_MIN) / WEIGHT_LEVELS
    g = np.empty((ROWS, COLS))
    g[0::2] = G_MIN + step * np.maximum(w, 0)
    g[1::2] = G_MIN + step * np.maximum(-w, 0)
    return memsim.Crossbar.ohmic(g, r_row=R_WIRE, r_col=R_WIRE)


def pulse_steps(x: np.ndarray, magnitude_bits: int):
    """The row voltages (2 len(x),) of one MVM's pulse steps with signed inputs ``x``, each with
    the number of steps it lasts: per phase of p bits 2^p - 1 steps, a row pair on in as many as
    its digit of that phase; steps with the same rows on come once, steps with none on not at all."""
    sign, mag = np.sign(x), np.abs(x)
    shift = magnitude_bits
    for bits in phases(magnitude_bits):
        shift -= bits
        digit = (mag >> shift) & (2 ** bits - 1)
        previous = 0
        for count in np.unique(digit[digit > 0]):
            on = sign * (digit >= count)
            v = np.empty(2 * len(x))
            v[0::2], v[1::2] = V_READ * on, -V_READ * on
            yield v, int(count - previous)
            previous = count


def pulse_energy(xb, x: np.ndarray, magnitude_bits: int, config) -> float:
    """Energy (J) of the input pulses of one MVM with signed inputs ``x`` (ROWS // 2,): per step
    (:func:`pulse_steps`) the array with floating columns (memsim's solver) for PULSE s plus each
    pulsed row's line charge."""
    from memsim.cost import array as arr

    c_row = arr.node_capacitance(xb, config)[0] * xb.cols
    return float(sum(steps * (arr.floating_column_power(xb, v)[0] * PULSE + c_row * float(np.sum(v * v)))
                     for v, steps in pulse_steps(x, magnitude_bits)))


def line_swing(xb, x: np.ndarray, magnitude_bits: int) -> float:
    """Mean |voltage| (V) the floating source lines settle at, relative to their precharge level,
    over all pulse steps of one MVM with inputs ``x`` (ideal wires: sum_i G_ij v_i / sum_i G_ij;
    0 in a step with no row on)."""
    g = xb.g
    total_steps = sum(2 ** bits - 1 for bits in phases(magnitude_bits))
    return float(sum(steps * np.mean(np.abs(v @ g / g.sum(axis=0))) for v, steps in pulse_steps(x, magnitude_bits))
                 / total_steps)


def neuron_design(xb, config) -> dict:
    """The neuron's circuit quantities: source-line capacitance (memsim's wire and cell model),
    C_sample with kT/C at half an LSB of DESIGN_OUTPUT_BITS over the sampled range (+-V_READ),
    and the amplifier's tail current that settles the line and C_sample it precharges to half an
    LSB of DESIGN_OUTPUT_BITS within one integration step."""
    from memsim.cost import array as arr
    from memsim.cost import periphery as per

    c_line = arr.node_capacitance(xb, config)[1] * xb.rows
    c_sample = per.ktc_capacitance(DESIGN_OUTPUT_BITS, 2 * V_READ)
    i_bias = per.settling_bias_current(c_line + c_sample, DESIGN_OUTPUT_BITS, T_INTEGRATE)
    return {"c_line": c_line, "c_sample": c_sample, "i_bias": i_bias}


def neuron_steps(magnitude_bits: int, output_bits: int) -> tuple[int, int, int]:
    """(integration steps, output steps, phases) of one MVM: 2^p - 1 pulse steps per phase of p
    bits; per phase one compare-and-decrement per output bit left after the earlier phases."""
    split = phases(magnitude_bits)
    output, done = 0, 0
    for bits in split:
        output += max(output_bits - done, 0)
        done += bits
    return sum(2 ** bits - 1 for bits in split), output, len(split)


def estimate(input_bits: int, output_bits: int, vectors: int = 4, seed: int = 0) -> dict:
    """memsim's energy per operation (J) of one core at ``input_bits`` / ``output_bits`` (sign
    included): word lines, neurons (integrate-and-convert, by part in ``neuron_parts``, J per
    MVM for the core's 256 neurons), input pulses."""
    from memsim.cost import CostConfig
    from memsim.cost import periphery as per

    rng = np.random.default_rng(seed)
    xb = core(rng)
    config = CostConfig(feature_m=FEATURE, v_read=V_READ)
    magnitude = max(1, input_bits - 1)
    ops = 2.0 * (ROWS // 2) * COLS
    inputs = [draw(rng, ROWS // 2, 2 ** magnitude - 1) for _ in range(vectors)]
    pulses = float(np.mean([pulse_energy(xb, x, magnitude, config) for x in inputs]))
    swing = float(np.mean([line_swing(xb, x, magnitude) for x in inputs]))
    # Each of the 256 word lines cycles once per input magnitude bit.
    wordlines = ROWS * magnitude * per.line_swing_energy(C_WORDLINE, V_WL_LOW, V_WL_HIGH)
    design = neuron_design(xb, config)
    n_int, n_out, n_phase = neuron_steps(magnitude, output_bits)
    parts = per.integrating_neuron_energy(
        n_int, n_out, n_phase, i_bias_a=design["i_bias"], v_dd=V_DD_NEURON, t_integrate_s=T_INTEGRATE,
        t_step_s=T_STEP, t_init_s=T_INIT, c_line_f=design["c_line"], c_sample_f=design["c_sample"],
        v_line_swing=swing, v_sample_swing=swing, v_decrement=V_DECREMENT, comparator_j=config.comparator_j)
    neuron_parts = {name: COLS * value for name, value in parts.items()}
    neurons = neuron_parts["total"]
    return {"wordline": wordlines / ops, "neuron": neurons / ops, "pulses": pulses / ops,
            "total": (wordlines + neurons + pulses) / ops, "neuron_parts": neuron_parts, "design": design,
            "steps": (n_int, n_out, n_phase), "line_swing": swing}


def rows(vectors: int = 4, precisions=None) -> list[dict]:
    """One dictionary per precision: memsim's and the published fJ/op per part, TOPS/W."""
    out = []
    for key in precisions or PUBLISHED_FJ_PER_OP:
        mine = estimate(*key, vectors=vectors)
        wl, neuron, pulses = PUBLISHED_FJ_PER_OP[key]
        out.append({"bits": key, "memsim": mine,
                    "published": {"wordline": wl * 1e-15, "neuron": neuron * 1e-15, "pulses": pulses * 1e-15,
                                  "total": (wl + neuron + pulses) * 1e-15},
                    "tops_per_w": 1.0 / mine["total"] / 1e12, "published_tops_per_w": PUBLISHED_TOPS_PER_W[key]})
    return out


def format_table(table: list[dict]) -> str:
    """The markdown table of :func:`rows`: published and memsim fJ/op per part, TOPS/W."""
    lines = ["| input / output bits | word lines, fJ/op: published / memsim | input pulses (array) | "
             "neurons (integrate-and-convert) | TOPS/W: published / memsim | memsim / published TOPS/W |",
             "|---|---|---|---|---|---|"]
    for row in table:
        pub, mine = row["published"], row["memsim"]
        parts = " | ".join(f"{pub[p] * 1e15:.2f} / {mine[p] * 1e15:.2f} ({mine[p] / pub[p]:.2f}x)"
                           for p in ("wordline", "pulses", "neuron"))
        lines.append(f"| {row['bits'][0]} / {row['bits'][1]} | {parts} | {row['published_tops_per_w']:.2f} / "
                     f"{row['tops_per_w']:.2f} | {row['tops_per_w'] / row['published_tops_per_w']:.2f} |")
    return "\n".join(lines)


def neuron_table(table: list[dict]) -> str:
    """The neurons per precision: steps, memsim's energy by part (pJ per MVM, 256 neurons),
    memsim / published."""
    lines = ["| input / output bits | integrate / compare-and-decrement steps, phases | amplifier | precharge | "
             "sampling + decrement | latches | neurons fJ/op: published / memsim |",
             "|---|---|---|---|---|---|---|"]
    for row in table:
        parts, (n_int, n_out, n_phase) = row["memsim"]["neuron_parts"], row["memsim"]["steps"]
        pub, mine = row["published"]["neuron"], row["memsim"]["neuron"]
        lines.append(f"| {row['bits'][0]} / {row['bits'][1]} | {n_int} / {n_out}, {n_phase} | "
                     f"{parts['amplifier'] * 1e12:.1f} pJ | {parts['precharge'] * 1e12:.2f} pJ | "
                     f"{(parts['sampling'] + parts['decrement']) * 1e12:.2f} pJ | {parts['comparator'] * 1e12:.2f} pJ | "
                     f"{pub * 1e15:.2f} / {mine * 1e15:.2f} ({mine / pub:.2f}x) |")
    return "\n".join(lines)


def gm_id_ratios(table: list[dict], gm_over_id: float) -> list[float]:
    """memsim / published TOPS/W with the amplifier designed at ``gm_over_id`` (S/A) instead of
    periphery.GM_OVER_ID: its bias, and so its energy, scales as 1 / (g_m/I_D)."""
    from memsim.cost import periphery as per

    ops = 2.0 * (ROWS // 2) * COLS
    out = []
    for row in table:
        amplifier = row["memsim"]["neuron_parts"]["amplifier"] / ops
        total = row["memsim"]["total"] + amplifier * (per.GM_OVER_ID / gm_over_id - 1.0)
        out.append(1.0 / total / 1e12 / row["published_tops_per_w"])
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--vectors", type=int, default=4, help="random input vectors averaged (default 4)")
    args = parser.parse_args(argv)
    if not 1 <= args.vectors <= 100:
        parser.error(f"--vectors must be in [1, 100], got {args.vectors}")
    from memsim.cost import CostConfig
    from memsim.cost import periphery as per

    table = rows(args.vectors)
    config = CostConfig()
    design = table[0]["memsim"]["design"]
    swings = [row["memsim"]["line_swing"] for row in table]
    swing_lo, swing_hi = min(swings), max(swings)
    base = [row["tops_per_w"] / row["published_tops_per_w"] for row in table]
    low, high = gm_id_ratios(table, 10.0), gm_id_ratios(table, 25.0)
    print(format_table(table))
    print(f"""
From the paper, as CiMLoop models it (design, not measured energies): one core of {ROWS} x {COLS} 1T1R cells, {FEATURE * 1e9:g} nm;
4-bit signed weights as conductance pairs ({ROWS // 2} x {COLS} weights, {2 * (ROWS // 2) * COLS} ops per MVM);
voltage-mode sensing (floating source lines); input pulses of {V_READ} V, 2^N - 1 unary steps per phase,
two phases above {MAX_BITS_ONE_PHASE} magnitude bits; outputs 2 bits wider than inputs; word lines {V_WL_LOW} <-> {V_WL_HIGH} V,
{C_WORDLINE * 1e15:.1f} fF each (48 fF driver + 2.1 fF per cell, as quoted by CiMLoop).
Assumed (not read in the paper): conductances {G_MIN * 1e6:g}-{G_MAX * 1e6:g} uS and a {PULSE * 1e9:g} ns pulse (CiMLoop's model of
the chip); wires {R_WIRE:g} ohm per cell segment; line capacitance from memsim's defaults at F = {FEATURE * 1e9:g} nm
(cross-point footprint); inputs and weights drawn from a bell-shaped histogram (CiMLoop's reading of
Fig. 7e); differential rows (G+ row takes +x, G- row -x); each of the {ROWS} word lines cycles once per input
magnitude bit. {args.vectors} random input vectors, seed 0.

The neurons (memsim.cost.periphery.integrating_neuron_energy), per MVM of one core:
{neuron_table(table)}

Neuron design, one for every precision: supply {V_DD_NEURON} V (stated); source line {design['c_line'] * 1e15:.0f} fF (memsim's wire
and cell capacitance, {ROWS} cells); C_sample {design['c_sample'] * 1e15:.1f} fF (kT/C at half an LSB of {DESIGN_OUTPUT_BITS} bits over +-{V_READ} V);
amplifier tail current {design['i_bias'] * 1e6:.2f} uA per neuron (settles line + C_sample to half an LSB of {DESIGN_OUTPUT_BITS} bits in one
{T_INTEGRATE * 1e6:g} us step, g_m/I_D = {per.GM_OVER_ID:g} S/A), on through every step; steps of {T_INTEGRATE * 1e6:g} us (integrate), {T_STEP * 1e6:g} us
(compare and decrement, one per output bit left in each phase) and {T_INIT * 1e6:g} us (initialization per phase), CiMLoop's
timing of the chip; decrement level {V_DECREMENT} V (the chip's test software); a latch decision {config.comparator_j * 1e15:g} fJ
(memsim's comparator default); source lines swing {swing_lo * 1e3:.1f}-{swing_hi * 1e3:.1f} mV on average from their precharge level (the drawn inputs,
ideal-wire closed form).
Sensitivity: memsim / published TOPS/W {min(base):.2f}-{max(base):.2f} at g_m/I_D = {per.GM_OVER_ID:g} S/A; {min(low):.2f}-{max(low):.2f} at 10 S/A
(strong inversion); {min(high):.2f}-{max(high):.2f} at 25 S/A (weak inversion).""")
    return 0


if __name__ == "__main__":
    sys.exit(main())
