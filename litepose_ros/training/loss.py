"""Training loss (LITEPOSE.md section 4): masked heatmap MSE at both scales plus the "exp"
associative-embedding loss on the stride-4 tags. Everything is vectorised over the batch.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


def masked_heatmap_loss(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Per-image masked MSE, averaged over channels, height and width: shape (N,).

    pred, target: (N, K, H, W); mask: (N, H, W), 1 where the loss counts and 0 in ignore regions.
    """
    if pred.shape != target.shape or mask.shape != (pred.shape[0], *pred.shape[2:]):
        raise ValueError(
            f"heatmap loss shapes disagree: pred {tuple(pred.shape)}, target "
            f"{tuple(target.shape)}, mask {tuple(mask.shape)}"
        )
    squared = (pred.float() - target.float()) ** 2 * mask.float()[:, None]
    return squared.mean(dim=(1, 2, 3))


def ae_loss(tags: torch.Tensor, joints: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Associative-embedding push and pull losses per image ("exp" type), each of shape (N,).

    tags: (N, K, H, W) tag maps; joints: (N, P, K, 2) int64 from targets.joint_index_lists
    (index into the flattened (K, H, W) maps, usable flag).
    For the people of an image with at least one usable joint (M of them), with mean tags m:
      pull = mean over people of the mean squared deviation of their tags from m_person;
      push = 0.5 / (M (M - 1)) * sum over ordered pairs a != b of exp(-(m_a - m_b)^2),
             0 when M < 2.
    """
    batch = tags.shape[0]
    flat = tags.float().reshape(batch, -1)
    index = joints[..., 0].reshape(batch, -1).long()
    usable = joints[..., 1].float()  # (N, P, K)
    values = torch.gather(flat, 1, index).reshape(usable.shape)  # (N, P, K)

    joint_count = usable.sum(dim=2)  # (N, P)
    person = joint_count > 0
    people = person.sum(dim=1).float()  # (N,)
    safe_count = joint_count.clamp(min=1.0)
    means = (values * usable).sum(dim=2) / safe_count  # (N, P)

    deviation = ((values - means[..., None]) ** 2 * usable).sum(dim=2) / safe_count
    pull = (deviation * person).sum(dim=1) / people.clamp(min=1.0)

    diff = means[:, :, None] - means[:, None, :]  # (N, P, P)
    pair = person[:, :, None] & person[:, None, :]
    pair &= ~torch.eye(person.shape[1], dtype=torch.bool, device=tags.device)[None]
    push_sum = (torch.exp(-(diff**2)) * pair).sum(dim=(1, 2))
    pairs = people * (people - 1.0)
    push = torch.where(people > 1, 0.5 * push_sum / pairs.clamp(min=1.0), torch.zeros_like(push_sum))
    return push, pull


@dataclass
class LossTerms:
    """The batch-mean terms, each already multiplied by its factor; total is their sum."""

    total: torch.Tensor
    heatmap_stride4: torch.Tensor
    heatmap_stride2: torch.Tensor
    push: torch.Tensor
    pull: torch.Tensor

    def as_floats(self) -> dict[str, float]:
        return {
            name: float(getattr(self, name).detach())
            for name in ("total", "heatmap_stride4", "heatmap_stride2", "push", "pull")
        }


class LitePoseLoss(torch.nn.Module):
    """Total loss of the two LitePose outputs against dataset targets."""

    def __init__(
        self,
        num_joints: int,
        heatmap_factors: tuple[float, float] | list[float] = (1.0, 1.0),
        push_factor: float = 0.001,
        pull_factor: float = 0.001,
    ):
        super().__init__()
        if len(heatmap_factors) != 2:
            raise ValueError("heatmap_factors needs two values: [stride 4, stride 2]")
        self.num_joints = num_joints
        self.heatmap_factors = tuple(float(f) for f in heatmap_factors)
        self.push_factor = float(push_factor)
        self.pull_factor = float(pull_factor)

    def forward(
        self,
        outputs: list[torch.Tensor],
        heatmaps: list[torch.Tensor],
        masks: list[torch.Tensor],
        joints: torch.Tensor,
    ) -> LossTerms:
        """outputs: [stride-4 (N, 2K, H4, W4), stride-2 (N, K, H2, W2)] as the network returns;
        heatmaps / masks: the targets at [stride 4, stride 2]; joints: (N, P, K, 2) at stride 4."""
        k = self.num_joints
        stride4, stride2 = outputs
        if stride4.shape[1] != 2 * k or stride2.shape[1] != k:
            raise ValueError(
                f"expected outputs with {2 * k} and {k} channels for {k} joints, got "
                f"{stride4.shape[1]} and {stride2.shape[1]}"
            )
        hm4 = masked_heatmap_loss(stride4[:, :k], heatmaps[0], masks[0]).mean() * self.heatmap_factors[0]
        hm2 = masked_heatmap_loss(stride2, heatmaps[1], masks[1]).mean() * self.heatmap_factors[1]
        push, pull = ae_loss(stride4[:, k:], joints)
        push = push.mean() * self.push_factor
        pull = pull.mean() * self.pull_factor
        return LossTerms(
            total=hm4 + hm2 + push + pull, heatmap_stride4=hm4, heatmap_stride2=hm2, push=push, pull=pull
        )
