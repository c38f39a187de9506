"""``memsim fit``: fit the compact model to measured I-V sweeps (and pulse trains), write the
device card, the report and its figure.  Only argparse at import time."""
from __future__ import annotations

from pathlib import Path

from ..io import OUTPUT_DIR

OUT_NAMES = ("card.json", "report.txt", "fit.png")


def add_cli(sub) -> None:
    p = sub.add_parser("fit", help="fit the RRAM compact model to measured I-V sweeps and pulse trains (device card)")
    p.add_argument("iv", type=Path, help="I-V sweeps CSV: t,v,i,cycle,device[,compliance] (docs/fitting.md)")
    p.add_argument("--pulses", type=Path, help="pulse trains CSV: amplitude,width,g_read,cycle,device[,v_read]")
    p.add_argument("--spread", type=Path,
                   help="I-V sweeps of many devices and cycles for the variability (default: the IV file itself)")
    p.add_argument("--free", default=None,
                   help="comma-separated parameters to fit (default i0,g0,v0,vel0,gamma0,beta)")
    p.add_argument("--v-read", type=float, default=0.2, help="read voltage, V (default 0.2)")
    p.add_argument("--t-edge", type=float, default=1e-9, help="pulse edge time, s (default 1e-9)")
    p.add_argument("--out", type=Path, default=OUTPUT_DIR / "fit",
                   help="output folder for card.json, report.txt, fit.png (default memsim_output/fit)")
    p.set_defaults(func=_cmd_fit)


def _cmd_fit(args) -> int:
    import warnings

    from .. import units
    from ..io import check_out_folder
    from . import data, fitting, report, spread

    v_read = units.real(args.v_read, "--v-read", low=1e-3, high=1.0, unit="V")
    t_edge = units.real(args.t_edge, "--t-edge", low=1e-12, high=1e-3, unit="s")
    free = fitting.DEFAULT_FREE if args.free is None else tuple(n.strip() for n in args.free.split(",") if n.strip())
    fitting.check_free(free)
    check_out_folder(args.out, "--out folder", OUT_NAMES)  # before any work: nothing is written on error
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        iv = data.read_iv(args.iv)
        pulses = data.read_pulses(args.pulses, v_read) if args.pulses is not None else None
        spread_data = data.read_iv(args.spread) if args.spread is not None else iv
        result = fitting.fit(iv=iv, pulses=pulses, free=free, t_edge=t_edge)
    for warning in caught:
        print(f"memsim fit: warning: {' '.join(str(warning.message).split())}")
    try:
        measured = spread.measure(spread_data, v_read)
    except ValueError as err:
        print(f"memsim fit: warning: no spread measured ({err})")
        measured = None
    card = report.make_card(result, iv, pulses, measured, v_read)
    paths = report.write_report(result, card, args.out, iv, pulses, t_edge)
    print(result.table())
    print(report.residual_table(result))
    print(f"wrote {paths['card']}, {paths['report']}, {paths['figure']}")
    return 0
