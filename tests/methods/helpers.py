"""Stand-ins for the methods' tests: a config and data with exactly the fields the methods
read (SimpleNamespace)."""

from __future__ import annotations

from types import SimpleNamespace

import torch


def fake_data(counts: list[int]) -> SimpleNamespace:
    y = torch.cat([torch.full((n,), c) for c, n in enumerate(counts)])
    return SimpleNamespace(num_classes=len(counts), train_counts=list(counts),
                           train_x=torch.randn(len(y), 2), train_y=y, input_shape=(2,),
                           is_image=False)


def cfg(**overrides) -> SimpleNamespace:
    base = dict(method="erm", epochs=10, batch_size=8, seed=0, reweight_form="effective",
                reweight_beta=0.9999, drw_epoch=-1, focal_gamma=1.0, ldam_max_m=0.5,
                ldam_s=30.0, ldam_normed=False)
    return SimpleNamespace(**{**base, **overrides})
