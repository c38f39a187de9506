"""In-situ training of an MLP on crossbar tiles with pulsed updates from the measured response.

Every weight is one RRAM cell read against a fixed reference conductance (the mid point of
the conductance window, as one column of reference cells would give):
W = w_max (G - G_ref) / (G_hi - G_ref), G read at ``v_read`` from the cell's gap.  The gap is
the state; a pulse moves it by :class:`~memsim.learn.response.PulseModel`'s change at the
gap it finds, with cycle-to-cycle noise (see :mod:`memsim.learn.response`).  SET pulses that
would take a cell above the window's top leave it at the top (the window is the weight range;
its bottom is the model's own gap bound).  Gradients come from torch autograd on the
conductance-derived weights; only the update is pulsed.

Update rules (``InSituConfig.update``):

- ``"stochastic"``: the parallel outer-product update of analog SGD (Gokmen and Vlasov,
  "Acceleration of Deep Neural Network Training with Resistive Cross-Point Devices", Front.
  Neurosci. 10, 333, 2016; aihwkit's ``AnalogSGD`` with a pulsed device): per sample, rows
  fire ``bl`` slots with probability A|x_i|, columns with B|delta_j|, and a cell is pulsed when
  both of its lines fire (A B bl dw_min = lr, with aihwkit's update management balancing A and
  B).  Four phases per slot (signs of row and column), SET where -x delta > 0, RESET otherwise.
- ``"write-verify"``: per mini-batch the float update is accumulated in a digital buffer
  (mixed precision, Nandakumar et al., "Mixed-precision deep learning based on computational
  memory", Front. Neurosci. 14, 406, 2020); cells whose buffer exceeds one pulse step are
  written row by row, one SET and one RESET pulse per row and iteration, each followed by a
  verify read, until within half a step of the next pulse or ``wv_max_iter``; the buffer keeps what was not
  written.
- ``"eapu"``: error-aware probabilistic update (EaPU, Nature Communications 2026): the same
  buffer, but each cell gets n or n + 1 open-loop pulses, n the most mean pulses (from the
  pulse model, starting at the cell's present conductance) whose change stays below the
  wanted one, n + 1 with the probability that makes the expected change equal the wanted one;
  no verify, and the buffer is cleared: the pulse noise is left to act as the noise of
  stochastic gradient descent.  (The published method is described here from its summary;
  what memsim implements is this reading of it.)

Half-select disturb (``scheme``): under V/2 the unselected cells on an active row or column
see V/2 of the pulse's polarity; under V/3 they see V/3, and every cell on neither line sees
-V/3 (the opposite polarity).  Their change and energy come from the pulse model at that
voltage.  ``scheme="none"`` switches disturb off (the reference without it).  With stochastic pulse
trains the selected pulses are applied sample by sample (each sees the state the previous
left), the disturb of a mini-batch's trains at its end.

Counts: full pulses per device (against ``endurance``, 1e6 by default, each SET or RESET pulse
counting as one cycle) and half-select pulses; energy: the table's energy of every full and
half-select pulse, times ``wire_factor`` (the array's wires and drivers on top of the cells,
from :func:`memsim.learn.energy.solver_pulse_power`, checked against ngspice by
:func:`memsim.learn.energy.spice_factor`), plus the verify reads.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np

from .. import units
from ..devices.presets import Variability
from ..devices.rram import conductance, gap_for_conductance

UPDATES = ("stochastic", "write-verify", "eapu")
SCHEMES = ("v/2", "v/3", "none")


@dataclass(frozen=True)
class InSituConfig:
    """Settings of in-situ training (SI units; conductances at ``v_read``).

    ``v_set``/``v_reset``: pulse magnitudes (V); ``width`` (s); ``g_window``: (G_lo, G_hi) S, the
    weight range; ``w_max``: the weight at G_hi; ``bl``: slots of a stochastic pulse train;
    ``lr``, ``batch_size``; ``variability``: sigma_c2c sets the pulse noise, sigma_read the
    verify reads; ``t_read``: verify read time (s); ``endurance``: cycles per device.
    """

    kind: str = "device"
    update: str = "stochastic"
    scheme: str = "v/2"
    v_set: float = 1.1
    v_reset: float = 1.1
    width: float = 50e-9
    g_window: tuple = (5e-6, 40e-6)
    v_read: float = 0.2
    w_max: float = 1.0
    bl: int = 31
    lr: float = 0.1
    batch_size: int = 16
    variability: Variability = field(default_factory=Variability)
    wv_max_iter: int = 10
    t_read: float = 100e-9
    endurance: float = 1e6
    wire_factor: float = 1.0
    seed: int = 0

    def __post_init__(self):
        units.choice(self.kind, ("device", "1t1r"), "cell kind")
        units.choice(self.update, UPDATES, "update rule")
        units.choice(self.scheme, SCHEMES, "half-select bias scheme")
        for name in ("v_set", "v_reset", "width", "v_read", "w_max", "lr", "t_read", "endurance", "wire_factor"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
                raise ValueError(f"InSituConfig.{name} must be a finite number > 0, got {value!r}")
        for name in ("bl", "batch_size", "wv_max_iter"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"InSituConfig.{name} must be an integer >= 1, got {value!r}")
        if not isinstance(self.variability, Variability):
            raise ValueError(f"InSituConfig.variability must be a memsim.devices.presets.Variability, got {type(self.variability).__name__}")
        try:
            lo, hi = (units.real(g) for g in self.g_window)
        except (TypeError, ValueError):
            lo = hi = -1.0
        if not 0 < lo < hi:
            raise ValueError(f"InSituConfig.g_window must be (G_lo, G_hi) S with 0 < G_lo < G_hi, got {self.g_window!r}")

    @property
    def half_fraction(self) -> float:
        """Voltage on a half-selected cell as a fraction of the pulse (1/2 or 1/3; 0 without disturb)."""
        return {"v/2": 0.5, "v/3": 1 / 3, "none": 0.0}[self.scheme]


class CellMap:
    """Conductance <-> state of the model a trainer runs on, read at ``v_read``.

    The built-in model: :func:`memsim.devices.rram.conductance` and ``gap_for_conductance``,
    |d ln G / d gap| = 1 / g0 (G ~ exp(-gap/g0)).  A Verilog-A device: its ``conductance`` at
    4097 states over its bounds, ln G interpolated by a cubic spline (its derivative is
    |d ln G / d state|), and ``state_for_conductance`` for the inverse.
    """

    def __init__(self, model, v_read: float):
        self.v_read = v_read
        self.device = getattr(model, "device", None)
        self.params = model.params
        if self.device is None:
            self.low_g_bound = self.params.gap_max
            return
        from scipy.interpolate import CubicSpline

        lo, hi = self.device.state_bounds
        states = np.linspace(lo, hi, 4097)
        g = self.device.conductance(v_read, states)
        if np.any(g <= 0) or not (np.all(np.diff(g) > 0) or np.all(np.diff(g) < 0)):
            raise ValueError(f"{self.device.module}'s read conductance at {v_read} V is not positive and monotone in "
                             "its state, so it cannot hold a weight")
        self._log_g = CubicSpline(states, np.log(g))
        self._slope = self._log_g.derivative()
        self.low_g_bound = lo if g[0] < g[-1] else hi

    def conductance(self, state) -> np.ndarray:
        if self.device is None:
            return conductance(self.v_read, state, self.params)
        return np.exp(self._log_g(state))

    def state(self, g_siemens) -> np.ndarray:
        if self.device is None:
            return gap_for_conductance(g_siemens, self.v_read, self.params)
        return self.device.state_for_conductance(g_siemens, self.v_read)

    def log_slope(self, state) -> np.ndarray:
        """|d ln G / d state| (per state unit)."""
        if self.device is None:
            return np.full(np.shape(state), 1.0 / self.params.g0)
        return np.abs(self._slope(state))

    def set_sign(self, model, v: float, width: float) -> float:
        """+1 when a positive pulse raises the conductance, -1 when a negative one does."""
        if self.device is None:
            return 1.0
        states = np.linspace(*self.device.state_bounds, 9)[1:-1]
        up = self.conductance(states + model.dstate(states, v, width)) - self.conductance(states)
        return 1.0 if np.sum(up) > 0 else -1.0


class Stepper:
    """n pulses of one shape on many cells at once: the pulse map gap -> gap + dgap(gap) on a
    fine gap grid, composed with itself 0..``k_max`` times, so n pulses cost one interpolation."""

    def __init__(self, model, v: float, width: float, gap_lo: float, gap_hi: float, k_max: int = 64, n: int = 2048):
        self.gaps = np.linspace(gap_lo, gap_hi, n)
        step = model.dgap(self.gaps, v, width)
        self.energy_curve = model.energy(self.gaps, v, width)
        maps = [self.gaps]
        for _ in range(k_max):
            maps.append(np.clip(np.interp(maps[-1], self.gaps, self.gaps + step), gap_lo, gap_hi))
        self.maps = np.stack(maps)  # (k_max + 1, n)
        self.k_max = k_max
        self.step_curve = step

    def step(self, gap: np.ndarray) -> np.ndarray:
        """Mean gap change (m) of one pulse."""
        return np.interp(gap, self.gaps, self.step_curve)

    def energy(self, gap: np.ndarray) -> np.ndarray:
        return np.interp(gap, self.gaps, self.energy_curve)

    def apply(self, gap: np.ndarray, count: np.ndarray) -> np.ndarray:
        """Gaps after ``count`` pulses each (mean response; ``count`` integer array like ``gap``)."""
        gap = gap.copy()
        count = count.astype(np.int64)
        pos = (gap - self.gaps[0]) / (self.gaps[1] - self.gaps[0])
        while True:
            active = count > 0
            if not active.any():
                return gap
            k = np.minimum(count[active], self.k_max)
            p = np.clip(pos[active], 0, len(self.gaps) - 1.000001)
            i = p.astype(np.int64)
            f = p - i
            gap[active] = self.maps[k, i] * (1 - f) + self.maps[k, i + 1] * f
            count[active] -= k
            pos[active] = (gap[active] - self.gaps[0]) / (self.gaps[1] - self.gaps[0])


@dataclass
class Counters:
    """Per-device pulse counts and the energy (J) of one layer's array."""

    full: np.ndarray
    half: np.ndarray
    energy_full: float = 0.0
    energy_half: float = 0.0
    energy_read: float = 0.0
    reads: int = 0


