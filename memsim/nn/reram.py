"""ReRAM drift as the VeRA+ paper models and measures it.

- :func:`aihwkit_reram_config`: the hardware of the aihwkit comparison with aihwkit's
  ``ReRamCMONoiseModel`` (CMO/HfOx ReRAM, one device per weight on 9.0-88.2 uS; the model
  itself is :class:`memsim.nn.noise.ReRamCMONoiseModel`);
- :class:`MeasuredDriftModel`: drift from measured statistics, the mean and standard
  deviation of the conductance of every programmed level at given times after programming,
  loaded from a CSV (:func:`load_drift_statistics`) and interpolated in log time.
"""
from __future__ import annotations

import csv
import math
from dataclasses import dataclass

import numpy as np
import torch

from .config import HardwareConfig
from .mapping import single_device
from .noise import ProgrammedCells, ReRamCMONoiseModel, check_time


def aihwkit_reram_config(**changes) -> HardwareConfig:
    """aihwkit's default ``InferenceRPUConfig`` periphery (7-bit inputs with abs-max noise
    management, output noise 0.06, 9-bit outputs bounded at +-12 with iterative bound
    management, tiles of 512) with ``noise_model = ReRamCMONoiseModel()``: one device per
    weight, each tile's weights mapped affinely onto [9.0, 88.2] uS (aihwkit's
    SingleDeviceConductanceConverter), the model's defaults (0.2 % acceptance curve)."""
    config = HardwareConfig(tile=512, conductances=single_device(), scale="tile", cells="ohmic", r_wire=0.0,
                            dac_bits=7, adc_bits=9, adc_range=12.0, out_noise=0.06, bound_management=True,
                            noise=ReRamCMONoiseModel())
    return config.replace(**changes)
