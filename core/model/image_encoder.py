"""Image encoder = Hiera trunk + FPN neck (with sine position encodings)."""

import torch
from torch import nn
import torch.nn.functional as F


class FpnNeck(nn.Module):
    """Projects every trunk level to ``d_model`` channels; top-down fusion on the listed levels."""

    def __init__(self, position_encoding, d_model, backbone_channel_list, kernel_size=1, stride=1,
                 padding=0, fpn_interp_model="bilinear", fuse_type="sum", fpn_top_down_levels=None):
        super().__init__()
        if fuse_type not in ("sum", "avg"):
            raise ValueError(f"FpnNeck: fuse_type must be 'sum' or 'avg', got {fuse_type!r}")
        self.position_encoding = position_encoding
        self.d_model = d_model
        self.backbone_channel_list = list(backbone_channel_list)
        self.convs = nn.ModuleList()
        for dim in self.backbone_channel_list:
            level = nn.Sequential()
            level.add_module("conv", nn.Conv2d(dim, d_model, kernel_size, stride, padding))
            self.convs.append(level)
        self.fpn_interp_model = fpn_interp_model
        self.fuse_type = fuse_type
        if fpn_top_down_levels is None:
            fpn_top_down_levels = range(len(self.convs))
        self.fpn_top_down_levels = list(fpn_top_down_levels)

    def forward(self, xs):
        """xs: trunk levels, high-res first. Returns (features, position encodings), high-res first."""
        n = len(self.convs) - 1
        out = [None] * len(self.convs)
        pos = [None] * len(self.convs)
        prev = None
        for i in range(n, -1, -1):
            lateral = self.convs[n - i](xs[i])
            if i in self.fpn_top_down_levels and prev is not None:
                top_down = F.interpolate(
                    prev.to(dtype=torch.float32), scale_factor=2.0, mode=self.fpn_interp_model,
                    align_corners=None if self.fpn_interp_model == "nearest" else False, antialias=False,
                )
                prev = lateral + top_down
                if self.fuse_type == "avg":
                    prev = prev / 2
            else:
                prev = lateral
            out[i] = prev
            pos[i] = self.position_encoding(prev).to(prev.dtype)
        return out, pos


class ImageEncoder(nn.Module):
    def __init__(self, trunk, neck, scalp=0):
        super().__init__()
        self.trunk = trunk
        self.neck = neck
        self.scalp = scalp
        if list(trunk.channel_list) != list(neck.backbone_channel_list):
            raise ValueError(
                f"ImageEncoder: trunk channels {list(trunk.channel_list)} do not match the neck's "
                f"backbone_channel_list {list(neck.backbone_channel_list)}"
            )

    def forward(self, sample):
        features, pos = self.neck(self.trunk(sample))
        if self.scalp > 0:
            # drop the lowest-resolution level(s)
            features, pos = features[: -self.scalp], pos[: -self.scalp]
        return {"vision_features": features[-1], "vision_pos_enc": pos, "backbone_fpn": features}
