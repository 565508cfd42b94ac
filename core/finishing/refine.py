"""Edge refinement: low-res SAM 2 logits -> full-resolution soft alpha that follows the plate.

A fast colour guided filter (He, Sun & Tang, "Guided Image Filtering", TPAMI 2013; and
He & Sun, "Fast Guided Filter", 2015). Inside each window the output alpha is an affine
function of the plate's colour, ``q = a . I + b``, fitted to the upsampled SAM 2 probability.
Where the plate has an edge near the matte's edge, the alpha snaps to it; where the plate is
flat, ``a`` goes to 0 and the alpha stays the model's. The linear coefficients are smooth,
so they are computed at a working resolution (about 1K on the long side) and upsampled,
and only the last step, ``a . I + b``, runs at full resolution.

Box filters are cumulative sums (cost independent of the radius); everything is torch,
so the same code runs on CUDA, MPS and the CPU.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from ._arrays import kind_of, to_torch

# Working resolution: the long side of the guided filter's grid is about this many pixels.
WORK_LONG_SIDE = 960


def box_mean(x: torch.Tensor, r: int) -> torch.Tensor:
    """Mean over a (2r+1)^2 window, windows clipped at the image border. x: (..., H, W)."""
    if r <= 0:
        return x
    h, w = x.shape[-2:]
    return _box_sum(_box_sum(x, r, -2), r, -1) / (_counts(h, r, x)[:, None] * _counts(w, r, x)[None, :])


def _counts(n: int, r: int, like: torch.Tensor) -> torch.Tensor:
    i = torch.arange(n, device=like.device, dtype=like.dtype)
    return torch.clamp(i + r, max=n - 1) - torch.clamp(i - r, min=0) + 1


def _box_sum(x: torch.Tensor, r: int, dim: int) -> torch.Tensor:
    n = x.shape[dim]
    c = torch.cumsum(x, dim)
    zero = torch.zeros_like(c.narrow(dim, 0, 1))
    c = torch.cat([zero, c], dim)
    i = torch.arange(n, device=x.device)
    hi = torch.clamp(i + r + 1, max=n)
    lo = torch.clamp(i - r, min=0)
    return c.index_select(dim, hi) - c.index_select(dim, lo)


def _resize(x: torch.Tensor, size: tuple[int, int], mode: str = "bilinear") -> torch.Tensor:
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    if mode == "area":
        return F.interpolate(x, size=size, mode="area")
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False)


def work_size(height: int, width: int, long_side: int = WORK_LONG_SIDE) -> tuple[int, int]:
    s = max(1.0, max(height, width) / float(long_side))
    return max(1, round(height / s)), max(1, round(width / s))


def auto_radius(full_hw: tuple[int, int], logits_hw: tuple[int, int]) -> float:
    """Two logit pixels, in full-resolution pixels: the band where SAM 2's edge is unsure."""
    return 2.0 * max(full_hw[0] / logits_hw[0], full_hw[1] / logits_hw[1])


def bilinear_alpha(logits, size: tuple[int, int]):
    """SAM 2's own upsampling: bilinear on the logits, then a sigmoid. size = (H, W)."""
    kind = kind_of(logits)
    x = _as_bchw(to_torch(logits, name="logits"))
    out = torch.sigmoid(_resize(x, size))
    return kind.back(_unbatch(out[:, 0], logits))


def _as_bchw(x: torch.Tensor) -> torch.Tensor:
    """Logits as (B, 1, h, w): accepts (h, w), (B, h, w) or (B, 1, h, w)."""
    if x.ndim == 2:
        return x[None, None]
    if x.ndim == 3:
        return x[:, None]
    if x.ndim == 4 and x.shape[1] == 1:
        return x
    raise ValueError(f"logits must be HxW, BxHxW or Bx1xHxW, got shape {tuple(x.shape)}")


def _plate_bchw(plate: torch.Tensor) -> torch.Tensor:
    if plate.ndim == 2:
        plate = plate[..., None]
    if plate.ndim != 3 or plate.shape[-1] not in (1, 3, 4):
        raise ValueError(f"plate must be HxWx3 (or HxW / HxWx1 / HxWx4), got shape {tuple(plate.shape)}")
    p = plate[..., :3] if plate.shape[-1] == 4 else plate
    if p.shape[-1] == 1:
        p = p.expand(*p.shape[:2], 3)
    return p.permute(2, 0, 1)[None].clamp(0.0, 1.0)


