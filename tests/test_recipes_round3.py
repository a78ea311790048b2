"""A stranger's recipe, round 3: every field bounded before any work, limits only lowered,
unknown fields refused by name, octave files and moved inputs replayed honestly."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from test_hostile import good_recipe, one_line, recipe_png, run_child

from inceptionism.io.image import read_recipe

LIMIT = 3 << 30  # address space for the children below: a refused recipe allocates nothing


def lucid_recipe(**fields: object) -> dict:
    render = {"featurevis": {"size": 64, "batch": 2, "steps": 1, **fields},
              "units": ["block9:3", "block9:5"], "index": 0}  # fmt: skip
    return good_recipe(kind="cell", featurevis=render, start={"kind": "noise", "size": [64, 64]})


@pytest.mark.parametrize(
    "fields,message",
    [({"size": 4096, "batch": 1}, "limit"), ({"size": 1024, "batch": 64}, "limit"),
     ({"size": 300, "batch": 256}, "limit"), ({"transforms": 5}, "transforms"),
     ({"diversity_layer": ["x"]}, "diversity_layer"), ({"param": ["fft"]}, "param"),
     ({"decorrelate": "yes"}, "decorrelate")],
)  # fmt: skip
def test_lucid_cell_recipes_are_bounded_and_typed(tmp_path, fields, message):
    recipe = lucid_recipe(**fields)
    if fields.get("size"):
        side = fields["size"]
        recipe["start"]["size"] = [side, side]
    text = json.dumps(recipe)
    png = recipe_png(tmp_path / "r.png", None, text=text)
    code, err, peak = run_child("replay", png, "-o", tmp_path / "o.png", cwd=tmp_path,
                                limit=LIMIT)  # fmt: skip
    assert code == 2 and one_line(err), err
    assert message in err
    assert not (tmp_path / "o.png").exists()
    assert peak < 1500


def test_a_recipe_with_the_old_featurevis_kind_is_one_line(tmp_path):
    old = {"format": 2, "kind": "featurevis", "model": "efficientnet_lite0", "units": ["block9:3"],
           "index": 0, "featurevis": {"size": 4096, "batch": 256}}  # fmt: skip
    png = recipe_png(tmp_path / "r.png", old)
    code, err, _ = run_child("replay", png, "-o", tmp_path / "o.png", cwd=tmp_path, limit=LIMIT)
    assert code == 2 and one_line(err) and ("kind" in err or "units" in err), err


@pytest.mark.parametrize(
    "text,where",
    [('{"format": 2, "index": %s}' % ("9" * 5000), "number"),
     ('{"format": 2, "config": {"steps": %s}}' % ("1" * 4400), "number")],
)  # fmt: skip
def test_integers_of_any_length_in_a_recipe_are_one_line(tmp_path, text, where):
    png = recipe_png(tmp_path / "r.png", None, text=text)
    code, err, _ = run_child("replay", png, "-o", tmp_path / "o.png", cwd=tmp_path, limit=LIMIT)
    assert code == 2 and one_line(err), err
    assert where in err


@pytest.mark.parametrize(
    "changes,name",
    [({"colour": "red"}, "'colour'"), ({"start": {"kind": "noise", "size": [32, 32], "gain": 2}},
      "'start.gain'"),
     ({"guide": {"path": "g.png", "sha256": None, "url": "http://x"}}, "'guide.url'"),
     ({"environment": {"torch": "2.13.0", "plugins": "x"}}, "'environment.plugins'"),
     ({"config": {"model": "efficientnet_lite0", "layers": "block9", "steps": 1, "turbo": 1}},
      "turbo")],
)  # fmt: skip
def test_unknown_fields_anywhere_are_refused_by_name(tmp_path, changes, name):
    png = recipe_png(tmp_path / "r.png", good_recipe(**changes))
    code, err, _ = run_child("replay", png, "-o", tmp_path / "o.png", cwd=tmp_path, limit=LIMIT)
    assert code == 2 and one_line(err), err
    assert name in err


def test_a_recipe_cannot_raise_the_pixel_limit(tmp_path):
    """A 12000x12000 PNG that `dream` refuses is refused by `replay` too, whatever the recipe's
    own max_pixels says, before it is decoded."""
    big = tmp_path / "big.png"
    Image.new("1", (12000, 12000)).save(big)
    code, err, _ = run_child("dream", big, "-o", tmp_path / "d.png", cwd=tmp_path, limit=LIMIT)
    assert code == 2 and one_line(err) and "pixels" in err, err
    from inceptionism.models.weights import sha256_file

    recipe = good_recipe(
        config={"model": "efficientnet_lite0", "layers": "block9", "steps": 1, "octaves": 1},
        start={"kind": "photo", "max_pixels": 150_000_000,
               "source": {"input": str(big), "path": str(big), "sha256": sha256_file(big)}},
    )  # fmt: skip
    png = recipe_png(tmp_path / "r.png", recipe)
    code, err, peak = run_child("replay", png, "-o", tmp_path / "o.png", cwd=tmp_path,
                                limit=LIMIT)  # fmt: skip
    assert code == 2 and one_line(err) and "pixels" in err, err
    assert peak < 1500 and not (tmp_path / "o.png").exists()
    # replay takes --max-pixels like dream: a lower one than the recipe's applies too
    small = tmp_path / "small.png"
    Image.new("RGB", (300, 200)).save(small)
    recipe["start"]["source"] = {"input": str(small), "path": str(small),
                                 "sha256": sha256_file(small)}  # fmt: skip
    png = recipe_png(tmp_path / "r2.png", recipe)
    code, err, _ = run_child("replay", png, "--max-pixels", "10000", "-o", tmp_path / "o.png",
                             cwd=tmp_path, limit=LIMIT)  # fmt: skip
    assert code == 2 and one_line(err) and "10000" in err, err


LITE = ["--model", "lite0", "--steps", "2", "-q"]


def pixels(path: Path) -> np.ndarray:
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"))


def test_octave_files_replay_to_their_own_pixels(run_cli, tmp_path):
    out = tmp_path / "d.png"
    r = run_cli("dream", "sample:coffee", "--max-size", "96", "--octaves", "3", "--save-octaves",
                "-o", out, *LITE)  # fmt: skip
    assert r.code == 0, r.err
    for k in (1, 2):
        octave = tmp_path / f"d.octave{k}.png"
        assert read_recipe(octave)["octave"] == k
        again = tmp_path / f"again{k}.png"
        r = run_cli("replay", octave, "-o", again, "-q")
        assert r.code == 0, r.err
        assert np.array_equal(pixels(again), pixels(octave))
        assert read_recipe(again)["octave"] == k
    assert pixels(tmp_path / "again1.png").shape != pixels(out).shape


def test_replay_with_a_changed_input_warns_in_one_line(run_cli, tmp_path):
    photo = tmp_path / "photo.png"
    Image.open(Path(read_recipe_source())).convert("RGB").resize((90, 60)).save(photo)
    r = run_cli("dream", photo, "-o", tmp_path / "d.png", *LITE)
    assert r.code == 0, r.err
    other = tmp_path / "other.png"
    Image.new("RGB", (90, 60), (200, 30, 30)).save(other)
    r = run_cli("replay", tmp_path / "d.png", "--input", other, "-o", tmp_path / "r.png")
    assert r.code == 0, r.err
    warnings = [ln for ln in r.err_lines if "differs from the recorded" in ln]
    assert len(warnings) == 1 and "other.png" in warnings[0]
    r = run_cli("replay", tmp_path / "d.png", "--input", photo, "-o", tmp_path / "s.png", "-q")
    assert r.code == 0 and r.err == "", r.err  # the same file given again: nothing to say
    assert np.array_equal(pixels(tmp_path / "s.png"), pixels(tmp_path / "d.png"))


def read_recipe_source() -> str:
    from inceptionism.io.samples import sample_path

    return str(sample_path("sample:chelsea"))


def test_a_dream_whose_objective_never_leaves_zero_says_so_and_writes(tmp_path):
    args = ["dream", "--init", "grey", "--size", "160x160", "--layers", "block11.dw:5", "--model",
            "lite0", "--steps", "2", "--octaves", "2", "-q"]  # fmt: skip
    code, err, _ = run_child(*args, "-o", tmp_path / "dead.png", cwd=tmp_path)
    assert code == 0 and (tmp_path / "dead.png").exists()
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and "stayed at 0" in lines[0] and "block11.dw:5" in lines[0], err
    assert "another channel" in lines[0] and "photo start" in lines[0]
    # a dream that moves says nothing
    code, err, _ = run_child("dream", "sample:coffee", "--max-size", "64", "-o",
                             tmp_path / "live.png", *LITE, cwd=tmp_path)  # fmt: skip
    assert code == 0 and err == "", err
