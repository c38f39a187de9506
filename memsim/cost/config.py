"""The one cost configuration: technology, read timing, converters and digital figures.

Every default names where it comes from; where no published figure fits, the default is marked
as memsim's assumption, so a user knows which numbers to replace with their own process's.
"""
from __future__ import annotations

from dataclasses import dataclass, fields

from .. import units

ADC_KINDS = ("sar", "flash", "ramp")

#: Wire capacitance per length, F/m: about 0.2 fF/um, the wire capacitance per unit length of
#: the ITRS interconnect tables (ITRS 2013 Edition, Interconnect), which stays near 0.2 fF/um
#: from node to node because wire width and spacing shrink together.
C_WIRE_PER_M = 0.2e-15 / 1e-6
#: Relative permittivity of the switching oxide: HfO2, about 20-25 (J. Robertson, "High
#: dielectric constant oxides", Eur. Phys. J. Appl. Phys. 28, 265, 2004).
EPS_R_HFO2 = 20.0
#: Switching-oxide thickness, m: 5 nm, memsim's assumption (HfOx RRAM stacks are 3-10 nm).
T_OXIDE = 5e-9
#: Feature size (wire width), m: DNN+NeuroSim V1.3's default ``featuresize`` of 40 nm for the
#: sub-array wires of its 22 nm node.
FEATURE = 40e-9
#: Read time of one MVM (the window the array conducts), s: memsim's array-size studies' default
#: (``memsim.nn.bayes.READ_TIME``).
READ_TIME = 10e-9
#: Walden figure of merit, J per conversion step: 5 fJ, within the body of SAR ADCs in
#: B. Murmann, "ADC Performance Survey 1997-2024" (the best SAR designs reach about 1 fJ/step;
#: most published ones at 10-500 MS/s sit at 1-50 fJ/step).
FOM_WALDEN = 5e-15
#: Clock of the converters and digital periphery, Hz: DNN+NeuroSim V1.3's ``clkFreq`` (1 GHz).
CLOCK = 1e9
#: Columns sharing one ADC through a multiplexer: DNN+NeuroSim V1.3's ``numColMuxed`` (8).
COLS_PER_ADC = 8
#: Energy of one comparator decision, J: 50 fJ, memsim's assumption (a StrongARM latch in a
#: 28-65 nm process; B. Razavi, "The StrongARM Latch", IEEE Solid-State Circuits Magazine 2015,
#: describes the circuit, not this number).  Used by the flash and ramp ADCs.
E_COMPARATOR = 50e-15
#: Area of one comparator, in F^2: 2000 F^2, memsim's assumption (a latch of about 10
#: transistors with its input pair sized for offset).
A_COMPARATOR_F2 = 2000.0
#: Reference SAR ADC area: 0.052 mm^2 for 10 bits in 0.13 um CMOS (C.-C. Liu et al., "A 10-bit
#: 50-MS/s SAR ADC with a monotonic capacitor switching procedure", IEEE JSSC 45(4), 2010);
#: scaled by (F / 130 nm)^2 and by 2^(bits - 10) for the capacitive DAC, which dominates.
SAR_AREA_REF = (0.052e-6, 10, 130e-9)
#: Digital energies at 45 nm, J (M. Horowitz, "Computing's energy problem (and what we can do
#: about it)", ISSCC 2014): a 32-bit integer add 0.1 pJ (8-bit: 0.03 pJ), a 32-bit float
#: multiply 3.7 pJ.  An adder's energy grows with its width: ``E_ADD_32 * bits / 32``.
E_ADD_32 = 0.1e-12
E_FMUL_32 = 3.7e-12
#: Cell footprints in F x F (DNN+NeuroSim V1.3 Param.cpp): a cross-point (selector-less) cell
#: 2F x 2F = 4F^2; a 1T1R cell 4F x 12F = 48F^2 with a minimum access transistor (W = F).
CROSSPOINT_F = (2.0, 2.0)
ONE_T_ONE_R_F = (4.0, 12.0)


