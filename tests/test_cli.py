"""The command line end to end: real dreams, recipes, replay, batches, and every refusal."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from inceptionism.image import read_recipe

FAST = ["--max-size", "64", "--steps", "2", "--octaves", "2", "--quiet"]


@pytest.fixture
def photo(tmp_path, coffee_path):
    path = tmp_path / "photo.jpg"
    Image.open(coffee_path).resize((90, 60)).save(path, quality=95)
    return path


def _files(folder):
    return sorted(p.name for p in folder.rglob("*") if p.is_file())


def test_dream_writes_a_png_with_its_recipe_and_replay_reproduces_it(run_cli, photo, tmp_path):
    out = tmp_path / "dream.png"
    r = run_cli("dream", photo, "-o", out, "--model", "lite0", "--layers", "block9=0.5,block12",
                "--seed", "7", "--max-size", "64", "--steps", "3", "--octaves", "2")  # fmt: skip
    assert r.code == 0, r.err
    assert "octave 2/2" in r.err and "wrote" in r.err  # progress on stderr
    dreamed = np.asarray(Image.open(out))
    assert dreamed.shape == (43, 64, 3)
    source = np.asarray(Image.open(photo).resize((64, 43)))
    assert np.abs(dreamed.astype(int) - source).mean() > 3
    recipe = read_recipe(out)
    assert recipe["model"] == "efficientnet_lite0"
    assert recipe["config"]["layers"] == [["block9", 0.5], ["block12", 1.0]]
    assert recipe["config"]["seed"] == 7 and recipe["config"]["steps"] == 3
    assert len(recipe["weights_sha256"]) == 64 and recipe["source"]["max_size"] == 64
    again = tmp_path / "again.png"
    r = run_cli("replay", out, "-o", again, "--quiet")
    assert r.code == 0, r.err
    assert np.array_equal(np.asarray(Image.open(again)), dreamed)  # pixel for pixel


def test_presets_and_options_combine(run_cli, photo, tmp_path):
    out = tmp_path / "k.png"
    r = run_cli("dream", photo, "-o", out, "--preset", "keras-classic", "--model", "lite0",
                "--steps", "2", "--max-loss", "1000", *FAST[:2], "--quiet")  # fmt: skip
    assert r.code == 0, r.err
    cfg = read_recipe(out)["config"]
    assert (cfg["detail"], cfg["steps"], cfg["max_loss"], cfg["jitter"]) == ("photo", 2, 1000.0, 0)


def test_save_octaves(run_cli, photo, tmp_path):
    r = run_cli(
        "dream", photo, "-o", tmp_path / "o.png", "--save-octaves", "--model", "lite0", *FAST
    )
    assert r.code == 0, r.err
    assert "o.octave1.png" in _files(tmp_path)


def test_batch_to_folder_skips_existing_outputs(run_cli, photo, tmp_path):
    inputs = tmp_path / "in"
    inputs.mkdir()
    for name in ("a.png", "b.jpg"):
        Image.open(photo).save(inputs / name)
    (inputs / "readme.txt").write_text("not an image, not listed")
    out = tmp_path / "out"
    (out).mkdir()
    (out / "a.png").write_bytes(b"finished earlier")
    r = run_cli("dream", inputs, "-o", out, "--model", "lite0", *FAST[:-1])
    assert r.code == 0, r.err
    assert "skip" in r.err and _files(out) == ["a.png", "b.png"]
    assert (out / "a.png").read_bytes() == b"finished earlier"  # resumed, not redone
    assert read_recipe(out / "b.png")["source"]["path"].endswith("b.jpg")


def test_existing_output_needs_force_and_inputs_are_never_overwritten(run_cli, photo, tmp_path):
    out = tmp_path / "exists.png"
    out.write_bytes(b"keep me")
    r = run_cli("dream", photo, "-o", out, "--model", "lite0", *FAST)
    assert r.code == 2 and "--force" in r.err and len(r.err_lines) == 1
    assert out.read_bytes() == b"keep me"
    original = photo.read_bytes()
    for extra in ([], ["--force"]):
        r = run_cli("dream", photo, "-o", photo, *extra, "--model", "lite0", *FAST)
        assert r.code == 2 and "is an input" in r.err
    assert photo.read_bytes() == original
    r = run_cli("dream", photo, "-o", out, "--force", "--model", "lite0", *FAST)
    assert r.code == 0 and read_recipe(out)


@pytest.mark.parametrize("kind", ["bomb", "truncated", "text", "empty"])
def test_bad_input_files_exit_2_with_one_line_and_write_nothing(
    run_cli, tmp_path, bad_inputs, kind
):
    bad = bad_inputs[kind]
    out = tmp_path / "out"
    out.mkdir()
    r = run_cli("dream", bad, "-o", out / "x.png", "--model", "lite0", *FAST)
    assert r.code == 2
    assert len(r.err_lines) == 1 and r.err_lines[0].startswith("inceptionism: error:")
    assert _files(out) == []


@pytest.mark.parametrize(
    "args, message",
    [(["--model", "lite9"], "unknown model 'lite9'"),
     (["--layers", "block99"], "Did you mean 'block9'"),
     (["--layers", "block9=x"], "bad weight 'x'"),
     (["--preset", "keras"], "unknown preset 'keras'"),
     (["--steps", "-3"], "--steps"),
     (["--max-loss", "lots"], "--max-loss"),
     (["--octave-scale", "0"], "--octave-scale")],
)  # fmt: skip
def test_bad_options_exit_2_before_any_work(run_cli, photo, tmp_path, args, message):
    r = run_cli("dream", photo, "-o", tmp_path / "x.png", *args, "--quiet")
    assert r.code == 2, r.err
    assert message in r.err and len(r.err_lines) == 1
    assert not (tmp_path / "x.png").exists()


def test_missing_input_and_bad_output_type(run_cli, photo, tmp_path):
    r = run_cli("dream", tmp_path / "nope.jpg", "-o", tmp_path / "x.png")
    assert r.code == 2 and "no such file" in r.err
    r = run_cli("dream", photo, "-o", tmp_path / "x.gif")
    assert r.code == 2 and "unsupported output type" in r.err
    r = run_cli("replay", photo, "-o", tmp_path / "y.png")
    assert r.code == 2 and "no inceptionism recipe" in r.err


def test_models_layers_presets_listings(run_cli):
    r = run_cli("models")
    assert r.code == 0
    for name in ("efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2"):
        assert name in r.out
    assert "packaged" in r.out and "block13=1,block16=1" in r.out
    r = run_cli("layers", "efficientnet_lite0")
    rows = {line.split()[0]: line.split()[1:] for line in r.out.splitlines()[1:]}
    assert (
        rows["stem"] == ["32", "2"]
        and rows["block15"] == ["320", "32"]
        and rows["head"] == ["1280", "32"]
    )
    r = run_cli("layers", "resnet")
    assert r.code == 2 and "unknown model 'resnet'" in r.err
    r = run_cli("presets")
    assert "keras-classic" in r.out and "google-classic" in r.out
    r = run_cli("samples")
    assert "sample:coffee" in r.out and "sample:grace_hopper" in r.out


def test_sample_inputs(run_cli, tmp_path):
    r = run_cli("dream", "sample:chelsea", "-o", tmp_path / "cat.webp", "--model", "lite0", *FAST)
    assert r.code == 0, r.err
    assert Image.open(tmp_path / "cat.webp").size == (64, 43)
    r = run_cli("dream", "sample:chelsa", "-o", tmp_path / "x.png")
    assert r.code == 2 and "Did you mean 'chelsea'" in r.err
