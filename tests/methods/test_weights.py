"""Class weights (effective number, inverse frequency), the reweight method, and the
class-weighted batch loss through the loop, with numbers worked out by hand in the comments."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from imbtrain.methods.reweight import ReweightMethod
from imbtrain.methods.weights import (
    class_weights,
    effective_number_weights,
    inverse_frequency_weights,
)
from tests.methods.helpers import cfg, fake_data


def test_effective_number_weights_by_hand():
    # beta^n = exp(n ln 0.9999), ln 0.9999 = -1.000050e-4:
    #   n = 5000: exp(-0.500025) = 0.606515, 1 - beta^n = 0.393485, w ∝ 1e-4 / 0.393485
    #   n = 50:   exp(-0.0050003) = 0.995013, 1 - beta^n = 0.0049875, w ∝ 1e-4 / 0.0049875
    # ratio w1 / w0 = 0.393485 / 0.0049875 = 78.894; normalised to sum K = 2:
    #   w0 = 2 / (1 + 78.894) = 0.025033, w1 = 2 - w0 = 1.974967
    w = effective_number_weights([5000, 50], 0.9999)
    assert w.dtype == torch.float32
    assert w.tolist() == pytest.approx([0.025033, 1.974967], abs=2e-5)
    assert w.sum().item() == pytest.approx(2.0)


def test_inverse_frequency_weights_by_hand():
    # 1/n for [300, 100, 50] = [1, 3, 6] / 300; sum K = 3 -> 3 * [1, 3, 6] / 10
    w = inverse_frequency_weights([300, 100, 50])
    assert w.tolist() == pytest.approx([0.3, 0.9, 1.8])
    assert class_weights([300, 100, 50], "inverse").tolist() == pytest.approx(w.tolist())


def test_weights_are_one_on_balanced_data_and_forms_are_checked():
    assert effective_number_weights([40, 40, 40]).tolist() == pytest.approx([1, 1, 1])
    with pytest.raises(ValueError, match="effective, inverse"):
        class_weights([1, 2], "sqrt")


def test_reweight_method_uses_the_configured_form():
    data = fake_data([300, 100, 50])
    inverse = ReweightMethod(cfg(reweight_form="inverse"), data)
    assert inverse.class_weights(0).tolist() == pytest.approx([0.3, 0.9, 1.8])
    effective = ReweightMethod(cfg(reweight_beta=0.99), data)
    # beta 0.99: 0.99^[300, 100, 50] = [0.049041, 0.366032, 0.605006];
    # 1 / (1 - beta^n) = [1.051570, 1.577368, 2.531684], sum 5.160622;
    # times 3 / sum: [0.611304, 0.916964, 1.471732] (between uniform and inverse frequency).
    # (1 - beta) cancels in the normalisation.
    assert effective.class_weights(7).tolist() == pytest.approx([0.611304, 0.916964, 1.471732],
                                                                abs=1e-5)


# ---------------------------------------------------------------- the weighted batch loss

CIFAR10_LT = [5000, 2997, 1796, 1077, 645, 387, 232, 139, 83, 50]  # r = 0.01, n_max 5000
# Effective numbers, beta 0.9999 (LDAM-DRW's DRW stage): 1 - beta^n = [0.393485, 0.258971,
# 0.164403, 0.102108, 0.062467, 0.037963, 0.022934, 0.013805, 0.008266, 0.004988]; their
# inverses [2.5414, 3.8614, 6.0826, 9.7936, 16.0085, 26.3417, 43.6032, 72.4400, 120.9766,
# 200.4904] sum to 502.1395; times K / sum = 10 / 502.1395:
CIFAR10_LT_WEIGHTS = [0.050611, 0.076900, 0.121134, 0.195037, 0.318805, 0.524590, 0.868349,
                      1.442627, 2.409223, 3.992724]


def test_class_weighted_mean_by_hand():
    from imbtrain.methods.weights import class_weighted_mean

    per = torch.tensor([1.0, 2.0, 4.0])
    assert float(class_weighted_mean(per, None)) == pytest.approx(7 / 3)  # plain mean
    # weights 3, 1, 0: (3 + 2 + 0) / 4
    assert float(class_weighted_mean(per, torch.tensor([3.0, 1.0, 0.0]))) == pytest.approx(1.25)
    # extra weights (B, 2): column 0 keeps sample 0, column 1 samples 1 and 2; the class
    # weights' sum (4) stays the denominator of both: (3 / 4, 2 / 4)
    extra = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.0, 1.0]])
    got = class_weighted_mean(per, torch.tensor([3.0, 1.0, 0.0]), extra)
    assert got.tolist() == pytest.approx([0.75, 0.5])
    assert class_weighted_mean(per, None, extra).tolist() == pytest.approx([1 / 3, 2.0])


def _drw_run(method: str = "drw"):
    """A loop Run on 10-d vectors with CIFAR-10's train counts at r = 0.01, whose forward is a
    10 x 10 identity: the logits are the inputs, so a batch's losses are chosen by hand."""
    from imbtrain.config import TrainConfig
    from imbtrain.train import Run

    cfg = TrainConfig(dataset="synthetic", synthetic_classes=10, synthetic_samples=5000,
                      synthetic_shape="10", train_ratio=0.01, model="mlp", method=method,
                      epochs=5, drw_epoch=4, device="cpu")
    run = Run(cfg, None, log=lambda line: None)
    assert run.counts == CIFAR10_LT
    head = nn.Linear(10, 10, bias=False)
    with torch.no_grad():
        head.weight.copy_(torch.eye(10))
    run.forward_model = head
    return run, head


