"""Small building blocks shared by several SAM 2 components."""

import copy

import torch
from torch import nn
import torch.nn.functional as F


class MLP(nn.Module):
    """Stack of Linear layers with an activation between them (none after the last).

    Keys are ``layers.<i>.weight/bias`` like the official ``sam2_utils.MLP``.
    """

    def __init__(self, input_dim, hidden_dim, output_dim, num_layers, activation=nn.ReLU,
                 sigmoid_output=False):
        super().__init__()
        self.num_layers = num_layers
        hidden = [hidden_dim] * (num_layers - 1)
        self.layers = nn.ModuleList(
            nn.Linear(n_in, n_out) for n_in, n_out in zip([input_dim] + hidden, hidden + [output_dim])
        )
        self.sigmoid_output = sigmoid_output
        self.act = activation()

    def forward(self, x):
        last = self.num_layers - 1
        for i, layer in enumerate(self.layers):
            x = layer(x)
            if i < last:
                x = activate_in_place(self.act, x)
        if self.sigmoid_output:
            x = torch.sigmoid(x)
        return x


class LayerNorm2d(nn.Module):
    """LayerNorm over the channel axis of an NCHW tensor."""

    def __init__(self, num_channels, eps=1e-6):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(num_channels))
        self.bias = nn.Parameter(torch.zeros(num_channels))
        self.eps = eps

    def forward(self, x):
        mean = x.mean(1, keepdim=True)
        var = (x - mean).pow(2).mean(1, keepdim=True)
        x = (x - mean) / torch.sqrt(var + self.eps)
        return self.weight[:, None, None] * x + self.bias[:, None, None]


def activate_in_place(activation, x):
    """``activation(x)`` (a module or function), in place where it can be: outside autograd
    and for ReLU or exact GELU. ``x`` must be a fresh result nothing else reads (a Linear's
    output); in Hiera's first stage that saves a 100 MB copy of the hidden layer."""
    if x.requires_grad:
        return activation(x)
    if activation is F.relu or isinstance(activation, nn.ReLU):
        return x.relu_()
    if activation is F.gelu or (isinstance(activation, nn.GELU) and activation.approximate == "none"):
        return torch.ops.aten.gelu_(x)
    return activation(x)


def get_clones(module, n):
    """``n`` independent deep copies of ``module`` (a config gives one layer spec)."""
    return nn.ModuleList(copy.deepcopy(module) for _ in range(n))


def activation_fn(name):
    """The functional activation named in a config (``relu``, ``gelu``, ``glu``)."""
    table = {"relu": F.relu, "gelu": F.gelu, "glu": F.glu}
    if name not in table:
        raise ValueError(f"unknown activation {name!r}; expected one of {sorted(table)}")
    return table[name]


def get_1d_sine_pe(pos_inds, dim, temperature=10000):
    """Sine/cosine encoding of 1-D positions [N] -> [N, dim] (object-pointer temporal positions)."""
    half = dim // 2
    dim_t = torch.arange(half, dtype=torch.float32, device=pos_inds.device)
    dim_t = temperature ** (2 * (dim_t // 2) / half)
    angles = pos_inds.unsqueeze(-1) / dim_t
    return torch.cat([angles.sin(), angles.cos()], dim=-1)
