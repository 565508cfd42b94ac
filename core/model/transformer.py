"""Attention layers: the mask decoder's two-way transformer, and RoPE attention used by
the memory attention."""

import math
from functools import partial

import torch
from torch import nn
import torch.nn.functional as F

from .common import MLP

# the attention weights of one block of query rows in _attend_values_late: cache-sized
_VALUES_LATE_BLOCK_BYTES = 16 << 20


def attend_in_blocks(q, keys_t, values, rows, out, buffer=None):
    """out = softmax(q keys_t) values for one head (q [n_q, d], keys_t [d, n_k], a transposed
    view read where it lies; values [n_k, m]; out [n_q, m]), ``rows`` query rows at a time.
    Every block's weights go into one buffer ([rows, n_k] or more) and are softmaxed there in
    place: a fresh 16 MB tensor per block costs page faults and a pass through memory (the
    attention takes 0.9x the time without them)."""
    n_q = q.shape[0]
    if buffer is None:
        buffer = q.new_empty(min(rows, n_q), keys_t.shape[1])
    for start in range(0, n_q, rows):
        weights = buffer[:min(rows, n_q - start)]
        torch.mm(q[start:start + rows], keys_t, out=weights)
        torch.ops.aten._softmax.out(weights, -1, False, out=weights)
        torch.mm(weights, values, out=out[start:start + rows])
    return out


