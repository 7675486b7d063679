"""Loss values on hand-made cases: masked heatmap MSE, push and pull, factors, batching."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from litepose_ros.decoding.codec import joint_index_lists
from litepose_ros.training.loss import LitePoseLoss, ae_loss, masked_heatmap_loss


def test_masked_heatmap_loss_averages_over_channels_and_pixels_inside_the_mask():
    pred = torch.ones(2, 3, 4, 4)
    target = torch.zeros(2, 3, 4, 4)
    mask = torch.ones(2, 4, 4)
    mask[0, :2] = 0  # image 0: top half ignored
    target[1, 0, 0, 0] = 3.0  # image 1: one pixel off by 2
    loss = masked_heatmap_loss(pred, target, mask)
    assert loss[0].item() == pytest.approx(0.5)
    assert loss[1].item() == pytest.approx((47 * 1 + 4) / 48)


def test_masked_heatmap_loss_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match="shapes disagree"):
        masked_heatmap_loss(torch.zeros(1, 2, 4, 4), torch.zeros(1, 2, 4, 5), torch.ones(1, 4, 4))


def _tags_and_joints(people_tags: list[list[float]], height: int = 4, width: int = 4):
    """Tag maps (1, K, H, W) with person p's joint k at pixel (x=p, y=k), holding the given tag."""
    k = len(people_tags[0])
    tags = torch.zeros(1, k, height, width)
    xy = np.zeros((len(people_tags), k, 2))
    for p, values in enumerate(people_tags):
        for j, value in enumerate(values):
            tags[0, j, j, p] = value
            xy[p, j] = (p, j)
    joints = joint_index_lists(xy, np.ones(xy.shape[:2], dtype=bool), (height, width), max_people=5)
    return tags, torch.from_numpy(joints)[None]


def test_pull_and_push_for_two_people():
    tags, joints = _tags_and_joints([[1.0, 3.0], [0.0, 0.0]])
    push, pull = ae_loss(tags, joints)
    # Person A: mean 2, squared deviations 1 and 1 -> 1; person B: 0. Mean over people: 0.5.
    assert pull.item() == pytest.approx(0.5)
    # Means 2 and 0: two ordered pairs, exp(-4) each, times 0.5 / (2 * 1).
    assert push.item() == pytest.approx(0.5 * 2 * math.exp(-4) / 2)


def test_push_over_three_people():
    tags, joints = _tags_and_joints([[0.0], [1.0], [3.0]])
    push, pull = ae_loss(tags, joints)
    pairs = 2 * (math.exp(-1) + math.exp(-9) + math.exp(-4))
    assert push.item() == pytest.approx(0.5 * pairs / 6)
    assert pull.item() == pytest.approx(0.0)


def test_one_person_has_no_push_and_no_people_no_loss():
    tags, joints = _tags_and_joints([[2.0, 4.0, 6.0]])
    push, pull = ae_loss(tags, joints)
    assert push.item() == 0.0
    assert pull.item() == pytest.approx((4 + 0 + 4) / 3)
    empty = torch.zeros(1, 5, 2, dtype=torch.long)[:, None].expand(1, 3, 5, 2).clone()
    push, pull = ae_loss(torch.randn(1, 5, 4, 4), empty)
    assert push.item() == 0.0 and pull.item() == 0.0


def test_unusable_joints_are_left_out_of_the_person_mean():
    tags, joints = _tags_and_joints([[1.0, 3.0], [0.0, 0.0]])
    joints[0, 0, 1, 1] = 0  # person A's joint 1 (tag 3) is not labelled
    push, pull = ae_loss(tags, joints)
    assert pull.item() == pytest.approx(0.0)
    assert push.item() == pytest.approx(0.5 * 2 * math.exp(-1) / 2)


def test_batch_equals_images_one_by_one():
    generator = torch.Generator().manual_seed(0)
    tags = torch.randn(3, 4, 8, 8, generator=generator)
    rng = np.random.default_rng(0)
    joints = torch.stack(
        [
            torch.from_numpy(
                joint_index_lists(
                    rng.uniform(0, 7, size=(n, 4, 2)), rng.random((n, 4)) > 0.3, (8, 8), max_people=6
                )
            )
            for n in (0, 2, 5)
        ]
    )
    push, pull = ae_loss(tags, joints)
    for i in range(3):
        push_i, pull_i = ae_loss(tags[i : i + 1], joints[i : i + 1])
        assert push[i].item() == pytest.approx(push_i.item())
        assert pull[i].item() == pytest.approx(pull_i.item())


def test_push_gradient_moves_person_means_apart():
    tags, joints = _tags_and_joints([[0.2], [0.0]])
    tags.requires_grad_(True)
    push, _ = ae_loss(tags, joints)
    push.sum().backward()
    assert tags.grad[0, 0, 0, 0] < 0  # the larger tag is pushed up
    assert tags.grad[0, 0, 0, 1] > 0


def test_total_loss_applies_the_recipe_factors():
    k = 2
    tags, joints = _tags_and_joints([[1.0, 3.0], [0.0, 0.0]])
    stride4 = torch.cat([torch.ones(1, k, 4, 4), tags], dim=1)
    stride2 = torch.zeros(1, k, 8, 8)
    heatmaps = [torch.zeros(1, k, 4, 4), torch.ones(1, k, 8, 8)]
    masks = [torch.ones(1, 4, 4), torch.ones(1, 8, 8)]
    criterion = LitePoseLoss(k, heatmap_factors=(1.0, 2.0), push_factor=0.001, pull_factor=0.01)
    terms = criterion([stride4, stride2], heatmaps, masks, joints)
    assert terms.heatmap_stride4.item() == pytest.approx(1.0)
    assert terms.heatmap_stride2.item() == pytest.approx(2.0)
    assert terms.pull.item() == pytest.approx(0.01 * 0.5)
    assert terms.push.item() == pytest.approx(0.001 * 0.5 * math.exp(-4))
    assert terms.total.item() == pytest.approx(3.0 + 0.005 + 0.0005 * math.exp(-4))


def test_total_loss_checks_channel_counts():
    criterion = LitePoseLoss(17)
    with pytest.raises(ValueError, match="34 and 17 channels"):
        criterion([torch.zeros(1, 28, 4, 4), torch.zeros(1, 14, 8, 8)], [], [], torch.zeros(1, 1, 17, 2))
