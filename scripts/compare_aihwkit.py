"""memsim's PCM-like (or CMO ReRAM) inference against aihwkit's, on identical trained weights.

    python3 scripts/compare_aihwkit.py [--model mlp-mnist|lenet-fashion|lstm-fashion] [--seeds 5]
                                       [--noise pcm|reram] [--network-seed S]
                                       [--times 0,1h,1d,1y,10y] [--images N] [--out DIR]
                                       [--workers 2] [--dask ADDRESS]

Needs aihwkit importable beside memsim; it is not a memsim dependency.  aihwkit 1.2.0 ships
only as source on PyPI; docs/aihwkit.md ("Building aihwkit") gives the commands that build it
here against torch==2.13.0.

For every seed s: memsim trains the built-in model (the 784-256-BN-128-BN-10 MLP on the MNIST
subset by default, or the LeNet-class CNN on Fashion-MNIST; seed s, or the cached copy), the
same torch model goes to both tools, and both program it and let it drift:

- aihwkit: ``convert_to_analog`` with its default ``InferenceRPUConfig`` (PCMLikeNoiseModel,
  g_max = 25 uS, single-pair converter, 7-bit inputs with abs-max noise management, output
  noise 0.06, 9-bit outputs bounded at 12 with iterative bound management, tiles of at most
  512 x 512), ``program_analog_weights`` and ``drift_analog_weights(t)``; the uncompensated
  figure sets ``drift_compensation = None``, the compensated one keeps its default
  GlobalDriftCompensation;
- memsim: :func:`memsim.nn.analog` with :func:`memsim.experiments.aihwkit_pcm_config` (the
  same setting), uncompensated and with :class:`memsim.compensate.GlobalDriftCompensation`;
- BatchNorm re-calibration (models with BatchNorm) the same way in both: the BN statistics
  re-estimated from 4000 training images passed through the drifted hardware in one batch.

``--model lstm-fashion`` (the row-by-row LSTM): aihwkit 1.2.0's ``convert_to_analog`` converts
``Linear`` and ``Conv`` layers only, not ``nn.LSTM``; its own analog LSTM is
``aihwkit.nn.AnalogRNN(AnalogLSTMCell, ...)``, whose cell holds two linear layers (input and
hidden projections, gates in torch's order i, f, g, o).  The script builds that module without
an RPU config (its projections are then plain ``Linear`` layers), copies the trained
``nn.LSTM``'s weights and biases into it, and converts the whole network (both projections
and the head) with ``convert_to_analog`` like the other models; the gates and the recurrence
are digital in both tools.  ``--network-seed S`` evaluates the one network trained with seed
``S`` (seed 0: the weights shipped with memsim) at every seed, so the spread over seeds is the
devices' alone.

``--noise reram`` swaps the noise model on both sides: aihwkit's default config with
``noise_model = ReRamCMONoiseModel()`` (its SingleDeviceConductanceConverter, 9.0-88.2 uS),
memsim's :func:`memsim.nn.reram.aihwkit_reram_config` (the same periphery, single-device
mapping and :class:`memsim.nn.noise.ReRamCMONoiseModel`); results go to
``memsim_output/aihwkit/<model>-reram``.

The table gives mean ± std over seeds for each tool and their difference, and the time each
tool took for the same work (the ratio is memsim's time over aihwkit's).  Each seed (with the
model, noise, image count and times) is a point of :func:`memsim.study.run_tasks`, run on
``--workers`` processes of one thread each or on Dask (``--dask``); each finished seed is stored
at once in ``results.sqlite`` in ``--out`` (default ``memsim_output/aihwkit/<model>``; a rerun
resumes) and exported to ``results.jsonl``, which the table (``compare_aihwkit.txt``) and the
accuracy-against-time figure (``compare_aihwkit.png``) are rendered from.
"""
from __future__ import annotations

import argparse
import functools
import os
import sys
import time

import numpy as np

import memsim.study
from memsim.errors import MemsimError
from memsim.io import write_atomic
from memsim import experiments as ex

QUOTED = ex.AIHWKIT_QUOTED
NOISE_LABEL = {"pcm": "PCM-like", "reram": "CMO ReRAM"}
FIGURES = (("float", "floating point"), ("t0", "PCM-like, right after programming"),
           ("none", "PCM-like, uncompensated"), ("global", "+ global drift compensation"),
           ("global+bn", "+ BN re-calibration"))


def figures(noise: str) -> tuple:
    return tuple((key, label.replace("PCM-like", NOISE_LABEL[noise])) for key, label in FIGURES)


def memsim_config(noise: str):
    if noise == "reram":
        from memsim.nn.reram import aihwkit_reram_config

        return aihwkit_reram_config()
    return ex.aihwkit_pcm_config()


BN_IMAGES = 4000


def float32_copy(model):
    import copy

    return copy.deepcopy(model).float().eval()


