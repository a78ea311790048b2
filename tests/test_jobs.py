"""The job layer: every output replays to the same pixels (a dream, a sweep cell, a zoom frame,
a video frame), old recipes still replay, and every cell is checked before any work."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image, PngImagePlugin

from inceptionism.engine.config import DreamConfig
from inceptionism.errors import ConfigError, ImageError
from inceptionism.io.image import RECIPE_KEY, read_recipe
from inceptionism.jobs.job import FileRef, Job, Start, blank_start, photo_start
from inceptionism.jobs.recipes import RecipeError, read_job

LITE = ["--model", "lite0", "--steps", "2", "--octaves", "2", "-q"]


def pixels(path) -> np.ndarray:
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB")).copy()


def test_a_job_round_trips_through_its_recipe(lite0, coffee_path):
    start = photo_start(str(coffee_path), max_size=48)
    job = Job(DreamConfig(model=lite0.name, steps=1, octaves=1), start, None, "cell",
              label="steps=1", index=3)  # fmt: skip
    from inceptionism.jobs.recipes import job_recipe

    recipe = json.loads(json.dumps(job_recipe(job, lite0)))  # through JSON, as in a PNG
    back = read_job(recipe).job
    assert back.start == start and back.kind == "cell" and back.index == 3
    assert back.config == job.config.replace(layers=back.config.layers)
    assert start.size == (48, 32)  # the header, scaled by max_size: nothing decoded


def test_a_photo_with_init_noise_records_a_noise_start(coffee_path):
    start = photo_start(str(coffee_path), init="noise", max_size=40)
    assert start.kind == "noise" and start.size == (40, 27)
    job = Job(DreamConfig(init="photo"), start)
    assert job.config.init == "noise"  # the start is the truth; the config agrees


def test_jobs_refuse_what_cannot_run():
    noise = blank_start("noise", (32, 32))
    with pytest.raises(ConfigError, match="guide"):
        Job(DreamConfig(objective="guide"), noise)
    with pytest.raises(ConfigError, match="keep-colors"):
        Job(DreamConfig(keep_colors=True), noise)
    with pytest.raises(ImageError, match="over the limit"):
        Start("noise", size=(5000, 5000), max_pixels=1_000_000)
    with pytest.raises(ConfigError, match="previous frame"):
        Start("zoom")
    with pytest.raises(ConfigError, match="largest level"):
        Job(DreamConfig(octaves=20, octave_scale=0.5), blank_start("noise", (64, 64)))


def test_replay_of_a_dream_gives_the_same_pixels(run_cli, tmp_path, coffee_path):
    out = tmp_path / "d.png"
    assert run_cli("dream", coffee_path, "-o", out, "--max-size", "48", *LITE).code == 0
    r = run_cli("replay", out, "-o", tmp_path / "r.png", "-q")
    assert r.code == 0, r.err
    assert np.array_equal(pixels(out), pixels(tmp_path / "r.png"))


def test_replay_of_a_sweep_cell_made_from_noise(run_cli, tmp_path):
    cells = tmp_path / "cells"
    r = run_cli("sweep", "sample:coffee", "--init", "noise", "--vary", "steps=1,2",
                "-o", tmp_path / "s.png", "--cells", cells, "--max-size", "48",
                "--model", "lite0", "--octaves", "1", "--cell-size", "64", "-q")  # fmt: skip
    assert r.code == 0, r.err
    cell = cells / "steps=2.png"
    recipe = read_recipe(cell)
    assert recipe["kind"] == "cell" and recipe["start"]["kind"] == "noise"
    assert recipe["config"]["init"] == "noise"  # what was dreamed is what is recorded
    r = run_cli("replay", cell, "-o", tmp_path / "again.png", "-q")
    assert r.code == 0, r.err
    assert np.array_equal(pixels(cell), pixels(tmp_path / "again.png"))


def test_replay_of_zoom_frame_5_starts_from_frame_4(run_cli, tmp_path):
    frames = tmp_path / "frames"
    r = run_cli("zoom", "noise", "--size", "48x40", "--frames", "6", "-o", f"{frames}/",
                "--model", "lite0", "--steps", "1", "--octaves", "1", "-q")  # fmt: skip
    assert r.code == 0, r.err
    frame5 = frames / "frame_000005.png"
    recipe = read_recipe(frame5)
    assert recipe["kind"] == "frame" and recipe["start"]["kind"] == "zoom"
    assert recipe["start"]["previous"]["path"].endswith("frame_000004.png")
    r = run_cli("replay", frame5, "-o", tmp_path / "again5.png", "-q")
    assert r.code == 0, r.err
    assert np.array_equal(pixels(frame5), pixels(tmp_path / "again5.png"))
    r = run_cli("replay", frames / "frame_000001.png", "-o", tmp_path / "again1.png", "-q")
    assert r.code == 0 and np.array_equal(
        pixels(frames / "frame_000001.png"), pixels(tmp_path / "again1.png")
    )
    (frames / "frame_000004.png").unlink()  # the frame it was dreamed from is gone
    r = run_cli("replay", frame5, "-o", tmp_path / "x.png", "-q")
    assert r.code == 2 and len(r.err_lines) == 1 and "frame_000004.png" in r.err
    assert "previous frame" in r.err and not (tmp_path / "x.png").exists()


@pytest.mark.parametrize("flow", [False, True])
def test_replay_of_video_frame_5(run_cli, tmp_path, flow):
    pytest.importorskip("imageio_ffmpeg")
    if flow:
        pytest.importorskip("cv2")
    from test_motion import make_clip

    clip = make_clip(tmp_path / "clip.mp4", frames=6, audio=False)
    frames = tmp_path / "v"
    r = run_cli("video", clip, "-o", f"{frames}/", "--blend", "0.5", *(["--flow"] if flow else []),
                "--model", "lite0", "--steps", "1", "--octaves", "1", "-q")  # fmt: skip
    assert r.code == 0, r.err
    frame5 = frames / "frame_000005.png"
    r = run_cli("replay", frame5, "-o", tmp_path / "again.png", "-q")
    assert r.code == 0, r.err
    assert np.array_equal(pixels(frame5), pixels(tmp_path / "again.png"))


def test_an_old_format_recipe_still_replays(run_cli, tmp_path, coffee_path):
    """A PNG whose recipe has the first release's layout (format 1, a 'source' section)."""
    out = tmp_path / "d.png"
    assert run_cli("dream", coffee_path, "-o", out, "--max-size", "48", *LITE).code == 0
    new = read_recipe(out)
    start = new["start"]
    old = {
        "format": 1, "inceptionism": "0.1.0", "torch": new["torch"], "model": new["model"],
        "weights_sha256": new["weights_sha256"], "weights_file": None, "device": "cpu",
        "network": None, "config": new["config"],
        "source": {"input": start["source"]["input"], "path": start["source"]["path"],
                   "sha256": start["source"]["sha256"], "max_size": 48,
                   "max_pixels": start["max_pixels"], "size": start["size"]},
    }  # fmt: skip
    info = PngImagePlugin.PngInfo()
    info.add_itxt(RECIPE_KEY, json.dumps(old))
    Image.open(out).save(tmp_path / "old.png", pnginfo=info)
    r = run_cli("replay", tmp_path / "old.png", "-o", tmp_path / "r.png", "-q")
    assert r.code == 0, r.err
    assert np.array_equal(pixels(out), pixels(tmp_path / "r.png"))


