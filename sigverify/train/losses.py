"""Losses on unit-length embeddings: contrastive (SigNet form), triplet (batch-hard / semi-hard),
and a cosine-margin writer-classification loss that teaches *who* wrote a signature."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def _pair_masks(writer: torch.Tensor, genuine: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """pos[i, j]: both genuine, same writer, i != j. neg[i, j]: i genuine and j another writer's
    genuine (random forgery) or j a forgery of i's writer (skilled forgery)."""
    same = writer[:, None] == writer[None, :]
    gi, gj = genuine[:, None], genuine[None, :]
    eye = torch.eye(len(writer), dtype=torch.bool, device=writer.device)
    pos = same & gi & gj & ~eye
    neg = gi & ((~same & gj) | (same & ~gj))
    return pos, neg


def _dist(emb: torch.Tensor) -> torch.Tensor:
    return torch.cdist(emb, emb).clamp_min(0)


def contrastive_loss(emb, writer, genuine, margin: float = 1.0) -> torch.Tensor:
    """SigNet contrastive loss: pull same-writer pairs together, push negatives past ``margin``.
    Positive and negative terms are averaged separately so neither dominates."""
    d = _dist(emb)
    pos, neg = _pair_masks(writer, genuine)
    lp = (d[pos] ** 2).mean() if pos.any() else d.sum() * 0
    ln = (F.relu(margin - d[neg]) ** 2).mean() if neg.any() else d.sum() * 0
    return 0.5 * (lp + ln)


def triplet_loss(emb, writer, genuine, margin: float = 0.3, mining: str = "batch-hard") -> torch.Tensor:
    """Triplet loss over genuine anchors. batch-hard: hardest positive and hardest negative per
    anchor. semi-hard: per anchor-positive pair, the closest negative still farther than the positive
    (falling back to the hardest negative)."""
    d = _dist(emb)
    pos, neg = _pair_masks(writer, genuine)
    anchors = pos.any(1) & neg.any(1)
    if not anchors.any():
        return d.sum() * 0
    if mining == "batch-hard":
        dp = torch.where(pos, d, torch.full_like(d, -1)).max(1).values
        dn = torch.where(neg, d, torch.full_like(d, 1e9)).min(1).values
        return F.relu(dp - dn + margin)[anchors].mean()
    if mining == "semi-hard":
        losses = []
        big = torch.full_like(d, 1e9)
        for i in torch.nonzero(anchors).flatten():
            dn_row = torch.where(neg[i], d[i], big[i])
            for j in torch.nonzero(pos[i]).flatten():
                semi = dn_row.masked_fill(dn_row <= d[i, j], 1e9)
                dn = semi.min() if semi.min() < 1e8 else dn_row.min()
                losses.append(F.relu(d[i, j] - dn + margin))
        return torch.stack(losses).mean()
    raise ValueError(f"unknown mining {mining!r}")


class CosineMarginClassifier(nn.Module):
    """CosFace-style writer classifier on the (unit) embedding: logits = s * (cos - m on the target)."""

    def __init__(self, dim: int, n_classes: int, scale: float = 20.0, margin: float = 0.2):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(n_classes, dim) * 0.01)
        self.scale, self.margin = scale, margin

    def forward(self, emb: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        cos = F.normalize(emb, dim=1) @ F.normalize(self.weight, dim=1).T
        onehot = F.one_hot(labels, cos.shape[1]).to(cos.dtype)
        return F.cross_entropy(self.scale * (cos - self.margin * onehot), labels)
