"""Any torch model on crossbar tiles: :func:`convert` and the analog layers.

``convert(model, config)`` returns an :class:`AnalogModel`: a copy of ``model`` whose
``Linear`` (any leading input shape), ``Conv1d`` and ``Conv2d`` layers run on tiles
(convolutions through patches: every output position is one input vector of the layer's
(C prod(kernel)) x out matrix, so a convolution uses the same tiles as a Linear layer; a
grouped or depthwise convolution puts each group's block on its own tiles; stride,
dilation and every padding mode as torch), the input and hidden projections of ``RNN``,
``LSTM`` and ``GRU`` and their cells (:class:`AnalogRNN`, :class:`AnalogRNNCell`: gates and
recurrence digital) and the
projections of ``MultiheadAttention`` (:class:`AnalogMultiheadAttention`: dot products and
softmax digital); the root module too, when it is such a layer; every other module is the
original, untouched::

    analog = memsim.nn.analog(model, HardwareConfig(tile=128, r_wire=2.5), seed=0)
    analog.set_time(3600.0)                 # one hour of drift
    analog.accuracy(x_test, y_test)

Modes of an analog layer:

- eval (default): the tiles (DAC, circuit, noise, ADC); digital bias;
- ``analog.float_mode()``: the floating-point layer (ADC calibration, reference logits);
- train (``analog.train()``): hardware-aware training: each forward draws a fresh device
  instance of the weights (the mapping onto conductances, programming noise and drift to
  ``analog.train_time`` from the noise model, optional global drift compensation in weight
  space, output noise), differentiable in the float weights, which torch's optimisers
  update; :meth:`AnalogModel.program` then writes the trained weights onto the tiles.

Public hooks for compensation (:mod:`memsim.compensate`): torch forward hooks on any
:class:`~memsim.nn.tile.Tile` (its digital output) and on any analog layer (its output from
its input, in every mode) and :meth:`AnalogModel.register_time_hook` (called after every
:meth:`AnalogModel.set_time`);
:meth:`AnalogModel.device_draws` gives drift instances of the weights (the training draw) to
fit compensation on.

Seeds: ``seed`` draws programming noise (one stream, in tile order), the drift and slow
noise at each time (a stream per ``(seed, t)``, so ``set_time`` gives the same conductances
whatever ran before), the per-read noise (one stream per model) and the training samples.
"""
from __future__ import annotations

import contextlib
import copy
import itertools
import math
from collections import OrderedDict
from dataclasses import dataclass
from types import SimpleNamespace

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F
from torch.utils.hooks import RemovableHandle

from .config import HardwareConfig
from .mapping import crossbar_matrix, crossbar_weight, differential, map_block, map_weights, tile_blocks
from .noise import check_time
from .streams import generator, time_word
from .tile import Tile

#: Layers with weights that have no tile mapping: refused rather than left digital unnoticed.
_REFUSED = (nn.Conv3d, nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d, nn.Bilinear,
            nn.modules.lazy.LazyModuleMixin)
#: Values (rows x inputs) of a layer's input matrix read in one pass through its tiles.
READ_PASS_ELEMENTS = 1 << 22
#: What goes on tiles.
SUPPORTED = "Linear, Conv1d, Conv2d, RNN, LSTM, GRU (and their cells), MultiheadAttention"


def _copy_projections(analog: nn.Module, out: nn.Module) -> nn.Module:
    """Copy each projection child (``ih_l0``, ...) of a recurrent layer on tiles into the float
    torch layer ``out`` (``weight_ih_l0``, ``bias_ih_l0``, ...); returns ``out``."""
    with torch.no_grad():
        for name, layer in analog.named_children():
            getattr(out, f"weight_{name}").copy_(layer.weight)
            if layer.bias is not None:
                getattr(out, f"bias_{name}").copy_(layer.bias)
    return out


class _Shared:
    """State every analog layer of one model reads: config, noise model, training settings."""

    def __init__(self, config, noise_model, device):
        self.config = config
        self.noise_model = noise_model
        self.float_mode = False
        self.capture = False
        self.train_time = 0.0
        self.train_gdc = False
        self.train_noise = True
        self.sample_generator = None
        self.read_generator = None
        self.device = device


def sample_block(block, config, noise_model, t_seconds, generator, s=None):
    """One device instance of a weight block: mapped onto conductances (scale ``s``, default
    from the block), programmed and drifted to ``t_seconds`` by ``noise_model``, un-mapped.
    Returns the weights at t and right after programming; differentiable in ``block``."""
    g, s = map_block(block, config.cond, config.scale, s)
    cells = noise_model.program(g, generator)
    g_t = noise_model.at_time(cells, t_seconds, generator) if t_seconds > 0 else cells.g_prog
    return differential(g_t) * s, differential(cells.g_prog) * s


