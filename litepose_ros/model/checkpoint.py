"""Loading LitePose weights from every form found in the wild, and this project's checkpoint format.

Accepted files (all read with ``torch.load``):

- ``bare``: a plain state_dict in the reference naming (what the reference evaluation loads);
- ``module_prefixed``: the same with DataParallel's ``module.`` prefix;
- ``reference_training``: the reference trainer's ``checkpoint.pth.tar`` dict (``epoch``, ``model``,
  ``state_dict`` with ``module.`` keys, ``best_state_dict``, ``perf``, ``optimizer``);
- ``mmpose``: the mmpose port's naming (``backbone.*`` / ``keypoint_head.*``), mapped by
  :data:`MMPOSE_KEY_MAP`;
- ``litepose_ros``: this project's checkpoints (:func:`save_checkpoint`), which carry the architecture,
  the joint count and whatever the caller added (the trainer's optimizer / epoch state).

The variant and joint count are recognised from tensor shapes; the nominal input size is not in the
weights (it comes from the architecture file, this project's checkpoint, or the user).
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from litepose_ros.layouts import LAYOUTS
from litepose_ros.model.architecture import (
    REQUIRED_STAGE_STRIDES,
    ArchitectureSpec,
    StageSpec,
    expanded_channels,
    resolve_architecture,
)
from litepose_ros.model.network import LitePoseNet

CHECKPOINT_FORMAT = "litepose_ros.checkpoint/1"
# Keys of this project's checkpoint dict that save_checkpoint writes itself.
RESERVED_KEYS = frozenset({"format", "architecture", "num_joints", "variant", "layout", "state_dict"})

FORM_LITEPOSE_ROS = "litepose_ros"
FORM_BARE = "bare"
FORM_MODULE_PREFIXED = "module_prefixed"
FORM_REFERENCE_TRAINING = "reference_training"
FORM_MMPOSE = "mmpose"

# The mmpose port (open-mmlab/mmpose PR 1486) wraps every conv + BN in an mmcv ConvModule (``.conv`` /
# ``.bn``), keeps MobileNetV2's ``InvertedResidual.conv.{0,1,2}`` for the blocks and prefixes the parts
# with ``backbone.`` / ``keypoint_head.``. Regex -> replacement, applied to each key in order (first match).
# Caveat: that port computes a block's hidden width as round(in * t) without rounding to a multiple of 8
# and drops the expansion conv when t == 1, so only architectures where both agree (all released ones)
# map one to one.
MMPOSE_KEY_MAP: tuple[tuple[str, str], ...] = (
    (r"^backbone\.first\.([01])\.conv\.(.+)$", r"first.\1.0.\2"),
    (r"^backbone\.first\.([01])\.bn\.(.+)$", r"first.\1.1.\2"),
    (r"^backbone\.first\.2\.conv\.(.+)$", r"first.2.\1"),
    (r"^backbone\.first\.2\.bn\.(.+)$", r"first.3.\1"),
    (r"^backbone\.stage\.(\d+)\.(\d+)\.conv\.0\.conv\.(.+)$", r"stage.\1.\2.inv.0.\3"),
    (r"^backbone\.stage\.(\d+)\.(\d+)\.conv\.0\.bn\.(.+)$", r"stage.\1.\2.inv.1.\3"),
    (r"^backbone\.stage\.(\d+)\.(\d+)\.conv\.1\.conv\.(.+)$", r"stage.\1.\2.depth_conv.0.\3"),
    (r"^backbone\.stage\.(\d+)\.(\d+)\.conv\.1\.bn\.(.+)$", r"stage.\1.\2.depth_conv.1.\3"),
    (r"^backbone\.stage\.(\d+)\.(\d+)\.conv\.2\.conv\.(.+)$", r"stage.\1.\2.point_conv.0.\3"),
    (r"^backbone\.stage\.(\d+)\.(\d+)\.conv\.2\.bn\.(.+)$", r"stage.\1.\2.point_conv.1.\3"),
    (r"^keypoint_head\.(deconv_refined|deconv_raw|deconv_bnrelu)\.(.+)$", r"\1.\2"),
    (r"^keypoint_head\.(final_refined|final_raw)\.(\d+)\.conv\.0\.conv\.(.+)$", r"\1.\2.conv.0.\3"),
    (r"^keypoint_head\.(final_refined|final_raw)\.(\d+)\.conv\.0\.bn\.(.+)$", r"\1.\2.conv.1.\3"),
    (r"^keypoint_head\.(final_refined|final_raw)\.(\d+)\.conv\.1\.conv\.(.+)$", r"\1.\2.conv.3.\3"),
)
_MMPOSE_PATTERNS = tuple((re.compile(pattern), replacement) for pattern, replacement in MMPOSE_KEY_MAP)

# How many offending keys an error message lists per category.
_MAX_LISTED = 8


@dataclass(frozen=True)
class CheckpointInfo:
    """What :func:`load_checkpoint` found: the file's form, the network and the rest of the file."""

    path: str | None
    source_form: str
    variant: str | None  # released name (XS/S/M/L) or None for other architectures
    num_joints: int
    spec: ArchitectureSpec
    # Other top-level entries: the trainer's extras in this project's format (optimizer, epoch, ...),
    # epoch/perf/optimizer of a reference training checkpoint, mmpose's meta.
    extra: dict[str, Any] = field(default_factory=dict)
    notes: tuple[str, ...] = ()

    @property
    def layout_name(self) -> str | None:
        for name, layout in LAYOUTS.items():
            if layout.num_keypoints == self.num_joints:
                return name
        return None

    def describe(self) -> str:
        return (
            f"{self.path or '<in memory>'}: {self.source_form} checkpoint, variant "
            f"{self.variant or 'custom'}, {self.num_joints} joints"
        )


