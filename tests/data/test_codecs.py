import numpy as np
import pytest

from data import codecs


@pytest.mark.parametrize("codec", codecs.CODECS)
def test_roundtrip(codec):
    rng = np.random.default_rng(0)
    x = (rng.normal(0, 6, (3, 256, 256))).astype(np.float32)
    x[0, 0, :5] = [0.0, 1e-9, -1e-9, -1024.0, 40.0]
    enc = codecs.encode(x, codec)
    dec = codecs.decode(enc, codec, x.shape)
    assert dec.dtype == np.float32 and dec.shape == x.shape
    if codec in ("q8", "f32"):  # sign-exact codecs
        assert np.array_equal(dec > 0, x > 0)
    if codec == "f32":
        assert np.array_equal(dec, x)
    if codec == "f16":
        assert np.allclose(dec, x, rtol=1e-3, atol=1e-7)
    if codec == "q16":
        inside = np.abs(x) < 63.99
        assert np.abs(dec - x)[inside].max() <= 1 / 1024 + 1e-6
        assert np.abs(dec[~inside]).min() > 63.99
        assert np.array_equal(dec[np.abs(x) > 1e-3] > 0, x[np.abs(x) > 1e-3] > 0)
        assert dec[0, 0, 3] < -63.9  # the SAM2 'absent' sentinel stays far below 0
    if codec == "q8":
        assert len(enc) <= 3 * 65536 + 64
        near = np.abs(x) < 4
        assert np.abs(dec - x)[near].max() < 0.07


@pytest.mark.parametrize("shape", [(5,), (0, 4, 4), (4, 4), (2, 3, 4, 5)])
def test_q16_shapes(shape):
    x = np.linspace(-3, 3, int(np.prod(shape))).astype(np.float32).reshape(shape)
    assert np.allclose(codecs.decode(codecs.encode(x, "q16"), "q16", shape), x, atol=1e-3)


def test_smooth_logits_are_small():
    yy, xx = np.mgrid[:256, :256]
    x = (20 - np.hypot(yy - 128, xx - 100) / 3).astype(np.float32)[None]
    assert len(codecs.encode(x, "q16")) < 64 * 1024
    assert len(codecs.encode(x, "q8")) < 64 * 1024


def test_unknown_codec():
    with pytest.raises(ValueError):
        codecs.encode(np.zeros(3), "png")