class AnalogLayer(nn.Module):
    """A layer whose matrix product runs on tiles; subclasses fold inputs to 2-D.

    ``groups`` > 1 (grouped convolutions): the crossbar matrix is block diagonal
    (:func:`~memsim.nn.mapping.crossbar_matrix`) and only its diagonal blocks are on tiles.
    """

    groups = 1

    def __init__(self, source: nn.Module, shared: _Shared):
        super().__init__()
        self.weight = nn.Parameter(source.weight.detach().clone())
        self.bias = None if source.bias is None else nn.Parameter(source.bias.detach().clone())
        self.tiles = nn.ModuleList()
        self._shared = shared
        self.last_input = None
        self._held = None

    @contextlib.contextmanager
    def hold_draw(self):
        """Inside, every training forward uses one device instance of the weights (drawn on
        entry; output noise is still drawn per read): a layer read at every step of a
        recurrence keeps one device instance per sequence, as hardware would."""
        sh = self._shared
        self._held = self.sampled_matrix() if self.training and not sh.float_mode else None
        try:
            yield self
        finally:
            self._held = None

    # -- the matrix ----------------------------------------------------------------------------
    def matrix(self) -> torch.Tensor:
        """The float weight matrix as a crossbar sees it, (inputs, outputs)."""
        return crossbar_matrix(self.weight, self.groups)

    @property
    def in_features_flat(self) -> int:
        """Entries of one input vector of the crossbar matrix (a convolution: one patch)."""
        return int(np.prod(self.weight.shape[1:])) * self.groups

    def program(self, noise_model, generator) -> None:
        """Map the float weights onto tiles and program their cells (programming noise)."""
        cfg = self._shared.config
        with torch.no_grad():
            maps = map_weights(self.matrix().detach(), cfg.tile, cfg.cond, cfg.scale, self.groups)
        if len(self.tiles) != len(maps):  # new tiles; re-programming keeps the same objects (and their hooks)
            self.tiles = nn.ModuleList(Tile(tmap, cfg, self._shared.read_generator) for tmap in maps)
        for tile, tmap in zip(self.tiles, maps):
            tile.remap(tmap)
            tile.read_sigma = float(getattr(noise_model, "read_sigma", 0.0))
            tile.cells = noise_model.program(tile.g_target, generator)
            tile.set_conductances(tile.cells.g_prog)

    def analog_matrix(self, x2d: torch.Tensor) -> torch.Tensor:
        """The tiles' product (rows, outputs) of the layer's input matrix ``x2d`` (rows, inputs)."""
        return self._read_passes(_MatrixRows(x2d))

    def _read_passes(self, source, bias=None) -> torch.Tensor:
        """The tiles' product (rows, outputs) of the input matrix that ``source`` gives
        (:class:`_MatrixRows`, :class:`_PatchRows`) pass by pass.

        A convolution's patch matrix can hold millions of rows: it is read in passes of about
        READ_PASS_ELEMENTS values, whose intermediates (DAC, reads, ADC) stay in cache.  The
        tiles on the same rows share one DAC (:meth:`Periphery.drive`), which may overwrite
        a pass of ``source``'s own buffer; every tile draws its read noise in tile order, pass
        by pass; ``bias`` is added to each pass (while it is in cache)."""
        step = max(1, READ_PASS_ELEMENTS // max(1, source.width))
        blocks = [list(tiles) for _, tiles in itertools.groupby(self.tiles, key=lambda t: (t.rows.start, t.rows.stop))]
        covered = torch.zeros(self.weight.shape[0], dtype=torch.bool)
        for tile in self.tiles:
            covered[tile.cols] = True
        new = torch.empty if bool(covered.all()) else torch.zeros
        out = new((source.count, self.weight.shape[0]), dtype=source.dtype, device=source.device)
        for start in range(0, source.count, step):
            stop = min(start + step, source.count)
            part, owned = source.take(start, stop)
            owned = owned and not (torch.is_grad_enabled() and part.requires_grad)  # autograd keeps the patches
            written = set()
            for tiles in blocks:
                rows = tiles[0].rows
                x = part[:, rows]
                drive = tiles[0].periphery.drive(x, source.peak(rows, start, stop), overwrite=owned)
                for tile in tiles:
                    target, key = out[start:stop, tile.cols], (tile.cols.start, tile.cols.stop)
                    if key in written:  # the partial sums of row blocks, in tile order
                        target += tile(x, drive=drive)
                    else:
                        y = tile(x, drive=drive, out=None if torch.is_grad_enabled() else target)
                        if y is not target:  # a forward hook gave another tensor
                            target.copy_(y)
                        written.add(key)
            if bias is not None:
                out[start:stop] += bias
        return out

    def sampled_matrix(self) -> tuple:
        """One device instance of the weights (inputs, outputs), differentiable in the float
        weights, and the per-tile output noise [(rows, cols, sigma)] in weight units."""
        sh = self._shared
        cfg, model, gen = sh.config, sh.noise_model, sh.sample_generator
        w = self.matrix()
        blocks = torch.zeros_like(w)
        noise = []
        for rows, cols in tile_blocks(*w.shape, cfg.tile, self.groups):
            if not sh.train_noise:
                g, s = map_block(w[rows, cols], cfg.cond, cfg.scale)
                blocks[rows, cols] = differential(g) * s
                continue
            w_t, w_0 = sample_block(w[rows, cols], cfg, model, sh.train_time, gen)
            alpha = 1.0
            if sh.train_gdc:  # the weight-space value of the one-hot read-out ratio
                with torch.no_grad():
                    n = cfg.out_noise * torch.randn(w_t.shape, generator=gen, dtype=w.dtype, device=w.device)
                    now = (w_t + n).abs().mean()
                    ref = (w_0 + n).abs().mean()
                    alpha = float(ref / now) if now > 0 else 1.0
            blocks[rows, cols] = w_t * alpha
            if cfg.out_noise > 0:
                noise.append((rows, cols, cfg.out_noise * alpha))
        return blocks, noise

    def _matrix_forward(self, x2d: torch.Tensor) -> torch.Tensor:
        sh = self._shared
        if sh.capture:  # a layer read several times per forward (a recurrence) keeps every read
            x_kept = x2d.detach()
            self.last_input = x_kept if self.last_input is None else torch.cat((self.last_input, x_kept))
        if sh.float_mode:
            y = x2d @ self.matrix()
        elif self.training:
            w, noise = self.sampled_matrix() if self._held is None else self._held
            y = x2d @ w
            for rows, cols, sigma in noise:
                scale = x2d[:, rows].detach().abs().amax(dim=1, keepdim=True)
                y[:, cols] = y[:, cols] + sigma * scale * torch.randn(
                    (x2d.shape[0], cols.stop - cols.start), generator=sh.sample_generator, dtype=y.dtype,
                    device=y.device)
        else:
            if not self.tiles:
                raise RuntimeError("this analog layer has no tiles: call AnalogModel.program() first")
            return self._read_passes(_MatrixRows(x2d), self.bias)
        return y if self.bias is None else y + self.bias

    def plain(self) -> nn.Module:
        """The float torch layer with this layer's weights (for :meth:`AnalogModel.to_torch`)."""
        layer = self._plain().to(dtype=self.weight.dtype, device=self.weight.device)
        with torch.no_grad():
            layer.weight.copy_(self.weight)
            if self.bias is not None:
                layer.bias.copy_(self.bias)
        return layer


class AnalogLinear(AnalogLayer):
    """``nn.Linear`` on tiles, for inputs of any leading shape (``(..., in_features)``)."""

    def __init__(self, source: nn.Linear, shared):
        super().__init__(source, shared)
        self.in_features, self.out_features = source.in_features, source.out_features

    def forward(self, x):
        if x.ndim == 0 or x.shape[-1] != self.in_features:
            raise ValueError(f"{type(self).__name__} expects inputs (..., {self.in_features}), got {tuple(x.shape)}")
        shape = x.shape
        y = self._matrix_forward(x.reshape(-1, shape[-1]))
        return y.reshape(*shape[:-1], y.shape[-1])

    def _plain(self) -> nn.Linear:
        return nn.Linear(self.in_features, self.out_features, bias=self.bias is not None)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, tiles={len(self.tiles)}"


@dataclass(frozen=True)
class ConvGeometry:
    """How a torch convolution (``nn.Conv1d``, ``nn.Conv2d``) reads its input.

    ``pads``: (before, after) per spatial dimension, as torch pads (``padding="same"`` puts
    the odd one after); ``mode``: torch's ``padding_mode`` (zeros, reflect, replicate,
    circular).  The input is padded first, then read with no padding, which is what torch
    does for every padding mode.
    """

    kernel: tuple
    stride: tuple
    dilation: tuple
    pads: tuple
    mode: str
    groups: int

    @classmethod
    def of(cls, conv) -> "ConvGeometry":
        if isinstance(conv.padding, str):
            pads = []
            for k, d in zip(conv.kernel_size, conv.dilation):
                total = d * (k - 1) if conv.padding == "same" else 0
                pads.append((total // 2, total - total // 2))
        else:
            pads = [(int(p), int(p)) for p in conv.padding]
        return cls(tuple(conv.kernel_size), tuple(conv.stride), tuple(conv.dilation), tuple(pads),
                   conv.padding_mode, int(conv.groups))

    @property
    def dims(self) -> int:
        return len(self.kernel)

    def pad(self, x: torch.Tensor) -> torch.Tensor:
        if not any(a or b for a, b in self.pads):
            return x
        flat = [v for pair in reversed(self.pads) for v in pair]  # F.pad: last dimension first
        return F.pad(x, flat) if self.mode == "zeros" else F.pad(x, flat, mode=self.mode)

    def conv(self, x, weight, bias=None) -> torch.Tensor:
        """The float convolution (torch's own) with ``weight`` and ``bias``."""
        op = F.conv1d if self.dims == 1 else F.conv2d
        return op(self.pad(x), weight, bias, self.stride, 0, self.dilation, self.groups)

    def out_size(self, padded) -> tuple:
        return tuple((n - d * (k - 1) - 1) // s + 1
                     for n, k, s, d in zip(padded, self.kernel, self.stride, self.dilation))

    def windows(self, x: torch.Tensor) -> torch.Tensor:
        """The patches as a strided view (batch, *out_size, C, *kernel) of the padded input."""
        windows = self.pad(x)
        for d in range(self.dims):
            windows = windows.unfold(2 + d, self.dilation[d] * (self.kernel[d] - 1) + 1, self.stride[d])
        if any(d > 1 for d in self.dilation):
            windows = windows[(Ellipsis, *(slice(None, None, d) for d in self.dilation))]
        order = (0, *range(2, 2 + self.dims), 1, *range(2 + self.dims, 2 + 2 * self.dims))
        return windows.permute(order)

    def patches(self, x: torch.Tensor) -> tuple:
        """The input vectors (batch x positions, C prod(kernel)), in the order of
        ``weight.reshape(out, -1)`` per group (``F.unfold``'s), and (batch, *out_size); built
        from strided views (torch's CPU im2col is far slower)."""
        windows = self.windows(x)
        batch, out = windows.shape[0], tuple(windows.shape[1:1 + self.dims])
        return windows.reshape(batch * math.prod(out), -1), (batch, *out)

    def channel_peak(self, x: torch.Tensor, channels: slice) -> torch.Tensor:
        """(B, *out_size): the largest |x| over the input ``channels`` of every patch (all
        their kernel offsets), a window maximum taken one spatial dimension at a time
        (|pad(x)| = pad(|x|) for every padding mode)."""
        peak = self.pad(x[:, channels].abs()).amax(dim=1)
        for d in range(self.dims):
            span = self.dilation[d] * (self.kernel[d] - 1) + 1
            peak = peak.unfold(1 + d, span, self.stride[d])[..., ::self.dilation[d]].amax(dim=-1)
        return peak

    def peak(self, x: torch.Tensor, rows=slice(None)) -> torch.Tensor:
        """(B, *out_size): the largest |x| over the entries ``rows`` of every patch (the
        columns ``rows`` of :meth:`patches`, ordered (C_in, *kernel)), from strided views of
        the padded input, one per kernel offset."""
        c_in, per = x.shape[1], math.prod(self.kernel)
        start, stop, _ = rows.indices(c_in * per)
        magnitude = self.pad(x.abs())
        out = self.out_size(magnitude.shape[2:])
        peak = torch.zeros((x.shape[0], *out), dtype=x.dtype, device=x.device)
        for offset, position in enumerate(itertools.product(*(range(k) for k in self.kernel))):
            # entry c * per + offset of a patch is channel c at this kernel position
            c_lo, c_hi = max(-(-(start - offset) // per), 0), min(-(-(stop - offset) // per), c_in)
            if c_lo >= c_hi:
                continue
            index = (slice(None), slice(c_lo, c_hi),
                     *(slice(u * d, u * d + s * (o - 1) + 1, s)
                       for u, d, s, o in zip(position, self.dilation, self.stride, out)))
            peak = torch.maximum(peak, magnitude[index].amax(dim=1))
        return peak


class _MatrixRows:
    """Rows of an input matrix (rows, inputs) for :meth:`AnalogLayer._read_passes`."""

    def __init__(self, x2d: torch.Tensor):
        self.x2d = x2d
        self.count, self.width = x2d.shape
        self.dtype, self.device = x2d.dtype, x2d.device

    def take(self, start: int, stop: int) -> tuple:
        """Rows ``start:stop`` and whether they may be overwritten (not: they are the caller's)."""
        return self.x2d[start:stop], False

    def peak(self, rows: slice, start: int, stop: int):
        return None  # the DAC takes each row's largest |x| itself


class _PatchRows:
    """The patch matrix of a convolution's input ``x`` (:meth:`ConvGeometry.patches`), built
    pass by pass into one buffer instead of all at once.

    The buffer holds a pass transposed, (C prod(kernel), positions): each of its rows is a
    run of output positions, copied from the input with unit stride where the patch-major
    layout would copy a few values at a time (the matrix product reads either layout); a
    pass is copied whole output rows at a time.  Each patch's largest |x| over a tile's rows
    comes from the image (:meth:`ConvGeometry.channel_peak`) when the tile holds whole input
    channels."""

    def __init__(self, geometry: ConvGeometry, x: torch.Tensor):
        x = x.contiguous()  # unit-stride runs along the last dimension (a channels-last input has none)
        self.geometry, self.x = geometry, x
        dims = geometry.dims
        windows = geometry.windows(x)  # (B, *out, C, *kernel)
        self.shape = tuple(windows.shape[:1 + dims])
        self.columns = windows.permute(*range(1 + dims, 2 + 2 * dims), *range(1 + dims))  # (C, *kernel, B, *out)
        self.lead = self.columns.shape[:1 + dims]
        self.line = math.prod(self.shape[2:])  # positions per output row
        self.width = math.prod(self.lead)
        self.count = math.prod(self.shape)
        self.dtype, self.device = x.dtype, x.device
        self.buffer = None
        self._peaks = {}

    def take(self, start: int, stop: int) -> tuple:
        """Patches ``start:stop`` (rows, C prod(kernel)), a view of a buffer the caller may
        overwrite."""
        lines, lead = self.shape[1], (slice(None),) * len(self.lead)
        first, last = start // self.line, -(-stop // self.line)
        size = (last - first) * self.line * self.width
        if self.buffer is None or self.buffer.numel() < size:
            self.buffer = torch.empty(size, dtype=self.dtype, device=self.device)
        dest = self.buffer[:size].view(*self.lead, last - first, *self.shape[2:])
        at = first
        while at < last:
            image, line = divmod(at, lines)
            if line == 0 and last - at >= lines:  # whole images
                count = (last - at) // lines * lines
                dest[(*lead, slice(at - first, at - first + count))].unflatten(len(lead), (-1, lines)).copy_(
                    self.columns[(*lead, slice(image, image + count // lines))])
            else:
                count = min(last - at, lines - line)
                dest[(*lead, slice(at - first, at - first + count))].copy_(
                    self.columns[(*lead, image, slice(line, line + count))])
            at += count
        offset = first * self.line
        return self.buffer[:size].view(self.width, -1)[:, start - offset:stop - offset].t(), True

    def peak(self, rows: slice, start: int, stop: int):
        """Each patch's largest |x| over ``rows`` (n, 1) when they are whole input channels."""
        per = self.width // self.x.shape[1]
        low, high, _ = rows.indices(self.width)
        if low % per or high % per:
            return None
        if (low, high) not in self._peaks:
            self._peaks[low, high] = self.geometry.channel_peak(self.x, slice(low // per, high // per)).reshape(-1, 1)
        return self._peaks[low, high][start:stop]


class AnalogConv(AnalogLayer):
    """A torch convolution on tiles through patches (:class:`ConvGeometry`): every output
    position is one input vector of the layer's (C_in prod(kernel)) x out matrix, block
    diagonal for grouped convolutions (each group's (C_in / groups) prod(kernel) x
    (out / groups) block on its own tiles; depthwise: one block per channel).  Stride,
    dilation, groups, numeric or "same"/"valid" padding and every padding mode as torch."""

    _dims = 2
    _plain_type = nn.Conv2d

    def __init__(self, source, shared):
        super().__init__(source, shared)
        self.geometry = ConvGeometry.of(source)
        self.groups = self.geometry.groups
        self.in_channels, self.out_channels = source.in_channels, source.out_channels
        self.kernel_size, self.stride, self.padding = source.kernel_size, source.stride, source.padding
        self.dilation, self.padding_mode = source.dilation, source.padding_mode

    def forward(self, x):
        dims = self._dims
        if x.ndim not in (dims + 1, dims + 2) or x.shape[-dims - 1] != self.in_channels:
            names = "length" if dims == 1 else "height, width"
            raise ValueError(f"{type(self).__name__} expects ([batch,] {self.in_channels} channels, {names}), "
                             f"got {tuple(x.shape)}")
        if x.ndim == dims + 1:  # unbatched, as torch accepts
            return self.forward(x[None])[0]
        sh = self._shared
        if sh.float_mode and not sh.capture:
            return self.geometry.conv(x, self.weight, self.bias)
        if self.training and not sh.capture:
            return self._drawn_forward(x)
        if not (sh.float_mode or self.training or sh.capture) and self.tiles:
            source = _PatchRows(self.geometry, x)  # the tiles' reads, pass by pass
            y = self._read_passes(source, self.bias)
            return y.reshape(*source.shape, self.out_channels).movedim(-1, 1)  # (an empty batch too)
        x2d, shape = self.patches(x)
        y = self._matrix_forward(x2d)
        return y.reshape(*shape, self.out_channels).movedim(-1, 1)

    def patches(self, x):
        """The layer's input vectors (batch x positions, C prod(kernel)) and (batch, *out_size)."""
        return self.geometry.patches(x)

    def _drawn_forward(self, x):
        """The training draw as a convolution: one device instance of the weights, and each
        tile's output noise scaled by the largest input magnitude of its part of every patch
        (:meth:`patch_peak`), as the patches' matrix product would give, without the patches."""
        w, noise = self.sampled_matrix()
        y = self.geometry.conv(x, crossbar_weight(w, self.weight.shape, self.groups), self.bias)
        gen = self._shared.sample_generator
        for rows, cols, sigma in noise:
            peak = self.patch_peak(x.detach(), rows)
            shape = (y.shape[0], cols.stop - cols.start, *y.shape[2:])
            y[:, cols] = y[:, cols] + sigma * peak[:, None] * torch.randn(shape, generator=gen, dtype=y.dtype,
                                                                          device=y.device)
        return y

    def patch_peak(self, x, rows=slice(None)) -> torch.Tensor:
        """(B, *out_size): the largest |x| over the entries ``rows`` of every patch
        (:meth:`ConvGeometry.peak`)."""
        return self.geometry.peak(x, rows)

    def _plain(self):
        return self._plain_type(self.in_channels, self.out_channels, self.kernel_size, self.stride, self.padding,
                                self.dilation, self.groups, self.bias is not None, self.padding_mode)

    def extra_repr(self) -> str:
        text = f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}, " \
               f"padding={self.padding}"
        if any(d != 1 for d in self.dilation):
            text += f", dilation={self.dilation}"
        if self.groups != 1:
            text += f", groups={self.groups}"
        if self.padding_mode != "zeros":
            text += f", padding_mode={self.padding_mode!r}"
        return text + f", tiles={len(self.tiles)}"


class AnalogConv1d(AnalogConv):
    """``nn.Conv1d`` on tiles (see :class:`AnalogConv`)."""

    _dims = 1
    _plain_type = nn.Conv1d


class AnalogConv2d(AnalogConv):
    """``nn.Conv2d`` on tiles (see :class:`AnalogConv`)."""


def _linear(weight, bias):
    """The fields of an ``nn.Linear`` an :class:`AnalogLinear` is made from."""
    return SimpleNamespace(weight=weight, bias=bias, out_features=weight.shape[0], in_features=weight.shape[1])


class AnalogBlock(nn.Module):
    """A torch module with several weight matrices, each an :class:`AnalogLinear` child on
    its own tiles, and digital work between them; ``plain()`` gives the torch module back."""

    def sublayers(self) -> list:
        return [m for m in self.children() if isinstance(m, AnalogLinear)]

    @contextlib.contextmanager
    def hold_draws(self):
        """Inside, each projection keeps one device instance in training
        (:meth:`AnalogLayer.hold_draw`): wrap a loop over time steps of a cell in it."""
        with contextlib.ExitStack() as stack:
            for layer in self.sublayers():
                stack.enter_context(layer.hold_draw())
            yield self


def _gates(mode: str, pre, hidden, h, c):
    """One recurrent step from the input projection ``pre`` (W_ih x + b_ih) and the hidden
    projection ``hidden`` (W_hh h + b_hh), torch's equations; returns (h, c)."""
    if mode == "LSTM":
        i, f, g, o = (pre + hidden).chunk(4, dim=-1)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        return torch.sigmoid(o) * torch.tanh(c), c
    if mode == "GRU":
        x_r, x_z, x_n = pre.chunk(3, dim=-1)
        h_r, h_z, h_n = hidden.chunk(3, dim=-1)
        r, z = torch.sigmoid(x_r + h_r), torch.sigmoid(x_z + h_z)
        n = torch.tanh(x_n + r * h_n)
        return (1 - z) * n + z * h, None
    total = pre + hidden
    return (torch.tanh(total) if mode == "RNN_TANH" else torch.relu(total)), None


class AnalogRNN(AnalogBlock):
    """``nn.RNN`` / ``nn.LSTM`` / ``nn.GRU`` with the weight matrices on tiles.

    Every layer and direction has its input projection ``ih_l{k}`` (W_ih x + b_ih, read once
    for all time steps as one batch) and hidden projection ``hh_l{k}`` (W_hh h + b_hh, read
    at every step; ``_reverse`` for the backward direction) on tiles, and for an LSTM with
    ``proj_size`` the projection ``hr_l{k}``.  The gate nonlinearities (sigmoid, tanh), the
    gate products, the cell state and the recurrence itself stay digital, as in IBM
    aihwkit's analog LSTM; biases are added digitally.  Gate order and equations are
    torch's (LSTM: i, f, g, o; GRU: r, z, n with ``n = tanh(W_in x + b_in + r (W_hn h +
    b_hn))``).  Inputs ``(L, N, H_in)`` (``(N, L, H_in)`` with ``batch_first``) or unbatched
    ``(L, H_in)``, an optional initial state as torch takes it; returns ``(output, h_n)``
    (LSTM: ``(output, (h_n, c_n))``).  PackedSequence inputs are refused.  In training
    each projection holds one device instance per forward (:meth:`AnalogLayer.hold_draw`).
    """

    def __init__(self, source: nn.RNNBase, shared):
        super().__init__()
        self.mode = source.mode
        self.input_size, self.hidden_size, self.num_layers = source.input_size, source.hidden_size, source.num_layers
        self.bias, self.batch_first, self.dropout = source.bias, source.batch_first, float(source.dropout)
        self.bidirectional, self.proj_size = source.bidirectional, source.proj_size
        for name in self._names():
            for kind in ("ih", "hh") + (("hr",) if self.proj_size else ()):
                weight = getattr(source, f"weight_{kind}_{name}")
                bias = getattr(source, f"bias_{kind}_{name}", None) if kind != "hr" and self.bias else None
                self.add_module(f"{kind}_{name}", AnalogLinear(_linear(weight, bias), shared))

    def _names(self) -> list:
        return [f"l{k}{suffix}" for k in range(self.num_layers)
                for suffix in (("", "_reverse") if self.bidirectional else ("",))]

    def _step(self, pre, h, c, name):
        """One time step from the input projection ``pre`` and the state (h, c)."""
        h, c = _gates(self.mode, pre, getattr(self, f"hh_{name}")(h), h, c)
        return (getattr(self, f"hr_{name}")(h) if self.proj_size else h), c

    def forward(self, x, hx=None):
        if isinstance(x, nn.utils.rnn.PackedSequence):
            raise ValueError(f"{type(self).__name__} takes padded tensors, not a PackedSequence")
        if x.ndim not in (2, 3) or x.shape[-1] != self.input_size or not x.numel():
            raise ValueError(f"{type(self).__name__} expects (L, N, {self.input_size}) (batch_first: "
                             f"(N, L, {self.input_size})) or (L, {self.input_size}), not empty, got {tuple(x.shape)}")
        batched = x.ndim == 3
        x = (x.transpose(0, 1) if self.batch_first else x) if batched else x[:, None]
        steps, batch = x.shape[:2]
        directions = 2 if self.bidirectional else 1
        h_size = self.proj_size or self.hidden_size
        if hx is None:
            zeros = torch.zeros((self.num_layers * directions, batch, h_size), dtype=x.dtype, device=x.device)
            h0, c0 = zeros, zeros.new_zeros((self.num_layers * directions, batch, self.hidden_size))
        else:
            h0, c0 = hx if self.mode == "LSTM" else (hx, None)
            if not batched:
                h0, c0 = h0[:, None], None if c0 is None else c0[:, None]
        with self.hold_draws():
            layer_input, h_n, c_n = x, [], []
            for k in range(self.num_layers):
                outputs = []
                for d in range(directions):
                    name = self._names()[k * directions + d]
                    pre = getattr(self, f"ih_{name}")(layer_input)
                    h, c = h0[k * directions + d], None if c0 is None else c0[k * directions + d]
                    sequence = [None] * steps
                    for t in (range(steps) if d == 0 else range(steps - 1, -1, -1)):
                        h, c = self._step(pre[t], h, c, name)
                        sequence[t] = h
                    outputs.append(torch.stack(sequence))
                    h_n.append(h)
                    c_n.append(c)
                layer_input = torch.cat(outputs, dim=-1) if directions > 1 else outputs[0]
                if self.dropout > 0 and self.training and k < self.num_layers - 1:
                    layer_input = F.dropout(layer_input, self.dropout, training=True)
        output, h_n = layer_input, torch.stack(h_n)
        c_n = torch.stack(c_n) if self.mode == "LSTM" else None
        if batched:
            output = output.transpose(0, 1) if self.batch_first else output
        else:
            output, h_n, c_n = output[:, 0], h_n[:, 0], None if c_n is None else c_n[:, 0]
        return (output, (h_n, c_n)) if self.mode == "LSTM" else (output, h_n)

    def plain(self) -> nn.RNNBase:
        options = {"nonlinearity": "tanh" if self.mode == "RNN_TANH" else "relu"} if self.mode.startswith("RNN") \
            else ({"proj_size": self.proj_size} if self.mode == "LSTM" else {})
        rnn = nn.LSTM if self.mode == "LSTM" else nn.GRU if self.mode == "GRU" else nn.RNN
        first = self.sublayers()[0].weight
        out = rnn(self.input_size, self.hidden_size, self.num_layers, bias=self.bias, batch_first=self.batch_first,
                  dropout=self.dropout, bidirectional=self.bidirectional, **options)
        out = out.to(dtype=first.dtype, device=first.device)
        return _copy_projections(self, out)

    def extra_repr(self) -> str:
        return f"{self.mode}, {self.input_size}, {self.hidden_size}, num_layers={self.num_layers}, " \
               f"bidirectional={self.bidirectional}"


class AnalogRNNCell(AnalogBlock):
    """``nn.RNNCell`` / ``nn.LSTMCell`` / ``nn.GRUCell`` with ``ih`` (W_ih x + b_ih) and
    ``hh`` (W_hh h + b_hh) on tiles and the gates digital (see :class:`AnalogRNN`).  Inputs
    ``(N, input_size)`` or ``(input_size,)`` and the state as torch takes them.  A cell is
    called once per step by the caller's loop: in training, wrap the loop in
    :meth:`hold_draws` to keep one device instance for the sequence."""

    def __init__(self, source: nn.RNNCellBase, shared):
        super().__init__()
        self.mode = "LSTM" if isinstance(source, nn.LSTMCell) else "GRU" if isinstance(source, nn.GRUCell) \
            else ("RNN_TANH" if source.nonlinearity == "tanh" else "RNN_RELU")
        self.input_size, self.hidden_size, self.bias = source.input_size, source.hidden_size, source.bias
        self.ih = AnalogLinear(_linear(source.weight_ih, source.bias_ih if source.bias else None), shared)
        self.hh = AnalogLinear(_linear(source.weight_hh, source.bias_hh if source.bias else None), shared)

    def forward(self, x, hx=None):
        if x.ndim not in (1, 2) or x.shape[-1] != self.input_size:
            raise ValueError(f"{type(self).__name__} expects (N, {self.input_size}) or ({self.input_size},), "
                             f"got {tuple(x.shape)}")
        batched = x.ndim == 2
        x = x if batched else x[None]
        if hx is None:
            h = c = torch.zeros((x.shape[0], self.hidden_size), dtype=x.dtype, device=x.device)
        else:
            h, c = hx if self.mode == "LSTM" else (hx, None)
            if not batched:
                h, c = h[None], None if c is None else c[None]
        h, c = _gates(self.mode, self.ih(x), self.hh(h), h, c)
        if not batched:
            h, c = h[0], None if c is None else c[0]
        return (h, c) if self.mode == "LSTM" else h

    def plain(self) -> nn.RNNCellBase:
        if self.mode == "LSTM":
            out = nn.LSTMCell(self.input_size, self.hidden_size, bias=self.bias)
        elif self.mode == "GRU":
            out = nn.GRUCell(self.input_size, self.hidden_size, bias=self.bias)
        else:
            out = nn.RNNCell(self.input_size, self.hidden_size, bias=self.bias,
                             nonlinearity="tanh" if self.mode == "RNN_TANH" else "relu")
        out = out.to(dtype=self.ih.weight.dtype, device=self.ih.weight.device)
        return _copy_projections(self, out)

    def extra_repr(self) -> str:
        return f"{self.mode} cell, {self.input_size}, {self.hidden_size}"


class AnalogMultiheadAttention(AnalogBlock):
    """``nn.MultiheadAttention`` with its projections on tiles.

    The query, key and value input projections (``q_proj``, ``k_proj``, ``v_proj``: the
    three blocks of ``in_proj_weight``, or ``q/k/v_proj_weight`` when ``kdim`` / ``vdim``
    differ) and the output projection ``out_proj`` run on tiles; the attention itself stays
    digital: the scaled dot products of queries and keys (both are activations, not stored
    weights), the masks, the softmax, attention dropout (training only) and the weighted sum
    of the values.  Arguments and results are torch's (``key_padding_mask``, ``attn_mask``
    boolean or additive, ``need_weights``, ``average_attn_weights``, ``batch_first``,
    unbatched inputs); ``is_causal`` is a hint that needs ``attn_mask``, as in torch.
    ``add_bias_kv`` and ``add_zero_attn`` are refused.
    """

    # torch's Transformer layers take their fused fast path only with these; the fast path
    # reads the float weights directly, so it is kept off.
    in_proj_bias = None
    _qkv_same_embed_dim = False

    def __init__(self, source: nn.MultiheadAttention, shared):
        super().__init__()
        if source.bias_k is not None or source.add_zero_attn:
            raise ValueError("MultiheadAttention with add_bias_kv or add_zero_attn is not supported on tiles")
        self.embed_dim, self.num_heads, self.kdim, self.vdim = source.embed_dim, source.num_heads, source.kdim, \
            source.vdim
        self.dropout, self.batch_first, self.head_dim = float(source.dropout), source.batch_first, source.head_dim
        e = self.embed_dim
        if source._qkv_same_embed_dim:
            weights = source.in_proj_weight[:e], source.in_proj_weight[e:2 * e], source.in_proj_weight[2 * e:]
        else:
            weights = source.q_proj_weight, source.k_proj_weight, source.v_proj_weight
        b = source.in_proj_bias
        biases = (None, None, None) if b is None else (b[:e], b[e:2 * e], b[2 * e:])
        for name, weight, bias in zip(("q_proj", "k_proj", "v_proj"), weights, biases):
            self.add_module(name, AnalogLinear(_linear(weight, bias), shared))
        self.out_proj = AnalogLinear(source.out_proj, shared)

    def forward(self, query, key, value, key_padding_mask=None, need_weights=True, attn_mask=None,
                average_attn_weights=True, is_causal=False):
        batched = query.ndim == 3
        if query.ndim not in (2, 3) or key.ndim != query.ndim or value.ndim != query.ndim:
            raise ValueError(f"{type(self).__name__} expects query, key and value all (L, N, E) or all (L, E), "
                             f"got {tuple(query.shape)}, {tuple(key.shape)}, {tuple(value.shape)}")
        if is_causal and attn_mask is None:
            raise ValueError("is_causal is a hint: give the causal attn_mask too (as torch requires)")
        if batched and self.batch_first:
            query, key, value = (t.transpose(0, 1) for t in (query, key, value))
        elif not batched:
            query, key, value = query[:, None], key[:, None], value[:, None]
            if key_padding_mask is not None:
                key_padding_mask = key_padding_mask[None]
        tgt, batch, _ = query.shape
        src, heads, hd = key.shape[0], self.num_heads, self.head_dim
        q = self.q_proj(query).reshape(tgt, batch * heads, hd).transpose(0, 1)
        k = self.k_proj(key).reshape(src, batch * heads, hd).transpose(0, 1)
        v = self.v_proj(value).reshape(src, batch * heads, hd).transpose(0, 1)
        scores = (q * math.sqrt(1.0 / hd)) @ k.transpose(1, 2)  # (N heads, L, S), digital
        mask = self._additive(attn_mask, q.dtype)
        if mask is not None:
            scores = scores + (mask if mask.ndim == 3 else mask[None])
        padding = self._additive(key_padding_mask, q.dtype)
        if padding is not None:
            scores = scores + padding.reshape(batch, 1, 1, src).expand(-1, heads, -1, -1).reshape(batch * heads, 1, src)
        weights = torch.softmax(scores, dim=-1)
        if self.dropout > 0 and self.training:
            weights = F.dropout(weights, self.dropout, training=True)
        out = (weights @ v).transpose(0, 1).reshape(tgt * batch, self.embed_dim)
        out = self.out_proj(out).reshape(tgt, batch, -1)
        if batched and self.batch_first:
            out = out.transpose(0, 1)
        elif not batched:
            out = out[:, 0]
        if not need_weights:
            return out, None
        weights = weights.reshape(batch, heads, tgt, src)
        weights = weights.mean(dim=1) if average_attn_weights else weights
        return out, (weights if batched else weights[0])

    @staticmethod
    def _additive(mask, dtype):
        """A boolean mask (True: not attended) as -inf / 0, a float mask as it is."""
        if mask is None:
            return None
        if mask.dtype == torch.bool:
            return torch.zeros(mask.shape, dtype=dtype, device=mask.device).masked_fill(mask, float("-inf"))
        return mask.to(dtype)

    def plain(self) -> nn.MultiheadAttention:
        first = self.q_proj.weight
        out = nn.MultiheadAttention(self.embed_dim, self.num_heads, dropout=self.dropout,
                                    bias=self.q_proj.bias is not None, kdim=self.kdim, vdim=self.vdim,
                                    batch_first=self.batch_first).to(dtype=first.dtype, device=first.device)
        with torch.no_grad():
            if out._qkv_same_embed_dim:
                out.in_proj_weight.copy_(torch.cat([self.q_proj.weight, self.k_proj.weight, self.v_proj.weight]))
            else:
                out.q_proj_weight.copy_(self.q_proj.weight)
                out.k_proj_weight.copy_(self.k_proj.weight)
                out.v_proj_weight.copy_(self.v_proj.weight)
            if out.in_proj_bias is not None:
                out.in_proj_bias.copy_(torch.cat([self.q_proj.bias, self.k_proj.bias, self.v_proj.bias]))
            out.out_proj.weight.copy_(self.out_proj.weight)
            if out.out_proj.bias is not None:
                out.out_proj.bias.copy_(self.out_proj.bias)
        return out

    def extra_repr(self) -> str:
        return f"embed_dim={self.embed_dim}, num_heads={self.num_heads}, batch_first={self.batch_first}"


class AnalogModel(nn.Module):
    """An analog copy of a torch model (see the module docstring); ``module`` is the copy."""

    def __init__(self, module: nn.Module, config: HardwareConfig, seed: int, device, shared: _Shared | None = None):
        super().__init__()
        self.config = config
        self.seed = int(seed)
        self.device = torch.device(device)
        self.noise_model = config.noise_model()
        self._shared = _Shared(config, self.noise_model, self.device) if shared is None else shared
        self._shared.noise_model = self.noise_model
        self._shared.read_generator = generator(self.device, self.seed, "read", 0)
        self._shared.sample_generator = generator(self.device, self.seed, "training")
        self.module = module
        self.t_seconds = None
        self._time_hooks = OrderedDict()

    # -- structure ------------------------------------------------------------------------------
    def analog_layers(self) -> list:
        """[(name, AnalogLayer)] in module order."""
        return [(name, m) for name, m in self.module.named_modules() if isinstance(m, AnalogLayer)]

    def tiles(self) -> list:
        """Every tile, in layer order then row block, then column block."""
        return [tile for _, layer in self.analog_layers() for tile in layer.tiles]

    # -- programming and time -------------------------------------------------------------------
    def program(self, calibration_x=None) -> "AnalogModel":
        """Map the float weights onto tiles, program them (programming noise), calibrate the
        ADCs (``calibration_x``: training inputs, needed for ``adc_range="calibrated"`` with
        ADC bits) and set the time to 0."""
        gen = generator(self.device, self.seed, "programming")
        for _, layer in self.analog_layers():
            layer.program(self.noise_model, gen)
        self._calibrate_adc(calibration_x)
        self.set_time(0.0)
        return self

    def set_time(self, t_seconds) -> "AnalogModel":
        """Let the cells drift to ``t_seconds`` after programming (the model's drift and slow
        noise are drawn for that time; programming is not repeated), then run the time hooks."""
        t = check_time(t_seconds)
        gen = generator(self.device, self.seed, "drift", time_word(t))
        with torch.no_grad():
            for tile in self.tiles():
                tile.set_conductances(self.noise_model.at_time(tile.cells, t, gen))
        self.t_seconds = t
        for hook in list(self._time_hooks.values()):
            hook(self)
        return self

    def register_time_hook(self, hook) -> RemovableHandle:
        """``hook(model)`` after every :meth:`set_time` (drift compensation re-reads the tiles)."""
        handle = RemovableHandle(self._time_hooks)
        self._time_hooks[handle.id] = hook
        return handle

    @contextlib.contextmanager
    def float_mode(self, capture: bool = False):
        """Run the floating-point layers (``capture``: keep each analog layer's 2-D input in
        ``layer.last_input``)."""
        sh = self._shared
        saved = sh.float_mode, sh.capture
        sh.float_mode, sh.capture = True, capture
        try:
            yield self
        finally:
            sh.float_mode, sh.capture = saved

    def training_noise(self, *, t_seconds: float = 0.0, gdc: bool = False, enabled: bool = True):
        """Set what a training forward draws: drift to ``t_seconds`` (0: programming noise
        only), ``gdc`` in weight space, or nothing (``enabled=False``: plain training on the
        mapped weights).  Returns self."""
        sh = self._shared
        sh.train_time, sh.train_gdc, sh.train_noise = check_time(t_seconds), bool(gdc), bool(enabled)
        return self

    @contextlib.contextmanager
    def device_draws(self, *, t_seconds: float = 0.0, gdc: bool = False):
        """Inside: the analog layers draw a device instance per forward at ``t_seconds`` (as
        in hardware-aware training) while every other module stays in inference form and
        no parameter takes gradients (drift instances for fitting compensation).  The mode,
        the training-noise settings and ``requires_grad`` are restored on exit."""
        sh = self._shared
        saved = sh.train_time, sh.train_gdc, sh.train_noise, self.training
        saved_grad = [(p, p.requires_grad) for p in self.parameters()]
        for p in self.parameters():
            p.requires_grad_(False)
        self.training_noise(t_seconds=t_seconds, gdc=gdc, enabled=True)
        self.eval()
        for _, layer in self.analog_layers():
            layer.train()
        try:
            yield self
        finally:
            self.train(saved[3])
            sh.train_time, sh.train_gdc, sh.train_noise = saved[:3]
            for p, flag in saved_grad:
                p.requires_grad_(flag)

    def reseed_reads(self, seed: int) -> "AnalogModel":
        """Restart the per-read noise stream (read and output noise) from ``seed``: two runs
        then see the same read noise."""
        self._shared.read_generator.manual_seed(int(seed))
        return self

    def tile_inputs(self, x) -> list:
        """The float model's input slice of every tile for inputs ``x``: a list aligned with
        :meth:`tiles` (convolutions: one row per output position)."""
        for _, layer in self.analog_layers():
            layer.last_input = None
        with torch.no_grad(), self.float_mode(capture=True):
            self(x)
        out = []
        for _, layer in self.analog_layers():
            x2d, layer.last_input = layer.last_input, None
            out += [x2d[:, tile.rows] for tile in layer.tiles]
        return out

    def _calibrate_adc(self, calibration_x):
        cfg = self.config
        if cfg.adc_range != "calibrated" or cfg.adc_bits is None:
            return
        if calibration_x is None:
            raise ValueError("adc_range='calibrated' needs calibration_x (training inputs) to set the "
                             "ADC full scale; or give adc_range as a bound in weight units")
        for tile, x in zip(self.tiles(), self.tile_inputs(calibration_x)):
            peak = 0.0
            for v, _ in tile.periphery.drive(x)[1]:
                i_diff = differential(v @ tile.g_target)  # the ideal tile
                peak = max(peak, float(i_diff.abs().max()) if i_diff.numel() else 0.0)
            tile.adc_full_scale = cfg.adc_headroom * peak if peak > 0 else cfg.v_read * cfg.cond.span

    # -- running --------------------------------------------------------------------------------
    def as_input(self, x) -> torch.Tensor:
        """``x`` (array or tensor) as a tensor of the model's dtype on its device."""
        if isinstance(x, np.ndarray) and not x.flags.writeable:
            x = x.copy()  # torch refuses to wrap read-only memory silently
        x = torch.as_tensor(x)
        return x.to(dtype=self.config.torch_dtype, device=self.device)

    def forward(self, x, *more, **options):
        """The model on ``x`` (as :meth:`as_input`); further floating-point tensors (attention's
        key and value) go to the model's dtype and device too, other arguments as given."""
        more = (self.as_input(a) if torch.is_tensor(a) and torch.is_floating_point(a) else a for a in more)
        if not isinstance(x, nn.utils.rnn.PackedSequence):  # refused by the recurrent layers, in their words
            x = self.as_input(x)
        return self.module(x, *more, **options)

    def logits(self, x, *, batch_size: int = 1000, progress: bool = False) -> torch.Tensor:
        """Logits of ``x`` in eval mode without gradients, in batches (a progress bar with
        ``progress``)."""
        from tqdm import tqdm

        was_training = self.training
        self.eval()
        x = self.as_input(x)
        out = []
        try:
            with torch.no_grad(), tqdm(total=len(x), desc="inference", unit="input", disable=not progress,
                                       leave=False) as pbar:
                for start in range(0, len(x), batch_size):
                    out.append(self(x[start:start + batch_size]))
                    pbar.update(min(batch_size, len(x) - start))
        finally:
            self.train(was_training)
        return torch.cat(out) if out else torch.zeros((0,))

    def predict(self, x, **options) -> np.ndarray:
        return self.logits(x, **options).argmax(dim=1).cpu().numpy()

    def accuracy(self, x, y, **options) -> float:
        return float(np.mean(self.predict(x, **options) == np.asarray(y)))

    def float_accuracy(self, x, y, **options) -> float:
        with self.float_mode():
            return self.accuracy(x, y, **options)

    def to_torch(self) -> nn.Module:
        """A plain float copy of the model (analog layers back to their torch layers)."""
        sh = self._shared  # shared state and generators are not copied (the layers are replaced)
        memo = {id(obj): obj for obj in (sh, sh.read_generator, sh.sample_generator)}
        module = copy.deepcopy(self.module, memo)
        return replace_layers(module, lambda name, m: m.plain() if isinstance(m, (AnalogLayer, AnalogBlock))
                              else None)


def replace_layers(root: nn.Module, replace) -> nn.Module:
    """``root`` with every module ``m`` for which ``replace(name, m)`` returns a module put in
    its place (``name`` as ``named_modules`` gives it, "" for the root); returns the new root.

    The root itself is replaced too (the result is then the new module, not ``root`` with a
    hidden child).  Modules are visited from the root down; a replaced module's children are
    not visited; a module held at several places is replaced once and the replacement put at
    each.  Parents are changed in place.
    """
    done = {}

    def swap(name, module):
        if id(module) not in done:
            done[id(module)] = replace(name, module)
        return done[id(module)]

    def walk(parent, prefix):
        for child_name, child in list(parent._modules.items()):  # named_children skips a module's second place
            if child is None:
                continue
            name = f"{prefix}.{child_name}" if prefix else child_name
            new = swap(name, child)
            if new is not None:
                setattr(parent, child_name, new)
            elif id(child) not in seen:
                seen.add(id(child))
                walk(child, name)

    seen = set()
    new_root = swap("", root)
    if new_root is not None:
        return new_root
    walk(root, "")
    return root


def convert(model: nn.Module, config: HardwareConfig = HardwareConfig(), *, seed: int = 0, calibration_x=None,
            device=None, program: bool = True) -> AnalogModel:
    """An analog copy of ``model``: every ``nn.Linear``, ``nn.Conv1d`` and ``nn.Conv2d`` on
    tiles, and the weight matrices of ``nn.RNN`` / ``nn.LSTM`` / ``nn.GRU``, their cells and
    ``nn.MultiheadAttention`` (their nonlinear parts digital), programmed.

    Parameters
    ----------
    model : torch.nn.Module
        The float model (not changed); a bare layer is converted too (the result's
        ``module`` is then the analog layer).  Layers with weights that have no tile mapping
        (Conv3d, transposed convolutions, Bilinear, lazy layers) are refused by name.
    config : HardwareConfig
    seed : int
        Seeds every random draw (see the module docstring).
    calibration_x : array or tensor, optional
        Training inputs for the ADC full-scale calibration.
    device : str or torch.device, optional
        Where the tensors live (default: CPU).  The solver's effective matrices are computed
        on the CPU and moved.
    program : bool
        Program the tiles now (default); else call :meth:`AnalogModel.program` later (after
        hardware-aware training, say).
    """
    if not isinstance(model, nn.Module):
        raise ValueError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if isinstance(model, AnalogModel) or any(isinstance(m, AnalogLayer) for m in model.modules()):
        raise ValueError("model is already analog; convert its float model (AnalogModel.to_torch())")
    if not isinstance(config, HardwareConfig):
        raise ValueError(f"config must be a memsim.nn.HardwareConfig, got {type(config).__name__}")
    device = torch.device("cpu" if device is None else device)
    copied = copy.deepcopy(model).to(dtype=config.torch_dtype, device=device)
    shared = _Shared(config, None, device)
    found = []

    def analog_layer(name, module):
        if isinstance(module, _REFUSED):
            raise ValueError(f"layer {name!r} ({type(module).__name__}) has no tile mapping in memsim; "
                             f"supported: {SUPPORTED} (other layers without weights stay digital)")
        for kind, factory in _ANALOG:
            if isinstance(module, kind):
                found.append(name)
                return factory(module, shared)
        return None

    copied = replace_layers(copied, analog_layer)
    for module in copied.modules():
        if isinstance(module, nn.TransformerEncoder):  # its nested-tensor path reads the float weights
            module.use_nested_tensor = False
    if not found:
        raise ValueError(f"model has no layer to put on tiles ({SUPPORTED})")
    analog = AnalogModel(copied, config, seed, device, shared)
    analog.eval()
    if program:
        analog.program(None if calibration_x is None else analog.as_input(calibration_x))
    return analog


#: torch layer type -> its analog layer (first match wins: subclasses of Linear go on tiles).
_ANALOG = ((nn.Linear, AnalogLinear), (nn.Conv1d, AnalogConv1d), (nn.Conv2d, AnalogConv2d),
           (nn.RNNBase, AnalogRNN), (nn.RNNCellBase, AnalogRNNCell),
           (nn.MultiheadAttention, AnalogMultiheadAttention))