# --- saving ----------------------------------------------------------------------------------------
def save_checkpoint(
    path: str | Path,
    model: nn.Module,
    spec: ArchitectureSpec | str | Path | Mapping[str, Any],
    num_joints: int,
    **extra: Any,
) -> Path:
    """Write this project's checkpoint: ``{"format", "architecture", "num_joints", "variant", "layout",
    "state_dict", **extra}``.

    ``model`` is a (possibly DataParallel-wrapped) unfolded :class:`LitePoseNet`; ``spec`` its architecture
    (spec, variant name, JSON path or dict). ``extra`` entries (e.g. ``optimizer=opt.state_dict(),
    epoch=3``) are stored as given; keep them to tensors, numbers, strings, lists and dicts so the file
    loads without ``trusted=True``. The file is written atomically (temporary file, then rename), so an
    interrupted save never leaves a truncated checkpoint.
    """
    spec = resolve_architecture(spec)
    clashing = sorted(RESERVED_KEYS & set(extra))
    if clashing:
        raise ValueError(
            f"extra checkpoint entries {clashing} clash with the keys save_checkpoint writes "
            f"itself ({sorted(RESERVED_KEYS)}); rename them"
        )
    if getattr(model, "is_folded", False):
        raise ValueError("this model has its BatchNorm folded (inference form); save the unfolded model")
    inner = (
        model.module if isinstance(model, (nn.DataParallel, nn.parallel.DistributedDataParallel)) else model
    )
    if isinstance(inner, LitePoseNet) and (
        not inner.spec.same_network(spec) or inner.num_joints != num_joints
    ):
        raise ValueError(
            f"model ({inner.spec.released_name() or 'custom'}, {inner.num_joints} joints) does "
            f"not match the given spec ({spec.released_name() or 'custom'}) / num_joints "
            f"{num_joints}"
        )
    state_dict = {key: value.detach().cpu() for key, value in _strip_prefix(inner.state_dict()).items()}
    expected = LitePoseNet(spec, num_joints).state_dict()
    mismatch = _describe_mismatch(expected, state_dict)
    if mismatch:
        raise ValueError(f"model weights do not fit the given architecture: {mismatch}")
    layout = next((name for name, lay in LAYOUTS.items() if lay.num_keypoints == num_joints), None)
    payload = {
        "format": CHECKPOINT_FORMAT,
        "architecture": spec.to_dict(),
        "num_joints": int(num_joints),
        "variant": spec.released_name(),
        "layout": layout,
        "state_dict": state_dict,
        **extra,
    }
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    os.close(handle)
    try:
        torch.save(payload, temporary)
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)
    return path


