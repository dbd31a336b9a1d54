"""The one definition of each logit recipe kind: dict round trips, defaults, and refusals naming the file."""
from __future__ import annotations

import pytest

from data.recipes import KINDS, CutieStride4, RecipeError, Sam2Bilinear, as_recipe, from_dict


def test_round_trips_through_the_stored_dict_form():
    sam = Sam2Bilinear(video_hw=(480, 854), hflip=True)
    assert sam.to_dict() == {"kind": "sam2_bilinear", "video_hw": [480, 854], "hflip": True}
    assert from_dict(sam.to_dict()) == sam and as_recipe(sam) is sam
    cut = CutieStride4.make(padded_hw=[48, 64], pad=[1, 2, 3, 4], resize_hw=[[50, 70]], source="mask")
    d = cut.to_dict()
    assert d == {"kind": "cutie_stride4", "video_hw": [50, 70], "hflip": False, "padded_hw": [48, 64],
                 "pad": [1, 2, 3, 4], "internal_hw": [41, 61], "resize_hw": [[50, 70]], "flip_aug": False,
                 "source": "mask"}
    assert from_dict(d) == cut
    assert KINDS == ("sam2_bilinear", "cutie_stride4")


def test_older_cutie_dicts_get_the_defaults():
    """Stores written before resize_hw / flip_aug / source were recorded still read."""
    r = from_dict({"kind": "cutie_stride4", "padded_hw": [32, 48], "pad": [0, 0, 0, 0], "video_hw": [40, 60]})
    assert r.internal_hw == (32, 48) and r.resize_hw == () and r.flip_aug is False and r.source == "network"


@pytest.mark.parametrize("bad, message", [
    ({"kind": "xmem_soft"}, "unknown logit recipe kind 'xmem_soft'"),
    ("not a dict", "unknown logit recipe kind None"),
    ({"kind": "sam2_bilinear"}, "sam2_bilinear recipe lacks video_hw"),
    ({"kind": "sam2_bilinear", "video_hw": [10]}, "video_hw must be"),
    ({"kind": "sam2_bilinear", "video_hw": [10, 10], "hflip": 1}, "hflip must be true/false"),
    ({"kind": "cutie_stride4", "video_hw": [10, 10], "padded_hw": [30, 32], "pad": [0, 0, 0, 0]},
     "multiples of 16"),
    ({"kind": "cutie_stride4", "video_hw": [10, 10], "padded_hw": [32, 32], "pad": [0, 0, 0, 0],
      "internal_hw": [30, 32]}, "internal_hw"),
    ({"kind": "cutie_stride4", "video_hw": [10, 10], "padded_hw": [32, 32], "pad": [0, 0, -1, 0]}, "pad must be"),
    ({"kind": "cutie_stride4", "video_hw": [10, 10], "padded_hw": [32, 32], "pad": [0, 0, 0, 0], "source": "x"},
     "source must be one of"),
])
def test_bad_recipes_are_refused_naming_the_file(bad, message):
    with pytest.raises(RecipeError, match=message) as err:
        from_dict(bad, "store/videos/v.zip")
    assert "store/videos/v.zip" in str(err.value)
