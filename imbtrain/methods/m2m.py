"""M2m, major-to-minor translation (Kim et al. 2020; docs/methods.md, "8. Baselines: M2m").

Needs a teacher g: a classifier trained by ERM on the same data (`m2m_teacher`, a state dict
of the same `cfg.model`; without one, an ERM teacher is trained first with the train function
the loop hands over, `Method.train_fn`, which costs one extra full training run). From
`m2m_epoch` on (-1: floor(0.8 * epochs)) the batches are class-balanced and each sample i of
class y is, with probability 1 - n_y / n_max, replaced by a translation of another class's
sample:

1. a seed x0 of class k0 is drawn from the batch, sample j with probability
   ∝ 1 - beta ** max(n_{y_j} - n_y, 0) (`m2m_beta` 0.999), so only larger classes seed;
2. from x0 plus noise on the sphere of radius `m2m_noise` (0.5), T = `m2m_steps` (10)
   L2-normalised gradient steps of size `m2m_step_size` (0.1) minimise
   CE(g(x), y) + lambda f_k0(x) (`m2m_lambda` 0.5, f the network being trained, f_k0 its
   logit of the seed's class);
3. the translation is accepted if g gives y probability >= `m2m_gamma` (0.99), and then kept
   with probability 1 - beta ** (n_k0 - n_y) (M2m's `correct = (probs_g >= gamma) *
   torch.bernoulli(p_accept)`, p_accept the seed's own selection weight); it then replaces
   x_i (label y). A rejected one leaves sample i as it was.

Units, as M2m's code (alinlab/M2m, train.py `generation`): images are translated as [0, 1]
pixels, x = x_norm * std + mean of the loop's augmented batch, so `m2m_noise` and
`m2m_step_size` are L2 lengths in pixel units; the seed plus noise and every step are clamped
to [0, 1] (M2m's `torch.clamp(inputs, 0, 1)`), the models see (x - mean) / std, and the
translation returns to the loop normalised. Vectors (tabular data) have no valid range: they
are translated in their own (standardised) units, unclamped. The noise is a uniformly random
direction of length `m2m_noise` for every seed (docs/methods.md); M2m's code draws uniform noise and
renormalises it over each channel of the whole batch (`renorm(p=2, dim=1)`), so that a seed's
noise is shorter, about m2m_noise * sqrt(C / G) for G seeds of C channels. The loss the
network trains on is the plain batch mean, as M2m's (`loss.mean()`; M2m's optional
re-weighting also averages w_y l over the batch). g and f run in eval mode during
generation; f's mode is restored after.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from imbtrain.config import TrainConfig
from imbtrain.data import ImbalancedData
from imbtrain.errors import UserError
from imbtrain.files import check_torch_file, read_torch
from imbtrain.methods.base import Method, register_method
from imbtrain.methods.drw import deferred_epoch
from imbtrain.models import create_model_for


def seed_weights(counts: Tensor, y: Tensor, targets: Tensor, beta: float) -> Tensor:
    """(G, B) weights of batch sample j as the seed for target class targets[i]:
    1 - beta ** max(n_{y_j} - n_{targets_i}, 0), zero for classes no larger than the target.
    """
    gap = (counts[y][None, :] - counts[targets][:, None]).clamp(min=0)
    return 1 - beta**gap


def _unit(v: Tensor) -> Tensor:
    """Each sample of v divided by its L2 norm (zero stays zero)."""
    norms = v.flatten(1).norm(dim=1).clamp_min(1e-12)
    return v / norms.view(-1, *([1] * (v.dim() - 1)))


def _identity(x: Tensor) -> Tensor:
    return x


def translate(g: nn.Module, f: nn.Module, x0: Tensor, target: Tensor, seed_class: Tensor, *,
              steps: int, step_size: float, noise: float, lam: float,
              to_input: Callable[[Tensor], Tensor] = _identity,
              clamp: tuple[float, float] | None = None) -> Tensor:
    """Translations of seeds x0 towards `target`: `steps` L2-normalised gradient steps on
    CE(g(z), target) + lam * f_{seed_class}(z), z = to_input(x), from x0 + noise * (a random
    unit vector); with `clamp` = (lo, hi) the start and every step are clamped to it.

    x0, `step_size` and `noise` are in the units the translation moves in ([0, 1] pixels for
    images, M2m's); `to_input` maps them to the models' input (the normalisation). Each
    sample's objective is its own (summed over the batch, then normalised per sample), so a
    sample's path does not depend on the others; M2m's batch means give the same steps.
    """
    def valid(v: Tensor) -> Tensor:
        return v if clamp is None else v.clamp(*clamp)

    x = valid(x0 + noise * _unit(torch.randn_like(x0)))
    with torch.enable_grad():
        for _ in range(steps):
            x = x.detach().requires_grad_(True)
            z = to_input(x)
            objective = (F.cross_entropy(g(z).float(), target, reduction="sum")
                         + lam * f(z).float().gather(1, seed_class[:, None]).sum())
            (grad,) = torch.autograd.grad(objective, x)
            x = valid(x - step_size * _unit(grad))
    return x.detach()


def keep_step(p_keep: Tensor) -> Tensor:
    """M2m's random keep step: bool (G,), True with probability p_keep (torch's global RNG).

    Example (probabilities 0 and 1 leave nothing to chance):
        >>> keep_step(torch.tensor([0.0, 1.0]))
        tensor([False,  True])
    """
    return torch.bernoulli(p_keep).bool()


@torch.no_grad()
def teacher_accepts(g: nn.Module, x: Tensor, target: Tensor, gamma: float) -> Tensor:
    """Bool (G,): g gives each x its target class with probability >= gamma."""
    probs = F.softmax(g(x).float(), dim=1)
    return probs.gather(1, target[:, None]).squeeze(1) >= gamma


def _teacher_kind(model_name: str) -> str:
    return (f"the state dict (torch.save) of a {model_name} trained with method=erm on the "
            "same data (m2m_teacher=)")


def check_teacher_file(path: str, model_name: str) -> None:
    """The checks of an `m2m_teacher=` file that need no loading (a study's driver makes
    them before Ray starts)."""
    if not os.path.isfile(path):
        raise UserError(f"m2m_teacher {path!r} is not a file; expected the state dict of a "
                        f"{model_name} trained with method=erm on the same data")
    check_torch_file(path, _teacher_kind(model_name))


def load_teacher(path: str, cfg, data) -> nn.Module:
    """The ImbModel `cfg.model` for this data with the state dict saved at `path` (torch.save
    of `model.state_dict()`), on the CPU, in eval mode, parameters frozen."""
    model_name, num_classes = cfg.model, data.num_classes
    check_teacher_file(path, model_name)
    model = create_model_for(cfg, data)
    state = read_torch(path, _teacher_kind(model_name))
    try:
        model.load_state_dict(state)
    except (RuntimeError, TypeError, AttributeError) as err:  # not a state dict of it
        first = str(err).splitlines()[0]
        raise UserError(f"m2m_teacher {path!r} does not fit model {model_name} with "
                        f"{num_classes} classes: {first}") from err
    return model.eval().requires_grad_(False)


@register_method("m2m")
class M2mMethod(Method):
    """Cross-entropy; from `m2m_epoch` on, balanced batches with major-to-minor translations.

    `self.passes` counts batched forward/backward passes of g and f (2 per gradient step for
    each batch that translates; each pass covers only that batch's candidates, about
    (1 - n_y / n_max) of it); `self.generated` / `self.accepted` count the candidates and the
    accepted translations.
    """

    def __init__(self, cfg: TrainConfig, data: ImbalancedData):
        super().__init__(cfg, data)
        self.data = data
        self.start = deferred_epoch(cfg.m2m_epoch, cfg.epochs)
        self.pixels = bool(getattr(data, "is_image", False))  # images: translate [0, 1] pixels
        if self.pixels:
            c = data.input_shape[0]
            mean = data.mean if data.mean is not None else (0.0,) * c
            std = data.std if data.std is not None else (1.0,) * c
            self.mean = torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1)
            self.std = torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1)
        self._counts: Tensor | None = None  # the counts on the batches' device, made once
        self.log = print  # the loop may set its own log here
        self.generated = 0
        self.accepted = 0
        self.teacher: nn.Module | None = None
        if cfg.m2m_teacher:
            self.teacher = load_teacher(cfg.m2m_teacher, cfg, data)

    def configure_model(self, model: nn.Module) -> nn.Module:
        """Train the ERM teacher here when no `m2m_teacher` was given (one extra training)."""
        if self.teacher is None:
            self.teacher = self._train_teacher()
        return model

    def _train_teacher(self) -> nn.Module:
        if self.train_fn is None:
            raise RuntimeError("m2m trains its ERM teacher with the loop's train function; "
                               "set method.train_fn (the loop does) or give m2m_teacher")
        self.log("m2m: no m2m_teacher given, so an ERM teacher is trained first; this costs "
                 "one extra full training run (save it and pass m2m_teacher to reuse it)")
        # fork_rng: the teacher's training leaves the run's own random stream untouched.
        with torch.random.fork_rng():
            result = self.train_fn(dataclasses.replace(self.cfg, method="erm"), data=self.data,
                                   log=self.log)
        return result.model.eval().requires_grad_(False)

    def sampling(self, epoch: int) -> str:
        """"balanced" from `m2m_epoch` on, "shuffle" before."""
        return "balanced" if epoch >= self.start else "shuffle"

    def transform_batch(self, model: nn.Module, x: Tensor, y: Tensor,
                        epoch: int) -> tuple[Tensor, Tensor]:
        """From `m2m_epoch` on, replace candidates by accepted translations (labels kept)."""
        if epoch < self.start:
            return x, y
        if self._counts is None or self._counts.device != x.device:
            self._counts = self.counts.to(device=x.device, dtype=torch.float32)
            if self.pixels:
                self.mean, self.std = self.mean.to(x.device), self.std.to(x.device)
        counts = self._counts
        chosen = torch.bernoulli(1 - counts[y] / counts.max()).bool().nonzero().squeeze(1)
        weights = seed_weights(counts, y, y[chosen], self.cfg.m2m_beta)
        has_seed = weights.sum(dim=1) > 0  # a class with no larger class in the batch: skip
        chosen, weights = chosen[has_seed], weights[has_seed]
        if chosen.numel() == 0:
            return x, y
        seeds = torch.multinomial(weights, 1).squeeze(1)
        p_keep = weights.gather(1, seeds[:, None]).squeeze(1)  # 1 - beta ** (n_k0 - n_y)
        x_new, ok = self._generate(model, x[seeds], y[chosen], y[seeds], p_keep)
        out = x.clone()
        out[chosen[ok]] = x_new[ok].to(out.dtype)
        return out, y

    def to_input(self, x: Tensor) -> Tensor:
        """Pixels of [0, 1] -> the loop's normalised input (vectors: unchanged)."""
        return (x - self.mean) / self.std if self.pixels else x

    def _generate(self, f: nn.Module, x0: Tensor, target: Tensor, seed_class: Tensor,
                  p_keep: Tensor) -> tuple[Tensor, Tensor]:
        """Normalised translations and their acceptance (teacher test, then keep step), with
        g and f in eval mode (f's mode restored)."""
        g = self.teacher.to(x0.device).eval()
        was_training = f.training
        f.eval()
        start = x0 * self.std + self.mean if self.pixels else x0
        try:
            x = translate(g, f, start, target, seed_class, steps=self.cfg.m2m_steps,
                          step_size=self.cfg.m2m_step_size, noise=self.cfg.m2m_noise,
                          lam=self.cfg.m2m_lambda, to_input=self.to_input,
                          clamp=(0.0, 1.0) if self.pixels else None)
            x = self.to_input(x)
            ok = teacher_accepts(g, x, target, self.cfg.m2m_gamma) & keep_step(p_keep)
        finally:
            f.train(was_training)
        self.passes += 2 * self.cfg.m2m_steps
        self.generated += target.numel()
        self.accepted += int(ok.sum())
        return x, ok
