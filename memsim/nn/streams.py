"""The random streams of a network on tiles, named by purpose in one place.

Every draw of an :class:`~memsim.nn.AnalogModel` (and of what builds on it: compensation,
Bayesian sampling) comes from a torch generator seeded by the model's seed, a purpose and
optional words (a time, a sample index), through ``numpy.random.SeedSequence``, so two purposes
never share a stream and a result is the same whatever else ran before it.  A purpose's number
is part of every seed drawn from it: changing one changes every result that used it.
"""
from __future__ import annotations

import numpy as np
import torch

#: purpose -> its stream number.
PURPOSES = {
    "programming": 0,            # programming noise when the tiles are programmed
    "drift": 1,                  # drift and slow noise at a time since programming (word: the time)
    "read": 2,                   # read and output noise of every read (word: 0)
    "training": 3,               # the device instances drawn in hardware-aware training
    "pre-distortion": 7,         # programming the pre-distorted conductances of IR-drop compensation
    "bayes-programming": 40,     # the Bayesian crossbar's initial programming
    "bayes-sample": 41,          # its re-programming per sample (word: the sample)
    "bayes-read": 42,            # its read-noise stream per sample (word: the sample)
}


def _words(seed: int, purpose: str, words) -> list[int]:
    if purpose not in PURPOSES:
        raise ValueError(f"unknown random-stream purpose {purpose!r}; known: {', '.join(PURPOSES)}")
    return [int(seed), PURPOSES[purpose], *(int(w) for w in words)]


def generator(device, seed: int, purpose: str, *words) -> torch.Generator:
    """A torch generator on ``device`` for ``purpose`` of the model with ``seed``."""
    gen = torch.Generator(device=device)
    state = np.random.SeedSequence(_words(seed, purpose, words)).generate_state(1, np.uint64)[0]
    gen.manual_seed(int(state >> 1))
    return gen


def seed_for(seed: int, purpose: str, *words) -> int:
    """A 32-bit seed for ``purpose`` (to restart an existing stream, e.g. ``reseed_reads``)."""
    return int(np.random.SeedSequence(_words(seed, purpose, words)).generate_state(1)[0])


def time_word(t_seconds: float) -> int:
    """A time (s) as a stream word: its float64 bits, so every distinct time has its own stream."""
    return int(np.float64(t_seconds).view(np.uint64))
