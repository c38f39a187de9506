"""Quantisation-aware training: the fake quantisers against their closed forms."""
import numpy as np
import pytest
import torch
from torch import nn

from memsim.nn import datasets
from memsim.nn.qat import ActQuant, WeightQuant, bake, quantise, train_qat
from memsim.nn.training import train


def test_weight_quantiser_rounds_onto_the_symmetric_grid_with_straight_through_gradient():
    w = torch.tensor([-1.0, -0.33, 0.0, 0.1, 0.52, 0.7], requires_grad=True)
    q = WeightQuant(4)(w)
    # scale 1 / 7: codes round(w * 7)
    np.testing.assert_allclose(q.detach().numpy(), np.round(np.array([-7, -2.31, 0, 0.7, 3.64, 4.9])) / 7, rtol=1e-6)
    q.sum().backward()
    np.testing.assert_array_equal(w.grad.numpy(), np.ones(6))


def test_activation_quantiser_tracks_the_range_and_rounds_to_sixteen_codes():
    act = ActQuant(4, momentum=0.5)
    act.train()
    act(torch.tensor([0.0, 2.0]))
    act(torch.tensor([0.0, 4.0]))
    assert float(act.range) == pytest.approx(3.0)  # 2, then 0.5 * 2 + 0.5 * 4
    act.eval()
    x = torch.tensor([0.0, 0.1, 1.0, 2.9, 5.0])
    np.testing.assert_allclose(act(x).numpy(), np.clip(np.round(x.numpy() / 0.2), 0, 15) * 0.2, rtol=1e-6)


def test_qat_copy_keeps_the_original_and_bakes_four_bit_weights():
    data = datasets.load("digits")
    torch.manual_seed(0)
    model = train(nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10)).double(), data, epochs=10)
    before = model[0].weight.detach().clone()
    q = train_qat(model, data, epochs=2, seed=0)
    assert torch.equal(model[0].weight, before)
    assert isinstance(q[1][1], ActQuant) and float(q[1][1].range) > 0
    for layer in (q[0], q[2]):
        w = layer.weight.detach().numpy()
        codes = w / (np.abs(w).max() / 7)
        np.testing.assert_allclose(codes, np.round(codes), atol=1e-9)
        assert len(np.unique(np.round(codes))) <= 15
    logits = q(torch.tensor(data.x_test, dtype=torch.float64))
    assert float((logits.argmax(1).numpy() == data.y_test).mean()) > 0.9
    with pytest.raises(ValueError, match="weight_bits"):
        quantise(model, weight_bits=1)
    assert bake(nn.Sequential(nn.Linear(2, 2))) is not None


def _on_grid(w, bits=4):
    """Every entry a whole multiple of max|w| / (2^(bits-1) - 1): the symmetric per-matrix grid."""
    w = w.detach().numpy()
    codes = w / (np.abs(w).max() / (2 ** (bits - 1) - 1))
    np.testing.assert_allclose(codes, np.round(codes), atol=1e-9)
    return len(np.unique(np.round(codes)))


def test_every_weight_matrix_convert_puts_on_tiles_is_quantised_and_baked():
    torch.manual_seed(1)
    model = nn.Sequential(nn.Conv1d(4, 6, 3, groups=2, dilation=2, padding_mode="reflect", padding=2),
                          nn.ReLU()).double()
    lstm = nn.LSTM(5, 4, num_layers=2, bidirectional=True, proj_size=3).double()
    cell = nn.GRUCell(5, 4).double()
    packed = nn.MultiheadAttention(8, 2).double()
    apart = nn.MultiheadAttention(8, 2, kdim=5, vdim=6).double()
    for layer in (model, lstm, cell, packed, apart):
        baked = bake(quantise(layer))
        assert not any("original" in name for name, _ in baked.named_parameters())
    baked = bake(quantise(model))
    assert _on_grid(baked[0].weight) <= 15
    q_lstm = bake(quantise(lstm))
    names = [n for n in lstm._flat_weights_names if n.startswith("weight_")]
    assert len(names) == 12  # ih, hh, hr per layer and direction
    for name in names:
        _on_grid(getattr(q_lstm, name))
        assert not torch.equal(getattr(q_lstm, name), getattr(lstm, name))
    x = torch.rand(6, 2, 5, dtype=torch.float64)
    reference = nn.LSTM(5, 4, num_layers=2, bidirectional=True, proj_size=3).double()
    reference.load_state_dict(q_lstm.state_dict())
    torch.testing.assert_close(q_lstm(x)[0], reference(x)[0], rtol=0, atol=0)  # the baked weights are what runs
    q_cell = bake(quantise(cell))
    _on_grid(q_cell.weight_ih), _on_grid(q_cell.weight_hh)
    # a packed in_proj_weight: q, k and v each on its own grid (they go on tiles apart)
    w = bake(quantise(packed)).in_proj_weight
    for block in w.split(8):
        _on_grid(block)
    assert _on_grid(bake(quantise(packed)).out_proj.weight) <= 15
    q_apart = bake(quantise(apart))
    for name in ("q_proj_weight", "k_proj_weight", "v_proj_weight"):
        _on_grid(getattr(q_apart, name))


def test_qat_trains_a_recurrent_classifier_and_refuses_layers_without_a_tile_mapping():
    data = datasets.load("digits")

    class Rows(nn.Module):
        def __init__(self):
            super().__init__()
            self.gru = nn.GRU(8, 16, batch_first=True)
            self.head = nn.Linear(16, 10)

        def forward(self, x):
            out, _ = self.gru(x.reshape(x.shape[0], 8, 8))
            return self.head(out[:, -1])

    torch.manual_seed(0)
    model = train(Rows().double(), data, epochs=12, lr=1e-2)
    q = train_qat(model, data, epochs=1, seed=0)
    _on_grid(q.gru.weight_ih_l0), _on_grid(q.gru.weight_hh_l0), _on_grid(q.head.weight)
    logits = q(torch.tensor(data.x_test, dtype=torch.float64))
    assert float((logits.argmax(1).numpy() == data.y_test).mean()) > 0.8
    for layer, kind in ((nn.Conv3d(2, 2, 3), "Conv3d"), (nn.ConvTranspose2d(2, 2, 3), "ConvTranspose2d"),
                        (nn.Bilinear(2, 2, 2), "Bilinear")):
        with pytest.raises(ValueError, match=rf"layer '1': {kind} has no tile mapping in memsim"):
            quantise(nn.Sequential(nn.Linear(2, 2), layer))
