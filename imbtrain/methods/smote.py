"""SMOTE (Chawla et al. 2002; docs/methods.md, "8. Baselines: SMOTE"), with imbalanced-learn's
implementation.

Applied once, to the TRAIN split only (validation and test stay real): every class but the
largest gets synthetic samples x + lambda (x_nn - x), lambda ~ U(0, 1), x_nn one of x's k
nearest same-class neighbours, until it has the majority count. Images are flattened to
float pixels (0..255) and the synthetic ones rounded back to uint8; vectors are used as they
are (already standardised features).

Two edge cases of small classes, both documented choices:
- k_neighbors = min(5, n_min - 1), with n_min the smallest class count: SMOTE needs k < n_c
  for every class it over-samples, and 5 is the SMOTE / imbalanced-learn default.
- a class with a single sample is duplicated first, since SMOTE needs two; its synthetic
  samples are then copies of that sample (the segment between a point and itself).
"""

from __future__ import annotations

import copy

import numpy as np
import torch

from imbtrain.data import ImbalancedData
from imbtrain.methods.base import Method, register_method


def _duplicate_singletons(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Append a copy of each sample that is alone in its class."""
    classes, counts = np.unique(y, return_counts=True)
    alone = np.isin(y, classes[counts == 1])
    return np.concatenate([x, x[alone]]), np.concatenate([y, y[alone]])


def smote_arrays(x: np.ndarray, y: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """SMOTE up to the majority count on (N, D) features; originals first, then synthetic.

    A class with one sample is duplicated first; k_neighbors = min(5, n_min - 1).
    """
    # Imported here: imbalanced-learn pulls in scikit-learn, which every other method and the
    # package import can do without.
    from imblearn.over_sampling import SMOTE

    x, y = _duplicate_singletons(x, y)
    counts = np.bincount(y)
    present = counts[counts > 0]
    if present.min() == present.max():  # already balanced: nothing to synthesise
        return x, y
    smote = SMOTE(k_neighbors=min(5, int(present.min()) - 1), random_state=seed)
    return smote.fit_resample(x, y)


@register_method("smote")
class SMOTEMethod(Method):
    """ERM on the train split over-sampled with SMOTE to the majority count."""

    def prepare_data(self, data: ImbalancedData) -> ImbalancedData:
        """A copy of `data` with a SMOTE-balanced train split and updated `train_counts`.

        The random state is `cfg.seed`, so a run's synthetic samples follow its seed.
        """
        x = data.train_x
        flat = x.reshape(len(x), -1).numpy().astype(np.float32)
        new_x, new_y = smote_arrays(flat, data.train_y.numpy(), int(self.cfg.seed))
        new_x = torch.from_numpy(np.ascontiguousarray(new_x))
        if x.dtype == torch.uint8:  # images: back to 0..255 integers
            new_x = new_x.round().clamp(0, 255).to(torch.uint8)
        out = copy.copy(data)
        out.train_x = new_x.to(x.dtype).reshape(len(new_x), *x.shape[1:])
        out.train_y = torch.from_numpy(np.asarray(new_y)).long()
        out.train_counts = torch.bincount(out.train_y, minlength=data.num_classes).tolist()
        return out
