"""Joint-SSL: a self-supervised loss on two views, trained together with the classifier
(paper A.5; docs/methods.md, "6. Joint-SSL with VICReg"), and the SSL objectives
`imbtrain pretrain` uses.

The loop runs the backbone on two augmented views x', x'' of each sample, gives the features
to `JointSSL`, and minimises L = L_ssl + ssl_lambda * L_supervised (the supervised loss on
the views). The SSL term never sees labels, so it is indifferent to the imbalance.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from imbtrain.config import TrainConfig

Terms = dict[str, Tensor]

# ---------------------------------------------------------------------------------------------
# Objectives
# ---------------------------------------------------------------------------------------------


def _off_diagonal(m: Tensor) -> Tensor:
    d = m.shape[0]
    return m.flatten()[:-1].view(d - 1, d + 1)[:, 1:].flatten()


def _variance_hinge(z: Tensor) -> Tensor:
    # mean_d max(0, 1 - sqrt(Var(z_d) + 1e-4)), Var unbiased (as VICReg's code, x.var(dim=0)).
    std = torch.sqrt(z.var(dim=0) + 1e-4)
    return F.relu(1 - std).mean()


def _covariance_term(z: Tensor) -> Tensor:
    # sum_{k != k'} C_kk'^2 / D, C = (Z - mean)^T (Z - mean) / (B - 1).
    b, d = z.shape
    zc = z - z.mean(dim=0)
    cov = zc.T @ zc / (b - 1)
    return _off_diagonal(cov).pow(2).sum() / d


def vicreg_loss(z1: Tensor, z2: Tensor, inv_weight: float = 25.0, var_weight: float = 25.0,
                cov_weight: float = 1.0) -> tuple[Tensor, Terms]:
    """VICReg (Bardes et al. 2022) on projections z1, z2 (B, D); returns (loss, terms).

    The reading of docs/methods.md (which fixes the paper's garbled eq. in A.5, where one
    covariance matrix is taken over [Z, Z'] and gamma is both the hinge target and the
    invariance weight), identical to the VICReg authors' code:

    - inv = mean_{i,d} (z1_id - z2_id)^2 (F.mse_loss);
    - var = (h(z1) + h(z2)) / 2, h(z) = mean_d max(0, 1 - sqrt(Var_i(z_id) + 1e-4)) with the
      unbiased variance: the two views' hinges averaged;
    - cov = c(z1) + c(z2), c(z) = sum_{k != k'} C_kk'^2 / D with C the unbiased covariance of
      one view: summed (not averaged) over the two views;
    - loss = inv_weight * inv + var_weight * var + cov_weight * cov.

    Computed in float32 whatever the autocast dtype. `terms` holds the detached inv, var, cov.

    Example:
        >>> z = torch.tensor([[1.0, 1.0, 1.0], [1.0, -1.0, -1.0], [-1.0, 1.0, -1.0],
        ...                   [-1.0, -1.0, 1.0]])
        >>> loss, terms = vicreg_loss(z, z)
        >>> float(loss)
        0.0
    """
    z1, z2 = z1.float(), z2.float()
    inv = F.mse_loss(z1, z2)
    var = (_variance_hinge(z1) + _variance_hinge(z2)) / 2
    cov = _covariance_term(z1) + _covariance_term(z2)
    loss = inv_weight * inv + var_weight * var + cov_weight * cov
    return loss, {"inv": inv.detach(), "var": var.detach(), "cov": cov.detach()}


def nt_xent_loss(z1: Tensor, z2: Tensor, temperature: float = 0.2) -> tuple[Tensor, Terms]:
    """SimCLR's NT-Xent (Chen et al. 2020) on z1, z2 (B, D); returns (loss, {"nt_xent"}).

    Cosine similarities of the 2B projections divided by the temperature; for each of them the
    other view of the same sample is the positive among the 2B - 1 others (cross-entropy,
    averaged over all 2B anchors).
    """
    b = z1.shape[0]
    z = F.normalize(torch.cat([z1.float(), z2.float()]), dim=1)
    sim = z @ z.T / temperature
    sim = sim.masked_fill(torch.eye(2 * b, dtype=torch.bool, device=z.device), float("-inf"))
    idx = torch.arange(b, device=z.device)  # made on the device: no host copy per step
    target = torch.cat([idx + b, idx])
    loss = F.cross_entropy(sim, target)
    return loss, {"nt_xent": loss.detach()}


SSL_OBJECTIVES: dict[str, Callable[..., tuple[Tensor, Terms]]] = {
    "vicreg": vicreg_loss,
    "simclr": nt_xent_loss,
}

# ---------------------------------------------------------------------------------------------
# Projector and the Joint-SSL module
# ---------------------------------------------------------------------------------------------


class Projector(nn.Sequential):
    """VICReg's expander: `layers` linear layers, BN + ReLU between, the last without bias.

    Width `hidden` defaults to 4x in_dim capped at 2048 (docs/methods.md), `out_dim` to
    `hidden`.

    Example:
        >>> Projector(64)(torch.zeros(2, 64)).shape
        torch.Size([2, 256])
    """

    def __init__(self, in_dim: int, hidden: int | None = None, out_dim: int | None = None,
                 layers: int = 3) -> None:
        if layers < 1:
            raise ValueError(f"a projector needs at least one layer, got layers={layers}")
        hidden = hidden or min(4 * in_dim, 2048)
        out_dim = out_dim or hidden
        mods: list[nn.Module] = []
        width = in_dim
        for _ in range(layers - 1):
            mods += [nn.Linear(width, hidden), nn.BatchNorm1d(hidden), nn.ReLU(inplace=True)]
            width = hidden
        mods.append(nn.Linear(width, out_dim, bias=False))
        super().__init__(*mods)


class JointSSL(nn.Module):
    """The SSL head of Joint-SSL: projector + objective; forward(f1, f2) -> (loss, terms).

    Its parameters (the projector's) must be trained with the model's: give them to the
    optimizer, and to SAM's stepper through it.
    """

    def __init__(self, feature_dim: int, objective: str = "vicreg", hidden: int | None = None,
                 out_dim: int | None = None, layers: int = 3, **loss_kwargs: float) -> None:
        super().__init__()
        if objective not in SSL_OBJECTIVES:
            raise ValueError(f"objective={objective!r} is not allowed; "
                             f"choose one of {', '.join(SSL_OBJECTIVES)}")
        self.objective = objective
        self.projector = Projector(feature_dim, hidden, out_dim, layers)
        self.loss_kwargs = loss_kwargs

    def forward(self, feats1: Tensor, feats2: Tensor) -> tuple[Tensor, Terms]:
        """SSL loss of the backbone features of two views (B, feature_dim) each."""
        z1, z2 = self.projector(feats1), self.projector(feats2)
        return SSL_OBJECTIVES[self.objective](z1, z2, **self.loss_kwargs)


def build_ssl(cfg: TrainConfig, feature_dim: int) -> JointSSL | None:
    """Joint-SSL for `cfg.ssl` (none -> None; vicreg with cfg.vicreg_inv/var/cov)."""
    if cfg.ssl == "none":
        return None
    if cfg.ssl == "vicreg":
        return JointSSL(feature_dim, "vicreg", inv_weight=cfg.vicreg_inv,
                        var_weight=cfg.vicreg_var, cov_weight=cfg.vicreg_cov)
    raise ValueError(f"ssl={cfg.ssl!r} is not allowed; choose none or vicreg")