def has_batchnorm(model) -> bool:
    from memsim.compensate.drift import batchnorms

    return bool(batchnorms(model))


def _torch_accuracy(model, x, y):
    import torch

    with torch.no_grad():
        logits = model(torch.from_numpy(np.array(x, dtype=np.float32)))
    return float((logits.argmax(1).numpy() == y).mean())


def _torch_recalibrate_bn(model, x):
    """BN statistics from ``x`` in one batch through the (analog) model: memsim's own
    re-calibration (``memsim.compensate.drift.batch_statistics``) on aihwkit's model."""
    import torch

    from memsim.compensate.drift import batch_statistics, batchnorms

    with torch.no_grad(), batch_statistics(batchnorms(model)):
        model(torch.from_numpy(np.array(x, dtype=np.float32)))


def aihwkit_row_lstm(model):
    """The row-by-row LSTM (:class:`memsim.nn.models.RowLSTM`) as aihwkit builds an analog LSTM:
    ``AnalogRNN(AnalogLSTMCell, ...)`` (time-major input) and the head, with the trained
    weights, still digital (no RPU config: the cell's projections are plain ``Linear`` layers
    that ``convert_to_analog`` then puts on tiles)."""
    import copy

    import torch
    from aihwkit.nn import AnalogLSTMCell, AnalogRNN
    from torch import nn

    class RowLSTM(nn.Module):
        def __init__(self):
            super().__init__()
            self.rows, self.width = model.rows, model.width
            lstm = model.lstm
            self.rnn = AnalogRNN(AnalogLSTMCell, lstm.input_size, lstm.hidden_size, bias=True, rpu_config=None)
            cell = self.rnn.rnn.layers[0].cell
            with torch.no_grad():
                cell.weight_ih.weight.copy_(lstm.weight_ih_l0)
                cell.weight_ih.bias.copy_(lstm.bias_ih_l0)
                cell.weight_hh.weight.copy_(lstm.weight_hh_l0)
                cell.weight_hh.bias.copy_(lstm.bias_hh_l0)
            self.head = copy.deepcopy(model.head)

        def forward(self, x):
            rows = x.reshape(x.shape[0], self.rows, self.width).transpose(0, 1)  # (steps, batch, width)
            out, _ = self.rnn(rows)
            return self.head(out[-1])

    return RowLSTM().float().eval()


def aihwkit_analog(model, config):
    """``model`` converted by aihwkit's ``convert_to_analog`` (a row-by-row LSTM through
    aihwkit's own analog LSTM first, :func:`aihwkit_row_lstm`)."""
    from aihwkit.nn.conversion import convert_to_analog

    from memsim.nn.models import RowLSTM

    digital = aihwkit_row_lstm(model) if isinstance(model, RowLSTM) else float32_copy(model)
    return convert_to_analog(digital, config).eval()


def run_aihwkit(model, data, seed, times, noise="pcm"):
    """aihwkit's accuracies at ``times`` (uncompensated, GDC, GDC + BN re-cal) and its time."""
    import copy

    import torch
    from aihwkit.simulator.configs import InferenceRPUConfig

    start = time.perf_counter()
    out = {}
    for compensated in (False, True):
        config = InferenceRPUConfig()  # PCMLikeNoiseModel and GlobalDriftCompensation by default
        if not compensated:
            config.drift_compensation = None
        if noise == "reram":
            from aihwkit.inference.noise.reram import ReRamCMONoiseModel

            config.noise_model = ReRamCMONoiseModel()
        torch.manual_seed(seed)
        analog = aihwkit_analog(model, config)
        analog.program_analog_weights()
        for t in times:
            analog.drift_analog_weights(t)
            key = "global" if compensated else "none"
            out[(key, t)] = _torch_accuracy(analog, data.x_test, data.y_test)
            if compensated and has_batchnorm(model):
                recal = copy.deepcopy(analog)
                _torch_recalibrate_bn(recal, data.x_train[:BN_IMAGES])
                out[("global+bn", t)] = _torch_accuracy(recal, data.x_test, data.y_test)
    return out, time.perf_counter() - start


def run_memsim(model, data, seed, times, noise="pcm"):
    start = time.perf_counter()
    out = {}
    for row in ex.accuracy_over_time(model, data, memsim_config(noise), seed, times):
        out[("none", row["t"])] = row["accuracy"]
    bn = has_batchnorm(model)
    for row in ex.accuracy_over_time(model, data, memsim_config(noise), seed, times, gdc=True,
                                     bn_recalibration=bn, bn_images=BN_IMAGES):
        out[("global", row["t"])] = row["accuracy"]
        if bn:
            out[("global+bn", row["t"])] = row["accuracy_bn"]
    return out, time.perf_counter() - start