def test_drw_stage_loss_of_a_batch_is_sum_wl_over_sum_w_on_cifar10_counts():
    from imbtrain.train import train_step

    run, _ = _drw_run()
    assert run.class_weights() is None  # epoch 0: plain cross-entropy
    run.epoch = 4
    weights = run.class_weights()
    assert weights.tolist() == pytest.approx(CIFAR10_LT_WEIGHTS, abs=1e-6)
    # Four samples of classes 0, 0, 5, 9 with the true logit ln 27, ln 9, 0, ln 81 (others 0):
    # p_y = 27/36, 9/18, 1/10, 81/90, so l = ln(4/3), ln 2, ln 10, ln(10/9)
    #       = 0.287682, 0.693147, 2.302585, 0.105361.
    y = torch.tensor([0, 0, 5, 9])
    x = torch.zeros(4, 10)
    x[0, 0], x[1, 0], x[3, 9] = math.log(27), math.log(9), math.log(81)
    loss, _, _ = train_step(run, x, y, weights)
    # sum w_y l = 0.050611 (0.287682 + 0.693147) + 0.524590 * 2.302585 + 3.992724 * 0.105361
    #           = 0.049641 + 1.207913 + 0.420676 = 1.678230;  sum w_y = 4.618536
    # L = 1.678230 / 4.618536 = 0.363368 (mean(w_y l) would be 0.419558, plain CE 0.847194)
    assert float(loss) == pytest.approx(0.363368, abs=2e-6)


def _loop_gradient(run, head, x, y, weights):
    from imbtrain.train import train_step

    head.weight.grad = None
    loss, _, _ = train_step(run, x, y, weights)
    return float(loss), head.weight.grad.clone()


def test_drw_stage_gradient_is_plain_cross_entropys_on_a_batch_balanced_in_weight():
    # sum_i w_i grad l_i / sum_i w_i equals mean_i grad l_i for every set of losses exactly
    # when all w_i are equal: "balanced" must mean that every sample of the batch carries the
    # same class weight (a batch of one class, or of classes of equal count). Then the DRW
    # stage's gradient, norm included, is plain CE's, whichever class it is: the weights
    # change the mix of a batch, not the learning rate. mean(w_y l) would scale it by w_y.
    torch.manual_seed(0)
    drw, drw_head = _drw_run()
    ce, ce_head = _drw_run("erm")
    drw.epoch = 4
    weights = drw.class_weights()
    for c in (0, 9):  # the head class (w 0.050611) and the tail class (w 3.992724)
        x, y = torch.randn(8, 10), torch.full((8,), c)
        loss_w, grad_w = _loop_gradient(drw, drw_head, x, y, weights)
        loss_ce, grad_ce = _loop_gradient(ce, ce_head, x, y, None)
        assert loss_w == pytest.approx(loss_ce, rel=1e-6)
        assert float(grad_w.norm()) == pytest.approx(float(grad_ce.norm()), rel=1e-6)
        assert torch.allclose(grad_w, grad_ce, atol=1e-7)
    # One sample a class: sum_i w_{y_i} = sum_c w_c = K = B, so the normalised loss is the
    # batch mean of w_y l, the one batch where the two conventions agree.
    x, y = torch.randn(10, 10), torch.arange(10)
    loss_w, _ = _loop_gradient(drw, drw_head, x, y, weights)
    per = F.cross_entropy(x, y, reduction="none")
    assert loss_w == pytest.approx(float((per * weights).mean()), rel=1e-6)
    assert loss_w != pytest.approx(float(per.mean()), rel=1e-3)
