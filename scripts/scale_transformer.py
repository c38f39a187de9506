"""A transformer of more than 10 M parameters on tiles: time and peak memory of memsim's
conversion and inference (ideal tiles, IR-drop tiles, the aihwkit PCM-like setting) against
aihwkit's ``convert_to_analog`` on the same model, in the same run.

    nice python3 scripts/scale_transformer.py [--layers 6] [--d-model 384] [--heads 6] [--seq 64]
                                              [--batch 8] [--tile 128] [--r-wire 1.0] [--reps 3]
                                              [--cases torch,memsim-ideal,...] [--out FILE.md]

The model (random weights, seed 0) is a pre-norm encoder (Vaswani et al., "Attention is all
you need", NeurIPS 2017) written with one ``nn.Linear`` per projection (query, key, value,
output) and a GELU MLP of 4 x ``d_model``, so that every weight matrix is a ``Linear`` layer
that both tools put on tiles (aihwkit 1.2.0's ``convert_to_analog`` converts ``Linear`` and
``Conv`` layers only: it would leave ``nn.MultiheadAttention``'s fused input projection
digital).  Attention products, softmax, LayerNorm and GELU are digital in both.

Each case runs in a fresh subprocess of one thread (``OMP_NUM_THREADS=1``,
``torch.set_num_threads(1)``): build the model, convert and program it, then ``--reps``
inferences of one batch of ``batch`` x ``seq`` tokens; it reports the conversion time, the
median inference time and the peak resident memory of the process (``ru_maxrss``) beside the
resident memory before conversion (imports and the float model); the first inference is
given apart, since memsim computes an IR-drop tile's effective matrix on its first read.  Cases:

- ``torch``: the float model (the reference of the time ratios);
- ``memsim-ideal``: ``HardwareConfig(tile=T)`` (rram8 levels, ideal wires and converters);
- ``memsim-ir``: the same with ``r_wire`` ohm per wire segment (ohmic cells: every tile's
  effective matrix from the solver, computed at programming);
- ``memsim-pcm``: :func:`memsim.experiments.aihwkit_pcm_config` (aihwkit's default
  ``InferenceRPUConfig`` in memsim: PCM-like programming noise, 7-bit DAC, 9-bit ADC, output
  noise, bound management, tiles of 512);
- ``aihwkit``: aihwkit's ``convert_to_analog`` with its default ``InferenceRPUConfig``, then
  ``program_analog_weights`` (needs aihwkit importable: run the script with its venv's
  python, docs/aihwkit.md);
- ``aihwkit-ir``: the same with aihwkit's own IR-drop model switched on
  (``forward.ir_drop = 1.0``: a per-read correction from the inputs and the conductances, in
  aihwkit's units, not a wire resistance; its time, not its numbers, compare with memsim-ir).

The table gives each time and memory with its ratio to the torch case and to aihwkit.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

CASES = ("torch", "memsim-ideal", "memsim-ir", "memsim-pcm", "aihwkit", "aihwkit-ir")


def build_model(layers: int, d_model: int, heads: int):
    """The encoder (random weights drawn with seed 0), float32, eval mode."""
    import torch
    from torch import nn
    from torch.nn import functional as F

    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.heads = heads
            self.norm1, self.norm2 = nn.LayerNorm(d_model), nn.LayerNorm(d_model)
            self.q, self.k, self.v, self.o = (nn.Linear(d_model, d_model) for _ in range(4))
            self.fc1, self.fc2 = nn.Linear(d_model, 4 * d_model), nn.Linear(4 * d_model, d_model)

        def forward(self, x):
            n, length, d = x.shape
            h = self.norm1(x)
            q, k, v = (p(h).reshape(n, length, self.heads, d // self.heads).transpose(1, 2)
                       for p in (self.q, self.k, self.v))
            attention = F.scaled_dot_product_attention(q, k, v)  # digital
            x = x + self.o(attention.transpose(1, 2).reshape(n, length, d))
            return x + self.fc2(F.gelu(self.fc1(self.norm2(x))))

    torch.manual_seed(0)
    return nn.Sequential(*(Block() for _ in range(layers)), nn.LayerNorm(d_model)).eval()


def rss_mb() -> float:
    """Resident memory of this process now, MB."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1e6


