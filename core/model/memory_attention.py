"""Memory attention: current-frame features self-attend, then cross-attend to the memory
bank (spatial memories + object pointers), with RoPE."""

from torch import nn

from .common import activate_in_place, activation_fn, get_clones
from .transformer import RoPEAttention


class MemoryAttentionLayer(nn.Module):
    def __init__(self, activation, cross_attention, d_model, dim_feedforward, dropout,
                 pos_enc_at_attn, pos_enc_at_cross_attn_keys, pos_enc_at_cross_attn_queries,
                 self_attention):
        super().__init__()
        self.d_model = d_model
        self.dim_feedforward = dim_feedforward
        self.dropout_value = dropout
        self.self_attn = self_attention
        self.cross_attn_image = cross_attention
        self.linear1 = nn.Linear(d_model, dim_feedforward)
        self.dropout = nn.Dropout(dropout)
        self.linear2 = nn.Linear(dim_feedforward, d_model)
        self.norm1 = nn.LayerNorm(d_model)
        self.norm2 = nn.LayerNorm(d_model)
        self.norm3 = nn.LayerNorm(d_model)
        self.dropout1 = nn.Dropout(dropout)
        self.dropout2 = nn.Dropout(dropout)
        self.dropout3 = nn.Dropout(dropout)
        self.activation_str = activation
        self.activation = activation_fn(activation)
        self.pos_enc_at_attn = pos_enc_at_attn
        self.pos_enc_at_cross_attn_queries = pos_enc_at_cross_attn_queries
        self.pos_enc_at_cross_attn_keys = pos_enc_at_cross_attn_keys

    def _forward_sa(self, tgt, query_pos):
        tgt2 = self.norm1(tgt)
        q = k = tgt2 + query_pos if self.pos_enc_at_attn else tgt2
        return tgt + self.dropout1(self.self_attn(q, k, v=tgt2))

    def _forward_ca(self, tgt, memory, query_pos, pos, num_k_exclude_rope=0):
        kwargs = {}
        if num_k_exclude_rope > 0:
            if not isinstance(self.cross_attn_image, RoPEAttention):
                raise ValueError("num_k_exclude_rope needs RoPE cross-attention")
            kwargs = {"num_k_exclude_rope": num_k_exclude_rope}
        tgt2 = self.norm2(tgt)
        tgt2 = self.cross_attn_image(
            q=tgt2 + query_pos if self.pos_enc_at_cross_attn_queries else tgt2,
            k=memory + pos if self.pos_enc_at_cross_attn_keys else memory,
            v=memory,
            **kwargs,
        )
        return tgt + self.dropout2(tgt2)

    def forward(self, tgt, memory, pos=None, query_pos=None, num_k_exclude_rope=0, shared_batch=0):
        """shared_batch=B: ``tgt``/``query_pos`` hold one row that is the same for all B
        objects; self-attention runs once and its result is broadcast to the B memories."""
        tgt = self._forward_sa(tgt, query_pos)
        if shared_batch:
            tgt = tgt.expand(shared_batch, -1, -1)
            query_pos = None if query_pos is None else query_pos.expand(shared_batch, -1, -1)
        tgt = self._forward_ca(tgt, memory, query_pos, pos, num_k_exclude_rope)
        # the hidden layer is 8x the width of tgt: 100 MB a layer with three objects
        tgt2 = self.linear2(self.dropout(activate_in_place(self.activation, self.linear1(self.norm3(tgt)))))
        return tgt + self.dropout3(tgt2)


class MemoryAttention(nn.Module):
    def __init__(self, d_model, pos_enc_at_input, layer, num_layers, batch_first=True):
        super().__init__()
        self.d_model = d_model
        self.layers = get_clones(layer, num_layers)
        self.num_layers = num_layers
        self.norm = nn.LayerNorm(d_model)
        self.pos_enc_at_input = pos_enc_at_input
        self.batch_first = batch_first

    def forward(self, curr, memory, curr_pos=None, memory_pos=None, num_obj_ptr_tokens=0):
        """curr/curr_pos: [HW, B, C] (or a one-element list of it); memory/memory_pos:
        [M, B, mem_dim], the last ``num_obj_ptr_tokens`` rows being object pointers
        (no RoPE on those). Returns [HW, B, C]."""
        if isinstance(curr, list):
            if not isinstance(curr_pos, list) or len(curr) != 1 or len(curr_pos) != 1:
                raise ValueError("MemoryAttention: list inputs must hold exactly one level")
            curr, curr_pos = curr[0], curr_pos[0]
        if curr.shape[1] != memory.shape[1]:
            raise ValueError(f"MemoryAttention: batch {curr.shape[1]} vs memory batch {memory.shape[1]}")

        # Several objects on one frame share the frame's features (a broadcast view, batch
        # stride 0): until the first cross-attention reads their own memories, every row is
        # the same, so the input projection and the first self-attention run once.
        batch = curr.shape[1]
        shared = (self.batch_first and batch > 1 and curr.stride(1) == 0
                  and (curr_pos is None or curr_pos.stride(1) == 0))
        if shared:
            curr = curr[:, :1]
            curr_pos = None if curr_pos is None else curr_pos[:, :1]
        output = curr
        if self.pos_enc_at_input and curr_pos is not None:
            output = output + 0.1 * curr_pos
        if self.batch_first:
            # contiguous once here, rather than a hidden copy in every Linear of every layer
            output = output.transpose(0, 1).contiguous()
            curr_pos = None if curr_pos is None else curr_pos.transpose(0, 1)
            memory = memory.transpose(0, 1).contiguous()
            memory_pos = memory_pos.transpose(0, 1)

        for i, layer in enumerate(self.layers):
            kwargs = {}
            if isinstance(layer.cross_attn_image, RoPEAttention):
                kwargs = {"num_k_exclude_rope": num_obj_ptr_tokens}
            if shared and i == 0:
                kwargs["shared_batch"] = batch
            output = layer(tgt=output, memory=memory, pos=memory_pos, query_pos=curr_pos, **kwargs)
            if shared and i == 0:
                curr_pos = None if curr_pos is None else curr_pos.expand(batch, -1, -1)
        output = self.norm(output)
        if self.batch_first:
            output = output.transpose(0, 1)
        return output
