"""SigNet-style twin network: one shared-weight convolutional branch mapping a signature to a
128-d unit-length embedding. "Twin" = the same branch embeds both signatures of a pair; the
distance between embeddings is the score.

Layout follows SigNet (Hafemann et al. 2017: conv 11x11/4, 5x5, 3x3 x3, two fully-connected layers)
with batch normalisation, a ``width`` multiplier for CPU speed and a final projection to the
embedding. Registered architectures are listed in ``ARCHITECTURES``; the model card names one.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def _conv(cin: int, cout: int, k: int, stride: int = 1, pad: int = 0) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, k, stride=stride, padding=pad, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)
    )


class SigNet(nn.Module):
    def __init__(self, width: float = 1.0, embedding_dim: int = 128, input_hw: tuple[int, int] = (150, 220), fc_dim: int = 2048):
        super().__init__()
        c = [max(8, int(round(n * width))) for n in (96, 256, 384, 384, 256)]
        fc = max(64, int(round(fc_dim * width)))
        self.features = nn.Sequential(
            _conv(1, c[0], 11, stride=4, pad=5),
            nn.MaxPool2d(3, 2),
            _conv(c[0], c[1], 5, pad=2),
            nn.MaxPool2d(3, 2),
            _conv(c[1], c[2], 3, pad=1),
            _conv(c[2], c[3], 3, pad=1),
            _conv(c[3], c[4], 3, pad=1),
            nn.MaxPool2d(3, 2),
        )
        with torch.no_grad():
            n_flat = self.features(torch.zeros(1, 1, *input_hw)).numel()
        self.head = nn.Sequential(
            nn.Flatten(),
            nn.Linear(n_flat, fc, bias=False),
            nn.BatchNorm1d(fc),
            nn.ReLU(inplace=True),
            nn.Dropout(0.3),
            nn.Linear(fc, fc, bias=False),
            nn.BatchNorm1d(fc),
            nn.ReLU(inplace=True),
        )
        self.embed = nn.Linear(fc, embedding_dim)
        self.embedding_dim = embedding_dim
        self.input_hw = tuple(input_hw)

    def trunk(self, x: torch.Tensor) -> torch.Tensor:
        """Features before the embedding projection (what the fine-tuning wizard caches)."""
        return self.head(self.features(x))

    def project(self, feats: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.embed(feats), dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (N, 1, H, W) float in [0, 1], ink = 1. Returns (N, D) unit-length embeddings."""
        return self.project(self.trunk(x))


ARCHITECTURES = {
    "signet": dict(width=1.0),
    "signet-half": dict(width=0.5),
    "signet-s": dict(width=0.375),
}


def build_network(arch: str, embedding_dim: int = 128, input_hw: tuple[int, int] = (150, 220)) -> SigNet:
    from sigverify.errors import ModelError

    if arch not in ARCHITECTURES:
        raise ModelError(f"unknown architecture {arch!r} (known: {', '.join(ARCHITECTURES)})")
    return SigNet(embedding_dim=embedding_dim, input_hw=input_hw, **ARCHITECTURES[arch])