def guided_coefficients(guide: torch.Tensor, p: torch.Tensor, r: int, eps: float):
    """Colour guided filter coefficients (a: Bx3xhxw, b: Bx1xhxw), already box-averaged.

    guide: 1x3xhxw in [0,1]; p: Bx1xhxw. The 3x3 covariance is inverted in closed form
    (adjugate / determinant), per pixel, batched over objects that share the plate.
    """
    I = guide[0]                                   # 3,h,w
    mean_I = box_mean(I, r)                        # 3,h,w
    pairs = [(0, 0), (0, 1), (0, 2), (1, 1), (1, 2), (2, 2)]
    II = torch.stack([I[i] * I[j] for i, j in pairs])
    var = box_mean(II, r) - torch.stack([mean_I[i] * mean_I[j] for i, j in pairs])
    rr, rg, rb, gg, gb, bb = var
    rr, gg, bb = rr + eps, gg + eps, bb + eps
    # adjugate of the symmetric 3x3 [[rr rg rb][rg gg gb][rb gb bb]]
    i_rr = gg * bb - gb * gb
    i_rg = gb * rb - rg * bb
    i_rb = rg * gb - gg * rb
    i_gg = rr * bb - rb * rb
    i_gb = rb * rg - rr * gb
    i_bb = rr * gg - rg * rg
    det = rr * i_rr + rg * i_rg + rb * i_rb

    p3 = p[:, 0]                                   # B,h,w
    mean_p = box_mean(p3, r)
    Ip = torch.stack([box_mean(I[c][None] * p3, r) - mean_I[c][None] * mean_p for c in range(3)], 1)
    cr, cg, cb = Ip[:, 0], Ip[:, 1], Ip[:, 2]
    a = torch.stack([
        i_rr * cr + i_rg * cg + i_rb * cb,
        i_rg * cr + i_gg * cg + i_gb * cb,
        i_rb * cr + i_gb * cg + i_bb * cb,
    ], 1) / det
    b = mean_p - (a * mean_I[None]).sum(1)
    return box_mean(a, r), box_mean(b, r)[:, None]


def refine_alpha(logits, plate, radius: float = 0.0, eps: float = 1e-3, strength: float = 1.0,
                 device: str | torch.device | None = None):
    """Full-resolution soft alpha from SAM 2 logits, guided by the plate.

    logits: (h, w) or (B, h, w) low-res (e.g. 256x256 squashed square) or full-res logits;
    plate: (H, W, 3) float in [0, 1], display-referred. radius in full-res pixels
    (0: auto, two logit pixels); eps: edge sensitivity (smaller follows weaker plate
    edges); strength: 0 = plain bilinear upsampling, 1 = fully guided. Returns (H, W) or
    (B, H, W), as numpy or torch like ``logits``, on ``logits``' device (torch) unless
    ``device`` says where to compute.
    """
    if not 0.0 <= strength <= 1.0:
        raise ValueError(f"refine strength must be between 0 and 1, got {strength}")
    if eps <= 0:
        raise ValueError(f"refine eps must be > 0, got {eps}")
    kind = kind_of(logits)
    dev = torch.device(device) if device is not None else (kind.device if kind.is_torch else torch.device("cpu"))
    x = _as_bchw(to_torch(logits, dev, "logits"))
    guide_full = _plate_bchw(to_torch(plate, dev, "plate"))
    H, W = guide_full.shape[-2:]
    base = torch.sigmoid(_resize(x, (H, W)))
    if strength > 0:
        h, w = work_size(H, W)
        scale = max(H / h, W / w)
        r_full = radius if radius > 0 else auto_radius((H, W), x.shape[-2:])
        r = max(1, int(math.ceil(r_full / scale)))
        guide = _resize(guide_full, (h, w), "area")
        p = torch.sigmoid(_resize(x, (h, w)))
        a, b = guided_coefficients(guide, p, r, eps)
        A = _resize(a, (H, W))
        B = _resize(b, (H, W))
        q = ((A * guide_full).sum(1, keepdim=True) + B).clamp_(0.0, 1.0)
        base = q if strength >= 1.0 else torch.lerp(base, q, strength)
    return kind.back(_unbatch(base[:, 0], logits))


def _unbatch(out: torch.Tensor, like) -> torch.Tensor:
    """HxW in, HxW out; BxHxW or Bx1xHxW in, BxHxW out."""
    return out[0] if len(tuple(like.shape)) == 2 else out
