"""Hiera trunk (hierarchical ViT) as used by SAM 2: windowed attention, query pooling
between stages, a few global-attention blocks, windowed background + tiled position
embedding."""

from functools import partial

import torch
from torch import nn
import torch.nn.functional as F

from .common import MLP


def window_partition(x, window_size):
    """[B, H, W, C] -> ([B * nW, ws, ws, C], (Hp, Wp)), zero-padding H, W up to a multiple."""
    batch, height, width, channels = x.shape
    pad_h = (window_size - height % window_size) % window_size
    pad_w = (window_size - width % window_size) % window_size
    if pad_h or pad_w:
        x = F.pad(x, (0, 0, 0, pad_w, 0, pad_h))
    hp, wp = height + pad_h, width + pad_w
    x = x.view(batch, hp // window_size, window_size, wp // window_size, window_size, channels)
    windows = x.permute(0, 1, 3, 2, 4, 5).reshape(-1, window_size, window_size, channels)
    return windows, (hp, wp)


def window_unpartition(windows, window_size, pad_hw, hw):
    """Inverse of :func:`window_partition`, dropping the padding."""
    hp, wp = pad_hw
    height, width = hw
    batch = windows.shape[0] // ((hp // window_size) * (wp // window_size))
    x = windows.view(batch, hp // window_size, wp // window_size, window_size, window_size, -1)
    x = x.permute(0, 1, 3, 2, 4, 5).reshape(batch, hp, wp, -1)
    if hp > height or wp > width:
        x = x[:, :height, :width, :].contiguous()
    return x


def do_pool(x, pool, norm=None):
    """Apply an NCHW pooling module to a BHWC tensor."""
    if pool is None:
        return x
    x = pool(x.permute(0, 3, 1, 2)).permute(0, 2, 3, 1)
    if norm is not None:
        x = norm(x)
    return x


class PatchEmbed(nn.Module):
    """7x7 stride-4 convolution, output BHWC."""

    def __init__(self, kernel_size=(7, 7), stride=(4, 4), padding=(3, 3), in_chans=3, embed_dim=768):
        super().__init__()
        self.proj = nn.Conv2d(in_chans, embed_dim, kernel_size=kernel_size, stride=stride, padding=padding)

    def forward(self, x):
        return self.proj(x).permute(0, 2, 3, 1)


class MultiScaleAttention(nn.Module):
    """Multi-head self-attention whose queries may be pooled (stage transitions)."""

    def __init__(self, dim, dim_out, num_heads, q_pool=None):
        super().__init__()
        self.dim = dim
        self.dim_out = dim_out
        self.num_heads = num_heads
        self.q_pool = q_pool
        self.qkv = nn.Linear(dim, dim_out * 3)
        self.proj = nn.Linear(dim_out, dim_out)

    def forward(self, x):
        batch, height, width, _ = x.shape
        qkv = self.qkv(x).reshape(batch, height * width, 3, self.num_heads, -1)
        q, k, v = torch.unbind(qkv, 2)
        if self.q_pool is not None:
            q = do_pool(q.reshape(batch, height, width, -1), self.q_pool)
            height, width = q.shape[1:3]
            q = q.reshape(batch, height * width, self.num_heads, -1)
        x = F.scaled_dot_product_attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2))
        x = x.transpose(1, 2).reshape(batch, height, width, -1)
        return self.proj(x)


class MultiScaleBlock(nn.Module):
    def __init__(self, dim, dim_out, num_heads, mlp_ratio=4.0, norm_layer="LayerNorm",
                 q_stride=None, act_layer=nn.GELU, window_size=0):
        super().__init__()
        norm = partial(getattr(nn, norm_layer), eps=1e-6)
        self.dim = dim
        self.dim_out = dim_out
        self.norm1 = norm(dim)
        self.window_size = window_size
        self.q_stride = q_stride
        self.pool = nn.MaxPool2d(kernel_size=q_stride, stride=q_stride, ceil_mode=False) if q_stride else None
        self.attn = MultiScaleAttention(dim, dim_out, num_heads=num_heads, q_pool=self.pool)
        self.norm2 = norm(dim_out)
        self.mlp = MLP(dim_out, int(dim_out * mlp_ratio), dim_out, num_layers=2, activation=act_layer)
        if dim != dim_out:
            self.proj = nn.Linear(dim, dim_out)

    def forward(self, x):
        shortcut = x
        x = self.norm1(x)
        if self.dim != self.dim_out:
            shortcut = do_pool(self.proj(x), self.pool)

        window_size = self.window_size
        if window_size > 0:
            height, width = x.shape[1], x.shape[2]
            x, pad_hw = window_partition(x, window_size)
        x = self.attn(x)
        if self.q_stride:
            # the queries were pooled: windows (and the grid) shrank by q_stride
            window_size = self.window_size // self.q_stride[0]
            height, width = shortcut.shape[1:3]
            pad_h = (window_size - height % window_size) % window_size
            pad_w = (window_size - width % window_size) % window_size
            pad_hw = (height + pad_h, width + pad_w)
        if self.window_size > 0:
            x = window_unpartition(x, window_size, pad_hw, (height, width))

        x = shortcut + x
        return x + self.mlp(self.norm2(x))