class PulsedLayer:
    """One layer (out, in+1 with the bias as an extra input at 1) on an array of cells."""

    def __init__(self, weight: np.ndarray, trainer: "InSituTrainer"):
        self.t = trainer
        cfg = trainer.config
        g = np.clip(trainer.g_ref + weight / cfg.w_max * trainer.g_half, cfg.g_window[0], cfg.g_window[1])
        self.gap = trainer.cells.state(g)
        self.buffer = np.zeros_like(self.gap)
        self.counters = Counters(np.zeros(self.gap.shape, np.int64), np.zeros(self.gap.shape, np.int64))

    def conductance(self) -> np.ndarray:
        return self.t.cells.conductance(self.gap)

    def weight(self) -> np.ndarray:
        return self.t.config.w_max * (self.conductance() - self.t.g_ref) / self.t.g_half

    # -- pulses ---------------------------------------------------------------------------
    def _pulse(self, full_set, full_reset, half_set, half_reset):
        """Apply counts of full and half-select pulses (each (out, in)): disturb first, then
        the selected pulses with their noise; count and add up energy."""
        t, c = self.t, self.counters
        if t.config.scheme != "none":
            for count, stepper in ((half_set, t.half_set), (half_reset, t.half_reset)):
                if count is not None and count.any():
                    c.energy_half += float(np.sum(count * stepper.energy(self.gap)))
                    self.gap = stepper.apply(self.gap, count)
                    c.half += count
        for count, stepper in ((full_set, t.full_set), (full_reset, t.full_reset)):
            if count is None:
                continue
            idx = np.flatnonzero(count)  # only the pulsed cells: most are not, per sample
            if idx.size == 0:
                continue
            n = count.reshape(-1)[idx]
            before = self.gap.reshape(-1)[idx]
            c.energy_full += float(np.sum(n * stepper.energy(before)))
            after = stepper.apply(before, n)
            # n pulses: mean change, and the sum of n independent relative spreads.
            noise = t.noise_rel * np.abs(after - before) / np.sqrt(n)
            gap = self.gap.copy()
            gap.reshape(-1)[idx] = np.clip(after + noise * t.rng.standard_normal(idx.size), t.state_lo, t.state_hi)
            self.gap = gap
            full = c.full.reshape(-1)
            full[idx] += n

    def _rowwise(self, select: np.ndarray, polarity: str):
        """Counts for one row-wise programming round: every row with a selected cell gets one
        pulse with its selected columns active.  Returns (full, half same polarity, opposite)."""
        select = select.astype(np.int64)
        pulsed = select.any(axis=1).astype(np.int64)
        colcount = select.sum(axis=0)
        half = pulsed[:, None] * (1 - select) + (colcount[None, :] - select)
        opposite = None
        if self.t.config.scheme == "v/3":
            opposite = (pulsed.sum() - pulsed)[:, None] - (colcount[None, :] - select)
        return select, half, opposite

    def program_rowwise(self, select_set, select_reset):
        """One row-wise round of SET pulses on ``select_set`` and RESET pulses on ``select_reset``."""
        full_s, half_s, opp_s = self._rowwise(select_set, "set")
        full_r, half_r, opp_r = self._rowwise(select_reset, "reset")
        # Under V/3 the cells on neither line see the opposite polarity at V/3.
        half_set = half_s + (opp_r if opp_r is not None else 0)
        half_reset = half_r + (opp_s if opp_s is not None else 0)
        self._pulse(full_s, full_r, half_set, half_reset)

    # -- update rules ---------------------------------------------------------------------
    def update_stochastic(self, x: np.ndarray, delta: np.ndarray):
        """Per-sample stochastic pulse trains; ``x`` (batch, in), ``delta`` (batch, out)."""
        t, cfg = self.t, self.t.config
        pending = {"set": 0, "reset": 0}
        for xs, ds in zip(x, delta):
            x_max, d_max = np.abs(xs).max(), np.abs(ds).max()
            if x_max == 0 or d_max == 0:
                continue
            # aihwkit's update management: balance the two probabilities' scales.
            scale = math.sqrt(cfg.lr / (cfg.bl * t.dw_min))
            balance = math.sqrt(d_max / x_max)
            px = np.minimum(np.abs(xs) * scale * balance, 1.0)
            pd = np.minimum(np.abs(ds) * scale / balance, 1.0)
            xb = t.rng.random((cfg.bl, xs.size)) < px
            db = t.rng.random((cfg.bl, ds.size)) < pd
            full = {"set": 0, "reset": 0}
            half = {"set": 0, "reset": 0}
            for row_sign in (1, -1):
                rows = xb & ((xs > 0) if row_sign > 0 else (xs < 0))
                for col_sign in (1, -1):
                    cols = db & ((ds > 0) if col_sign > 0 else (ds < 0))
                    # A slot of a phase is sent only where both a row and a column fire
                    # (otherwise it could not update anything and would only disturb).
                    live = rows.any(axis=1) & cols.any(axis=1)
                    if not live.any():
                        continue
                    r = (rows & live[:, None]).astype(np.int64)
                    c = (cols & live[:, None]).astype(np.int64)
                    polarity = "set" if row_sign * col_sign < 0 else "reset"  # dW ~ -x delta
                    both = c.T @ r  # (out, in): slots where both lines fire
                    full[polarity] = full[polarity] + both
                    if cfg.scheme == "none":
                        continue
                    n_rows, n_cols = r.sum(axis=0), c.sum(axis=0)
                    half[polarity] = half[polarity] + n_cols[:, None] + n_rows[None, :] - 2 * both
                    if cfg.scheme == "v/3":
                        other = "reset" if polarity == "set" else "set"
                        sent = int(live.sum())
                        half[other] = half[other] + sent - n_cols[:, None] - n_rows[None, :] + both
            as_array = (lambda v: None if isinstance(v, int) else v)
            self._pulse(as_array(full["set"]), as_array(full["reset"]), None, None)
            for polarity in ("set", "reset"):
                pending[polarity] = pending[polarity] + half[polarity]
        # The disturb of the mini-batch's pulse trains, applied at its end: it is small and
        # hardly depends on the state within one mini-batch, and every cell takes it.
        as_array = (lambda v: None if isinstance(v, int) else v)
        self._pulse(None, None, as_array(pending["set"]), as_array(pending["reset"]))

    def update_buffered(self, x: np.ndarray, delta: np.ndarray):
        """Write-verify or EaPU on the mini-batch's accumulated update."""
        t, cfg = self.t, self.t.config
        self.buffer -= cfg.lr * delta.T @ x
        # The conductance change wanted, in siemens.
        want = self.buffer / cfg.w_max * t.g_half
        g_now = self.conductance()
        if cfg.update == "eapu":
            up = want > 0
            # |change| after 0..wv_max_iter mean pulses at each cell (the response is nonlinear:
            # each pulse sees the state the previous one left).
            reach = [np.zeros_like(g_now)]
            gap_set, gap_reset = self.gap, self.gap
            for _ in range(cfg.wv_max_iter):
                gap_set = t.full_set.apply(gap_set, np.ones(gap_set.shape, np.int64))
                gap_reset = t.full_reset.apply(gap_reset, np.ones(gap_reset.shape, np.int64))
                g_after = t.cells.conductance(np.where(up, gap_set, gap_reset))
                reach.append(np.abs(g_after - g_now))
            reach = np.stack(reach)  # (n + 1, out, in), increasing in n
            lower = np.minimum((reach <= np.abs(want)).sum(axis=0) - 1, cfg.wv_max_iter - 1)
            below = np.take_along_axis(reach, lower[None], 0)[0]
            above = np.take_along_axis(reach, lower[None] + 1, 0)[0]
            frac = np.clip((np.abs(want) - below) / np.maximum(above - below, 1e-30), 0.0, 1.0)
            n = lower + (t.rng.random(frac.shape) < frac)
            for r in range(int(n.max(initial=0))):
                self.program_rowwise((n > r) & up, (n > r) & ~up)
            self.buffer[:] = 0.0
            return
        target = g_now + want
        todo = np.abs(want) >= t.g_nominal_step
        if not todo.any():
            return
        g_start = g_now
        for _ in range(cfg.wv_max_iter):
            g_read = self._verify_read(todo)
            error = np.where(todo, target - g_read, 0.0)
            # Done within half a step of the pulse that would come next (steps grow with G).
            tol = 0.5 * np.where(error > 0, t.g_step(self.gap, "set"), t.g_step(self.gap, "reset"))
            need = np.abs(error) > tol
            if not need.any():
                break
            self.program_rowwise(need & (error > 0), need & (error < 0))
        achieved = self.conductance() - g_start
        self.buffer -= np.where(todo, achieved / t.g_half * cfg.w_max, 0.0)

    def _verify_read(self, rows_mask: np.ndarray) -> np.ndarray:
        t, cfg, c = self.t, self.t.config, self.counters
        g = self.conductance()
        rows = rows_mask.any(axis=1)
        c.reads += int(rows.sum())
        c.energy_read += float(np.sum(g[rows]) * cfg.v_read ** 2 * cfg.t_read)
        return g * (1 + cfg.variability.sigma_read * t.rng.standard_normal(g.shape))


