"""Sharpness-aware minimisation: plain SAM, ASAM and the paper's SAM-A (paper A.6, eq. 5;
docs/methods.md, "4. SAM, ASAM and SAM-A").

The training loop hands each step to a *stepper*, built once per run from `cfg.sam`:

    stepper = build_stepper(cfg, data.train_counts, optimizer, scaler)
    loss = stepper.step(model, closure, t)   # closure(sample_weights) -> scalar loss

`closure(w, ssl_share=None)` runs one forward pass and returns the batch loss with sample i's
term weighted by w_i (w None: all ones; the loop averages as `methods/weights.py` says), plus
the term that is not per sample (Joint-SSL's loss) times `ssl_share` (None: 1). A (B, G)
matrix w gives G losses (G,) from that one forward, with `ssl_share` (G,). `t` (B, K) are the
batch's un-smoothed, possibly mixed, targets. Steppers (registry `STEPPERS`):

- `none`: one forward/backward and the optimizer's step (ERM, with a GradScaler if given);
- `sam`: Foret et al. (2021): e = rho g / ||g|| (ASAM, Kwon et al. 2021: e = rho T^2 g / ||T g||,
  T = |w|), a second forward/backward at w + e, then the base optimizer's step at w with that
  gradient;
- `sam_a`: SAM with a per-class radius rho_c (`class_radii`), in one of three modes
  (`sam_a_mode`):
  - `weighted` (default): one shared ascent. Sample i's radius is rho_i = t_i @ rho_c; the
    ascent loss weights sample i by rho_i / rho_bar (rho_bar the batch mean of rho_i) and
    e = rho_bar g_w / ||g_w||; 2 passes a step;
  - `per_class`: the literal per-class radius. Class c's share of the batch loss, L_c (sample
    i counted with its target mass t_ic), has the gradient g_c at w; e_c = rho_c g_c / ||g_c||,
    and the descent gradient is sum_c grad L_c(w + e_c), one update at w. Classes of equal
    radius share one perturbation (SAM on their joint share), so equal radii give SAM;
  - `grouped`: as `per_class` with the classes bucketed into `sam_a_groups` radius groups
    (quantiles of rho_c over the classes, each group's radius the mean of its classes').
  In both group modes every group g present in the batch costs one backward at w (all from
  one forward) and one forward/backward at w + e_g: 2 G passes a step, counted in `passes`;
  the G perturbations are held at once (G copies of the trained parameters).
  Equal radii give SAM in every mode; a batch of one class c gives ||e|| = rho_c (grouped:
  the radius of c's group).

BatchNorm running statistics change once per step, from the first pass at w: the later passes'
updates are undone by restoring the saved buffers (`frozen_bn_stats`).

SAM with fp16 loss scaling is refused by `TrainConfig` (`sam` with `precision=fp16`): SAM's
ascent needs the unscaled gradient norm, and a skipped (inf) step would leave w perturbed.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Iterator, Sequence

import torch
from torch import Tensor, nn
from torch.nn.modules.batchnorm import _BatchNorm
from torch.nn.utils import get_total_norm

from imbtrain.config import TrainConfig
from imbtrain.registry import STEPPERS

Closure = Callable[[Tensor | None], Tensor]
Modules = nn.Module | Sequence[nn.Module]

# ---------------------------------------------------------------------------------------------
# Per-class factors (shared with class-conditional smoothing)
# ---------------------------------------------------------------------------------------------


def _inverse(p: Tensor, power: float) -> Tensor:
    # (K p_c)^-power: 1 for every class on balanced data, so the method reduces to its base.
    return (p.numel() * p) ** (-power)


def _paper_eq(p: Tensor, power: float) -> Tensor:
    # The paper's eq. (5)/(6): 1 / (1 - p_c); grows with the class share. `power` is unused.
    return 1.0 / (1.0 - p)


CLASS_FORMS: dict[str, Callable[[Tensor, float], Tensor]] = {
    "inverse": _inverse,
    "paper_eq": _paper_eq,
}


def class_factors(counts: Sequence[int] | Tensor, form: str, power: float) -> Tensor:
    """Per-class multipliers f_c (K,) float64 that scale a base radius or epsilon.

    `inverse`: f_c = (K p_c)^(-power); `paper_eq`: f_c = 1 / (1 - p_c), p_c = n_c / sum n.
    A class without training samples gets f_c = 1: it never appears in a batch, and a finite
    value keeps `t @ f` finite for mixed targets.
    """
    if form not in CLASS_FORMS:
        raise ValueError(f"form={form!r} is not allowed; choose one of {', '.join(CLASS_FORMS)}")
    n = torch.as_tensor(counts, dtype=torch.float64).flatten()
    if n.numel() < 2 or bool((n < 0).any()) or float(n.sum()) <= 0:
        raise ValueError(f"counts must hold >= 2 non-negative class counts, got {n.tolist()}")
    p = n / n.sum()
    present = n > 0
    out = torch.ones_like(p)
    out[present] = CLASS_FORMS[form](p, power)[present]
    return out


def class_radii(counts: Sequence[int] | Tensor, rho: float, form: str = "inverse",
                power: float = 0.5) -> Tensor:
    """SAM-A's per-class ascent radii rho_c (K,) float32 (paper A.6, eq. 5; docs/methods.md,
    "SAM and SAM-A").

    The paper's text says SAM-A uses a radius "inversely proportional to the classes'
    proportions" (larger for minority classes), but its eq. (5), rho_c = rho / (1 - p_c),
    grows with the class share p_c (CIFAR-10 at r = 0.01: 1.67 rho for the largest class,
    1.004 rho for the smallest). imbtrain offers both, defaulting to the text:

    - form "inverse" (default): rho_c = rho * (K p_c) ** (-power); balanced data gives plain
      SAM; power 1 is literally inversely proportional, 0.5 is the milder default;
    - form "paper_eq": rho_c = rho / (1 - p_c), the printed eq. (5); `power` is ignored.

    Example:
        >>> class_radii([900, 100], 0.1, "inverse", 1.0)
        tensor([0.0556, 0.5000])
    """
    return (rho * class_factors(counts, form, power)).float()


# ---------------------------------------------------------------------------------------------
# BatchNorm statistics: updated once per step
# ---------------------------------------------------------------------------------------------


def _modules(model: Modules) -> Iterator[nn.Module]:
    roots = [model] if isinstance(model, nn.Module) else list(model)
    for root in roots:
        yield from root.modules()


@contextlib.contextmanager
def frozen_bn_stats(model: Modules) -> Iterator[None]:
    """Run a pass whose BatchNorm running statistics are thrown away.

    Saves running_mean / running_var / num_batches_tracked and copies them back on exit.
    Chosen over momentum = 0 because that still advances num_batches_tracked (and with
    momentum=None, the cumulative average, it would change the average's weights), and
    changing a module attribute makes torch.compile re-trace. The forward itself still
    normalises with the batch's statistics, as SAM's second pass should.
    """
    saved = []
    for m in _modules(model):
        if isinstance(m, _BatchNorm) and m.track_running_stats and m.running_mean is not None:
            saved.append((m, m.running_mean.clone(), m.running_var.clone(),
                          m.num_batches_tracked.clone()))
    try:
        yield
    finally:
        with torch.no_grad():
            for m, mean, var, tracked in saved:
                m.running_mean.copy_(mean)
                m.running_var.copy_(var)
                m.num_batches_tracked.copy_(tracked)


# ---------------------------------------------------------------------------------------------
# Steppers
# ---------------------------------------------------------------------------------------------

def register_stepper(name: str) -> Callable[[type[Stepper]], type[Stepper]]:
    """Class decorator: make a Stepper available as `sam=<name>` (`STEPPERS`)."""

    def deco(cls: type[Stepper]) -> type[Stepper]:
        cls.name = name
        return STEPPERS.register(name)(cls)

    return deco


def _params_device(optimizer: torch.optim.Optimizer) -> torch.device:
    return next(p.device for group in optimizer.param_groups for p in group["params"])


def _trained_params(optimizer: torch.optim.Optimizer) -> list[Tensor]:
    # The optimizer's parameters, not model.parameters(): SAM perturbs exactly what is
    # trained (e.g. the Joint-SSL projector too, and not a frozen backbone).
    return [p for group in optimizer.param_groups for p in group["params"]
            if p.grad is not None]


class Stepper:
    """ERM: zero_grad, one forward/backward through `closure`, the optimizer's step."""

    name = "none"
    passes_per_step = 1  # forward/backward passes of a step (SAM-A's group modes: at most)

    def __init__(self, cfg: TrainConfig, counts: Sequence[int] | Tensor,
                 optimizer: torch.optim.Optimizer,
                 scaler: torch.amp.GradScaler | None = None) -> None:
        self.cfg = cfg
        self.optimizer = optimizer
        self.scaler = scaler if scaler is not None and scaler.is_enabled() else None
        self.passes = 0  # forward/backward passes so far (the loop reports them per epoch)

    def step(self, model: Modules, closure: Closure, t: Tensor | None = None) -> Tensor:
        """One optimisation step; returns the detached loss."""
        self.passes += 1
        self.optimizer.zero_grad(set_to_none=True)
        loss = closure(None)
        if self.scaler is None:
            loss.backward()
            self.optimizer.step()
        else:
            self.scaler.scale(loss).backward()
            self.scaler.step(self.optimizer)
            self.scaler.update()
        return loss.detach()


register_stepper("none")(Stepper)


@register_stepper("sam")
class SAMStepper(Stepper):
    """SAM (Foret et al. 2021), ASAM with `cfg.sam_adaptive` (Kwon et al. 2021).

    ASAM's operator is T_w = |w| elementwise on every parameter, as in davda54/sam's
    `adaptive=True` (the ASAM authors' code uses |w| + 0.01 on weights and 1 on biases).
    ASAM's radius is usually larger than SAM's (Kwon et al. use rho = 0.5 to 2 on CIFAR).
    """

    passes_per_step = 2

    def __init__(self, cfg: TrainConfig, counts: Sequence[int] | Tensor,
                 optimizer: torch.optim.Optimizer,
                 scaler: torch.amp.GradScaler | None = None) -> None:
        super().__init__(cfg, counts, optimizer, None)  # no loss scaling (module docstring)
        self.rho = float(cfg.sam_rho)
        self.adaptive = bool(cfg.sam_adaptive)
        self.last_e: list[Tensor] = []  # the last ascent, kept for tests and diagnostics

    def ascent(self, t: Tensor | None) -> tuple[Tensor | None, Tensor | float]:
        """(sample weights of the ascent pass, radius of the ascent): SAM uses (None, rho)."""
        return None, self.rho

    @torch.no_grad()
    def _perturbation(self, params: list[Tensor], grads: list[Tensor],
                      radius: Tensor | float) -> list[Tensor]:
        # e = r * T^2 g / ||T g|| (T = 1 for SAM, |w| for ASAM). The radius may be a device
        # tensor: no host sync per step.
        scaled = [g * p.abs() if self.adaptive else g for p, g in zip(params, grads, strict=True)]
        scale = radius / (get_total_norm(scaled) + 1e-12)
        return [(s * p.abs() if self.adaptive else s) * scale.to(p.dtype)
                for p, s in zip(params, scaled, strict=True)]

    @torch.no_grad()
    def _perturb(self, params: list[Tensor], radius: Tensor | float) -> list[Tensor]:
        # e from the gradients in p.grad, added to w in place.
        eps = self._perturbation(params, [p.grad for p in params], radius)
        for p, e in zip(params, eps, strict=True):
            p.add_(e)
        return eps

    def step(self, model: Modules, closure: Closure, t: Tensor | None = None) -> Tensor:
        """Ascent at w, descent gradient at w + e, base optimizer step at w."""
        self.passes += 2
        weights, radius = self.ascent(t)
        self.optimizer.zero_grad(set_to_none=True)
        loss = closure(weights)
        loss.backward()
        params = _trained_params(self.optimizer)
        self.last_e = self._perturb(params, radius)
        self.optimizer.zero_grad(set_to_none=True)
        with frozen_bn_stats(model):
            closure(None).backward()
        with torch.no_grad():
            for p, e in zip(params, self.last_e, strict=True):
                p.sub_(e)
        self.optimizer.step()
        return loss.detach()


SAM_A_MODES = ("weighted", "per_class", "grouped")


def radius_groups(radii: Tensor, mode: str, groups: int = 3) -> tuple[Tensor, Tensor]:
    """(group (K,) int64 of each class, radius (G,) of each group) for a group mode.

    `per_class`: one group per distinct radius (classes of equal radius together), the group's
    radius that value. `grouped`: classes ranked by radius (ties ranked alike) and cut into
    `groups` buckets of about K / groups classes, empty buckets dropped; a group's radius is
    the mean of its classes' radii.

    Example (radii of three classes, two of them equal; two groups of the four ranked
    classes: ranks 0, 1, 1, 3 -> buckets 0, 0, 0, 1):
        >>> radius_groups(torch.tensor([0.1, 0.2, 0.2, 0.4]), "per_class")
        (tensor([0, 1, 1, 2]), tensor([0.1000, 0.2000, 0.4000]))
        >>> radius_groups(torch.tensor([0.1, 0.2, 0.2, 0.4]), "grouped", 2)
        (tensor([0, 0, 0, 1]), tensor([0.1667, 0.4000]))
    """
    values, inverse = torch.unique(radii, sorted=True, return_inverse=True)
    if mode == "per_class":
        return inverse, values
    if mode != "grouped":
        raise ValueError(f"sam_a_mode={mode!r} has no groups; group modes: per_class, grouped")
    rank = torch.searchsorted(torch.sort(radii).values, radii)  # classes of smaller radius
    bucket = torch.div(rank * groups, radii.numel(), rounding_mode="floor")
    _, group = torch.unique(bucket, sorted=True, return_inverse=True)
    size = torch.bincount(group).to(radii.dtype)
    return group, torch.zeros_like(size).index_add_(0, group, radii) / size


@register_stepper("sam_a")
class SAMAStepper(SAMStepper):
    """SAM-A (docs/methods.md): per-class radii rho_c from `class_radii`, combined as `sam_a_mode`
    says (module docstring).

    `weighted`: ascent loss mean(rho_i / rho_bar * l_i), whose gradient g_w is proportional to
    sum_i rho_i grad l_i (dividing by rho_bar only keeps the loss on its usual scale);
    e = rho_bar g_w / ||g_w||. The descent pass is unweighted.

    The radii (and the group modes' class-to-group matrix) are built on the parameters'
    device once: a step copies nothing from the host. The group modes read which groups the
    batch holds (G booleans) once a step; the weighted mode never waits for the device.
    """

    def __init__(self, cfg: TrainConfig, counts: Sequence[int] | Tensor,
                 optimizer: torch.optim.Optimizer,
                 scaler: torch.amp.GradScaler | None = None) -> None:
        super().__init__(cfg, counts, optimizer, scaler)
        device = _params_device(optimizer)
        radii = class_radii(counts, cfg.sam_rho, cfg.sam_a_form, cfg.sam_a_power)
        self.mode = cfg.sam_a_mode
        self.radii = radii.to(device)
        self.last_groups: list[int] = []  # the groups of the last step (group modes)
        if self.mode != "weighted":
            group, group_radii = radius_groups(radii, self.mode, cfg.sam_a_groups)
            # (K, G): class c belongs to group g; t @ membership is each sample's group mass.
            self.membership = torch.nn.functional.one_hot(group, len(group_radii)).float()
            self.membership = self.membership.to(device)
            self.group_radii = group_radii.to(device)
            self.passes_per_step = 2 * len(group_radii)

    def ascent(self, t: Tensor | None) -> tuple[Tensor | None, Tensor | float]:
        if t is None:
            raise ValueError("sam_a needs the batch's targets t (B, K) to set per-sample radii")
        rho_i = t.float() @ self.radii
        rho_bar = rho_i.mean()
        return rho_i / rho_bar, rho_bar

    def step(self, model: Modules, closure: Closure, t: Tensor | None = None) -> Tensor:
        if self.mode == "weighted":
            return super().step(model, closure, t)
        if t is None:
            raise ValueError("sam_a needs the batch's targets t (B, K) to set per-class radii")
        mass = t.float() @ self.membership  # (B, G): sample i's target mass in group g
        present = torch.nonzero(mass.sum(0) > 0).squeeze(1)
        self.last_groups = present.tolist()  # the one host read of the step
        self.passes += 2 * len(self.last_groups)
        shares, radii = mass[:, present], self.group_radii[present]
        params = [p for group in self.optimizer.param_groups for p in group["params"]
                  if p.requires_grad]
        self.optimizer.zero_grad(set_to_none=True)
        # One forward at w (BatchNorm statistics updated here, once): the groups' shares of
        # the loss, which add up to the batch loss (Joint-SSL's term split by batch mass).
        losses = closure(shares, shares.sum(0) / len(t))
        eps = self._group_perturbations(params, losses, radii)
        with frozen_bn_stats(model):
            self._descent(params, eps, lambda j: closure(shares[:, j],
                                                         shares[:, j].sum() / len(t)))
        self.last_e = eps[-1]
        self.optimizer.step()
        return losses.detach().sum()

    def _group_perturbations(self, params: list[Tensor], losses: Tensor,
                             radii: Tensor) -> list[list[Tensor]]:
        """e_g = r_g g_g / ||g_g|| for each group's loss share, one backward each at w."""
        eps = []
        for j in range(len(losses)):
            grads = torch.autograd.grad(losses[j], params, retain_graph=j + 1 < len(losses),
                                        allow_unused=True)
            grads = [torch.zeros_like(p) if g is None else g
                     for p, g in zip(params, grads, strict=True)]
            eps.append(self._perturbation(params, grads, radii[j]))
        return eps

    def _descent(self, params: list[Tensor], eps: list[list[Tensor]],
                 share: Callable[[int], Tensor]) -> None:
        """Sum over groups j of grad share_j(w + e_j) into p.grad; w restored exactly."""
        saved = [p.detach().clone() for p in params]
        for j, e in enumerate(eps):
            with torch.no_grad():
                for p, ej in zip(params, e, strict=True):
                    p.add_(ej)
            share(j).backward()
            with torch.no_grad():
                for p, w in zip(params, saved, strict=True):
                    p.copy_(w)


def build_stepper(cfg: TrainConfig, counts: Sequence[int] | Tensor,
                  optimizer: torch.optim.Optimizer,
                  scaler: torch.amp.GradScaler | None = None) -> Stepper:
    """The stepper named by `cfg.sam` (none | sam | sam_a) for this optimizer."""
    return STEPPERS.get(cfg.sam)(cfg, counts, optimizer, scaler)


def perturbation_norm(eps: Iterable[Tensor]) -> float:
    """||e||_2 over all parameters (for tests and logging)."""
    return float(get_total_norm(list(eps)))
