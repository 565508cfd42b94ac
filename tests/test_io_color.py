"""Input colour transforms: built-in sRGB / Rec.709 / linear, OpenColorIO, and bad names."""

from __future__ import annotations

import numpy as np
import pytest

from samroto.core.io import (
    ColorError,
    ColorSpec,
    build_transform,
    highlight_rolloff,
    list_color_spaces,
    open_frames,
    srgb_decode,
    srgb_encode,
)
from test_io_support import write_image

RAMP = np.linspace(0.0, 1.0, 64, dtype=np.float32).reshape(4, 16)


def test_srgb_curves_round_trip_and_known_values():
    rgb = np.stack([RAMP] * 3, axis=-1)
    assert np.allclose(srgb_decode(srgb_encode(rgb)), rgb, atol=1e-6)
    assert np.isclose(srgb_encode(np.float32(0.18)), 0.4613561, atol=1e-5)  # 18% grey in sRGB
    assert np.isclose(srgb_encode(np.float32(0.0031308)), 0.04045, atol=1e-5)  # the piecewise joint


def test_linear_exr_is_encoded_display_referred(tmp_path):
    linear = np.stack([RAMP * 0.8] * 3, axis=-1)  # below the roll-off knee: exact inverse
    write_image(tmp_path / "lin.0001.exr", linear, "float")
    src = open_frames(tmp_path / "lin.0001.exr")  # auto: float data is scene-linear
    out = src.read(1)
    assert np.allclose(srgb_decode(out), linear, atol=1e-5)
    assert "scene-linear" in src.describe()["color"]["transform"]


def test_highlight_rolloff_keeps_highlights_apart_and_below_one():
    x = np.array([0.5, 0.8, 1.0, 2.0, 8.0, 100.0], np.float32)
    y = highlight_rolloff(x)
    assert y[0] == np.float32(0.5) and y[1] == np.float32(0.8)  # unchanged below the knee (float32)
    assert np.all(np.diff(y) > 0) and y.max() <= 1.0  # monotone, compressed rather than clipped
    clipped = build_transform(ColorSpec("linear", highlight_rolloff=False), True).apply(x.reshape(1, 2, 3))
    assert clipped.max() == 1.0


def test_integer_data_passes_through_as_srgb(tmp_path):
    img = (np.stack([RAMP] * 3, axis=-1) * 65535).astype(np.uint16)
    write_image(tmp_path / "d.0001.tif", img, "uint16")
    src = open_frames(tmp_path / "d.0001.tif")
    assert src.transform.identity
    assert np.allclose(src.read(1), img / 65535.0, atol=1e-6)
    # Asking for "linear" on integer data is honoured.
    lin = open_frames(tmp_path / "d.0001.tif", color={"input": "linear", "highlight_rolloff": False})
    assert np.allclose(lin.read(1), srgb_encode(img / 65535.0), atol=1e-5)


def test_rec709_oetf_input():
    t = build_transform("rec709", False)
    # Rec.709 OETF code value of 18% grey is 0.409; it shows as sRGB 18% grey.
    v = np.full((1, 1, 3), 0.40900, np.float32)
    assert np.allclose(t.apply(v), 0.4613561, atol=2e-3)


def test_ocio_log_to_linear_matches_the_published_grey():
    # ARRI LogC3 EI800: 18% grey is code value 0.391007 (ARRI's published formula).
    spec = ColorSpec("ARRI LogC3 (EI800)", ocio_config="ocio://studio-config-latest",
                     display="Linear Rec.709 (sRGB)")
    out = build_transform(spec, False).apply(np.full((2, 2, 3), 0.391007, np.float32))
    assert np.allclose(out, 0.18, atol=1e-4)


def test_ocio_agrees_with_the_builtin_srgb_encoding():
    spec = ColorSpec("Linear Rec.709 (sRGB)", ocio_config="ocio://studio-config-latest",
                     display="sRGB Encoded Rec.709 (sRGB)")
    ramp = np.stack([RAMP] * 3, axis=-1)
    assert np.allclose(build_transform(spec, True).apply(ramp), srgb_encode(ramp), atol=2e-4)


def test_ocio_acescg_to_srgb_display(tmp_path):
    pixels = np.zeros((2, 3, 3), np.float32)
    pixels[:, 0] = 0.18  # grey
    pixels[:, 1] = [1.0, 0.0, 0.0]  # AP1 red
    pixels[:, 2] = 16.0  # a bright highlight
    write_image(tmp_path / "cg.exr", pixels, "half")
    src = open_frames(tmp_path / "cg.exr", color=ColorSpec("ACEScg", ocio_config="ocio://default"))
    out = src.read(0)
    assert "sRGB - Display" in src.transform.description  # "sRGB" finds the display, default view
    grey, red, bright = out[0, 0], out[0, 1], out[0, 2]
    assert np.ptp(grey) < 1e-3 and 0.3 < grey[0] < 0.5  # neutral stays neutral, mid-grey tone
    assert red[0] > 0.7 and red[1] < 0.1
    assert 0.85 < bright.min() <= 1.0  # tone-mapped, not NaN or over 1


def test_unknown_colour_space_lists_how_to_find_names():
    with pytest.raises(ColorError) as err:
        build_transform(ColorSpec("ACEScgg", ocio_config="ocio://default"), True)
    msg = str(err.value)
    assert "ACEScgg" in msg and "'ACEScg'" in msg and "list_color_spaces" in msg
    with pytest.raises(ColorError, match="unknown colour space"):
        build_transform("LogC9000", False)
    with pytest.raises(ColorError, match="cannot load the OpenColorIO config"):
        build_transform(ColorSpec("ACEScg", ocio_config="/nonexistent/config.ocio"), True)
    with pytest.raises(ColorError, match="unknown display"):
        build_transform(ColorSpec("ACEScg", ocio_config="ocio://default", display="Hologram"), True)
    with pytest.raises(ColorError, match="unknown colour setting"):
        ColorSpec.coerce({"inptu": "srgb"})
    assert "ACEScg" in list_color_spaces("ocio://default") and list_color_spaces()[:4] == [
        "auto", "srgb", "rec709", "linear"]


def test_source_with_unknown_colour_space_fails_on_first_read(tmp_path):
    write_image(tmp_path / "x.0001.png", np.zeros((4, 4, 3), np.uint8))
    src = open_frames(tmp_path / "x.0001.png", color="NotASpace")
    with pytest.raises(ColorError):
        src.read(1)