def test_sweep_checks_every_cell_before_any_work(run_cli, tmp_path):
    cells = tmp_path / "cells"
    r = run_cli("sweep", "sample:coffee", "--vary", "objective=l2,guide", "-o", tmp_path / "s.png",
                "--cells", cells, "--model", "lite0", "--steps", "1", "-q")  # fmt: skip
    assert r.code == 2 and len(r.err_lines) == 1 and "guide" in r.err
    assert not cells.exists() and not (tmp_path / "s.png").exists()


def test_recipe_schema_names_the_bad_field():
    good = {"format": 2, "model": "efficientnet_lite0", "config": {}, "start": {"kind": "noise"}}
    read_job(good)
    for bad, field in [({"start": {"kind": "noise", "size": [1, "x"]}}, "start.size"),
                       ({"config": {"steps": -1}}, "steps"), ({"kind": 3}, "kind"),
                       ({"guide": {"path": "g.png", "sha256": "zz"}}, "guide.sha256")]:  # fmt: skip
        with pytest.raises(RecipeError, match=field.replace(".", r"\.")):
            read_job({**good, **bad})


def test_file_refs_resolve_samples(coffee_path):
    ref = FileRef.of("sample:coffee")
    assert ref.input == "sample:coffee" and ref.path == str(coffee_path.resolve())
    assert len(ref.sha256) == 64


def test_replay_of_a_lucid_channels_cell(run_cli, tmp_path):
    cells = tmp_path / "c"
    r = run_cli("channels", "block9", "--channels", "3,17", "--batch", "2", "--size", "48x48",
                "--steps", "3", "--model", "lite0", "-o", tmp_path / "ch.png", "--cells", cells,
                "--cell-size", "64", "-q")  # fmt: skip
    assert r.code == 0, r.err
    cell = cells / "block9_17.png"
    r = run_cli("replay", cell, "-o", tmp_path / "again.png", "-q")
    assert r.code == 0, r.err
    diff = np.abs(pixels(cell).astype(int) - pixels(tmp_path / "again.png").astype(int))
    assert diff.max() <= 1  # the whole render again, then its own image


def test_a_class_from_noise_uses_the_lucid_recipe_and_replays(run_cli, tmp_path):
    out = tmp_path / "pizza.png"
    small = ["--model", "lite0", "--init", "noise", "--size", "32x32", "-q"]
    r = run_cli("dream", "--class", "963", "--steps", "3", "-o", out, *small)
    assert r.code == 0, r.err
    recipe = read_recipe(out)
    fv = recipe["featurevis"]  # the lucid recipe, recorded: replay re-renders it
    assert fv["units"] == ["logits:963=1"] and fv["index"] == 0
    assert (fv["featurevis"]["param"], fv["featurevis"]["steps"], fv["featurevis"]["size"]) == (
        "fft", 3, 32)  # fmt: skip
    assert recipe["config"]["init"] == "noise" and recipe["config"]["layers"] == "logits:963=1"
    r = run_cli("replay", out, "-o", tmp_path / "again.png", "-q")
    assert r.code == 0, r.err
    assert np.abs(pixels(out).astype(int) - pixels(tmp_path / "again.png").astype(int)).max() <= 1
    # the earlier look is one flag away; photos and other objectives from noise are unchanged
    for args in (["--class", "963", "--preset", "default"], ["--layers", "block6:3"]):
        r = run_cli("dream", *args, "-o", tmp_path / "dd.png", "--steps", "1", "--octaves", "1",
                    "--force", *small)  # fmt: skip
        assert r.code == 0, r.err
        assert "featurevis" not in read_recipe(tmp_path / "dd.png"), args
    for args, message in [(["--octaves", "2"], "--octaves: DeepDream options"),
                          (["--size", "32x40"], "square"),
                          (["--preset", "lucid", "sample:coffee"], "from noise")]:  # fmt: skip
        r = run_cli("dream", "--class", "963", "-o", tmp_path / "x.png", *small, *args)
        assert r.code == 2 and message in r.err, (args, r.err)
        assert not (tmp_path / "x.png").exists()
