"""Memory attention's CPU fast path computes the same attention as the plain one."""

import pytest
import torch

from samroto.core.model.transformer import RoPEAttention


@pytest.mark.parametrize("heads", [1, 2])
@pytest.mark.parametrize("block_bytes", [None, 4 * 79 * 16])  # one block; blocks of 16 query rows
def test_values_late_attention_equals_projecting_values_first(heads, block_bytes, monkeypatch):
    from samroto.core.model import transformer

    if block_bytes:  # 25 queries over 79 keys: a block of 16 rows, then a short one of 9
        monkeypatch.setattr(transformer, "_VALUES_LATE_BLOCK_BYTES", block_bytes)
    torch.manual_seed(0)
    attn = RoPEAttention(64, heads, kv_in_dim=16, rope_k_repeat=True, feat_sizes=(5, 5)).eval()
    grid, frames, pointers = 25, 3, 4
    q = torch.randn(2, grid, 64)
    k = torch.randn(2, grid * frames + pointers, 16)
    v = torch.randn(2, grid * frames + pointers, 16) * 3
    # pointer keys are not rotated: moving a pointer (key with its value) changes nothing
    moved_k = torch.cat([k[:, :-pointers], k[:, -pointers:].roll(1, 1)], 1)
    moved_v = torch.cat([v[:, :-pointers], v[:, -pointers:].roll(1, 1)], 1)
    with torch.inference_mode():
        assert attn._values_late(q, v)  # 16-wide values under 64/heads-wide heads
        fast = attn(q, k, v, num_k_exclude_rope=pointers)
        moved = attn(q, moved_k, moved_v, num_k_exclude_rope=pointers)
        monkeypatch.setattr(RoPEAttention, "_values_late", lambda self, q, v: False)
        plain = attn(q, k, v, num_k_exclude_rope=pointers)
    torch.testing.assert_close(fast, plain, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(moved, plain, atol=1e-5, rtol=1e-5)

def test_values_late_is_not_used_where_autograd_or_wide_values_need_the_plain_path():
    attn = RoPEAttention(64, 1, kv_in_dim=16, rope_k_repeat=True, feat_sizes=(4, 4))
    q, v = torch.randn(1, 16, 64), torch.randn(1, 48, 16)
    assert not attn._values_late(q, v)  # training mode
    attn.eval()
    with torch.enable_grad():
        assert not attn._values_late(q, v)
    with torch.inference_mode():
        assert not attn._values_late(q, torch.randn(1, 48, 64))  # values as wide as a head
        assert attn._values_late(q, v)


def test_activations_run_in_place_only_outside_autograd():
    from torch import nn
    import torch.nn.functional as F

    from samroto.core.model.common import activate_in_place

    for activation, reference in ((nn.GELU(), F.gelu), (F.gelu, F.gelu), (nn.ReLU(), F.relu), (F.relu, F.relu)):
        x = torch.randn(64, 32)
        want = reference(x)
        got = activate_in_place(activation, x)
        assert got.data_ptr() == x.data_ptr() and torch.equal(got, want)
    tanh_gelu = nn.GELU(approximate="tanh")
    x = torch.randn(8, 4)
    assert activate_in_place(tanh_gelu, x).data_ptr() != x.data_ptr()
    w = torch.randn(8, 4, requires_grad=True)
    y = w * 2
    out = activate_in_place(nn.ReLU(), y)
    assert out.data_ptr() != y.data_ptr()
    out.sum().backward()
    assert torch.equal(w.grad, 2.0 * (y > 0))


@pytest.mark.parametrize("size", [(64, 64), (16, 24), (7, 5)])
def test_sine_position_encoding_is_the_detr_formula(size):
    from samroto.core.model.position_encoding import PositionEmbeddingSine

    h, w = size
    feats, temperature, scale = 32, 10000, 2 * torch.pi
    pe = PositionEmbeddingSine(2 * feats)(torch.zeros(2, 1, h, w))
    # written out position by position: y channels then x channels, sin/cos interleaved
    y = torch.arange(1, h + 1, dtype=torch.float32)
    x = torch.arange(1, w + 1, dtype=torch.float32)
    y, x = y / (y[-1] + 1e-6) * scale, x / (x[-1] + 1e-6) * scale
    dim_t = temperature ** (2 * (torch.arange(feats, dtype=torch.float32) // 2) / feats)
    want = torch.empty(2 * feats, h, w)
    for c in range(feats):
        wave = torch.sin if c % 2 == 0 else torch.cos
        want[c] = wave(y / dim_t[c])[:, None].expand(h, w)
        want[feats + c] = wave(x / dim_t[c])[None, :].expand(h, w)
    assert pe.shape == (2, 2 * feats, h, w)
    torch.testing.assert_close(pe[1], want, atol=1e-6, rtol=0)


def test_only_grids_tracking_reads_are_cached():
    from samroto.core.model.position_encoding import PositionEmbeddingSine

    pe = PositionEmbeddingSine(256)
    small, large = torch.zeros(1, 1, 64, 64), torch.zeros(1, 1, 128, 128)
    assert pe(small).data_ptr() == pe(small).data_ptr()  # memory attention's grid: kept
    first, again = pe(large), pe(large)  # high-resolution levels: rebuilt, never held
    assert first.data_ptr() != again.data_ptr() and torch.equal(first, again)
    assert list(pe._cache) == [(64, 64, "cpu")]