class Attention(nn.Module):
    """Multi-head attention with optional down-projection of the internal width."""

    def __init__(self, embedding_dim, num_heads, downsample_rate=1, dropout=0.0, kv_in_dim=None):
        super().__init__()
        self.embedding_dim = embedding_dim
        self.kv_in_dim = kv_in_dim if kv_in_dim is not None else embedding_dim
        self.internal_dim = embedding_dim // downsample_rate
        self.num_heads = num_heads
        if self.internal_dim % num_heads:
            raise ValueError(f"Attention: num_heads {num_heads} must divide {self.internal_dim}")
        self.q_proj = nn.Linear(embedding_dim, self.internal_dim)
        self.k_proj = nn.Linear(self.kv_in_dim, self.internal_dim)
        self.v_proj = nn.Linear(self.kv_in_dim, self.internal_dim)
        self.out_proj = nn.Linear(self.internal_dim, embedding_dim)
        self.dropout_p = dropout

    def _separate_heads(self, x):
        b, n, c = x.shape
        return x.reshape(b, n, self.num_heads, c // self.num_heads).transpose(1, 2)

    @staticmethod
    def _recombine_heads(x):
        b, h, n, c = x.shape
        return x.transpose(1, 2).reshape(b, n, h * c)

    def _attend(self, q, k, v):
        dropout_p = self.dropout_p if self.training else 0.0
        if q.shape[0] != k.shape[0]:  # one side shared by the batch (the mask decoder's first block)
            b = max(q.shape[0], k.shape[0])
            q, k, v = (t.expand(b, -1, -1, -1) for t in (q, k, v))
        out = F.scaled_dot_product_attention(q, k, v, dropout_p=dropout_p)
        return self.out_proj(self._recombine_heads(out))

    def _values_late(self, q, v_in):
        """Whether to attend over the unprojected values (see _attend_values_late): on a
        CPU, outside training, when values come in narrower than a head."""
        return (q.device.type == "cpu" and not (self.training or torch.is_grad_enabled())
                and q.dtype == torch.float32
                and v_in.shape[-1] < self.internal_dim // self.num_heads)

    def _attend_values_late(self, q, k, v_in):
        """softmax(q k^T) (v_in W_v^T + b_v), computed as (softmax(q k^T) v_in) W_v^T + b_v.

        The same attention, in another order: the weights multiply the values before their
        projection, so with SAM 2's 64-wide memories under 256-wide attention that product
        costs a quarter (the weights' rows sum to one, so the bias passes through). CPUs
        have no fused kernel for values narrower than keys, so the weights are formed a
        block of query rows at a time, each block small enough to stay in cache."""
        b, heads, n_q, head_dim = q.shape
        n_k, v_dim = k.shape[-2], v_in.shape[-1]
        q = q * head_dim ** -0.5
        rows = max(16, _VALUES_LATE_BLOCK_BYTES // (4 * n_k) // 16 * 16)
        mixed = q.new_empty(b, heads, n_q, v_dim)
        buffer = q.new_empty(min(rows, n_q), n_k)  # one for every head and object
        for i in range(b):
            for h in range(heads):
                attend_in_blocks(q[i, h], k[i, h].t(), v_in[i], rows, mixed[i, h], buffer)
        w_v = self.v_proj.weight.view(heads, head_dim, v_dim)
        out = torch.einsum("bhnm,hdm->bhnd", mixed, w_v) + self.v_proj.bias.view(heads, 1, head_dim)
        return self.out_proj(self._recombine_heads(out))

    def forward(self, q, k, v):
        q = self._separate_heads(self.q_proj(q))
        k = self._separate_heads(self.k_proj(k))
        v = self._separate_heads(self.v_proj(v))
        return self._attend(q, k, v)


# --- rotary position encoding (axial, 2-D) -------------------------------------------

def init_t_xy(end_x, end_y):
    # explicit CPU: also valid when the model is built under torch.device("meta")
    t = torch.arange(end_x * end_y, dtype=torch.float32, device="cpu")
    t_x = (t % end_x).float()
    t_y = torch.div(t, end_x, rounding_mode="floor").float()
    return t_x, t_y


def compute_axial_cis(dim, end_x, end_y, theta=10000.0):
    """Complex rotations [end_x*end_y, dim/2]: first half for x, second half for y."""
    freqs = 1.0 / (theta ** (torch.arange(0, dim, 4, device="cpu")[: dim // 4].float() / dim))
    t_x, t_y = init_t_xy(end_x, end_y)
    freqs_x = torch.outer(t_x, freqs)
    freqs_y = torch.outer(t_y, freqs)
    cis_x = torch.polar(torch.ones_like(freqs_x), freqs_x)
    cis_y = torch.polar(torch.ones_like(freqs_y), freqs_y)
    return torch.cat([cis_x, cis_y], dim=-1)


def _rotate(x, freqs_cis):
    """x [..., N, D] turned by the complex rotations freqs_cis [N, D/2]. float32 x outside
    autograd is turned in place: here it is always a fresh projection, and the copy would
    cost more than the rotation."""
    if x.dtype == torch.float32 and not x.requires_grad:
        torch.view_as_complex(x.view(*x.shape[:-1], -1, 2)).mul_(freqs_cis)
        return x
    rotated = torch.view_as_complex(x.float().reshape(*x.shape[:-1], -1, 2)) * freqs_cis
    return torch.view_as_real(rotated).flatten(-2).type_as(x)


def apply_rotary_enc(xq, xk, freqs_cis, freqs_cis_k=None):
    """Rotate q and k ([B, heads, N, D]); k may hold several frames' worth of tokens, with
    freqs_cis_k the rotations repeated to match. float32 inputs outside autograd are
    rotated in place (see _rotate)."""
    if freqs_cis.shape != (xq.shape[-2], xq.shape[-1] // 2):
        raise ValueError(f"RoPE: frequencies {tuple(freqs_cis.shape)} do not fit tokens {tuple(xq.shape[-2:])}")
    xq = _rotate(xq, freqs_cis)
    if xk.shape[-2] == 0:
        return xq, xk
    return xq, _rotate(xk, freqs_cis if freqs_cis_k is None else freqs_cis_k)


class RoPEAttention(Attention):
    """Attention with 2-D rotary encodings on q and k (all but the last
    ``num_k_exclude_rope`` keys, which are object pointers)."""

    def __init__(self, *args, rope_theta=10000.0, rope_k_repeat=False, feat_sizes=(64, 64), **kwargs):
        super().__init__(*args, **kwargs)
        self.compute_cis = partial(compute_axial_cis, dim=self.internal_dim // self.num_heads, theta=rope_theta)
        # plain attribute, not a buffer: not in checkpoints, rebuilt for other grid sizes
        self.freqs_cis = self.compute_cis(end_x=feat_sizes[0], end_y=feat_sizes[1])
        self.rope_k_repeat = rope_k_repeat
        self._freqs_k = (None, 0, None)  # (freqs_cis it was made from, repeats, repeated)

    def _repeated_freqs(self, n_keys, n_queries):
        """The rotations for keys that repeat the query grid (several memory frames)."""
        if n_keys % n_queries:
            raise ValueError(f"RoPEAttention: {n_keys} keys are not whole frames of {n_queries} tokens")
        repeats = n_keys // n_queries
        if repeats <= 1:
            return self.freqs_cis
        base, cached_repeats, cached = self._freqs_k
        if base is not self.freqs_cis or cached_repeats != repeats:
            cached = self.freqs_cis.repeat(repeats, 1)
            self._freqs_k = (self.freqs_cis, repeats, cached)
        return cached

    def forward(self, q, k, v, num_k_exclude_rope=0):
        values_late = self._values_late(q, v)
        q = self._separate_heads(self.q_proj(q))
        k = self._separate_heads(self.k_proj(k))
        if not values_late:
            v = self._separate_heads(self.v_proj(v))

        side = math.sqrt(q.shape[-2])
        if self.freqs_cis.shape[0] != q.shape[-2] or self.freqs_cis.device != q.device:
            if self.freqs_cis.shape[0] != q.shape[-2]:
                self.freqs_cis = self.compute_cis(end_x=int(side), end_y=int(side))
            self.freqs_cis = self.freqs_cis.to(q.device)
        if q.shape[-2] != k.shape[-2] and not self.rope_k_repeat:
            raise ValueError("RoPEAttention: q and k lengths differ but rope_k_repeat is false")

        num_k_rope = k.size(-2) - num_k_exclude_rope
        q, k_rope = apply_rotary_enc(q, k[:, :, :num_k_rope], self.freqs_cis,
                                     self._repeated_freqs(num_k_rope, q.shape[-2]))
        if k_rope.data_ptr() != k.data_ptr():  # rotated into a new tensor, not in place
            k = torch.cat([k_rope, k[:, :, num_k_rope:]], dim=2) if num_k_exclude_rope else k_rope
        if values_late:
            return self._attend_values_late(q, k, v)
        return self._attend(q, k, v)


# --- two-way transformer (mask decoder) ----------------------------------------------

class TwoWayAttentionBlock(nn.Module):
    """Token self-attention, token->image, MLP on tokens, image->token."""

    def __init__(self, embedding_dim, num_heads, mlp_dim=2048, activation=nn.ReLU,
                 attention_downsample_rate=2, skip_first_layer_pe=False):
        super().__init__()
        self.self_attn = Attention(embedding_dim, num_heads)
        self.norm1 = nn.LayerNorm(embedding_dim)
        self.cross_attn_token_to_image = Attention(embedding_dim, num_heads, downsample_rate=attention_downsample_rate)
        self.norm2 = nn.LayerNorm(embedding_dim)
        self.mlp = MLP(embedding_dim, mlp_dim, embedding_dim, num_layers=2, activation=activation)
        self.norm3 = nn.LayerNorm(embedding_dim)
        self.norm4 = nn.LayerNorm(embedding_dim)
        self.cross_attn_image_to_token = Attention(embedding_dim, num_heads, downsample_rate=attention_downsample_rate)
        self.skip_first_layer_pe = skip_first_layer_pe

    def forward(self, queries, keys, query_pe, key_pe):
        if self.skip_first_layer_pe:
            queries = self.self_attn(q=queries, k=queries, v=queries)
        else:
            q = queries + query_pe
            queries = queries + self.self_attn(q=q, k=q, v=queries)
        queries = self.norm1(queries)

        q = queries + query_pe
        k = keys + key_pe  # keys are not changed until norm4: one sum serves both attentions
        queries = self.norm2(queries + self.cross_attn_token_to_image(q=q, k=k, v=keys))
        queries = self.norm3(queries + self.mlp(queries))

        q = queries + query_pe
        keys = self.norm4(keys + self.cross_attn_image_to_token(q=k, k=q, v=queries))
        return queries, keys


class TwoWayTransformer(nn.Module):
    def __init__(self, depth, embedding_dim, num_heads, mlp_dim, activation=nn.ReLU,
                 attention_downsample_rate=2):
        super().__init__()
        self.depth = depth
        self.embedding_dim = embedding_dim
        self.num_heads = num_heads
        self.mlp_dim = mlp_dim
        self.layers = nn.ModuleList(
            TwoWayAttentionBlock(embedding_dim, num_heads, mlp_dim, activation,
                                 attention_downsample_rate, skip_first_layer_pe=(i == 0))
            for i in range(depth)
        )
        self.final_attn_token_to_image = Attention(embedding_dim, num_heads, downsample_rate=attention_downsample_rate)
        self.norm_final_attn = nn.LayerNorm(embedding_dim)

    def forward(self, image_embedding, image_pe, point_embedding):
        """image_embedding, image_pe: [B, C, h, w] or [1, C, h, w] (shared by the batch: the
        image tokens stay one set until the first image-to-token attention makes them B);
        point_embedding: [B, N, C]. Returns (tokens [B, N, C], image tokens [B, h*w, C])."""
        # token-major copies made once: every later sum and projection then reads memory in
        # order (a permuted view costs a strided pass in each of them)
        image_embedding = image_embedding.flatten(2).transpose(1, 2).contiguous()
        image_pe = image_pe.flatten(2).transpose(1, 2).contiguous()
        queries, keys = point_embedding, image_embedding
        for layer in self.layers:
            queries, keys = layer(queries=queries, keys=keys, query_pe=point_embedding, key_pe=image_pe)
        q = queries + point_embedding
        k = keys + image_pe
        queries = self.norm_final_attn(queries + self.final_attn_token_to_image(q=q, k=k, v=keys))
        return queries, keys
