"""Position encodings: sine (FPN neck, memory encoder) and random Fourier (prompts)."""

import math

import torch
from torch import nn


_CACHED_POSITIONS = 64 * 64


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

    def _encode_1d(self, length, device):
        """[length, num_pos_feats]: sin/cos of one axis' normalised positions, interleaved."""
        t = torch.arange(1, length + 1, dtype=torch.float32, device=device)
        if self.normalize:
            t = t / (t[-1:] + 1e-6) * self.scale
        dim_t = torch.arange(self.num_pos_feats, dtype=torch.float32, device=device)
        dim_t = self.temperature ** (2 * (dim_t // 2) / self.num_pos_feats)
        angles = t[:, None] / dim_t
        return torch.stack((angles[:, 0::2].sin(), angles[:, 1::2].cos()), dim=2).flatten(1)

    @torch.no_grad()
    def _encode(self, height, width, device):
        # y channels vary along rows only, x channels along columns only: each axis is
        # encoded once and broadcast into the map, so the only large tensor is the result
        # (at 256 x 256 x 256 that is 67 MB, where building it elementwise took 200 MB more)
        n = self.num_pos_feats
        pos = torch.empty(1, 2 * n, height, width, dtype=torch.float32, device=device)
        pos[0, :n] = self._encode_1d(height, device).t()[:, :, None]
        pos[0, n:] = self._encode_1d(width, device).t()[:, None, :]
        return pos

    def forward(self, x):
        height, width = x.shape[-2:]
        key = (height, width, str(x.device))
        pos = self._cache.get(key)
        if pos is None:
            pos = self._encode(height, width, x.device)
            # Grids up to 64 x 64 are kept (memory attention reads them every frame). The
            # image encoder's high-resolution levels (84 MB at 1024, never read by tracking)
            # are rebuilt per call, a few milliseconds, rather than held for the session.
            if height * width <= _CACHED_POSITIONS:
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
