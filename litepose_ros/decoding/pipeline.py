"""Step 5: the whole pipeline, network outputs to people in source-image pixels."""

from __future__ import annotations

import numpy as np

from litepose_ros.decoding.config import DECODE_STRIDE, DecodedPeople, DecoderConfig
from litepose_ros.decoding.grouping import group_candidates
from litepose_ros.decoding.maps import PaddedHeatmaps, TagMaps, merge_full_resolution, merge_padded
from litepose_ros.decoding.memory import Workspace, thread_workspace
from litepose_ros.decoding.peaks import find_padded_candidates
from litepose_ros.decoding.refine import quarter_offsets, refine_missing
from litepose_ros.evaluation import oks_nms
from litepose_ros.layouts import KeypointLayout
from litepose_ros.preprocess import ResizeTransform, map_to_input


def decode_maps(
    heatmaps: np.ndarray,
    tags: np.ndarray,
    layout: KeypointLayout,
    config: DecoderConfig | None = None,
    workspace: Workspace | None = None,
) -> DecodedPeople:
    """Group people from stride-2 heatmaps (K, H, W) and tags (K, H, W, L) (or (K, H, W) for
    L = 1), the tags at the heatmap resolution or at half of it (stride 4, upsampled where read).
    Keypoints are returned in pixel-centre coordinates of the heatmaps."""
    config = config or DecoderConfig()
    workspace = workspace or thread_workspace()
    heatmaps = _check_heatmaps(heatmaps, layout)
    tag_maps = TagMaps(tags, heatmaps.shape)
    padded = PaddedHeatmaps.allocate(workspace, heatmaps.shape, config.nms_kernel // 2)
    padded.maps[...] = heatmaps
    return _decode(padded, tag_maps, layout, config, workspace)


def _decode(
    heatmaps: PaddedHeatmaps,
    tags: TagMaps,
    layout: KeypointLayout,
    config: DecoderConfig,
    workspace: Workspace,
) -> DecodedPeople:
    """``decode_maps`` on padded heatmaps."""
    num_joints = layout.num_keypoints
    candidates = find_padded_candidates(heatmaps, tags, config, workspace)
    grouping = group_candidates(candidates, num_joints, config, config.joint_order_for(layout))
    people = grouping.score.shape[0]
    # Person score as the reference: mean over all K joints of the grouped scores, before refine.
    scores = np.add.reduce(grouping.score, axis=1) / num_joints  # = mean, without its overhead

    maps = heatmaps.maps
    keypoints = np.zeros((people, num_joints, 3), dtype=np.float32)
    person, joint = np.nonzero(grouping.found)
    y, x = grouping.y[person, joint], grouping.x[person, joint]
    dx, dy = quarter_offsets(maps, joint, y, x) if config.adjust else (0.0, 0.0)
    keypoints[person, joint, 0] = x + dx
    keypoints[person, joint, 1] = y + dy
    keypoints[person, joint, 2] = grouping.score[person, joint]

    placed = grouping.found.copy()
    if config.refine and people:
        r_person, r_joint, r_y, r_x, r_value = refine_missing(maps, tags, grouping, workspace, candidates)
        keep = r_value > 0
        r_person, r_joint, r_y, r_x, r_value = (a[keep] for a in (r_person, r_joint, r_y, r_x, r_value))
        # Refined joints always get the quarter-pixel adjust in the reference.
        r_dx, r_dy = quarter_offsets(maps, r_joint, r_y, r_x)
        keypoints[r_person, r_joint, 0] = r_x + r_dx
        keypoints[r_person, r_joint, 1] = r_y + r_dy
        keypoints[r_person, r_joint, 2] = r_value
        placed[r_person, r_joint] = True
    return _finish(keypoints, scores.astype(np.float32), placed, config, layout)


def _finish(
    keypoints: np.ndarray,
    scores: np.ndarray,
    placed: np.ndarray,
    config: DecoderConfig,
    layout: KeypointLayout,
) -> DecodedPeople:
    """Put joints without a position at the mean of the person's placed joints, filter people by
    score and OKS, sort by descending score."""
    if keypoints.shape[0]:
        counts = np.maximum(placed.sum(axis=1, keepdims=True), 1)
        centre = (keypoints[..., :2] * placed[..., None]).sum(axis=1) / counts
        keypoints[..., :2] = np.where(placed[..., None], keypoints[..., :2], centre[:, None, :])
    keep = scores >= config.min_person_score
    if not keep.all():
        keypoints, scores = keypoints[keep], scores[keep]
    order = np.argsort(-scores, kind="stable")
    keypoints, scores = keypoints[order], scores[order]
    if config.oks_nms_threshold is not None and scores.size > 1:
        kept = oks_nms(keypoints, scores, layout.sigmas_array(), config.oks_nms_threshold)
        keypoints, scores = keypoints[kept], scores[kept]
    return DecodedPeople(
        keypoints=np.ascontiguousarray(keypoints, dtype=np.float32),
        scores=np.ascontiguousarray(scores, dtype=np.float32),
    )


def decode_people(
    out4: np.ndarray,
    out2: np.ndarray,
    layout: KeypointLayout,
    *,
    config: DecoderConfig | None = None,
    transform: ResizeTransform | None = None,
    flipped_out4: np.ndarray | None = None,
    flipped_out2: np.ndarray | None = None,
) -> DecodedPeople:
    """Decode one image's network outputs into people.

    ``out4`` (2K, h, w) and ``out2`` (K, 2h, 2w) (a leading batch of 1 is accepted) are the
    outputs for the network input; ``flipped_out4``/``flipped_out2`` those for the mirrored
    input, required exactly when ``config.flip_test`` is on. Keypoints come back in source-image
    pixels when ``transform`` (from ``preprocess.make_transform``) is given, else in
    network-input pixels; pixel centres in both cases.
    """
    config = config or DecoderConfig()
    has_flipped = flipped_out4 is not None or flipped_out2 is not None
    if config.flip_test and not has_flipped:
        raise ValueError(
            "flip_test is on but no flipped outputs were given: run the network on the "
            "mirrored input too, or decode with flip_test=False (DecoderConfig.fast())"
        )
    if has_flipped and not config.flip_test:
        raise ValueError("flipped outputs were given but flip_test is off; enable flip_test to use them")
    workspace = thread_workspace()
    stride = config.decode_stride
    if stride == DECODE_STRIDE:
        heatmaps, tags = merge_padded(
            out4, out2, layout, flipped_out4, flipped_out2, workspace=workspace, margin=config.nms_kernel // 2
        )
        maps_shape = heatmaps.maps.shape
    else:
        full_heatmaps, full_tags = merge_full_resolution(out4, out2, layout, flipped_out4, flipped_out2)
        maps_shape = full_heatmaps.shape
    if transform is not None:
        expected = (transform.input_size[1] // stride, transform.input_size[0] // stride)
        if maps_shape[1:] != expected:
            raise ValueError(
                f"stride-{stride} maps are {maps_shape[2]}x{maps_shape[1]} but the transform's "
                f"network input {transform.input_size[0]}x{transform.input_size[1]} needs "
                f"{expected[1]}x{expected[0]}"
            )
    if stride == DECODE_STRIDE:
        people = _decode(heatmaps, TagMaps.from_stacked(tags, maps_shape), layout, config, workspace)
    else:
        people = decode_maps(full_heatmaps, full_tags, layout, config, workspace)
    keypoints = people.keypoints.copy()
    points = keypoints[..., :2].astype(np.float64)
    points = (
        transform.map_to_source(points, stride) if transform is not None else map_to_input(points, stride)
    )
    keypoints[..., :2] = points
    return DecodedPeople(keypoints=keypoints, scores=people.scores)


def _check_heatmaps(heatmaps: np.ndarray, layout: KeypointLayout) -> np.ndarray:
    heatmaps = np.asarray(heatmaps)
    k = layout.num_keypoints
    if heatmaps.ndim != 3 or heatmaps.shape[0] != k:
        raise ValueError(
            f"heatmaps must have shape ({k}, H, W) for layout {layout.name}, got {heatmaps.shape}"
        )
    if not np.issubdtype(heatmaps.dtype, np.floating):
        raise TypeError(f"heatmaps must be floating point, got {heatmaps.dtype}")
    return np.ascontiguousarray(heatmaps, dtype=np.float32)
