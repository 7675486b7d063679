"""Multi-person decoding: network outputs to people (associative-embedding grouping).

Reproduces the reference test pipeline (LITEPOSE.md section 5), vectorised:

1. ``merge_outputs``: bilinearly upsample the stride-4 heatmaps to the stride-2 size and average
   them with the stride-2 heatmaps; tags come from the stride-4 output, upsampled the same way
   (lazily: only at the pixels and joints grouping and refine read).
   With the flip test, the mirrored input's maps are mirrored back, their channels permuted with
   the layout's flip index, heatmaps averaged and tags stacked as 2-D vectors.
2. ``find_candidates``: peaks by 5x5 max-pool equality, then the top 30 per joint above the
   detection threshold (the equality is tested only at pixels above the threshold, on heatmaps
   padded with -inf: the same peaks as a max-pool of every map).
3. ``group_candidates``: joint by joint, candidates are matched to the people found so far with
   the Hungarian algorithm (scipy's linear_sum_assignment) on the cost
   ``round(tag distance) * 100 - score`` (plus 1e-6 x tag distance to break the frequent exact
   ties towards the closest tags); a match at tag distance >= 1.0 starts a new person.
4. Quarter-pixel adjust towards the higher neighbour, refine of missing joints at
   ``argmax(heatmap - round(|tag - person tag|))``, person score = mean of the K grouped joint
   scores (missing joints count as 0, computed before refine, as the reference does).
5. Optional: minimum person score and OKS-based NMS of duplicate people.

One module per step, around one configuration (``config.DecoderConfig``: every constant of the
decoding) and the memory the steps reuse (``memory``): ``maps`` (1), ``peaks`` (2),
``grouping`` (3), ``refine`` (4), ``pipeline`` (the whole, 5). The OKS similarity of step 5 is the
evaluation's (``litepose_ros.evaluation.oks``). What the two outputs mean, for the encode
side (training targets) and this decode side alike, is ``codec`` (strides, tags, Gaussian sigma).

All map coordinates here are pixel centres of the stride-2 maps; ``decode_people`` maps them to
source-image pixels with a ``preprocess.ResizeTransform`` (conventions in preprocess.py). Where the
reference reads a map position ``j`` as ``j + 0.5`` (corner coordinates), this package keeps ``j``.
"""

from __future__ import annotations

from litepose_ros.decoding.config import (
    ADJUST_STEP,
    DECODE_STRIDE,
    DECODE_STRIDES,
    GROUPING_JOINT_ORDER,
    DecodedPeople,
    DecoderConfig,
)
from litepose_ros.decoding.grouping import Grouping, group_candidates
from litepose_ros.decoding.maps import (
    PaddedHeatmaps,
    TagMaps,
    merge_full_resolution,
    merge_outputs,
    merge_padded,
    upsample2x,
)
from litepose_ros.decoding.memory import Workspace, thread_workspace
from litepose_ros.decoding.peaks import Candidates, find_candidates, find_padded_candidates, max_pool
from litepose_ros.decoding.pipeline import decode_maps, decode_people
from litepose_ros.decoding.refine import quarter_offsets, refine_missing

# The OKS similarity the decoder's duplicate removal uses is the evaluation's; reachable here too.
from litepose_ros.evaluation import keypoint_areas, oks, oks_nms

__all__ = [
    "ADJUST_STEP",
    "DECODE_STRIDE",
    "DECODE_STRIDES",
    "GROUPING_JOINT_ORDER",
    "Candidates",
    "DecodedPeople",
    "DecoderConfig",
    "Grouping",
    "PaddedHeatmaps",
    "TagMaps",
    "Workspace",
    "decode_maps",
    "decode_people",
    "find_candidates",
    "find_padded_candidates",
    "group_candidates",
    "keypoint_areas",
    "max_pool",
    "merge_full_resolution",
    "merge_outputs",
    "merge_padded",
    "oks",
    "oks_nms",
    "quarter_offsets",
    "refine_missing",
    "thread_workspace",
    "upsample2x",
]
