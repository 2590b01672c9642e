"""The one model shape every part of imbtrain relies on: backbone -> features -> linear head.

Keeping the classifier a separate `nn.Linear` on top of a feature extractor is what lets the
methods work on any architecture: LDAM swaps the head for a normalised one, MiSLAS stage 2
re-trains only the head, Joint-SSL puts its projector on the features, and the neural-collapse
measures (docs/methods.md, "2. Metrics") read the features.
"""

from __future__ import annotations

from torch import Tensor, nn


class ImbModel(nn.Module):
    """A classifier split into `backbone` (x -> (B, feature_dim)) and `head` (an nn.Linear).

    Example:
        >>> import torch
        >>> model = ImbModel(nn.Flatten(), feature_dim=4, num_classes=3)
        >>> model(torch.zeros(2, 1, 2, 2)).shape
        torch.Size([2, 3])
    """

    def __init__(self, backbone: nn.Module, feature_dim: int, num_classes: int) -> None:
        super().__init__()
        self.backbone = backbone
        self.feature_dim = int(feature_dim)
        self.num_classes = int(num_classes)
        self.head = nn.Linear(self.feature_dim, self.num_classes)

    def forward(self, x: Tensor) -> Tensor:
        """Logits (B, num_classes)."""
        return self.head(self.backbone(x))

    def forward_features(self, x: Tensor) -> Tensor:
        """Penultimate features (B, feature_dim), the input of the head."""
        return self.backbone(x)


def count_parameters(model: nn.Module, trainable_only: bool = False) -> int:
    """Number of scalar parameters (all, or only those with requires_grad)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def kaiming_init(model: nn.Module) -> None:
    """He et al. (2015) normal init for convs and linears, BN to identity.

    The CIFAR ResNets and WideResNets were trained from this init (akamaster's resnet.py,
    LDAM-DRW's resnet32, Zagoruyko & Komodakis' wide-resnet); biases start at zero.
    """
    for module in model.modules():
        if isinstance(module, nn.Conv2d | nn.Linear):
            nn.init.kaiming_normal_(module.weight, nonlinearity="relu")
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.BatchNorm2d):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)
