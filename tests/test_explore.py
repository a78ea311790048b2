"""Sweeps, atlases and channel galleries: cells differ as the varied parameter says, bad
--vary stops before any work, interrupted runs resume from their cells."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from inceptionism.featurevis.render import FeatureVisConfig, render
from inceptionism.io.image import load_image, read_recipe
from inceptionism.models import get_model

SMALL = ["--model", "lite0", "--max-size", "64", "--octaves", "1", "--cell-size", "64", "-q"]


def _distance(cell, source):
    a = np.asarray(Image.open(cell).convert("RGB"), float)
    b = np.asarray(source.resize(Image.open(cell).size), float)
    return np.abs(a - b).mean()


@pytest.fixture
def source(coffee_path):
    return Image.open(coffee_path).convert("RGB")


def test_sweep_cells_move_further_with_more_steps_and_larger_steps(run_cli, tmp_path, source):
    cells = tmp_path / "cells"
    r = run_cli("sweep", "sample:coffee", "--vary", "step-size=0.002,0.02", "--vary",
                "steps=1,6", "-o", tmp_path / "sheet.png", "--cells", cells, "--jitter", "0",
                *SMALL)  # fmt: skip
    assert r.code == 0, r.err
    sheet = Image.open(tmp_path / "sheet.png")
    assert sheet.width > 2 * 64 and sheet.height > 3 * 64  # a source row and a 2 x 2 grid
    d = {p.stem: _distance(p, source) for p in cells.glob("*.png")}
    assert len(d) == 4
    assert d["step-size=0.002_steps=6"] > d["step-size=0.002_steps=1"]
    assert d["step-size=0.02_steps=6"] > d["step-size=0.02_steps=1"]
    assert d["step-size=0.02_steps=1"] > d["step-size=0.002_steps=1"]
    assert d["step-size=0.02_steps=6"] > d["step-size=0.002_steps=6"]
    recipe = read_recipe(cells / "step-size=0.02_steps=6.png")
    assert recipe["config"]["step_size"] == 0.02 and recipe["config"]["steps"] == 6
    # cells share the seed: every recipe has the same one
    assert {read_recipe(p)["config"]["seed"] for p in cells.glob("*.png")} == {0}


def test_interrupted_sweep_resumes_from_its_cells(run_cli, tmp_path):
    args = ["sweep", "sample:coffee", "--vary", "steps=1,2,3", "-o", tmp_path / "s.png",
            "--cells", tmp_path / "c", *SMALL[:-1]]  # fmt: skip
    assert run_cli(*args).code == 0
    (tmp_path / "c" / "steps=2.png").unlink()  # as if interrupted before this cell
    r = run_cli(*args, "--force")
    assert r.code == 0, r.err
    assert r.err.count("reused") == 2 and r.err.count("dreamed") == 1
    assert "cell 3/3" in r.err and "ETA" in r.err
    # other settings make other cells: nothing stale is reused
    r = run_cli(*args, "--force", "--jitter", "0")
    assert r.code == 0 and r.err.count("dreamed") == 3 and "reused" not in r.err
    (tmp_path / "c" / "steps=1.png").write_bytes(b"not ours")
    r = run_cli(*args, "--force")
    assert r.code == 2 and "not a cell written by inceptionism" in r.err


def test_three_varied_parameters_make_one_sheet_per_extra_value(run_cli, tmp_path):
    r = run_cli("sweep", "noise", "--size", "48x48", "--vary", "steps=1,2", "--vary",
                "jitter=0,4", "--vary", "seed=1,2", "-o", tmp_path / "s.png", *SMALL)  # fmt: skip
    assert r.code == 0, r.err
    assert sorted(p.name for p in tmp_path.glob("*.png")) == ["s.seed=1.png", "s.seed=2.png"]


@pytest.mark.parametrize(
    "vary, message",
    [("stepz=1,2", "expected NAME=V1,V2"), ("steps=1,x", "bad value 'x'"),
     ("steps=-1,2", "steps must be"), ("octave-scale=0", "octave_scale"), ("steps", "NAME=V1"),
     ("layers=block9;nope", "unknown layer 'nope'")],
)  # fmt: skip
def test_bad_vary_exits_2_before_any_work(run_cli, tmp_path, vary, message):
    r = run_cli("sweep", "sample:coffee", "--vary", vary, "-o", tmp_path / "s.png",
                "--cells", tmp_path / "c", *SMALL)  # fmt: skip
    assert r.code == 2 and message in r.err and len(r.err_lines) == 1
    assert list(tmp_path.iterdir()) == []


def test_cells_must_be_a_folder(run_cli, tmp_path):
    (tmp_path / "afile").write_text("x")
    r = run_cli("sweep", "sample:coffee", "--vary", "steps=1,2", "--cells", tmp_path / "afile",
                "-o", tmp_path / "s.png", *SMALL)  # fmt: skip
    assert r.code == 2 and "is not a folder" in r.err and not (tmp_path / "s.png").exists()


def test_atlas_and_channels(run_cli, tmp_path):
    r = run_cli("atlas", "noise", "--size", "48x48", "--layers", "block3,block9", "-o",
                tmp_path / "atlas.png", "--cells", tmp_path / "a", *SMALL)  # fmt: skip
    assert r.code == 0, r.err
    assert sorted(p.stem for p in (tmp_path / "a").glob("*.png")) == [
        "layer_block3",
        "layer_block9",
    ]
    assert read_recipe(tmp_path / "a" / "layer_block9.png")["config"]["layers"] == "block9=1"
    # a cell is a dream like any other: replay re-creates it, noise start included
    r = run_cli("replay", tmp_path / "a" / "layer_block9.png", "-o", tmp_path / "again.png", "-q")
    assert r.code == 0, r.err
    assert np.array_equal(
        np.asarray(Image.open(tmp_path / "again.png")),
        np.asarray(Image.open(tmp_path / "a" / "layer_block9.png")),
    )
    r = run_cli("channels", "block9", "--channels", "3,17", "--size", "48x48", "-o",
                tmp_path / "ch.png", "--cells", tmp_path / "c", "--steps", "2", "--preset",
                "default", *SMALL)  # fmt: skip
    assert r.code == 0, r.err
    cfg = read_recipe(tmp_path / "c" / "block9_17.png")["config"]
    assert cfg["layers"] == "block9:17=1" and cfg["objective"] == "mean"
    a = np.asarray(Image.open(tmp_path / "c" / "block9_3.png"), float)
    b = np.asarray(Image.open(tmp_path / "c" / "block9_17.png"), float)
    assert np.abs(a - b).mean() > 1  # different channels, different pictures
    r = run_cli("channels", "block9", "--channels", "3,500", "-o", tmp_path / "x.png",
                "--preset", "default", *SMALL)  # fmt: skip
    assert r.code == 2 and "channels 0..111" in r.err and not (tmp_path / "x.png").exists()
    r = run_cli("atlas", "noise", "--layers", "blok9", "-o", tmp_path / "y.png", *SMALL)
    assert r.code == 2 and "Did you mean 'block9'" in r.err


def test_sweep_varies_the_model_each_cell_on_its_own_network(run_cli, tmp_path):
    cells = tmp_path / "c"
    r = run_cli("sweep", "noise", "--size", "48x48", "--vary", "model=lite0,lite1",
                "--layers", "block5", "-o", tmp_path / "s.png", "--cells", cells,
                "--steps", "1", "--octaves", "1", "--cell-size", "64", "-q")  # fmt: skip
    assert r.code == 0, r.err
    recorded = {read_recipe(p)["model"] for p in cells.glob("*.png")}
    assert recorded == {"efficientnet_lite0", "efficientnet_lite1"}
    a, b = (np.asarray(Image.open(p)) for p in sorted(cells.glob("*.png")))
    assert not np.array_equal(a, b)  # two networks, two pictures


def test_channels_default_to_the_lucid_recipe_in_batches(run_cli, tmp_path):
    small = ["--model", "lite0", "--cell-size", "64", "-q", "--size", "48x48", "--steps", "3"]
    r = run_cli("channels", "block9", "--channels", "3,17,40", "--batch", "2", "-o",
                tmp_path / "ch.png", "--cells", tmp_path / "c", *small)  # fmt: skip
    assert r.code == 0, r.err
    sheet = read_recipe(tmp_path / "ch.png")["sheet"]
    assert sheet["featurevis"]["param"] == "fft" and sheet["featurevis"]["steps"] == 3
    assert sheet["featurevis"]["batch"] == 2 and sheet["featurevis"]["size"] == 48
    cell = read_recipe(tmp_path / "c" / "block9_17.png")
    assert cell["kind"] == "cell" and cell["config"]["layers"] == "block9:17=1"
    fv = cell["featurevis"]  # the whole render: its config, every unit, the cell's index
    assert fv["units"] == ["block9:3=1", "block9:17=1", "block9:40=1"] and fv["index"] == 1
    # the recipe re-creates the cell
    again = render(get_model("lite0"), fv["units"], FeatureVisConfig(**fv["featurevis"]))
    saved = load_image(tmp_path / "c" / "block9_17.png").rgb[0]
    assert (again[fv["index"]] - saved).abs().max() <= 1 / 255 + 1e-6
    a = np.asarray(Image.open(tmp_path / "c" / "block9_3.png"), float)
    b = np.asarray(Image.open(tmp_path / "c" / "block9_17.png"), float)
    assert a.shape == (48, 48, 3) and np.abs(a - b).mean() > 0.5
    r = run_cli("channels", "block9", "--channels", "3", "--param", "pixel", "--transforms",
                "jitter=2", "-o", tmp_path / "px.png", *small)  # fmt: skip
    assert r.code == 0, r.err
    fv = read_recipe(tmp_path / "px.png")["sheet"]["featurevis"]
    assert fv["param"] == "pixel" and fv["transforms"] == "jitter=2"
    for args, message in [(["--octaves", "2"], "--octaves: DeepDream options"),
                          (["--preset", "default", "--param", "fft"], "for the lucid recipe"),
                          (["--transforms", "blur"], "unknown transform"),
                          (["--size", "48x64"], "square")]:  # fmt: skip
        r = run_cli("channels", "block9", "--channels", "3", "-o", tmp_path / "x.png",
                    *small, *args)  # fmt: skip
        assert r.code == 2 and message in r.err, (args, r.err)
        assert not (tmp_path / "x.png").exists()


def test_an_atlas_of_noise_with_the_lucid_recipe_renders_its_cells_together(
    run_cli, tmp_path, monkeypatch
):
    import inceptionism.featurevis.render as featurevis

    calls = []
    real = featurevis.render

    def counted(model, units, config=None, on_progress=None, init=None):
        calls.append(list(units))
        return real(model, units, config, on_progress, init)

    monkeypatch.setattr(featurevis, "render", counted)
    cells = tmp_path / "c"
    r = run_cli("atlas", "noise", "--preset", "lucid", "--layers", "block3,block6", "--size",
                "32x32", "--steps", "2", "--model", "lite0", "-o", tmp_path / "a.png",
                "--cells", cells, "--cell-size", "64", "-q")  # fmt: skip
    assert r.code == 0, r.err
    assert calls == [["block3=1", "block6=1"]]  # one batched render for both layers
    assert read_recipe(tmp_path / "a.png")["sheet"]["featurevis"]["steps"] == 2
    fv = read_recipe(cells / "layer_block6.png")["featurevis"]
    assert fv["units"] == ["block3=1", "block6=1"] and fv["index"] == 1
    monkeypatch.setattr(featurevis, "render", real)
    r = run_cli("replay", cells / "layer_block6.png", "-o", tmp_path / "again.png", "-q")
    assert r.code == 0, r.err
    a = np.asarray(Image.open(cells / "layer_block6.png"), int)
    b = np.asarray(Image.open(tmp_path / "again.png"), int)
    assert np.abs(a - b).max() <= 1
    r = run_cli("atlas", "sample:coffee", "--preset", "lucid", "--model", "lite0", "-o",
                tmp_path / "p.png", "-q")  # fmt: skip
    assert r.code == 2 and "from noise" in r.err


def test_channels_of_an_unknown_layer_is_one_line(run_cli, tmp_path):
    r = run_cli("channels", "blok9", "-o", tmp_path / "x.png", "--model", "lite0", "-q")
    assert r.code == 2 and len(r.err_lines) == 1 and "Did you mean 'block9'" in r.err


def test_sweep_varies_the_preset_with_the_options_given_on_top(run_cli, tmp_path):
    cells = tmp_path / "c"
    r = run_cli("sweep", "noise", "--size", "48x48", "--vary", "preset=default,keras-classic",
                "--steps", "1", "--octaves", "1", "-o", tmp_path / "s.png", "--cells", cells,
                "--model", "lite0", "--cell-size", "64", "-q")  # fmt: skip
    assert r.code == 0, r.err
    default = read_recipe(cells / "preset=default.png")["config"]
    keras = read_recipe(cells / "preset=keras-classic.png")["config"]
    assert default["steps"] == keras["steps"] == 1 and default["octaves"] == keras["octaves"] == 1
    assert (default["pixel_range"], keras["pixel_range"]) == ("unit", "signed")
    assert (default["jitter"], keras["jitter"]) == (32, 0) and keras["grad_eps"] == 1e-7
    assert keras["layers"] != default["layers"]  # the seed's layers, mapped onto Lite0


def test_sweep_varies_the_class_as_a_logit_term(run_cli, tmp_path):
    cells = tmp_path / "c"
    r = run_cli("sweep", "noise", "--size", "48x48", "--vary", "class=1,963", "--layers",
                "block5", "-o", tmp_path / "s.png", "--cells", cells, *SMALL)  # fmt: skip
    assert r.code == 0, r.err
    layers = {p.stem: read_recipe(p)["config"]["layers"] for p in cells.glob("*.png")}
    assert layers == {"class=1": "block5=1,logits:1=1", "class=963": "block5=1,logits:963=1"}


@pytest.mark.parametrize(
    "vary, message",
    [("preset=default,kerass-classic", "Did you mean 'keras-classic'"),
     ("class=1,1000", "has 1000 classes"), ("class=x", "bad value 'x'")],
)  # fmt: skip
def test_bad_preset_or_class_exits_2_before_anything_is_written(run_cli, tmp_path, vary, message):
    r = run_cli("sweep", "noise", "--vary", vary, "-o", tmp_path / "s.png", "--cells",
                tmp_path / "c", *SMALL)  # fmt: skip
    assert r.code == 2 and message in r.err and len(r.err_lines) == 1, r.err
    assert list(tmp_path.iterdir()) == []