class InSituTrainer:
    """Train a ReLU MLP (sizes, e.g. (64, 64, 10)) in situ; ``model`` a PulseModel."""

    def __init__(self, sizes, model, config: InSituConfig = InSituConfig(), init_weights=None):
        import torch

        self.config = config
        self.model = model
        self.params = model.params
        self.rng = np.random.default_rng(config.seed)
        if model.kind != config.kind:
            raise ValueError(f"the pulse model is of a {model.kind!r} cell, the configuration asks for {config.kind!r}")
        model.check([config.v_set, -config.v_reset], config.width)
        if config.scheme != "none":
            model.check([config.v_set * config.half_fraction, config.v_reset * config.half_fraction], config.width)
        lo, hi = config.g_window
        self.cells = CellMap(model, config.v_read)
        self.g_ref = 0.5 * (lo + hi)
        self.g_half = 0.5 * (hi - lo)
        self.gap_top = float(self.cells.state(hi))
        # The states a cell may take: from the window's top to the model's bound at the low-G end.
        self.state_lo, self.state_hi = sorted((self.gap_top, self.cells.low_g_bound))
        gap_lo, gap_hi = self.state_lo, self.state_hi
        # SET raises the conductance: a positive pulse for the built-in model, whichever polarity
        # does so for a Verilog-A device (VTEAM's w grows, and its conductance falls, under v > 0).
        self.set_sign = self.cells.set_sign(model, config.v_set, config.width)
        self.full_set = Stepper(model, self.set_sign * config.v_set, config.width, gap_lo, gap_hi)
        self.full_reset = Stepper(model, -self.set_sign * config.v_reset, config.width, gap_lo, gap_hi)
        h = config.half_fraction or 0.5
        self.half_set = Stepper(model, self.set_sign * config.v_set * h, config.width, gap_lo, gap_hi)
        self.half_reset = Stepper(model, -self.set_sign * config.v_reset * h, config.width, gap_lo, gap_hi)
        # The nominal pulse: a SET at the window's middle; its step sets dw_min and the noise.
        gap_mid = float(self.cells.state(self.g_ref))
        step_gap = abs(float(self.full_set.step(np.array(gap_mid))))
        slope = float(self.cells.log_slope(np.array(gap_mid)))  # |d ln G / d state|
        self.g_nominal_step = self.g_ref * step_gap * slope  # dG = G |d ln G/ds| ds
        self.dw_min = config.w_max * self.g_nominal_step / self.g_half
        # sigma_c2c is a log-normal spread of G per event: sigma_c2c / |d ln G/ds| in state.
        self.noise_rel = config.variability.sigma_c2c / (slope * step_gap) if step_gap > 0 else 0.0
        if init_weights is None:
            gen = torch.Generator().manual_seed(config.seed)
            init_weights = []
            for n_in, n_out in zip(sizes[:-1], sizes[1:]):
                bound = 1 / math.sqrt(n_in)  # torch.nn.Linear's default range
                w = (torch.rand((n_out, n_in + 1), generator=gen, dtype=torch.float64) * 2 - 1) * bound
                init_weights.append(w.numpy())
        self.layers = [PulsedLayer(np.asarray(w, dtype=float), self) for w in init_weights]
        self.history = []

    def g_step(self, gap, polarity: str) -> np.ndarray:
        """|dG| (S) of one mean pulse at each gap."""
        stepper = self.full_set if polarity == "set" else self.full_reset
        return self.cells.conductance(gap) * np.abs(stepper.step(gap)) * self.cells.log_slope(gap)

    def forward(self, x, weights):
        import torch

        h = x
        for k, w in enumerate(weights):
            h = torch.cat([h, torch.ones(h.shape[0], 1, dtype=h.dtype)], dim=1) @ w.T
            if k < len(weights) - 1:
                h = torch.relu(h)
        return h

    def accuracy(self, x, y) -> float:
        import torch

        with torch.no_grad():
            weights = [torch.as_tensor(layer.weight()) for layer in self.layers]
            logits = self.forward(torch.tensor(np.asarray(x, dtype=float)), weights)
        return float((logits.argmax(1).numpy() == np.asarray(y)).mean())

    def train_epoch(self, x_train, y_train) -> dict:
        """One epoch over ``x_train`` (n, features) in random order; returns its record."""
        import torch

        cfg = self.config
        x_all = torch.tensor(np.asarray(x_train, dtype=float))
        y_all = torch.tensor(np.asarray(y_train, dtype=np.int64))
        order = self.rng.permutation(len(y_all))
        start = time.perf_counter()
        before = [(layer.counters.full.copy(), layer.counters.half.copy(), layer.counters.energy_full,
                   layer.counters.energy_half, layer.counters.energy_read) for layer in self.layers]
        loss_sum = 0.0
        for first in range(0, len(order), cfg.batch_size):
            idx = order[first:first + cfg.batch_size]
            weights = [torch.as_tensor(layer.weight()).requires_grad_(True) for layer in self.layers]
            inputs, outputs = [], []
            h = x_all[idx]
            for k, w in enumerate(weights):
                inp = torch.cat([h, torch.ones(h.shape[0], 1, dtype=h.dtype)], dim=1)
                out = inp @ w.T
                out.retain_grad()
                inputs.append(inp)
                outputs.append(out)
                h = torch.relu(out) if k < len(weights) - 1 else out
            # Mean over the batch, as torch's SGD sees it: per-sample deltas carry 1/batch.
            loss = torch.nn.functional.cross_entropy(h, y_all[idx])
            loss.backward()
            loss_sum += float(loss.detach()) * len(idx)
            for layer, inp, out in zip(self.layers, inputs, outputs):
                x_np, d_np = inp.detach().numpy(), out.grad.numpy()
                if cfg.update == "stochastic":
                    layer.update_stochastic(x_np, d_np)
                else:
                    layer.update_buffered(x_np, d_np)
        record = {"seconds": time.perf_counter() - start, "loss": loss_sum / len(order)}
        full = sum(int((l.counters.full - b[0]).sum()) for l, b in zip(self.layers, before))
        half = sum(int((l.counters.half - b[1]).sum()) for l, b in zip(self.layers, before))
        e_full = sum(l.counters.energy_full - b[2] for l, b in zip(self.layers, before))
        e_half = sum(l.counters.energy_half - b[3] for l, b in zip(self.layers, before))
        e_read = sum(l.counters.energy_read - b[4] for l, b in zip(self.layers, before))
        record.update(pulses=full, half_select_pulses=half,
                      energy_j=(e_full + e_half) * cfg.wire_factor + e_read,
                      energy_full_j=e_full, energy_half_j=e_half, energy_read_j=e_read,
                      max_pulses_per_device=max(int((l.counters.full - b[0]).max()) for l, b in zip(self.layers, before)))
        return record

    def endurance(self) -> dict:
        """Pulse counts so far against the budget: devices passing, and the worst device."""
        full = np.concatenate([l.counters.full.ravel() for l in self.layers])
        half = np.concatenate([l.counters.half.ravel() for l in self.layers])
        budget = self.config.endurance
        return {"devices": int(full.size), "max_pulses": int(full.max()), "mean_pulses": float(full.mean()),
                "passing": int(np.sum(full <= budget)), "passing_with_disturb": int(np.sum(full + half <= budget)),
                "max_half_select": int(half.max())}

    def fit(self, dataset, epochs: int, progress: bool = False) -> list:
        """Train ``epochs`` epochs on a :class:`memsim.nn.datasets.Dataset`; each record holds
        the test accuracy after the epoch (epoch 0: before training)."""
        if not self.history:
            self.history.append({"epoch": 0, "accuracy": self.accuracy(dataset.x_test, dataset.y_test)})
        for _ in range(epochs):
            record = self.train_epoch(dataset.x_train, dataset.y_train)
            record["epoch"] = len(self.history)
            record["accuracy"] = self.accuracy(dataset.x_test, dataset.y_test)
            record["endurance"] = self.endurance()
            self.history.append(record)
            if progress:
                print(f"  epoch {record['epoch']}: accuracy {record['accuracy']:.3f}, {record['pulses']} pulses, "
                      f"{record['energy_j']:.3g} J, {record['seconds']:.1f} s", flush=True)
        return self.history