def run_seed(point, cache):
    """One seed in a worker: both tools on the same trained network."""
    import aihwkit
    import torch

    torch.set_num_threads(1)
    seed, times = point["seed"], point["times"]
    network_seed = point.get("network_seed")
    model, data = ex.trained(point["model"], seed if network_seed is None else network_seed, cache_dir=cache)
    if point["images"] is not None:
        data = ex.test_subset(data, point["images"])
    item = {"aihwkit_version": aihwkit.__version__, "torch_version": torch.__version__}
    for tool, runner in (("aihwkit", run_aihwkit), ("memsim", run_memsim)):
        acc, seconds = runner(model, data, seed, times, point["noise"])
        item[tool] = {f"{k}@{t:g}": v for (k, t), v in acc.items()}
        item[tool]["seconds"] = seconds
    item["aihwkit"]["float"] = _torch_accuracy(float32_copy(model), data.x_test, data.y_test)
    item["memsim"]["float"] = ex.float_accuracy(model, data.x_test, data.y_test)
    last = [k for k in ("none", "global", "global+bn") if f"{k}@{times[-1]:g}" in item["memsim"]]
    print(f"seed {seed}: last time {'/'.join(last)} aihwkit "
          f"{[round(item['aihwkit'][f'{k}@{times[-1]:g}'], 3) for k in last]} "
          f"memsim {[round(item['memsim'][f'{k}@{times[-1]:g}'], 3) for k in last]}", file=sys.stderr, flush=True)
    return item


def render(items, times) -> str:
    tools = ("aihwkit", "memsim")
    model = items[0].get("model", "mlp-mnist")
    noise = items[0].get("noise", "pcm")
    network = items[0].get("network_seed")
    lines = [f"memsim against aihwkit {items[0]['aihwkit_version']} on identical weights, {model} "
             f"({NOISE_LABEL[noise]} model; {len(items)} seeds: {', '.join(str(i['seed']) for i in items)}"
             + ("" if network is None else f", all on the network trained with seed {network} (device seeds)")
             + "; "
             f"{'all' if items[0].get('images') is None else items[0]['images']} test images; mean ± std, %)", "",
             f"| {'figure':34s} | {'time':8s} | {'aihwkit':12s} | {'memsim':12s} | {'memsim - aihwkit':16s} | "
             f"{'quoted (aihwkit, own training)':30s} |",
             f"|{'-' * 36}|{'-' * 10}|{'-' * 14}|{'-' * 14}|{'-' * 18}|{'-' * 32}|"]

    def cell(values):
        return ex.format_pm(values) if values else "-"

    rows = [("float", None), ("t0", None)] + [(k, t) for k in ("none", "global", "global+bn") for t in times if t > 0]
    for key, t in rows:
        label = dict(figures(noise))[key]
        field = {"float": "float", "t0": "none@0"}[key] if t is None else f"{key}@{t:g}"
        if field not in items[0]["memsim"]:
            continue
        values = {tool: [i[tool][field] for i in items] for tool in tools}
        diff = 100 * (np.mean(values["memsim"]) - np.mean(values["aihwkit"]))
        quoted = f"{100 * QUOTED[key]:.1f}" if (model == "mlp-mnist" and noise == "pcm" and key in QUOTED
                                                 and (t is None or abs(t - 10 * ex.YEAR) < 1)) else ""
        when = "" if t is None else ex.format_time(t)
        lines.append(f"| {label:34s} | {when:8s} | {cell(values['aihwkit']):12s} | {cell(values['memsim']):12s} | "
                     f"{diff:+16.1f} | {quoted:>30s} |")
    a_time = sum(i["aihwkit"]["seconds"] for i in items)
    m_time = sum(i["memsim"]["seconds"] for i in items)
    lines += ["", f"time for the same evaluations: aihwkit {a_time:.1f} s, memsim {m_time:.1f} s "
                  f"(ratio memsim / aihwkit {m_time / a_time:.2f})", ""]
    return "\n".join(lines)


