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
