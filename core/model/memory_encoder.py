"""Memory encoder: fuses a frame's image features with its (downsampled) mask into a
memory feature map for later frames to attend to."""

import math

import torch
from torch import nn

from .common import LayerNorm2d, get_clones


class MaskDownSampler(nn.Module):
    """Strided conv + LayerNorm2d + GELU stages down to ``total_stride``, then 1x1 to embed_dim."""

    def __init__(self, embed_dim=256, kernel_size=4, stride=4, padding=0, total_stride=16,
                 activation=nn.GELU):
        super().__init__()
        num_layers = int(math.log2(total_stride) // math.log2(stride))
        if stride ** num_layers != total_stride:
            raise ValueError(f"MaskDownSampler: stride {stride} does not reach total_stride {total_stride}")
        self.encoder = nn.Sequential()
        in_chans = out_chans = 1
        for _ in range(num_layers):
            out_chans = in_chans * stride ** 2
            self.encoder.append(nn.Conv2d(in_chans, out_chans, kernel_size=kernel_size, stride=stride, padding=padding))
            self.encoder.append(LayerNorm2d(out_chans))
            self.encoder.append(activation())
            in_chans = out_chans
        self.encoder.append(nn.Conv2d(out_chans, embed_dim, kernel_size=1))

    def forward(self, x):
        return self.encoder(x)


class CXBlock(nn.Module):
    """ConvNeXt block: depthwise conv, LayerNorm, pointwise MLP, layer scale, residual."""

    def __init__(self, dim, kernel_size=7, padding=3, drop_path=0.0, layer_scale_init_value=1e-6,
                 use_dwconv=True):
        super().__init__()
        # drop_path only matters for training; inference ignores it.
        self.dwconv = nn.Conv2d(dim, dim, kernel_size=kernel_size, padding=padding,
                                groups=dim if use_dwconv else 1)
        self.norm = LayerNorm2d(dim, eps=1e-6)
        self.pwconv1 = nn.Linear(dim, 4 * dim)
        self.act = nn.GELU()
        self.pwconv2 = nn.Linear(4 * dim, dim)
        self.gamma = (
            nn.Parameter(layer_scale_init_value * torch.ones(dim)) if layer_scale_init_value > 0 else None
        )

    def forward(self, x):
        residual = x
        x = self.norm(self.dwconv(x)).permute(0, 2, 3, 1)
        x = self.pwconv2(self.act(self.pwconv1(x)))
        if self.gamma is not None:
            x = self.gamma * x
        return residual + x.permute(0, 3, 1, 2)


class Fuser(nn.Module):
    def __init__(self, layer, num_layers, dim=None, input_projection=False):
        super().__init__()
        self.proj = nn.Identity()
        self.layers = get_clones(layer, num_layers)
        if input_projection:
            if dim is None:
                raise ValueError("Fuser: input_projection needs dim")
            self.proj = nn.Conv2d(dim, dim, kernel_size=1)

    def forward(self, x):
        x = self.proj(x)
        for layer in self.layers:
            x = layer(x)
        return x


class MemoryEncoder(nn.Module):
    def __init__(self, out_dim, mask_downsampler, fuser, position_encoding, in_dim=256):
        super().__init__()
        self.mask_downsampler = mask_downsampler
        self.pix_feat_proj = nn.Conv2d(in_dim, in_dim, kernel_size=1)
        self.fuser = fuser
        self.position_encoding = position_encoding
        self.out_proj = nn.Conv2d(in_dim, out_dim, kernel_size=1) if out_dim != in_dim else nn.Identity()

    def forward(self, pix_feat, masks, skip_mask_sigmoid=False):
        """pix_feat [B, in_dim, h, w]; masks [B, 1, 16h, 16w] (logits unless skip_mask_sigmoid).
        Returns {"vision_features": [B, out_dim, h, w], "vision_pos_enc": [pos]}."""
        if not skip_mask_sigmoid:
            masks = torch.sigmoid(masks)
        masks = self.mask_downsampler(masks)
        x = self.pix_feat_proj(pix_feat.to(masks.device)) + masks
        x = self.out_proj(self.fuser(x))
        pos = self.position_encoding(x).to(x.dtype)
        return {"vision_features": x, "vision_pos_enc": [pos]}
