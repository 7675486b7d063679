"""Batch-norm folding: the deployment form of a trained LitePose network.

In eval mode a BatchNorm is a per-channel affine map ``y = s * x + b`` with
``s = gamma / sqrt(var + eps)`` and ``b = beta - s * mean``. Folding multiplies the preceding
convolution's output channels by ``s``, gives the convolution the bias ``b`` and replaces the BatchNorm
by ``nn.Identity``. Module names stay those of the reference (so the folded network's outputs are traced
back to the same layers), but the state_dict changes: folded models are for inference and export only,
never for saving as training checkpoints.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from litepose_ros.model.network import LitePoseNet


def _bn_scale_shift(bn: nn.BatchNorm2d) -> tuple[torch.Tensor, torch.Tensor]:
    if bn.running_mean is None or bn.running_var is None:
        raise ValueError("cannot fold a BatchNorm without running statistics (track_running_stats=False)")
    scale = torch.rsqrt(bn.running_var.double() + bn.eps)
    if bn.weight is not None:
        scale = scale * bn.weight.double()
    shift = -bn.running_mean.double() * scale
    if bn.bias is not None:
        shift = shift + bn.bias.double()
    return scale, shift


def _fold_into_conv(
    conv: nn.Conv2d | nn.ConvTranspose2d, scale: torch.Tensor, shift: torch.Tensor, add_shift: bool = True
) -> None:
    """Scale the output channels of ``conv`` by ``scale`` and add ``shift`` to its bias (in place)."""
    weight = conv.weight.detach().double()
    if isinstance(conv, nn.ConvTranspose2d):
        if conv.groups != 1:
            raise ValueError("folding into grouped transposed convolutions is not supported")
        # ConvTranspose2d weights are (in, out, kH, kW): output channels are dimension 1.
        weight = weight * scale.view(1, -1, 1, 1)
    else:
        weight = weight * scale.view(-1, 1, 1, 1)
    bias = conv.bias.detach().double() * scale if conv.bias is not None else torch.zeros_like(scale)
    if add_shift:
        bias = bias + shift
    dtype = conv.weight.dtype
    conv.weight = nn.Parameter(weight.to(dtype), requires_grad=False)
    conv.bias = nn.Parameter(bias.to(dtype), requires_grad=False)


def _fold_sequentials(module: nn.Module) -> int:
    """Fold every BatchNorm2d that directly follows a convolution inside an nn.Sequential."""
    folded = 0
    for child in module.modules():
        if not isinstance(child, nn.Sequential):
            continue
        names = list(child._modules)
        for previous, current in zip(names, names[1:], strict=False):
            conv, bn = child._modules[previous], child._modules[current]
            if isinstance(conv, (nn.Conv2d, nn.ConvTranspose2d)) and isinstance(bn, nn.BatchNorm2d):
                scale, shift = _bn_scale_shift(bn)
                _fold_into_conv(conv, scale, shift)
                child._modules[current] = nn.Identity()
                folded += 1
    return folded


def fold_batch_norm(model: LitePoseNet) -> LitePoseNet:
    """Return an eval-mode copy of ``model`` with every BatchNorm folded into its convolution(s).

    The head's ``deconv_bnrelu[i]`` BatchNorm follows the *sum* of ``deconv_refined[i]`` and
    ``deconv_raw[i]``: both transposed convolutions are scaled, and the shift goes into one bias.
    Outputs equal the unfolded eval-mode model within float rounding (about 1e-6).
    """
    if not isinstance(model, LitePoseNet):
        raise TypeError(f"fold_batch_norm expects a LitePoseNet, got {type(model).__name__}")
    if getattr(model, "is_folded", False):
        return model
    folded = copy.deepcopy(model).eval()
    with torch.no_grad():
        for i, bn_relu in enumerate(folded.deconv_bnrelu):
            bn = bn_relu[0]
            if isinstance(bn, nn.BatchNorm2d):
                scale, shift = _bn_scale_shift(bn)
                _fold_into_conv(folded.deconv_refined[i], scale, shift, add_shift=True)
                _fold_into_conv(folded.deconv_raw[i], scale, shift, add_shift=False)
                bn_relu[0] = nn.Identity()
        _fold_sequentials(folded)
    remaining = [name for name, m in folded.named_modules() if isinstance(m, nn.BatchNorm2d)]
    if remaining:
        raise RuntimeError(f"BatchNorm layers left unfolded (no preceding convolution): {remaining}")
    for parameter in folded.parameters():
        parameter.requires_grad_(False)
    folded.is_folded = True
    return folded


def is_folded(model: nn.Module) -> bool:
    """True for models returned by :func:`fold_batch_norm`."""
    return bool(getattr(model, "is_folded", False))
