"""Network builder: the published reference (params, FLOPs, test metrics) and every operation."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import logging
import warnings

from engine.complexity import count_flops, count_params
from engine.model import build_network, load_reference_weights
from engine.space import OPERATIONS, Genotype, SearchSpace
from fvcore_flops import flops_by_operator


def _reference_net(reference, reference_dir):
    g = SearchSpace().decode(reference["chromosome"])
    net = build_network(g, in_channels=1, num_classes=2)
    state = torch.load(reference_dir / reference["weights_file"], map_location="cpu")
    return g, net, state


def test_reference_params_and_flops(reference, reference_dir):
    _, net, _ = _reference_net(reference, reference_dir)
    assert count_params(net) == reference["params"] == 18042
    assert count_flops(net, input_size=28) == reference["flops_fvcore_28"] == 395_136_016


@pytest.mark.e2e
def test_reference_weights_reproduce_published_test_metrics(reference, reference_dir, data_root):
    from medmnist.evaluator import getACC, getAUC

    _, net, state = _reference_net(reference, reference_dir)
    load_reference_weights(net, state)
    data = np.load(data_root / "adrenalmnist3d.npz")
    x = torch.from_numpy(data["test_images"]).float().div(255).unsqueeze(1)
    y = data["test_labels"].ravel()
    net.eval()
    with torch.inference_mode():
        scores = torch.softmax(net(x), dim=1).numpy()
    expected = reference["test_metrics_with_weights"]
    assert round(getAUC(y, scores, "binary-class"), 3) == round(expected["auc"], 3) == 0.884
    assert round(getACC(y, scores, "binary-class"), 3) == round(expected["acc"], 3) == 0.842


def test_reference_weight_keys_and_shapes(reference, reference_dir):
    _, _, state = _reference_net(reference, reference_dir)
    assert {k: list(v.shape) for k, v in state.items()} == reference["weights_keys"]


def test_load_reference_weights_errors(reference, reference_dir):
    g, net, state = _reference_net(reference, reference_dir)
    bad = dict(state)
    bad["cells.1.ops_list.1.op.0.weight"] = torch.zeros(8, 8, 3, 3, 3)
    with pytest.raises(ValueError, match="shape mismatch"):
        load_reference_weights(net, bad)
    missing = {k: v for k, v in state.items() if k != "classifier.bias"}
    with pytest.raises(ValueError, match="lack keys"):
        load_reference_weights(net, missing)
    extra = dict(state, **{"cells.2.ops_list.0.weight": torch.zeros(1)})
    with pytest.raises(ValueError, match="unexpected keys"):
        load_reference_weights(net, extra)
    disagree = dict(state)
    disagree["cells.0.0.weight"] = state["cells.0.0.weight"] + 1
    with pytest.raises(ValueError, match="disagree"):
        load_reference_weights(net, disagree)


def _chain(op: int) -> Genotype:
    """input → op → output, plus the input→output skip."""
    m = np.zeros((3, 3), dtype=int)
    m[0, 1] = m[1, 2] = m[0, 2] = 1
    return Genotype.from_cell(m, [op])


@pytest.mark.parametrize("size", [28, pytest.param(64, marks=pytest.mark.e2e)])  # 64³: seconds each
@pytest.mark.parametrize("op", range(len(OPERATIONS)))
def test_every_operation_forward_backward(op, size):
    torch.manual_seed(0)
    net = build_network(_chain(op), num_classes=3)
    x = torch.rand(1, 1, size, size, size)
    out = net(x)
    assert out.shape == (1, 3)
    out.sum().backward()
    grads = [p.grad for n, p in net.named_parameters() if "nodes.0" in n]
    assert grads and all(g is not None and torch.isfinite(g).all() for g in grads)


def test_cell_wiring_matches_hand_computation():
    """Output = input + Σ feeders; the input is added twice when it feeds the output."""
    g = _chain(9)  # ReLU → conv3
    net = build_network(g)
    cell = net.cells[0]
    x = torch.randn(2, 8, 6, 6, 6)
    expected = x + cell.nodes[0](x) + x
    assert torch.allclose(cell(x), expected, atol=1e-6)


def test_multi_stack_shapes_params_and_flops():
    m = np.zeros((4, 4), dtype=int)
    m[0, 1] = m[1, 2] = m[2, 3] = m[0, 3] = 1
    g = Genotype.from_cell(m, [0, 12], n_stacks=2, n_modules=2, n_filters=16)
    net = build_network(g, num_classes=11)
    assert net(torch.rand(2, 1, 28, 28, 28)).shape == (2, 11)
    # Hand count: stem, per-cell projection (first cell from 1 channel, unapplied in stack 0),
    # conv3·IN·ReLU and Mish·conv3 at 16 then 32 channels, classifier.
    def conv(cin, cout, k):
        return cin * cout * k**3 + cout
    stem = conv(1, 16, 3) + 2 * 16
    ops16 = conv(16, 16, 3) + 2 * 16 + conv(16, 16, 3)
    ops32 = conv(32, 32, 3) + 2 * 32 + conv(32, 32, 3)
    projections = conv(1, 16, 1) + conv(16, 16, 1) + conv(16, 32, 1) + conv(32, 32, 1)
    expected = stem + 2 * ops16 + 2 * ops32 + projections + 32 * 11 + 11
    assert count_params(net) == expected
    # conv FLOPs: stem + two 16-ch cells at 28³, then two applied projections and 32-ch cells at 14³
    v28, v14 = 28**3, 14**3
    conv_flops = (
        v28 * 16 * 27
        + 2 * 2 * v28 * 16 * 16 * 27
        + v14 * (16 * 32 + 32 * 32)
        + 2 * 2 * v14 * 32 * 32 * 27
    )
    assert flops_by_operator(net, 28)["conv"] == conv_flops


def test_fvcore_counts_same_padding_convolutions():
    same = torch.nn.Conv3d(2, 4, 5, padding="same")
    explicit = torch.nn.Conv3d(2, 4, 5, padding=2)
    assert count_flops(same, 12) == count_flops(explicit, 12) == 12**3 * 2 * 4 * 125 > 0


def test_infeasible_genotype_cannot_be_built():
    g = Genotype.from_cell(np.zeros((7, 7), dtype=int), [0] * 5)
    with pytest.raises(ValueError, match="infeasible"):
        build_network(g)


def test_xavier_init_is_seeded():
    g = _chain(4)
    torch.manual_seed(3)
    a = build_network(g).state_dict()
    torch.manual_seed(3)
    b = build_network(g).state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
