"""ImagePredictor: one image embedding, many prompts (Meta's SAM2ImagePredictor semantics).

Coordinates are pixels of the input image (x right, y down); labels 1 positive, 0
negative, -1 padding; boxes x0, y0, x1, y1. Results are numpy arrays.
"""

import numpy as np
import torch
import torch.nn.functional as F

from samroto.core.precision import compute_precision, resolve_precision

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def preprocess_image(image, image_size, device="cpu"):
    """RGB uint8 [H, W, 3] -> normalised float32 [1, 3, S, S]: scaled to [0, 1], resized to
    S x S without keeping the aspect ratio (bilinear, antialiased), ImageNet-normalised."""
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"expected an RGB image of shape [H, W, 3], got {image.shape}")
    if image.dtype != np.uint8:
        raise ValueError(f"expected a uint8 image (0..255), got dtype {image.dtype}; convert it first")
    x = torch.from_numpy(np.ascontiguousarray(image)).to(device).permute(2, 0, 1).float().div(255.0)
    x = F.interpolate(x[None], size=(image_size, image_size), mode="bilinear", align_corners=False, antialias=True)
    mean = torch.tensor(IMAGENET_MEAN, device=device).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD, device=device).view(1, 3, 1, 1)
    return (x - mean) / std


class ImagePredictor:
    """Prompted masks for one image (or a batch of images) with a cached embedding."""

    def __init__(self, model, mask_threshold=0.0, precision="auto"):
        self.model = model
        self.mask_threshold = mask_threshold
        self.dtype = resolve_precision(precision, model.device)  # see core/precision.py
        self.reset_predictor()

    @property
    def device(self):
        return self.model.device

    def reset_predictor(self):
        self._features = None
        self._orig_hw = []
        self._is_batch = False

    @property
    def is_image_set(self):
        return self._features is not None

    def _autocast(self):
        return compute_precision(self.dtype, self.device)

    @torch.inference_mode()
    def _embed(self, images):
        size = self.model.image_size
        batch = torch.cat([preprocess_image(im, size, self.device) for im in images], dim=0)
        with self._autocast():
            backbone_out = self.model.forward_image(batch)
        self._set_backbone(backbone_out["backbone_fpn"], [tuple(np.asarray(im).shape[:2]) for im in images])

    @torch.inference_mode()
    def set_image_features(self, backbone_fpn, image_hw):
        """Use one image's features computed elsewhere instead of running the image encoder:
        ``backbone_fpn`` as ``model.forward_image`` returns it for that image (e.g. a video
        session's cached features of the same frame), ``image_hw`` the image's (H, W)."""
        self.reset_predictor()
        self._set_backbone(list(backbone_fpn), [tuple(image_hw)])

    def _set_backbone(self, backbone_fpn, orig_hw):
        levels = len(backbone_fpn)
        with self._autocast():
            _, vision_feats, _, feat_sizes = self.model.prepare_backbone_features(
                {"backbone_fpn": backbone_fpn, "vision_pos_enc": [None] * levels})
            if self.model.directly_add_no_mem_embed:
                vision_feats[-1] = vision_feats[-1] + self.model.no_mem_embed
        n = backbone_fpn[-1].shape[0]
        feats = [f.permute(1, 2, 0).reshape(n, -1, *hw) for f, hw in zip(vision_feats, feat_sizes)]
        self._features = {"image_embed": feats[-1], "high_res_feats": feats[:-1]}
        self._orig_hw = orig_hw

    def set_image(self, image):
        """Compute the embedding of one RGB uint8 [H, W, 3] image."""
        self.reset_predictor()
        self._embed([image])

    def set_image_batch(self, images):
        """Compute the embeddings of several RGB uint8 images (sizes may differ)."""
        if not isinstance(images, (list, tuple)) or not images:
            raise ValueError("set_image_batch expects a non-empty list of RGB uint8 images")
        self.reset_predictor()
        self._embed(list(images))
        self._is_batch = True

    def get_image_embedding(self):
        if self._features is None:
            raise RuntimeError("no image set: call set_image() first")
        return self._features["image_embed"]

    def predict(self, point_coords=None, point_labels=None, box=None, mask_input=None,
                multimask_output=True, return_logits=False, normalize_coords=True):
        """Masks for the prompts on the current image.

        point_coords [N, 2] (or [B, N, 2]), point_labels [N] (or [B, N]), box [4] or [B, 4],
        mask_input [1, h, w] low-res logits from a previous call. Returns numpy
        (masks [C, H, W] (or [B, C, H, W]), iou [C], low_res_logits [C, h, w])."""
        if self._features is None:
            raise RuntimeError("no image set: call set_image() before predict()")
        if self._is_batch:
            raise RuntimeError("several images are set: use predict_batch()")
        return self._predict_image(0, point_coords, point_labels, box, mask_input,
                                   multimask_output, return_logits, normalize_coords)

    def predict_batch(self, point_coords_batch=None, point_labels_batch=None, box_batch=None,
                      mask_input_batch=None, multimask_output=True, return_logits=False,
                      normalize_coords=True):
        """predict() for each image of set_image_batch(); returns three lists."""
        if self._features is None:
            raise RuntimeError("no images set: call set_image_batch() first")
        count = len(self._orig_hw)
        masks, ious, lows = [], [], []
        for i in range(count):
            pick = lambda seq: None if seq is None else seq[i]  # noqa: E731
            m, q, low = self._predict_image(i, pick(point_coords_batch), pick(point_labels_batch),
                                            pick(box_batch), pick(mask_input_batch),
                                            multimask_output, return_logits, normalize_coords)
            masks.append(m)
            ious.append(q)
            lows.append(low)
        return masks, ious, lows

    @torch.inference_mode()
    def predict_low_res(self, point_coords, point_labels, mask_input=None, multimask_output=True,
                        normalize_coords=True, img_idx=0):
        """The mask decoder's own output for a batch of point prompts, left on the device and
        not upsampled: (low-res logits [B, C, h, w], not clamped; IoU [B, C]), for callers
        that upsample only the masks they keep (core/automask).

        point_coords [B, N, 2] (numpy or torch) in pixels of the image (fractions with
        normalize_coords=False), point_labels [B, N]; mask_input [B, 1, h, w] low-res logits."""
        if self._features is None:
            raise RuntimeError("no image set: call set_image() before predict_low_res()")
        mask_input, coords, labels, _ = self._prep_prompts(
            point_coords, point_labels, None, mask_input, normalize_coords, img_idx
        )
        with self._autocast():
            return self._decode(coords, labels, None, mask_input, multimask_output, img_idx)

    @torch.inference_mode()
    def _predict_image(self, img_idx, point_coords, point_labels, box, mask_input,
                       multimask_output, return_logits, normalize_coords):
        mask_input, coords, labels, boxes = self._prep_prompts(
            point_coords, point_labels, box, mask_input, normalize_coords, img_idx
        )
        with self._autocast():
            masks, iou, low_res = self._predict(coords, labels, boxes, mask_input, multimask_output,
                                                return_logits, img_idx)
        to_np = lambda t: t.squeeze(0).float().cpu().numpy()  # noqa: E731
        return to_np(masks), to_np(iou), to_np(low_res)

    def _prep_prompts(self, point_coords, point_labels, box, mask_logits, normalize_coords, img_idx):
        device = self.device
        size = self.model.image_size
        height, width = self._orig_hw[img_idx]

        def to_model_pixels(xy):
            # same operation order as Meta's SAM2Transforms.transform_coords (bitwise parity);
            # normalize_coords=False means xy are already fractions of the image (0..1)
            if normalize_coords:
                xy = xy.clone()
                xy[..., 0] = xy[..., 0] / width
                xy[..., 1] = xy[..., 1] / height
            return xy * size

        def tensor(value, dtype):
            if isinstance(value, torch.Tensor):  # already on a device: no round trip through numpy
                return value.to(device=device, dtype=dtype)
            return torch.as_tensor(np.asarray(value), dtype=dtype, device=device)

        coords = labels = boxes = masks = None
        if point_coords is not None:
            if point_labels is None:
                raise ValueError("point_coords given without point_labels")
            coords = tensor(point_coords, torch.float32)
            labels = tensor(point_labels, torch.int32)
            if coords.shape[-1] != 2 or coords.shape[:-1] != labels.shape:
                raise ValueError(
                    f"point_coords {tuple(coords.shape)} must be [N, 2] with point_labels [N] "
                    f"(got labels {tuple(labels.shape)})"
                )
            coords = to_model_pixels(coords)
            if coords.dim() == 2:
                coords, labels = coords[None], labels[None]
        if box is not None:
            boxes = torch.as_tensor(np.asarray(box), dtype=torch.float32, device=device)
            if boxes.shape[-1] != 4:
                raise ValueError(f"box must be [x0, y0, x1, y1] or [B, 4], got shape {tuple(boxes.shape)}")
            boxes = to_model_pixels(boxes.reshape(-1, 2, 2))
        if mask_logits is not None:
            masks = tensor(mask_logits, torch.float32)
            if masks.dim() == 3:
                masks = masks[None]
            expected = self.model.sam_prompt_encoder.mask_input_size
            if masks.dim() != 4 or masks.shape[1] != 1 or tuple(masks.shape[-2:]) != tuple(expected):
                raise ValueError(
                    f"mask_input must be low-res logits [1, {expected[0]}, {expected[1]}] (as returned "
                    f"by predict), got shape {tuple(masks.shape)}"
                )
        return masks, coords, labels, boxes

    def _predict(self, coords, labels, boxes, mask_input, multimask_output, return_logits, img_idx):
        low_res, iou = self._decode(coords, labels, boxes, mask_input, multimask_output, img_idx)
        masks = F.interpolate(low_res.float(), self._orig_hw[img_idx], mode="bilinear", align_corners=False)
        low_res = torch.clamp(low_res, -32.0, 32.0)
        if not return_logits:
            masks = masks > self.mask_threshold
        return masks, iou, low_res

    def _decode(self, coords, labels, boxes, mask_input, multimask_output, img_idx):
        """Prompt encoder and mask decoder: (low-res logits [B, C, h, w], IoU [B, C])."""
        model = self.model
        points = (coords, labels) if coords is not None else None
        if boxes is not None:
            # boxes go in as two corner points (labels 2, 3) ahead of the clicks
            box_labels = torch.tensor([[2, 3]], dtype=torch.int32, device=boxes.device).repeat(boxes.size(0), 1)
            if points is not None:
                if coords.shape[0] != boxes.shape[0]:
                    if coords.shape[0] == 1:
                        coords, labels = coords.expand(boxes.shape[0], -1, -1), labels.expand(boxes.shape[0], -1)
                    else:
                        raise ValueError(f"{boxes.shape[0]} boxes but {coords.shape[0]} point sets")
                points = (torch.cat([boxes, coords], dim=1), torch.cat([box_labels, labels], dim=1))
            else:
                points = (boxes, box_labels)

        sparse, dense = model.sam_prompt_encoder(points=points, boxes=None, masks=mask_input)
        batched = points is not None and points[0].shape[0] > 1  # several objects, one image
        high_res = [level[img_idx].unsqueeze(0) for level in self._features["high_res_feats"]]
        low_res, iou, _, _ = model.sam_mask_decoder(
            image_embeddings=self._features["image_embed"][img_idx].unsqueeze(0),
            image_pe=model.sam_prompt_encoder.get_dense_pe(),
            sparse_prompt_embeddings=sparse,
            dense_prompt_embeddings=dense,
            multimask_output=multimask_output,
            repeat_image=batched,
            high_res_features=high_res,
        )
        return low_res, iou
