"""Pre-trained weights from a local file onto an ImbModel's backbone (`pretrained=<path>`).

Accepted: imbtrain's own state dicts (`backbone.*`, `head.*`, e.g. `imbtrain pretrain`'s
pretrained.pt or a run's final weights), torchvision and timm state dicts (the backbone's keys
without a prefix, e.g. `conv1.weight`, `fc.weight`), either of them wrapped under "state_dict"
or "model" (Lightning, timm's train script, DDP with its "module." prefix). Only the backbone
is loaded: the classifier is always re-initialised for the new task (the fine-tuning protocol
of Kang et al. 2020 and Kotar et al. 2021 the paper follows, Section 3 / A.4). Nothing is
downloaded.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from torch import Tensor, nn

from imbtrain.errors import UserError
from imbtrain.files import check_file, check_torch_file, read_torch

WRAPPERS = ("state_dict", "model")
PREFIXES = ("module.", "_orig_mod.")  # DataParallel / DDP, torch.compile
CLASSIFIER_NAMES = ("fc", "head", "classifier", "last_linear", "heads")
WEIGHTS_KIND = ("a weights file (pretrained= takes a local .pt, .pth or .safetensors state "
                "dict; imbtrain downloads nothing)")
MIN_LOADED = 0.5  # below this share of the backbone's tensors, the file is for another model


def check_weights_file(path: str | Path) -> Path:
    """The checks of a `pretrained=` file that need no loading (a study's driver makes them
    before Ray starts): it exists, is a file, and is torch.save's format (whole) or a
    .safetensors file."""
    p = Path(path).expanduser()
    if not p.exists():
        raise UserError(f"pretrained weights not found: {p} (pretrained= takes a local .pt, "
                        ".pth or .safetensors file; imbtrain downloads nothing)")
    if p.suffix == ".safetensors":
        return check_file(p, WEIGHTS_KIND)
    return check_torch_file(p, WEIGHTS_KIND)


def _read(path: str | Path) -> dict[str, Tensor]:
    """The tensors of a weights file, unwrapped and without DDP/compile prefixes."""
    p = check_weights_file(path)  # a folder, an empty, text or cut-short file: one line
    if p.suffix != ".safetensors":
        obj = read_torch(p, WEIGHTS_KIND)
    else:
        from safetensors.torch import load_file

        try:
            obj = load_file(str(p), device="cpu")
        except Exception as e:  # SafetensorError, OSError: a damaged or foreign file
            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise UserError(f"pretrained weights {p}: cannot be read as safetensors: "
                            f"{first}") from None
    while isinstance(obj, Mapping):
        inner = [k for k in WRAPPERS if isinstance(obj.get(k), Mapping)]
        if not inner:
            break
        obj = obj[inner[0]]
    tensors = {k: v for k, v in obj.items() if isinstance(v, Tensor)} \
        if isinstance(obj, Mapping) else {}
    if not tensors:
        raise UserError(f"pretrained weights {p}: no state dict found (expected a mapping of "
                        "parameter names to tensors, possibly under 'state_dict' or 'model')")
    return {_strip(k): v for k, v in tensors.items()}


def _strip(key: str) -> str:
    changed = True
    while changed:
        changed = False
        for prefix in PREFIXES:
            if key.startswith(prefix):
                key, changed = key.removeprefix(prefix), True
    return key


def _is_classifier(key: str) -> bool:
    # `fc.weight`, `head.fc.bias`, `classifier.1.weight`: a classifier module's tensor.
    modules = key.split(".")[:-1]
    return any(m in CLASSIFIER_NAMES for m in modules)


def _backbone_view(src: dict[str, Tensor]) -> tuple[dict[str, Tensor], list[str]]:
    """Source tensors named as the backbone's keys, and the source keys left aside.

    imbtrain's layout has `backbone.` and `head.` prefixes; torchvision and timm name the
    backbone's tensors directly (their classifier, `fc.*` etc., has no place in our backbone).
    """
    if any(k.startswith("backbone.") for k in src):
        view = {k.removeprefix("backbone."): v for k, v in src.items()
                if k.startswith("backbone.")}
        return view, [k for k in src if not k.startswith("backbone.")]
    return dict(src), []


def _best_prefix(src_keys: list[str], dst_keys: list[str]) -> str:
    """The prefix that, put before the source keys, names the most backbone keys.

    "" unless the backbone wraps the network in a submodule (e.g. `model.conv1.weight`).
    """
    dst = set(dst_keys)
    votes: dict[str, int] = {"": sum(k in dst for k in src_keys)}
    if votes[""] >= MIN_LOADED * len(dst_keys):
        return ""
    for d in dst_keys:
        for s in src_keys:
            if d != s and d.endswith("." + s):
                prefix = d[: len(d) - len(s)]
                votes[prefix] = votes.get(prefix, 0) + 1
    return max(votes, key=lambda k: (votes[k], k == ""))


def _shape(t: Tensor) -> tuple[int, ...]:
    return tuple(t.shape)


def load_pretrained(model: nn.Module, path: str | Path) -> dict[str, list[str]]:
    """Load the backbone of `model` (an ImbModel) from the weights file `path`.

    Returns dict(loaded=[model keys loaded], reinitialised=[model keys left at their fresh
    initialisation: the head, and classifier-like backbone tensors whose shape differs],
    ignored=[checkpoint keys not used, e.g. timm's `fc.weight`]). A backbone tensor of another
    shape, or a file that names fewer than half of the backbone's tensors, is a UserError.

    Example (a 5-class cnn onto a 3-class one: its 3 convs and 3 BatchNorms of 5 tensors
    each load, the head stays fresh):
        >>> import tempfile
        >>> import torch
        >>> from imbtrain.models import create_model
        >>> with tempfile.TemporaryDirectory() as folder:
        ...     path = Path(folder) / "cnn.pt"
        ...     torch.save(create_model("cnn", (1, 8, 8), 5).state_dict(), path)
        ...     report = load_pretrained(create_model("cnn", (1, 8, 8), 3), path)
        >>> len(report["loaded"]), report["reinitialised"]
        (18, ['head.weight', 'head.bias'])
    """
    src, aside = _backbone_view(_read(path))
    own = model.backbone.state_dict()
    prefix = _best_prefix(list(src), list(own))
    named = {prefix + k: v for k, v in src.items()}
    new, loaded, reinit = dict(own), [], []
    for key, mine in own.items():
        theirs = named.get(key)
        if theirs is None:
            reinit.append(key)
        elif _shape(theirs) == _shape(mine):
            new[key] = theirs
            loaded.append(key)
        elif _is_classifier(key):
            reinit.append(key)
        else:
            raise UserError(
                f"pretrained weights {path}: '{key}' has shape {_shape(theirs)} in the file but "
                f"{_shape(mine)} in model {type(model.backbone).__name__}; use weights of the "
                "same architecture (and input channels)")
    if len(loaded) < MIN_LOADED * len(own):
        missing = next((k for k in own if k not in loaded), "?")
        raise UserError(
            f"pretrained weights {path}: only {len(loaded)} of the backbone's {len(own)} tensors "
            f"are in the file (e.g. '{missing}' is missing); is it a checkpoint of this model?")
    model.backbone.load_state_dict(new)
    ignored = aside + [k for k in src if prefix + k not in own]
    head = [k for k in model.state_dict() if not k.startswith("backbone.")]
    return {"loaded": ["backbone." + k for k in loaded],
            "reinitialised": head + ["backbone." + k for k in reinit],
            "ignored": ignored}
