"""Cryptomatte-style EXR: spec hash, rank layers, manifest, named channels, atomic write."""

import json
import struct

import numpy as np
import OpenImageIO as oiio
import pytest

from samroto.core.finishing.cryptomatte import (cryptomatte_channels, layer_key, murmurhash3_32, object_id,
                                                 write_cryptomatte_exr)


def test_murmurhash3_32_reference_values():
    assert murmurhash3_32(b"") == 0
    assert murmurhash3_32(b"hello") == 0x248BFA47
    assert murmurhash3_32("The quick brown fox jumps over the lazy dog") == 0x2E4FF723
    assert murmurhash3_32(b"abc", seed=1) != murmurhash3_32(b"abc")


def test_ids_follow_the_spec():
    h, f = object_id("bunny")
    assert h == 0x13851A76                                  # the spec's own example
    assert struct.unpack("<I", struct.pack("<f", f))[0] == h
    for name in (f"obj{i}" for i in range(300)):            # never inf / nan / denormal
        h, f = object_id(name)
        assert (h >> 23) & 0xFF not in (0, 255) and np.isfinite(f)


def _mattes():
    a = np.zeros((30, 40), np.float32); a[5:20, 5:25] = 1.0
    b = np.zeros((30, 40), np.float32); b[10:25, 15:35] = 0.4
    c = np.zeros((30, 40), np.float32); c[0:3, :] = 0.25
    return {"person": a, "car 2": b, "sky": c}


def test_rank_layers_sort_by_coverage():
    ch, attrs = cryptomatte_channels(_mattes())
    ids = {n: object_id(n)[1] for n in _mattes()}
    assert ch["CryptoObject00.R"][12, 20] == ids["person"] and ch["CryptoObject00.G"][12, 20] == 1.0
    assert ch["CryptoObject00.B"][12, 20] == ids["car 2"] and ch["CryptoObject00.A"][12, 20] == pytest.approx(0.4)
    assert ch["CryptoObject00.R"][28, 2] == 0.0                 # nothing there
    key = layer_key("CryptoObject")
    assert attrs[f"cryptomatte/{key}/hash"] == "MurmurHash3_32"
    manifest = json.loads(attrs[f"cryptomatte/{key}/manifest"])
    assert manifest["person"] == f"{object_id('person')[0]:08x}"
    assert {"person.A", "car_2.A", "sky.A"} <= set(ch)


def test_exr_round_trip_keeps_ids_exact(tmp_path):
    path = write_cryptomatte_exr(tmp_path / "shot.1001.exr", _mattes())
    assert [p.name for p in tmp_path.iterdir()] == ["shot.1001.exr"]   # no temp file left
    inp = oiio.ImageInput.open(str(path))
    spec = inp.spec()
    names = list(spec.channelnames)
    px = inp.read_image(oiio.FLOAT)
    inp.close()
    assert spec.getattribute(f"cryptomatte/{layer_key('CryptoObject')}/name") == "CryptoObject"
    r = px[..., names.index("CryptoObject00.R")]
    assert r[12, 20] == np.float32(object_id("person")[1])          # float32 channel: bit-exact
    assert str(spec.channelformats[names.index("person.A")]) == "half"
    np.testing.assert_allclose(px[..., names.index("car_2.A")], _mattes()["car 2"], atol=1e-3)


def test_clashing_names_are_refused():
    m = np.zeros((4, 4), np.float32)
    with pytest.raises(ValueError, match="same channel name"):
        cryptomatte_channels({"a b": m, "a_b": m})
