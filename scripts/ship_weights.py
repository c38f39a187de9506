"""Train the built-in models with seed 0 and their recipes and write them, with their SHA-256,
recipe, torch version and float test accuracy, to memsim/nn/weights/ (memsim.nn.pretrained).

    python3 scripts/ship_weights.py [--models mlp-digits,lenet-fashion]

Prints each model's training time and accuracy.  Other models' entries stay as they are.
"""
import argparse
import hashlib
import json
import time

import torch

from memsim.io import write_atomic
from memsim import experiments
from memsim.nn import models, pretrained
from memsim.nn.training import RECIPES, train_network


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", default=",".join(models.MODELS),
                        help=f"comma list of built-in models (default: all: {','.join(models.MODELS)})")
    names = [n for n in parser.parse_args().models.split(",") if n]
    unknown = [n for n in names if n not in models.MODELS]
    if unknown:
        parser.error(f"unknown model(s) {', '.join(unknown)}; choose from {', '.join(models.MODELS)}")
    pretrained.WEIGHTS.mkdir(exist_ok=True)
    data = pretrained.manifest()
    print(f"{'model':<16} {'train s':>8} {'test accuracy':>14} {'file kB':>8}")
    for name in names:
        t0 = time.perf_counter()
        net, dataset = train_network(name, seed=pretrained.SEED, progress=True)
        seconds = time.perf_counter() - t0
        path = models.save(net, name, pretrained.WEIGHTS / f"{name}-seed{pretrained.SEED}.pt")
        accuracy = experiments.float_accuracy(net, dataset.x_test, dataset.y_test)
        data["models"][name] = {
            "file": path.name, "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
            "recipe": dict(zip(("epochs", "batch_size", "lr"), RECIPES[name])), "seed": pretrained.SEED,
            "torch": torch.__version__, "test_accuracy": round(float(accuracy), 4)}
        write_atomic(pretrained.MANIFEST, json.dumps(data, indent=1, sort_keys=True) + "\n")
        print(f"{name:<16} {seconds:8.1f} {accuracy:14.4f} {path.stat().st_size / 1e3:8.0f}", flush=True)


if __name__ == "__main__":
    main()
