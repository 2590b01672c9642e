"""VICReg, NT-Xent, the projector and Joint-SSL (imbtrain/methods/ssl.py), by hand."""

import math

import pytest
import torch
from torch import nn

from imbtrain.config import TrainConfig
from imbtrain.methods.ssl import JointSSL, Projector, build_ssl, nt_xent_loss, vicreg_loss

# Orthogonal +-1 columns with zero mean: unbiased variance 4/3, covariance 0.
ORTHO = torch.tensor([[1.0, 1.0, 1.0], [1.0, -1.0, -1.0], [-1.0, 1.0, -1.0],
                      [-1.0, -1.0, 1.0]])


def test_identical_views_have_zero_invariance():
    z = torch.randn(8, 5, generator=torch.Generator().manual_seed(0))
    _, terms = vicreg_loss(z, z.clone())
    assert terms["inv"].item() == 0.0


def test_invariance_is_the_mean_squared_difference():
    # every entry differs by 1 -> MSE 1; the rest as for ORTHO (0): loss = 25 * 1.
    loss, terms = vicreg_loss(ORTHO, ORTHO + 1)
    assert terms["inv"].item() == pytest.approx(1.0)
    assert loss.item() == pytest.approx(25.0)


def test_constant_features_give_variance_term_0_99():
    # Var = 0 in every dimension: max(0, 1 - sqrt(0 + 1e-4)) = 1 - 0.01 = 0.99 per view.
    z = torch.full((6, 4), 3.0)
    _, terms = vicreg_loss(z, z)
    assert terms["var"].item() == pytest.approx(0.99, abs=1e-7)


def test_variance_hinge_by_hand():
    # column 0: (0.5, -0.5, 0.5, -0.5), unbiased Var = 1 / 3, hinge 1 - sqrt(1/3 + 1e-4)
    # = 0.4225631; column 1 constant: 0.99. Mean over dims 0.7062816, same for both views.
    z = torch.tensor([[0.5, 2.0], [-0.5, 2.0], [0.5, 2.0], [-0.5, 2.0]])
    _, terms = vicreg_loss(z, z)
    hinge0 = 1 - math.sqrt(1 / 3 + 1e-4)
    assert hinge0 == pytest.approx(0.4225631, abs=1e-7)
    assert terms["var"].item() == pytest.approx((hinge0 + 0.99) / 2, abs=1e-6)


def test_decorrelated_features_give_zero_covariance_and_variance():
    loss, terms = vicreg_loss(ORTHO, ORTHO)
    assert terms["cov"].item() == pytest.approx(0.0, abs=1e-7)
    assert terms["var"].item() == 0.0  # std sqrt(4/3 + 1e-4) > 1
    assert loss.item() == pytest.approx(0.0, abs=1e-6)


def test_covariance_term_by_hand():
    # columns (2, 1, 0) and (3, 1, -1), means 1 and 1: centred (1, 0, -1), (2, 0, -2);
    # C = [[2, 4], [4, 8]] / (B - 1 = 2) = [[1, 2], [2, 4]]; off-diagonal squares 2 * 2^2 = 8;
    # / D = 2 -> 4 per view, summed over the two views -> 8. Variances 1 and 4: no hinge.
    z = torch.tensor([[2.0, 3.0], [1.0, 1.0], [0.0, -1.0]])
    loss, terms = vicreg_loss(z, z)
    assert terms["cov"].item() == pytest.approx(8.0)
    assert loss.item() == pytest.approx(8.0)  # 25 * 0 + 25 * 0 + 1 * 8
    loss, _ = vicreg_loss(z, z, cov_weight=0.5)
    assert loss.item() == pytest.approx(4.0)


def test_nt_xent_by_hand():
    # B = 2, views (e1, e2) twice, tau 0.5: each anchor's positive has cosine 1, its two
    # negatives 0: loss = -log(e^2 / (e^2 + 2)) = log(1 + 2 e^-2) = 0.2395448.
    z = torch.eye(2)
    loss, terms = nt_xent_loss(z, z.clone(), temperature=0.5)
    assert loss.item() == pytest.approx(math.log1p(2 * math.exp(-2)), abs=1e-6)
    assert loss.item() == pytest.approx(0.2395448, abs=1e-6)
    assert terms["nt_xent"].item() == loss.item()


def test_nt_xent_prefers_matching_pairs():
    g = torch.Generator().manual_seed(0)
    z1 = torch.randn(16, 8, generator=g)
    z2 = z1 + 0.1 * torch.randn(16, 8, generator=g)
    matched, _ = nt_xent_loss(z1, z2)
    shuffled, _ = nt_xent_loss(z1, z2[torch.randperm(16, generator=g)])
    assert matched.item() < shuffled.item() - 1.0


def test_projector_layout():
    proj = Projector(64)
    linears = [m for m in proj if isinstance(m, nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(64, 256), (256, 256),
                                                                  (256, 256)]
    assert linears[-1].bias is None and linears[0].bias is not None
    assert sum(isinstance(m, nn.BatchNorm1d) for m in proj) == 2
    assert isinstance(proj[-1], nn.Linear)
    assert Projector(1024)[0].out_features == 2048  # 4 x 1024 capped at 2048
    assert len(Projector(8, hidden=5, out_dim=3, layers=1)) == 1
    assert Projector(8, hidden=5, out_dim=3, layers=2)(torch.zeros(2, 8)).shape == (2, 3)


def test_build_ssl_from_config():
    assert build_ssl(TrainConfig(ssl="none"), 16) is None
    ssl = build_ssl(TrainConfig(ssl="vicreg", vicreg_inv=2.0, vicreg_var=3.0, vicreg_cov=4.0), 16)
    assert isinstance(ssl, JointSSL)
    assert ssl.loss_kwargs == {"inv_weight": 2.0, "var_weight": 3.0, "cov_weight": 4.0}
    f = torch.randn(6, 16, generator=torch.Generator().manual_seed(0))
    loss, terms = ssl(f, f + 0.1)
    assert set(terms) == {"inv", "var", "cov"}
    expected = 2.0 * terms["inv"] + 3.0 * terms["var"] + 4.0 * terms["cov"]
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)
    loss.backward()
    assert all(p.grad is not None for p in ssl.parameters())