def render_figure(items, times, path):
    """Accuracy against time since programming, both tools (mean ± std over seeds)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from memsim.io import save_figure

    ts = [t for t in times if t > 0]
    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    ax.axhline(100 * np.mean([i["memsim"]["float"] for i in items]), color="k", lw=0.8, ls="--",
               label="floating point")
    model = items[0].get("model", "mlp-mnist")
    noise = items[0].get("noise", "pcm")
    for (key, label), color in zip(figures(noise)[2:], ("C3", "C1", "C2")):
        if f"{key}@{ts[0]:g}" not in items[0]["memsim"]:
            continue
        for tool, style, marker in (("aihwkit", ":", "o"), ("memsim", "-", "s")):
            values = 100 * np.array([[i[tool][f"{key}@{t:g}"] for t in ts] for i in items])
            std = values.std(axis=0, ddof=1) if len(items) > 1 else np.zeros(len(ts))
            ax.errorbar(ts, values.mean(axis=0), yerr=std, color=color, ls=style, marker=marker, ms=4, capsize=3,
                        label=f"{tool}: {label}")
        if model == "mlp-mnist" and noise == "pcm":
            ax.plot([10 * ex.YEAR], [100 * QUOTED[key]], marker="*", color=color, ms=12, ls="none")
    if model == "mlp-mnist" and noise == "pcm":
        ax.plot([], [], marker="*", color="gray", ms=10, ls="none", label="quoted aihwkit figure (own training)")
    ax.set_xscale("log")
    ax.set_ylim(0, 100)
    ax.set_xlabel("time since programming (s)")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title(f"{model}, {NOISE_LABEL[noise]} model, identical weights, {len(items)} seeds")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=7, loc="lower left")
    fig.tight_layout()
    save_figure(fig, path)
    plt.close(fig)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="mlp-mnist", choices=("mlp-mnist", "lenet-fashion", "lstm-fashion"),
                        help="the built-in model compared (default mlp-mnist)")
    parser.add_argument("--noise", default="pcm", choices=("pcm", "reram"),
                        help="aihwkit's PCMLikeNoiseModel (default) or ReRamCMONoiseModel on both sides")
    parser.add_argument("--seeds", default="5", help="a count (5 -> seeds 0..4) or a comma list")
    parser.add_argument("--images", type=int, help="test images (default: the whole test set)")
    parser.add_argument("--network-seed", type=int,
                        help="evaluate the network trained with this seed at every seed (default: seed s trains "
                             "the network of seed s)")
    parser.add_argument("--times", default="0,1h,1d,1y,10y", help="times since programming (0 is always added)")
    parser.add_argument("--out", help="output folder (default memsim_output/aihwkit/<model>)")
    parser.add_argument("--models", default="memsim_output/nn/models",
                        help="cache of trained networks (shared with scripts/nn_results.py)")
    memsim.study.add_executor_options(parser)
    parser.add_argument("--render-only", action="store_true",
                        help="rebuild table and figure from results.jsonl (every seed there of these settings)")
    args = parser.parse_args(argv)
    try:
        seeds = ex.parse_seeds(args.seeds)
        times = sorted({0.0, *(ex.parse_duration(t) for t in args.times.split(",") if t.strip())})
    except ValueError as err:
        parser.error(str(err))
    if args.images is not None and args.images < 1:
        parser.error(f"--images must be >= 1, got {args.images}")
    if args.network_seed is not None and args.network_seed < 0:
        parser.error(f"--network-seed must be >= 0, got {args.network_seed}")
    try:
        if not args.render_only:
            import aihwkit  # noqa: F401 - the workers use it; checked here to stop at once
            import torch  # noqa: F401
    except ImportError as err:
        parser.error(f"this comparison needs aihwkit and torch importable ({err}); see docs/aihwkit.md, "
                     "'Building aihwkit'")
    args.out = args.out or os.path.join("memsim_output", "aihwkit",
                                        args.model + ("" if args.noise == "pcm" else f"-{args.noise}"))
    os.makedirs(args.out, exist_ok=True)
    path = os.path.join(args.out, "results.jsonl")
    cache = os.path.abspath(args.models)
    failed = 0
    try:
        networks = seeds if args.network_seed is None else [args.network_seed]
        for seed in ([] if args.render_only else networks):  # trained (or loaded) here once, so no two workers train the same network
            ex.trained(args.model, seed, cache_dir=cache)
        if not args.render_only:
            points = [{"seed": seed, "model": args.model, "noise": args.noise, "images": args.images, "times": times}
                      | ({} if args.network_seed is None else {"network_seed": args.network_seed})
                      for seed in seeds]
            run = memsim.study.run_tasks("results", points, functools.partial(run_seed, cache=cache), out=args.out,
                                         workers=args.workers, dask=args.dask)
            print(run.describe("listed above"), file=sys.stderr)
            failed = run.failed
        done = {}  # rows of these settings (the results file may hold others too)
        for item in memsim.study.read_records(path):
            if item.get("times") == times and item.get("model", "mlp-mnist") == args.model \
                    and item.get("images") == args.images and item.get("noise", "pcm") == args.noise \
                    and item.get("network_seed") == args.network_seed:
                done[item["seed"]] = item
    except (MemsimError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    items = list(done.values()) if args.render_only else [done[s] for s in seeds if s in done]
    if not items:
        print(f"error: {path} holds no results of {args.model}, {args.noise} noise, images {args.images}, times "
              f"{args.times}", file=sys.stderr)
        return 2
    table = render(items, times)
    write_atomic(os.path.join(args.out, "compare_aihwkit.txt"), table)
    render_figure(items, times, os.path.join(args.out, "compare_aihwkit.png"))
    print(table)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