# --- reading ---------------------------------------------------------------------------------------
def _numpy_safe_globals() -> list[Any]:
    # Reference training checkpoints store `perf` as a numpy scalar; let those through weights_only loading.
    import numpy as np

    core = getattr(np, "_core", None) or np.core
    found = [core.multiarray.scalar, np.dtype]
    dtypes = getattr(np, "dtypes", None)
    if dtypes is not None:
        found += [
            getattr(dtypes, name)
            for name in ("Float64DType", "Float32DType", "Int64DType", "Int32DType")
            if hasattr(dtypes, name)
        ]
    return found


def _torch_load(path: Path, trusted: bool) -> Any:
    if not path.is_file():
        raise ValueError(f"checkpoint file {path} does not exist")
    try:
        with torch.serialization.safe_globals(_numpy_safe_globals()):
            return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises UnpicklingError or RuntimeError here
        if not trusted:
            first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            raise ValueError(
                f"could not load {path} safely ({first_line}). If it is a corrupt or non-PyTorch file, "
                f"check the path; if it is a checkpoint you trust that stores arbitrary Python objects, load "
                f"it with trusted=True (CLI: --trust-checkpoint), which runs its pickled code"
            ) from error
        return torch.load(path, map_location="cpu", weights_only=False)


def _strip_prefix(state_dict: Mapping[str, Any], prefix: str = "module.") -> dict[str, Any]:
    return {key[len(prefix) :] if key.startswith(prefix) else key: value for key, value in state_dict.items()}


def _is_tensor_dict(obj: Any) -> bool:
    return (
        isinstance(obj, Mapping)
        and len(obj) > 0
        and all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in obj.items())
    )


def map_mmpose_keys(state_dict: Mapping[str, Any]) -> dict[str, Any]:
    """Rename an mmpose-port LitePose state_dict to the reference names (see :data:`MMPOSE_KEY_MAP`).

    Keys that match no rule are kept unchanged (so a mismatch report names them).
    """
    mapped: dict[str, Any] = {}
    for key, value in state_dict.items():
        new_key = key
        for pattern, replacement in _MMPOSE_PATTERNS:
            if pattern.match(key):
                new_key = pattern.sub(replacement, key)
                break
        mapped[new_key] = value
    return mapped


def _unpack(raw: Any, origin: str) -> tuple[dict[str, torch.Tensor], str, dict[str, Any]]:
    """(state_dict in reference names, source form, other top-level entries)."""
    if not isinstance(raw, Mapping):
        raise ValueError(
            f"{origin} holds a {type(raw).__name__}, not a state_dict or checkpoint dict "
            f"(a whole pickled model is not supported: save model.state_dict() instead)"
        )
    if raw.get("format") == CHECKPOINT_FORMAT:
        extra = {k: v for k, v in raw.items() if k not in RESERVED_KEYS}
        return dict(raw["state_dict"]), FORM_LITEPOSE_ROS, extra
    if isinstance(raw.get("format"), str) and raw["format"].startswith("litepose_ros.checkpoint/"):
        raise ValueError(f"{origin} is a {raw['format']} checkpoint; this version reads {CHECKPOINT_FORMAT}")
    if _is_tensor_dict(raw):
        state_dict, extra, container_form = dict(raw), {}, None
    else:
        chosen = next(
            (key for key in ("state_dict", "best_state_dict", "model") if _is_tensor_dict(raw.get(key))), None
        )
        if chosen is None:
            raise ValueError(
                f"{origin} is a dict with keys {sorted(map(str, raw))[:12]} but none holds a "
                f"state_dict (expected a tensor dict, or 'state_dict' / 'best_state_dict')"
            )
        state_dict = dict(raw[chosen])
        extra = {k: v for k, v in raw.items() if k not in ("state_dict", "best_state_dict")}
        container_form = FORM_REFERENCE_TRAINING
    keys = list(state_dict)
    if any(key.startswith(("backbone.", "keypoint_head.")) for key in keys):
        return map_mmpose_keys(state_dict), FORM_MMPOSE, extra
    if all(key.startswith("module.") for key in keys):
        return _strip_prefix(state_dict), container_form or FORM_MODULE_PREFIXED, extra
    return state_dict, container_form or FORM_BARE, extra