def run_case(args) -> dict:
    """One case in this process; returns its measurements."""
    import resource

    import torch

    torch.set_num_threads(1)
    model = build_model(args.layers, args.d_model, args.heads)
    params = sum(p.numel() for p in model.parameters())
    x = torch.randn(args.batch, args.seq, args.d_model, generator=torch.Generator().manual_seed(1))
    case = args.case
    if case.startswith("memsim"):
        from memsim.nn import HardwareConfig, convert
        from memsim import experiments as ex
    elif case.startswith("aihwkit"):
        from aihwkit.nn.conversion import convert_to_analog
        from aihwkit.simulator.configs import InferenceRPUConfig
    with torch.no_grad():
        reference = model(x)
    before = rss_mb()
    start = time.perf_counter()
    if case == "torch":
        analog = model
    elif case.startswith("aihwkit"):
        rpu_config = InferenceRPUConfig()
        if case == "aihwkit-ir":
            rpu_config.forward.ir_drop = 1.0
        analog = convert_to_analog(model, rpu_config).eval()
        analog.program_analog_weights()
    else:
        config = {"memsim-ideal": HardwareConfig(tile=args.tile),
                  "memsim-ir": HardwareConfig(tile=args.tile, r_wire=args.r_wire),
                  "memsim-pcm": ex.aihwkit_pcm_config()}[case]
        analog = convert(model, config, seed=0)
    convert_s = time.perf_counter() - start
    times = []
    with torch.no_grad():
        for _ in range(args.reps):
            start = time.perf_counter()
            out = analog(x)
            times.append(time.perf_counter() - start)
    error = float((out - reference).abs().max() / reference.abs().max())
    tiles = len(analog.tiles()) if case.startswith("memsim") else len(list(analog.analog_tiles())) \
        if case.startswith("aihwkit") else 0
    return {"case": case, "params": params, "tiles": tiles, "convert_s": convert_s,
            "infer_s": statistics.median(times), "first_infer_s": times[0], "rss_before_mb": before,
            "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e6, "max_error": error}


def subprocess_case(case: str, args) -> dict:
    command = [sys.executable, os.path.abspath(__file__), "--case", case, "--layers", str(args.layers),
               "--d-model", str(args.d_model), "--heads", str(args.heads), "--seq", str(args.seq),
               "--batch", str(args.batch), "--tile", str(args.tile), "--r-wire", str(args.r_wire),
               "--reps", str(args.reps)]
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1",
               NUMBA_NUM_THREADS="1")
    done = subprocess.run(command, capture_output=True, text=True, env=env)
    if done.returncode != 0:
        tail = (done.stderr.strip().splitlines() or ["(no output)"])[-1]
        return {"case": case, "failed": tail}
    return json.loads(done.stdout.strip().splitlines()[-1])


def render(rows, args) -> str:
    ok = {r["case"]: r for r in rows if "failed" not in r}
    params = next(iter(ok.values()))["params"] if ok else 0
    lines = [f"Transformer encoder, {args.layers} layers, d_model {args.d_model}, {args.heads} heads, MLP "
             f"{4 * args.d_model}: {params / 1e6:.2f} M parameters; one batch of {args.batch} x {args.seq} "
             f"tokens; memsim tiles T = {args.tile} (memsim-pcm: 512), IR drop r = {args.r_wire:g} ohm; "
             f"one thread per case; inference = median of {args.reps}", "",
             "| case | tiles | convert + program s | first inference s | inference s | x torch | x aihwkit | "
             "memory before MB | peak MB | peak x aihwkit | max error / max output |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    torch_row, aihwkit_row = ok.get("torch"), ok.get("aihwkit")
    for r in rows:
        if "failed" in r:
            lines.append(f"| {r['case']} | failed: {r['failed']} ||||||||||")
            continue

        def ratio(base, field):
            return f"{r[field] / base[field]:.1f}" if base is not None and base[field] > 0 else "-"
        lines.append(f"| {r['case']} | {r['tiles']} | {r['convert_s']:.2f} | {r['first_infer_s']:.3f} | "
                     f"{r['infer_s']:.3f} | "
                     f"{ratio(torch_row, 'infer_s')} | {ratio(aihwkit_row, 'infer_s')} | {r['rss_before_mb']:.0f} | "
                     f"{r['peak_mb']:.0f} | {ratio(aihwkit_row, 'peak_mb')} | {r['max_error']:.1e} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--layers", type=int, default=6)
    parser.add_argument("--d-model", type=int, default=384)
    parser.add_argument("--heads", type=int, default=6)
    parser.add_argument("--seq", type=int, default=64)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--tile", type=int, default=128)
    parser.add_argument("--r-wire", type=float, default=1.0)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--cases", default=",".join(CASES), help=f"comma list of {', '.join(CASES)}")
    parser.add_argument("--out", help="also write the table to this file")
    parser.add_argument("--case", help=argparse.SUPPRESS)  # one case, in a subprocess
    args = parser.parse_args(argv)
    for name in ("layers", "d_model", "heads", "seq", "batch", "tile", "reps"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")
    if args.d_model % args.heads:
        parser.error(f"--d-model ({args.d_model}) must be a multiple of --heads ({args.heads})")
    if not args.r_wire > 0:
        parser.error(f"--r-wire must be > 0 ohm (the IR-drop case), got {args.r_wire}")
    if args.case:
        print(json.dumps(run_case(args)))
        return 0
    cases = [c.strip() for c in args.cases.split(",") if c.strip()]
    unknown = [c for c in cases if c not in CASES]
    if unknown:
        parser.error(f"unknown case(s) {unknown}; choose from {', '.join(CASES)}")
    rows = []
    for case in cases:
        rows.append(subprocess_case(case, args))
        print(f"{case}: {rows[-1]}", file=sys.stderr, flush=True)
    table = render(rows, args)
    print(table)
    if args.out:
        from memsim.io import write_atomic

        write_atomic(args.out, table + "\n")
    return 1 if any("failed" in r for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