@dataclass(frozen=True)
class CostConfig:
    """Technology, timing and periphery of a cost estimate, SI units.

    Attributes
    ----------
    feature_m : float
        Feature size F (m): cell pitch and areas scale with it.
    v_read : float
        Largest read voltage on a row (V), for the tile-level functions; a network estimate
        takes the model's own ``v_read``.
    read_time_s : float
        Time the array conducts per read (s): array energy = power x read_time.
    c_wire_per_m : float
        Wire capacitance per length (F/m); a segment is one cell pitch long.
    eps_r, t_oxide_m : float
        The cell's parallel-plate capacitance, eps0 eps_r F^2 / t_oxide (F).
    r_driver_ohm : float
        Output resistance of a row driver (ohm), in series with the line's first segment.
    settle_fraction : float
        A line has settled when its far end is within this fraction of its final value.
    adc_kind : str
        ``"sar"`` (Walden FoM x 2^bits, one bit per clock), ``"flash"`` (2^bits - 1
        comparators, one clock) or ``"ramp"`` (single slope: 2^bits clocks of one comparator).
    adc_bits : int or None
        ADC resolution; None: the model's ``adc_bits``, else 8.
    fom_walden_j : float
        Walden figure of merit (J/conversion-step), E = FoM x 2^ENOB, ENOB taken as the bits.
    comparator_j, comparator_area_f2 : float
        One comparator decision (J) and one comparator's area (F^2), for flash and ramp ADCs.
    clock_hz : float
        Converter clock (Hz).
    cols_per_adc : int
        Columns sharing one ADC (converted one after another).
    add32_j, fmul32_j : float
        A 32-bit integer add and a 32-bit float multiply (J), for shift-and-add, accumulation
        across row tiles and the digital scale of each output.
    """

    feature_m: float = FEATURE
    v_read: float = 0.2
    read_time_s: float = READ_TIME
    c_wire_per_m: float = C_WIRE_PER_M
    eps_r: float = EPS_R_HFO2
    t_oxide_m: float = T_OXIDE
    r_driver_ohm: float = 0.0
    settle_fraction: float = 1e-3
    adc_kind: str = "sar"
    adc_bits: int | None = None
    fom_walden_j: float = FOM_WALDEN
    comparator_j: float = E_COMPARATOR
    comparator_area_f2: float = A_COMPARATOR_F2
    clock_hz: float = CLOCK
    cols_per_adc: int = COLS_PER_ADC
    add32_j: float = E_ADD_32
    fmul32_j: float = E_FMUL_32

    def __post_init__(self):
        positive = ("feature_m", "v_read", "read_time_s", "c_wire_per_m", "eps_r", "t_oxide_m", "fom_walden_j",
                    "comparator_j", "comparator_area_f2", "clock_hz", "add32_j", "fmul32_j")
        for name in positive:
            value = units.real(getattr(self, name), name, low=0.0)
            if value == 0.0:
                raise ValueError(f"{name} must be > 0, got 0.0")
            object.__setattr__(self, name, value)
        object.__setattr__(self, "r_driver_ohm", units.real(self.r_driver_ohm, "r_driver_ohm", low=0.0))
        frac = units.real(self.settle_fraction, "settle_fraction", low=0.0, high=1.0)
        if not 0.0 < frac < 1.0:
            raise ValueError(f"settle_fraction must be in (0, 1), got {frac!r}")
        object.__setattr__(self, "settle_fraction", frac)
        if self.adc_kind not in ADC_KINDS:
            raise ValueError(f"adc_kind must be one of {ADC_KINDS}, got {self.adc_kind!r}")
        if self.adc_bits is not None:
            _check_int(self.adc_bits, "adc_bits", 1, 16)
        _check_int(self.cols_per_adc, "cols_per_adc", 1, 4096)

    def replace(self, **changes) -> "CostConfig":
        """A copy with ``changes`` (checked as on construction)."""
        known = {f.name for f in fields(self)}
        unknown = sorted(set(changes) - known)
        if unknown:
            raise ValueError(f"unknown CostConfig field(s) {unknown}; known: {sorted(known)}")
        return CostConfig(**{**{f.name: getattr(self, f.name) for f in fields(self)}, **changes})

    @property
    def pitch_m(self) -> float:
        """Length of one wire segment (m): a cross-point cell's pitch, 2F."""
        return CROSSPOINT_F[0] * self.feature_m

    @property
    def c_cell_f(self) -> float:
        """A cell's parallel-plate capacitance (F): eps0 eps_r F^2 / t_oxide."""
        return 8.8541878128e-12 * self.eps_r * self.feature_m ** 2 / self.t_oxide_m


def _check_int(value, name: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ValueError(f"{name} must be an integer in [{low}, {high}], got {units.shown(value)}")
    return value