def _load_raw(source: str | Path | Mapping[str, Any], trusted: bool) -> tuple[Any, str | None]:
    if isinstance(source, Mapping):
        return source, None
    path = Path(source)
    return _torch_load(path, trusted), str(path)


def load_state_dict_any(
    source: str | Path | Mapping[str, Any], trusted: bool = False
) -> tuple[dict[str, torch.Tensor], str]:
    """Read any accepted checkpoint form and return ``(state_dict in reference names, source_form)``.

    ``source`` is a file path or an already loaded object. ``source_form`` is one of ``"bare"``,
    ``"module_prefixed"``, ``"reference_training"``, ``"mmpose"``, ``"litepose_ros"``. Files are loaded
    with ``weights_only=True`` unless ``trusted`` is set.
    """
    raw, origin = _load_raw(source, trusted)
    state_dict, form, _ = _unpack(raw, origin or "the checkpoint")
    return state_dict, form


def _infer_expansion(in_channels: int, hidden: int) -> float | int | None:
    ratio = hidden / in_channels
    for candidate in (round(ratio), round(ratio * 2) / 2, round(ratio * 4) / 4, ratio):
        if candidate > 0 and expanded_channels(in_channels, candidate) == hidden:
            return int(candidate) if float(candidate).is_integer() else float(candidate)
    return None


def _shape(state_dict: Mapping[str, torch.Tensor], key: str) -> tuple[int, ...]:
    if key not in state_dict:
        raise ValueError(
            f"state_dict is not a LitePose network in the reference naming: key {key!r} is missing "
            f"(first keys: {list(state_dict)[:5]})"
        )
    return tuple(state_dict[key].shape)


def detect_architecture(
    state_dict: Mapping[str, torch.Tensor], img_size: int | None = None
) -> tuple[str | None, int, ArchitectureSpec | None]:
    """Recognise ``(variant name or None, num_joints, spec or None)`` from a reference-named state_dict.

    Widths, depths, kernel sizes and expansion ratios come from tensor shapes. The input size is not in the
    weights: a released variant gets its own ``img_size``; other architectures get ``img_size`` or 256.
    ``spec`` is None if the shapes fit no architecture of the search space (e.g. an inconsistent file).
    """
    refined_out = _shape(state_dict, "final_refined.0.conv.3.weight")[0]
    num_joints = _shape(state_dict, "final_refined.1.conv.3.weight")[0]
    if refined_out != 2 * num_joints:
        raise ValueError(
            f"state_dict's stride-4 output has {refined_out} channels but the stride-2 output "
            f"{num_joints}; LitePose needs 2K and K (heatmaps + tags, heatmaps)"
        )
    stem = _shape(state_dict, "first.2.weight")[0]
    block_keys = {}
    for key in state_dict:
        match = re.match(r"^stage\.(\d+)\.(\d+)\.", key)
        if match:
            block_keys.setdefault(int(match.group(1)), set()).add(int(match.group(2)))
    stages = []
    try:
        if sorted(block_keys) != list(range(len(REQUIRED_STAGE_STRIDES))):
            return None, num_joints, None
        for s in range(len(REQUIRED_STAGE_STRIDES)):
            blocks = sorted(block_keys[s])
            if blocks != list(range(len(blocks))):
                return None, num_joints, None
            settings = []
            channel = None
            for b in blocks:
                hidden, in_channels = _shape(state_dict, f"stage.{s}.{b}.inv.0.weight")[:2]
                kernel = _shape(state_dict, f"stage.{s}.{b}.depth_conv.0.weight")[-1]
                channel = _shape(state_dict, f"stage.{s}.{b}.point_conv.0.weight")[0]
                expansion = _infer_expansion(in_channels, hidden)
                if expansion is None:
                    return None, num_joints, None
                settings.append((expansion, kernel))
            stages.append(
                StageSpec(
                    num_blocks=len(blocks),
                    stride=REQUIRED_STAGE_STRIDES[s],
                    channel=channel,
                    block_setting=tuple(settings),
                )
            )
        deconv = tuple(_shape(state_dict, f"deconv_refined.{i}.weight")[1] for i in range(3))
        spec = ArchitectureSpec(
            img_size=img_size or 256,
            input_channel=stem,
            deconv_setting=deconv,
            backbone_setting=tuple(stages),
        )
    except ValueError:
        return None, num_joints, None
    variant = spec.released_name()
    if variant is not None and img_size is None:
        spec = resolve_architecture(variant)
    return variant, num_joints, spec


