"""``memsim calibrate``: sweeps, fit, file and held-out report from the command line (the
options are in memsim/cli.py; this module loads when the command runs)."""
from __future__ import annotations

import json
import time

from ..calibrate import fitting, report
from ..calibrate.sweeps import QUICK, SweepConfig
from ..io import check_target, write_atomic
from . import replaced
from .circuit import device_from

#: Held-out report sizes of `memsim calibrate` and of `memsim calibrate --quick` (larger than any fitted).
FULL_SIZES = (64, 128, 256)
QUICK_SIZES = (16,)


def cmd_device(args, sizes) -> int:
    target = args.out / "device_report.json"
    check_target(target)
    start = time.perf_counter()
    device = device_from(args)
    compiled = time.perf_counter() - start
    table = device.table()
    n_s, n_v = table.current.shape
    print(f"{device.module}: compiled and tabulated in {time.perf_counter() - start:.2f} s (compile and load "
          f"{compiled:.2f} s); table {n_s} states x {n_v} voltages over +/-{device.v_max:g} V, relative error "
          f"{table.error:.2e} (tolerance {device.tol:g})")
    validation = report.validate_device(device, sizes=tuple(sizes)) if sizes else {"cases": []}
    for case in validation["cases"]:
        print(f"  {case['kind']:>6} {case['size']:>4}x{case['size']:<4} {case['pattern']:<12} "
              f"solver vs ngspice {case['error']:.2e} (of full scale {case['error_of_full_scale']:.2e})")
    summary = {"device": repr(device), "source_sha256": device.sha256, "table_points": [n_s, n_v],
               "table_error": table.error, **validation}
    write_atomic(target, json.dumps(summary, indent=2) + "\n")
    print(f"wrote {target}")
    return 0


def cmd_calibrate(args) -> int:
    config = QUICK if args.quick else SweepConfig()
    sizes = args.sizes if args.sizes is not None else (QUICK_SIZES if args.quick else FULL_SIZES)
    if any(not 2 <= n <= 256 for n in sizes):
        raise ValueError(f"--sizes are held-out array sizes in [2, 256], got {sizes}")
    if args.device is not None:
        return cmd_device(args, sizes)
    device_from(args)  # None here: it refuses --param or --module without --device
    target = args.out / "calibration.json"
    existed = check_target(target).exists()  # a folder or device there: refused before the sweeps
    calibration = fitting.calibrate(args.card, config, out=target)
    r, u = calibration.residuals, calibration.uncalibrated_residuals
    print(f"fitted {calibration.params} to {args.card}")
    print(f"single-cell rms relative error: {u['cells_rms_rel']:.3%} uncalibrated -> {r['cells_rms_rel']:.3%} calibrated")
    print(f"wrote {target}" + replaced(existed))
    if sizes:
        validation = report.validate(calibration, sizes=tuple(sizes))
        for case in validation["cases"]:
            print(f"  {case['kind']:>6} {case['size']:>4}x{case['size']:<4} {case['pattern']:<12} "
                  f"uncalibrated {case['error_uncalibrated']:.3%}  calibrated {case['error_calibrated']:.3%}")
        paths = report.write_report(calibration, validation, args.out)
        print(f"report: {paths['figure']}, {paths['summary']}")
    return 0
