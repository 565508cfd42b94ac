"""Memory attention's CPU fast path computes the same attention as the plain one."""

import pytest
import torch

from samroto.core.model.transformer import RoPEAttention


@pytest.mark.parametrize("heads", [1, 2])
def test_values_late_attention_equals_projecting_values_first(heads, monkeypatch):
    torch.manual_seed(0)
    attn = RoPEAttention(64, heads, kv_in_dim=16, rope_k_repeat=True, feat_sizes=(4, 4)).eval()
    grid, frames, pointers = 16, 3, 4
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