def _describe_mismatch(expected: Mapping[str, torch.Tensor], actual: Mapping[str, torch.Tensor]) -> str:
    """Empty string when keys and shapes agree; otherwise which keys are missing/unexpected/mis-shaped."""
    missing = [key for key in expected if key not in actual]
    unexpected = [key for key in actual if key not in expected]
    shapes = [
        f"{key}: file {tuple(actual[key].shape)} vs model {tuple(expected[key].shape)}"
        for key in expected
        if key in actual and tuple(actual[key].shape) != tuple(expected[key].shape)
    ]
    parts = []
    for label, items in (
        ("missing keys", missing),
        ("unexpected keys", unexpected),
        ("shape differences", shapes),
    ):
        if items:
            more = f" ... and {len(items) - _MAX_LISTED} more" if len(items) > _MAX_LISTED else ""
            parts.append(f"{len(items)} {label}: " + "; ".join(items[:_MAX_LISTED]) + more)
    return ". ".join(parts)


def load_checkpoint(
    path: str | Path | Mapping[str, Any],
    variant: str | Path | Mapping[str, Any] | ArchitectureSpec | None = None,
    num_joints: int | None = None,
    trusted: bool = False,
    img_size: int | None = None,
) -> tuple[LitePoseNet, CheckpointInfo]:
    """Build the network a checkpoint describes and load its weights strictly.

    ``variant`` (name, architecture JSON, dict or spec) and ``num_joints`` are optional: without them the
    architecture comes from the file (this project's format) or from the tensor shapes. With them, the file
    must fit, otherwise ValueError says which keys are missing/unexpected and which shapes differ, and what
    the file looks like instead. ``img_size`` overrides the nominal input size. The model is returned in
    eval mode (call ``.train()`` to resume training).
    """
    raw, origin = _load_raw(path, trusted)
    state_dict, form, extra = _unpack(raw, origin or "the checkpoint")
    notes: list[str] = []

    if form == FORM_LITEPOSE_ROS:
        file_spec = ArchitectureSpec.from_dict(raw["architecture"])
        file_joints = int(raw["num_joints"])
        file_variant = file_spec.released_name()
    else:
        file_variant, file_joints, file_spec = detect_architecture(state_dict)

    if variant is not None:
        spec = resolve_architecture(variant)
    elif file_spec is not None:
        spec = file_spec
    else:
        raise ValueError(
            f"{origin or 'the checkpoint'}: cannot infer the architecture from its tensor shapes; "
            f"pass the variant name or architecture JSON file it was trained with"
        )
    if img_size is not None:
        spec = spec.with_img_size(int(img_size))
    joints = int(num_joints) if num_joints is not None else file_joints

    model = LitePoseNet(spec, joints)
    expected = model.state_dict()
    missing_counters = [
        key for key in expected if key not in state_dict and key.endswith("num_batches_tracked")
    ]
    if missing_counters:
        # Some exports drop BN's batch counters; they do not affect inference or training.
        state_dict = dict(state_dict)
        for key in missing_counters:
            state_dict[key] = torch.zeros((), dtype=torch.long)
        notes.append(f"filled {len(missing_counters)} missing num_batches_tracked entries with 0")
    mismatch = _describe_mismatch(expected, state_dict)
    if mismatch:
        looks_like = (
            f"the file looks like variant {file_variant or 'custom'} with {file_joints} joints"
            if file_spec is not None
            else f"the file has {file_joints} joints"
        )
        raise ValueError(
            f"{origin or 'the checkpoint'} ({form}) does not fit "
            f"{spec.released_name() or 'the requested architecture'} with {joints} joints: "
            f"{mismatch}. ({looks_like})"
        )
    model.load_state_dict(state_dict, strict=True)
    model.eval()
    info = CheckpointInfo(
        path=origin,
        source_form=form,
        variant=spec.released_name(),
        num_joints=joints,
        spec=spec,
        extra=extra,
        notes=tuple(notes),
    )
    return model, info
