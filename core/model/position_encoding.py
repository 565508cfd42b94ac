"""Position encodings: sine (FPN neck, memory encoder) and random Fourier (prompts)."""

import math

import torch
from torch import nn


class PositionEmbeddingSine(nn.Module):
    """DETR-style 2-D sine/cosine encoding of an NCHW feature map's grid (no weights)."""

    def __init__(self, num_pos_feats, temperature=10000, normalize=True, scale=None,
                 warmup_cache=True, image_size=1024, strides=(4, 8, 16, 32)):
        super().__init__()
        if num_pos_feats % 2:
            raise ValueError(f"PositionEmbeddingSine: num_pos_feats must be even, got {num_pos_feats}")
        if scale is not None and not normalize:
            raise ValueError("PositionEmbeddingSine: scale given but normalize is false")
        self.num_pos_feats = num_pos_feats // 2
        self.temperature = temperature
        self.normalize = normalize
        self.scale = 2 * math.pi if scale is None else scale
        self._cache = {}  # (H, W, device) -> [1, C, H, W]; a plain dict, not state

    @torch.no_grad()
    def _encode(self, height, width, device):
        y = torch.arange(1, height + 1, dtype=torch.float32, device=device).view(1, -1, 1).expand(1, height, width)
        x = torch.arange(1, width + 1, dtype=torch.float32, device=device).view(1, 1, -1).expand(1, height, width)
        if self.normalize:
            eps = 1e-6
            y = y / (y[:, -1:, :] + eps) * self.scale
            x = x / (x[:, :, -1:] + eps) * self.scale
        dim_t = torch.arange(self.num_pos_feats, dtype=torch.float32, device=device)
        dim_t = self.temperature ** (2 * (dim_t // 2) / self.num_pos_feats)
        pos_x = x[:, :, :, None] / dim_t
        pos_y = y[:, :, :, None] / dim_t
        pos_x = torch.stack((pos_x[:, :, :, 0::2].sin(), pos_x[:, :, :, 1::2].cos()), dim=4).flatten(3)
        pos_y = torch.stack((pos_y[:, :, :, 0::2].sin(), pos_y[:, :, :, 1::2].cos()), dim=4).flatten(3)
        return torch.cat((pos_y, pos_x), dim=3).permute(0, 3, 1, 2).contiguous()

    def forward(self, x):
        height, width = x.shape[-2:]
        key = (height, width, str(x.device))
        pos = self._cache.get(key)
        if pos is None:
            pos = self._encode(height, width, x.device)
            self._cache[key] = pos
        return pos.expand(x.shape[0], -1, -1, -1)


class PositionEmbeddingRandom(nn.Module):
    """Random spatial frequencies (a buffer saved in checkpoints) for prompt coordinates."""

    def __init__(self, num_pos_feats=64, scale=None):
        super().__init__()
        if scale is None or scale <= 0.0:
            scale = 1.0
        self.register_buffer("positional_encoding_gaussian_matrix", scale * torch.randn((2, num_pos_feats)))

    def _pe_encoding(self, coords):
        # coords in [0, 1], shape [..., 2] (x, y)
        coords = 2 * coords - 1
        coords = coords @ self.positional_encoding_gaussian_matrix
        coords = 2 * math.pi * coords
        return torch.cat([torch.sin(coords), torch.cos(coords)], dim=-1)

    def forward(self, size):
        """Encoding of the centre of every cell of an ``(h, w)`` grid: [C, h, w]."""
        h, w = size
        device = self.positional_encoding_gaussian_matrix.device
        grid = torch.ones((h, w), device=device, dtype=torch.float32)
        y_embed = (grid.cumsum(dim=0) - 0.5) / h
        x_embed = (grid.cumsum(dim=1) - 0.5) / w
        pe = self._pe_encoding(torch.stack([x_embed, y_embed], dim=-1))
        return pe.permute(2, 0, 1)

    def forward_with_coords(self, coords_input, image_size):
        """Encode pixel coordinates [B, N, 2] of an ``image_size`` = (H, W) image."""
        coords = coords_input.clone()
        coords[:, :, 0] = coords[:, :, 0] / image_size[1]
        coords[:, :, 1] = coords[:, :, 1] / image_size[0]
        return self._pe_encoding(coords.to(torch.float))