class Hiera(nn.Module):
    """Hiera trunk; returns the last block output of each stage (NCHW), high-res first."""

    def __init__(self, embed_dim=96, num_heads=1, drop_path_rate=0.0, q_pool=3, q_stride=(2, 2),
                 stages=(2, 3, 16, 3), dim_mul=2.0, head_mul=2.0,
                 window_pos_embed_bkg_spatial_size=(14, 14), window_spec=(8, 4, 14, 7),
                 global_att_blocks=(12, 16, 20), weights_path=None, return_interm_layers=True):
        super().__init__()
        if len(stages) != len(window_spec):
            raise ValueError(f"Hiera: stages {list(stages)} and window_spec {list(window_spec)} differ in length")
        if weights_path is not None:
            raise ValueError("Hiera: weights_path is not supported; load a full SAM 2 checkpoint instead")
        # drop_path_rate only matters for training; inference ignores it.
        self.window_spec = tuple(window_spec)
        depth = sum(stages)
        self.q_stride = tuple(q_stride)
        self.stage_ends = [sum(stages[:i]) - 1 for i in range(1, len(stages) + 1)]
        self.q_pool_blocks = [end + 1 for end in self.stage_ends[:-1]][:q_pool]
        self.return_interm_layers = return_interm_layers
        self.patch_embed = PatchEmbed(embed_dim=embed_dim)
        self.global_att_blocks = tuple(global_att_blocks) if global_att_blocks is not None else ()
        self.window_pos_embed_bkg_spatial_size = tuple(window_pos_embed_bkg_spatial_size)
        self.pos_embed = nn.Parameter(torch.zeros(1, embed_dim, *self.window_pos_embed_bkg_spatial_size))
        self.pos_embed_window = nn.Parameter(torch.zeros(1, embed_dim, self.window_spec[0], self.window_spec[0]))

        stage = 1
        self.blocks = nn.ModuleList()
        for i in range(depth):
            dim_out = embed_dim
            # The first block of a stage still sees the previous stage's resolution, so it
            # uses the previous stage's window size (and pools its queries).
            window_size = 0 if i in self.global_att_blocks else self.window_spec[stage - 1]
            if i - 1 in self.stage_ends:
                dim_out = int(embed_dim * dim_mul)
                num_heads = int(num_heads * head_mul)
                stage += 1
            self.blocks.append(MultiScaleBlock(
                dim=embed_dim, dim_out=dim_out, num_heads=num_heads,
                q_stride=self.q_stride if i in self.q_pool_blocks else None,
                window_size=window_size,
            ))
            embed_dim = dim_out

        self.channel_list = (
            [self.blocks[i].dim_out for i in self.stage_ends[::-1]]
            if return_interm_layers else [self.blocks[-1].dim_out]
        )

    def _get_pos_embed(self, hw):
        # The same for every frame of a size: cache it (a bicubic resize per frame is
        # measurable on CPU). The key holds the parameters' versions, so loading new
        # weights (an in-place copy) invalidates it. Recomputed when training, inside a
        # compiled graph, and for weights made under torch.inference_mode (inference
        # tensors keep no version).
        caching = not (torch.compiler.is_compiling()
                       or (torch.is_grad_enabled() and self.pos_embed.requires_grad)
                       or self.pos_embed.is_inference() or self.pos_embed_window.is_inference())
        key = caching and (tuple(hw), self.pos_embed.device, self.pos_embed.dtype,
                           self.pos_embed._version, self.pos_embed_window._version)
        cached = getattr(self, "_pos_embed_cache", None)
        if caching and cached is not None and cached[0] == key:
            return cached[1]
        pos_embed = F.interpolate(self.pos_embed, size=hw, mode="bicubic")
        window = self.pos_embed_window
        reps = [a // b for a, b in zip(pos_embed.shape, window.shape)]
        pos_embed = (pos_embed + window.tile(reps)).permute(0, 2, 3, 1)
        if caching:
            self._pos_embed_cache = (key, pos_embed.detach())
        return pos_embed

    def forward(self, x):
        x = self.patch_embed(x)
        x = x + self._get_pos_embed(x.shape[1:3])
        outputs = []
        for i, block in enumerate(self.blocks):
            x = block(x)
            if i == self.stage_ends[-1] or (i in self.stage_ends and self.return_interm_layers):
                outputs.append(x.permute(0, 3, 1, 2))
        return outputs
