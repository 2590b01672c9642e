"""Self-supervised pre-training on the user's own data, without labels (`imbtrain pretrain`).

The paper (Section 3.1 and A.4) fine-tunes backbones pre-trained with SimCLR or VICReg and
finds the gains largest under heavy imbalance. Without a large upstream set, this pre-trains
on the training images themselves: two random views of each image, the backbone, a projector
(`imbtrain.methods.ssl.Projector`) and VICReg or NT-Xent. The labels are never read, so the
imbalance cannot bias the objective. The weights it writes are an ImbModel state dict that
`pretrained=<out_dir>/pretrained.pt` loads (the head stays re-initialised). The optimiser,
the learning-rate schedule and the autocast are the training loop's (`imbtrain.train`).

    >>> import tempfile
    >>> cfg = TrainConfig(dataset="synthetic", synthetic_shape="1x8x8", synthetic_classes=2,
    ...                   synthetic_samples=8, epochs=1, batch_size=8)
    >>> with tempfile.TemporaryDirectory() as out:
    ...     path = pretrain(cfg, out, log=lambda line: None)
    ...     print(path.name, sorted(p.name for p in path.parent.iterdir()))
    pretrained.pt ['config.yaml', 'pretrain.json', 'pretrained.pt']

Pre-training digits for 50 epochs, then fine-tuning on them at a train ratio of 0.01:

    imbtrain pretrain dataset=digits epochs=50 --out runs/ssl
    imbtrain train dataset=digits train_ratio=0.01 pretrained=runs/ssl/pretrained.pt
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import torch
from torch import Tensor

from imbtrain.augment import build_augmentation
from imbtrain.config import TrainConfig
from imbtrain.data import ImbalancedData, build_data
from imbtrain.errors import UserError
from imbtrain.methods.ssl import SSL_OBJECTIVES, JointSSL
from imbtrain.models import create_model_for
from imbtrain.pretrained import load_pretrained
from imbtrain.train import (
    autocast,
    build_optimizer,
    build_scheduler,
    resolve_device,
    seed_everything,
)

SCARF_RATE = 0.6  # share of features a vector view corrupts (Bahri et al. 2022's default)


def scarf_view(x: Tensor, rate: float = SCARF_RATE) -> Tensor:
    """A SCARF view of vectors (B, D): each feature, with probability `rate`, replaced by the
    same feature of a random sample of the batch (its empirical marginal; Bahri et al. 2022).
    """
    donors = x.gather(0, torch.randint(len(x), x.shape, device=x.device))
    return torch.where(torch.rand_like(x) < rate, donors, x)


def view_maker(cfg: TrainConfig, data: ImbalancedData, device: torch.device,
               log: Callable[[str], None]) -> Callable[[Tensor], Tensor]:
    """The random view of a batch: the augmentation policy for images, SCARF for vectors."""
    if not data.is_image:
        log(f"pretrain: vector data, views are SCARF corruptions ({SCARF_RATE:.0%} of features)")
        return lambda x: scarf_view(x.to(torch.float32))
    if cfg.augment == "none":
        # Two identical views would make the invariance term trivial.
        log("pretrain: augment=none gives identical views; using augment=flip_crop")
        cfg = cfg.replace(augment="flip_crop")
    # Mixing needs labels; pre-training has none.
    return build_augmentation(cfg.replace(mix="none"), data, device).train_views


def _objective_kwargs(cfg: TrainConfig, objective: str) -> dict[str, float]:
    if objective == "vicreg":
        return {"inv_weight": cfg.vicreg_inv, "var_weight": cfg.vicreg_var,
                "cov_weight": cfg.vicreg_cov}
    return {}


def pretrain(cfg: TrainConfig, out_dir: str | Path, objective: str = "vicreg",
             log: Callable[[str], None] = print) -> Path:
    """Pre-train `cfg.model`'s backbone on `cfg`'s training images without labels.

    Reads dataset/model/device/seed keys, `epochs`, `batch_size`, `optimizer`, `lr`,
    `momentum`, `weight_decay`, `warmup_epochs`, `precision`, `augment`, `random_erasing`,
    `vicreg_*` and `pretrained` (start from those weights). The schedule is cosine over
    `epochs` after the warm-up. Writes `out_dir/pretrained.pt` (ImbModel state dict),
    `out_dir/config.yaml` and `out_dir/pretrain.json` (objective, loss per epoch); logs the
    loss per epoch; returns the weights' path.
    """
    if objective not in SSL_OBJECTIVES:
        raise UserError(f"objective={objective} is not allowed; choose one of "
                        f"{', '.join(SSL_OBJECTIVES)}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    device = resolve_device(cfg.device)
    seed_everything(cfg.seed)
    data = build_data(cfg)
    model = create_model_for(cfg, data)
    if cfg.pretrained != "none":
        load_pretrained(model, cfg.pretrained)
    model.to(device).train()
    ssl = JointSSL(model.feature_dim, objective, **_objective_kwargs(cfg, objective))
    ssl.to(device).train()
    views = view_maker(cfg, data, device, log)
    train_x = data.train_x.to(device)
    n = len(train_x)
    if n < 2:
        raise UserError(f"pretrain needs at least 2 training samples, dataset has {n}")
    bs = min(cfg.batch_size, n)
    bs = max(bs, 2)  # BatchNorm and the variance term need two samples a batch
    steps = n // bs  # drop the incomplete last batch: sizes stay equal
    optimizer = build_optimizer(cfg, list(model.parameters()) + list(ssl.parameters()))
    scheduler = build_scheduler(cfg.replace(schedule="cosine"), optimizer, steps)
    scaler = torch.amp.GradScaler("cuda", enabled=device.type == "cuda"
                                  and cfg.precision == "fp16")
    log(f"pretrain {objective}: {cfg.model} on {data.name}, {n} images without labels, "
        f"{cfg.epochs} epochs of {steps} steps")
    history = []
    for epoch in range(cfg.epochs):
        total = torch.zeros((), device=device)
        perm = torch.randperm(n, device=device)
        for step in range(steps):
            x = train_x[perm[step * bs:(step + 1) * bs]]
            v = torch.cat([views(x), views(x)])
            with autocast(device, cfg.precision):
                feats = model.backbone(v)
                loss, _ = ssl(feats[:bs], feats[bs:])  # the objectives compute in float32
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
            scheduler.step()
            total += loss.detach()
        history.append(float(total) / steps)
        log(f"pretrain epoch {epoch + 1:>3}/{cfg.epochs}  {objective} loss {history[-1]:.4f}")
    path = out / "pretrained.pt"
    torch.save({k: v.detach().cpu() for k, v in model.state_dict().items()}, path)
    cfg.save(out / "config.yaml")
    (out / "pretrain.json").write_text(json.dumps({"objective": objective, "loss": history},
                                                  indent=1))
    return path
