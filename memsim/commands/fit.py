"""``memsim fit``: fit the compact model to measured I-V sweeps (and pulse trains), write the
device card, the report and its figure (the options are in memsim/cli.py; this module loads
when the command runs)."""
from __future__ import annotations

import warnings

from .. import units
from ..fit import data, fitting, report, spread
from ..io import check_out_folder

OUT_NAMES = ("card.json", "report.txt", "fit.png")


def cmd_fit(args) -> int:
    v_read = units.real(args.v_read, "--v-read", low=1e-3, high=1.0, unit="V")
    t_edge = units.real(args.t_edge, "--t-edge", low=1e-12, high=1e-3, unit="s")
    free = fitting.DEFAULT_FREE if args.free is None else tuple(n.strip() for n in args.free.split(",") if n.strip())
    fitting.check_free(free)
    check_out_folder(args.out, OUT_NAMES, what="--out folder")  # before any work: nothing is written on error
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
