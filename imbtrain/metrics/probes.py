"""Model probes: on 2-D inputs, predictions over the plane and the minority margin; on any
inputs (images too), the first-order margins of `input_margins`.

The paper (Section 5, Fig. 18; A.11) shows that ERM draws small margins around minority
training points and SAM-A widens them. imbtrain measures it: the **minority margin** is the
mean, over the minority training points p, of the distance from p to the decision boundary,
i.e. to the nearest input whose predicted class differs from p's own.

Method (`boundary_distances`): from each point, `directions` rays at angles 2 pi j / D
(j = 0..D-1; default 64). Along each ray, a scan of `steps` equal steps up to `max_radius`
finds the first step whose predicted class differs from that at p; bisection (`iters`
halvings) between the last unchanged and the first changed step pins the crossing. A
point's distance is the smallest crossing over its rays. Accuracy: the true distance d is
reached along the boundary's normal, and the nearest ray is at most pi / D off it, so for a
straight boundary the estimate lies in [d, d / cos(pi / D)] (within 0.12% for D = 64), plus
the bisection's max_radius / steps / 2^iters. Regions thinner than max_radius / steps along
a ray can be missed; a ray that meets no boundary within max_radius counts as max_radius
(so the margin is then a lower bound).

Beyond 2-D the rays cannot cover the input space; `input_margins` takes the first-order
distance instead, |margin| / |gradient of the margin| at each point (its docstring), which the
trial metric `minority_input_margin` averages over the minority samples (SAM-A study).

A linear boundary checks it by hand: logits (0, x1 - 1) put class 1 right of x1 = 1, so
the origin lies 1 away:

    >>> import torch
    >>> head = torch.nn.Linear(2, 2)
    >>> with torch.no_grad():
    ...     _ = head.weight.copy_(torch.tensor([[0.0, 0.0], [1.0, 0.0]]))
    ...     _ = head.bias.copy_(torch.tensor([0.0, -1.0]))
    >>> round(minority_margin(head, torch.zeros(1, 2)), 4)
    1.0
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor, nn

from imbtrain.metrics.split import minority_classes

MARGIN = "minority_margin"  # the results column a decision-boundary study records


def predict(model: nn.Module, x: Tensor, batch: int = 65536) -> Tensor:
    """Predicted classes (N,) of points x (N, 2), in eval mode, in batches."""
    model.eval()
    param = next(model.parameters(), None)
    dtype = param.dtype if param is not None else torch.float32
    device = param.device if param is not None else torch.device("cpu")
    with torch.no_grad():
        out = [model(x[i:i + batch].to(device, dtype)).argmax(dim=1).cpu()
               for i in range(0, len(x), batch)]
    return torch.cat(out) if out else torch.empty(0, dtype=torch.long)


def boundary_distances(model: nn.Module, points: Tensor, directions: int = 64,
                       max_radius: float = 5.0, steps: int = 256,
                       iters: int = 30) -> np.ndarray:
    """Distance (N,) from each point (N, 2) to the decision boundary (module doc)."""
    p = torch.as_tensor(points, dtype=torch.float32).reshape(-1, 2)
    if len(p) == 0:
        return np.zeros(0)
    if len(p) > 64:  # the scan holds N x D x S points: go 64 points at a time
        return np.concatenate([boundary_distances(model, p[i:i + 64], directions, max_radius,
                                                  steps, iters) for i in range(0, len(p), 64)])
    n = len(p)
    angles = torch.arange(directions, dtype=torch.float32) * (2 * math.pi / directions)
    u = torch.stack([angles.cos(), angles.sin()], dim=1)                 # (D, 2)
    own = predict(model, p)                                               # (N,)
    ts = torch.linspace(max_radius / steps, max_radius, steps)            # (S,)
    grid = p[:, None, None, :] + ts[None, None, :, None] * u[None, :, None, :]
    changed = (predict(model, grid.reshape(-1, 2)).reshape(n, directions, steps)
               != own[:, None, None])                                     # (N, D, S)
    hit = changed.any(dim=2)
    first = changed.float().argmax(dim=2)                                 # first changed step
    hi = ts[first]
    lo = torch.where(first > 0, ts[(first - 1).clamp(min=0)], torch.zeros_like(hi))
    origin, ray, cls = p[:, None, :].expand(n, directions, 2), u[None].expand(n, -1, -1), \
        own[:, None].expand(n, directions)
    for _ in range(iters):
        mid = (lo + hi) / 2
        moved = predict(model, (origin + mid[..., None] * ray).reshape(-1, 2)).reshape(
            n, directions) != cls
        hi, lo = torch.where(moved, mid, hi), torch.where(moved, lo, mid)
    dist = torch.where(hit, hi, torch.full_like(hi, max_radius))
    return dist.min(dim=1).values.double().numpy()


def minority_margin(model: nn.Module, points: Tensor, directions: int = 64,
                    max_radius: float = 5.0, steps: int = 256, iters: int = 30) -> float:
    """Mean distance from `points` (the minority training points, (N, 2)) to the decision
    boundary of `model` (an ImbModel on inputs (2,), or any module x -> logits)."""
    d = boundary_distances(model, points, directions, max_radius, steps, iters)
    return float(d.mean()) if len(d) else math.nan


def minority_points(x: Tensor, y: Tensor, train_counts) -> Tensor:
    """The training points of the minority classes (`imbtrain.metrics.minority_classes`)."""
    keep = torch.isin(torch.as_tensor(y), torch.tensor(minority_classes(list(train_counts))))
    return torch.as_tensor(x)[keep]


# ================================================================ margins of any input shape

def pixel_inputs(x: Tensor) -> Tensor:
    """uint8 images (N, C, H, W) as float32 on the 0..1 pixel scale; anything else
    (standardised vectors) as float32."""
    x = torch.as_tensor(x)
    return x.to(torch.float32) / 255.0 if x.dtype == torch.uint8 else x.to(torch.float32)


def input_margins(model: nn.Module, x: Tensor, y: Tensor, mean=None, std=None,
                  batch: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """Per sample, its logit margin and its first-order distance to the decision boundary.

    For a sample x of class y with logits z, the logit margin is m = z_y - max_{j != y} z_j
    (negative when misclassified); the distance is m / ||grad_x m||_2, the distance from x to
    where m reaches 0 if the model were linear around x (Elsayed et al. 2018, "Large margin
    deep networks"; DeepFool's first step). Unlike m, it does not grow when the logits are
    scaled, and for a linear model it is the exact (signed) distance to the boundary between y
    and its nearest rival class. Images (uint8) are measured in pixel units of [0, 1]
    (normalised with `mean` / `std` inside, as the model sees them); vectors in their own
    (standardised) units. Eval mode: BatchNorm uses its running statistics, so each sample's
    gradient is its own.

        >>> head = torch.nn.Linear(2, 2)
        >>> with torch.no_grad():
        ...     _ = head.weight.copy_(torch.tensor([[0.0, 0.0], [2.0, 0.0]]))
        ...     _ = head.bias.copy_(torch.tensor([0.0, -2.0]))
        >>> m, d = input_margins(head, torch.tensor([[3.0, 0.0], [0.0, 5.0]]),
        ...                      torch.tensor([1, 1]))
        >>> m.round(4).tolist(), d.round(4).tolist()   # class 1 right of x1 = 1
        ([4.0, -2.0], [2.0, -1.0])
    """
    model.eval()
    param = next(model.parameters(), None)
    dtype = param.dtype if param is not None else torch.float32
    device = param.device if param is not None else torch.device("cpu")
    x, y = pixel_inputs(x), torch.as_tensor(y)
    shift = scale = None
    if mean is not None and x.dim() == 4:  # (x - mean) / std per channel
        scale = 1.0 / torch.tensor(std, dtype=torch.float32, device=device).view(-1, 1, 1)
        shift = torch.tensor(mean, dtype=torch.float32, device=device).view(-1, 1, 1)
    margins, dists = [], []
    for i in range(0, len(x), batch):
        xb = x[i:i + batch].to(device).requires_grad_(True)
        yb = y[i:i + batch].to(device)
        inp = xb if scale is None else (xb - shift) * scale
        z = model(inp.to(dtype)).float()
        own = z.gather(1, yb[:, None]).squeeze(1)
        rival = z.scatter(1, yb[:, None], float("-inf")).max(dim=1).values
        m = own - rival
        (grad,) = torch.autograd.grad(m.sum(), xb)
        norm = grad.flatten(1).norm(dim=1).clamp_min(1e-12)
        margins.append(m.detach().cpu())
        dists.append((m.detach() / norm).cpu())
    if not margins:
        return np.zeros(0), np.zeros(0)
    return (torch.cat(margins).double().numpy(), torch.cat(dists).double().numpy())
