"""The Dream tab's logic without a browser: what the start follows, guide, mask, class and the
advanced controls (from DreamConfig's metadata), the time limit, and the CLI replaying a
studio dream to the same pixels."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from inceptionism.errors import InceptionismError
from inceptionism.io.image import read_recipe
from inceptionism.studio.core import ADVANCED, Controls, Limits, Studio

FAST = dict(model="efficientnet_lite0", steps=2, octaves=2, size=64, seed=5)


@pytest.fixture(scope="module")
def studio():
    s = Studio(Limits(max_upload_mb=5, max_pixels=4_000_000, max_side=256))
    yield s
    s.close()


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    from inceptionism.io.samples import sample_path

    d = tmp_path_factory.mktemp("dream-tab")
    Image.open(sample_path("sample:coffee")).convert("RGB").resize((96, 64)).save(d / "p.png")
    Image.open(sample_path("sample:chelsea")).convert("RGB").resize((64, 48)).save(d / "g.png")
    mask = np.zeros((64, 96), np.uint8)
    mask[:, 48:] = 255
    Image.fromarray(mask).save(d / "m.png")
    return d


def test_the_start_follows_what_was_given(studio, photos):
    auto = Controls(**FAST)
    assert auto.source == "auto" and studio.source(auto) == "sample"  # the first click dreams
    assert studio.source(Controls(upload=str(photos / "p.png"), **FAST)) == "upload"
    assert studio.source(Controls(sample="", **FAST)) == "noise"
    with pytest.raises(InceptionismError, match="unknown source"):
        studio.source(Controls(source="webcam", **FAST))


def test_guide_mask_class_and_advanced_reach_the_job(studio, photos, tmp_path, run_cli):
    c = Controls(upload=str(photos / "p.png"), guide=str(photos / "g.png"),
                 mask=str(photos / "m.png"), class_="1", layers=["block9"], grad_norm="std",
                 tile="0", keep_colors=True, detail="photo", **FAST)  # fmt: skip
    job = studio.job(c)
    assert job.config.objective == "guide" and "logits:1" in (job.config.layers or "")
    assert (job.config.grad_norm, job.config.tile, job.config.keep_colors) == ("std", 0, True)
    assert job.guide is not None and job.mask is not None
    assert studio.before(job).size == (64, 43)
    *_, (result, status, png) = studio.dream(c, job=job)
    assert status.startswith("done")
    recipe = read_recipe(png)
    assert recipe["guide"]["input"] == "guide" and recipe["mask"]["input"] == "mask"
    assert str(photos) not in str(recipe)  # no server path in the recipe
    # the CLI re-creates it, the moved files named
    out = tmp_path / "again.png"
    r = run_cli("replay", png, "-o", out, "-i", photos / "p.png", "--guide", photos / "g.png",
                "--mask", photos / "m.png")  # fmt: skip
    assert r.code == 0, r.err
    assert np.array_equal(np.asarray(Image.open(out)), np.asarray(Image.open(png)))


def test_advanced_controls_keep_the_presets_values_until_set(studio):
    values = studio.preset_values("tf1-lapnorm", "efficientnet_lite0")
    assert set(ADVANCED) <= set(values) and values["grad_norm"].startswith("laplacian")
    c = Controls(preset="tf1-lapnorm", **FAST)  # no advanced value given: the preset's
    assert studio.config(c).grad_norm == values["grad_norm"]
    assert studio.config(Controls(preset="tf1-lapnorm", grad_norm="l1", **FAST)).grad_norm == "l1"


def test_a_bad_guide_is_one_clear_line(studio, tmp_path):
    text = tmp_path / "guide.png"
    text.write_text("not an image")
    with pytest.raises(InceptionismError, match=r"^the guide: guide\.png: not an image") as e:
        studio.job(Controls(source="noise", guide=str(text), **FAST))
    assert str(tmp_path) not in str(e.value)
    with pytest.raises(InceptionismError, match="class"):
        studio.job(Controls(source="noise", class_="no such class", **FAST))


def test_a_dream_past_the_time_limit_is_stopped(photos):
    s = Studio(Limits(time_limit=1e-9))
    try:
        with pytest.raises(InceptionismError, match="limit of"):
            list(s.dream(Controls(source="noise", **FAST)))
    finally:
        s.close()


def test_steps_are_reported(studio):
    seen = []
    list(studio.dream(Controls(source="noise", **FAST), on_step=seen.append))
    assert len(seen) == 4 and seen[-1].fraction == pytest.approx(1.0)


def test_a_sweep_writes_its_sheet_and_cells_with_recipes(studio, photos):
    c = Controls(upload=str(photos / "p.png"), **{**FAST, "steps": 1, "octaves": 1})
    sheets, cells = studio.sweep(c, "step-size=0.003,0.02\n", cell_size=64)
    assert len(sheets) == 1 and len(cells) == 2
    assert read_recipe(sheets[0])["sheet"]["vary"] == ["step-size=0.003,0.02"]
    recipes = [read_recipe(p) for p in cells]
    assert [r["config"]["step_size"] for r in recipes] == [0.003, 0.02]
    assert recipes[0]["start"]["source"]["path"] == "upload"  # no server path
    with pytest.raises(InceptionismError, match="NAME=V1,V2"):
        studio.sweep(c, "  ")
    with pytest.raises(InceptionismError, match="expected NAME=V1,V2"):
        studio.sweep(c, "wobble=1,2")


def test_a_zoom_loop_writes_a_video_and_frames_with_recipes(studio, photos):
    pytest.importorskip("imageio_ffmpeg")
    c = Controls(upload=str(photos / "p.png"), **{**FAST, "steps": 1, "octaves": 1})
    seen = []
    video, frames = studio.zoom(c, frames=3, zoom=1.1, on_frame=seen.append)
    assert video.endswith(".mp4") and len(frames) == 3 and len(seen) == 3
    recipes = [read_recipe(f) for f in frames]
    assert recipes[0]["start"]["source"]["path"] == "upload"
    assert [r["config"]["seed"] for r in recipes] == [6, 7, 8]  # seed + frame number
    with pytest.raises(InceptionismError, match="frames: from 1"):
        studio.zoom(c, frames=0)
    late = Studio(Limits(time_limit=1e-6))
    try:
        with pytest.raises(InceptionismError, match="over the studio's limit"):
            late.zoom(Controls(source="noise", **FAST), frames=5)
    finally:
        late.close()


def test_an_atlas_dreams_one_cell_per_layer(studio):
    c = Controls(sample="sample:chelsea", **{**FAST, "steps": 1, "octaves": 1})
    sheet, cells = studio.atlas(c, "block4,block9", cell_size=64)
    assert read_recipe(sheet)["sheet"]["layers"] == ["block4", "block9"]
    assert [read_recipe(p)["config"]["layers"] for p in cells] == ["block4=1", "block9=1"]
    with pytest.raises(InceptionismError, match="unknown layer"):
        studio.atlas(c, "block99")


@pytest.mark.parametrize("lucid", [True, False])
def test_a_channel_gallery(studio, lucid):
    c = Controls(**{**FAST, "steps": 2, "octaves": 1})
    sheet, cells = studio.channels(c, "block9", count=2, cell_size=48, lucid=lucid)
    assert read_recipe(sheet)["sheet"]["kind"] == "channels" and len(cells) == 2
    recipes = [read_recipe(p) for p in cells]
    assert [r["config"]["layers"] for r in recipes] == ["block9:0=1", "block9:1=1"]
    assert all(bool(r.get("featurevis")) == lucid for r in recipes)  # the lucid recipe or a dream
    with pytest.raises(InceptionismError, match="unknown layer"):
        studio.channels(c, "block99")


def test_a_video_is_dreamed_frame_by_frame_with_its_sound(studio, tmp_path, monkeypatch):
    pytest.importorskip("imageio_ffmpeg")
    import subprocess

    from inceptionism.io.video import ffmpeg_exe, probe

    clip = tmp_path / "clip.mp4"
    subprocess.run([ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi",
                    "-i", "testsrc=size=64x48:rate=12", "-f", "lavfi", "-i",
                    "sine=frequency=440:sample_rate=22050", "-frames:v", "3", "-t", "0.25",
                    "-c:v", "libx264", "-pix_fmt", "yuv420p", "-c:a", "aac", str(clip)],
                   check=True)  # fmt: skip
    c = Controls(**{**FAST, "steps": 1, "octaves": 1})
    video, frames = studio.video(c, str(clip), blend=0.5)
    assert len(frames) == 3 and probe(Path(video)).has_audio
    recipe = read_recipe(frames[1])
    assert recipe["start"]["kind"] == "video" and recipe["start"]["source"]["path"] == "upload"
    with pytest.raises(InceptionismError, match="upload a video"):
        studio.video(c, "")
    monkeypatch.setattr("inceptionism.studio.motion.MAX_FRAMES", 2)
    with pytest.raises(InceptionismError, match="at most 2"):  # refused before any work
        studio.video(c, str(clip))


def test_a_sweep_cell_and_a_zoom_frame_replay_by_the_cli(studio, tmp_path, run_cli):
    c = Controls(sample="sample:astronaut", **{**FAST, "steps": 1, "octaves": 1})
    _, cells = studio.sweep(c, "jitter=0,8", cell_size=64)
    _, frames = studio.zoom(c, frames=2, zoom=1.1)
    for k, png in enumerate([cells[1], frames[1]]):
        out = tmp_path / f"again{k}.png"
        r = run_cli("replay", png, "-o", out)
        assert r.code == 0, r.err
        assert np.array_equal(np.asarray(Image.open(out)), np.asarray(Image.open(png)))


@pytest.mark.parametrize("source", ["sample", "noise"])
def test_a_zoom_frame_fills_the_controls_of_its_loop(studio, source):
    c = Controls(source=source, sample="sample:astronaut", **{**FAST, "steps": 1, "octaves": 1})
    _, frames = studio.zoom(c, frames=2)
    first = studio.job(c)
    for png in frames:
        back = studio.controls_from_recipe(png, None)
        assert (back.source, back.seed, back.size) == (source, c.seed, c.size)
        assert studio.job(back).start == first.start  # the loop's start again


def test_a_visitor_cancels_a_zoom_after_the_frame_in_progress(studio):
    c = Controls(source="noise", **{**FAST, "steps": 1, "octaves": 1})

    def cancel_after_first(p):
        if p.k == 1:
            studio.cancel("z")

    with pytest.raises(InceptionismError, match="cancelled after 2 of 5"):
        studio.zoom(c, frames=5, on_frame=cancel_after_first, session="z")
    _, frames = studio.zoom(c, frames=2, session="z")  # the next run is not cancelled
    assert len(frames) == 2


def test_a_visitor_cancels_a_sweep_before_its_next_cell(studio):
    c = Controls(source="noise", **{**FAST, "steps": 1, "octaves": 1})
    lines = []

    def cancel_after_first(line):
        lines.append(line)
        if line.startswith("cell 1/3 dreamed"):
            studio.cancel("w")

    with pytest.raises(InceptionismError, match=r"^cancelled: 3 cells asked, the rest not"):
        studio.sweep(c, "jitter=0,4,8", 64, session="w", on_line=cancel_after_first)
    assert [line.split(":")[0] for line in lines] == ["cell 1/3 dreamed"]  # no cell after it
    studio.cancel("other")  # another visitor's Cancel stops nothing here
    sheet, cells = studio.atlas(c, "block4,block9", 64, session="w")  # nor does the last one
    assert len(cells) == 2 and read_recipe(sheet)["sheet"]["kind"] == "atlas"


def test_a_cancelled_lucid_gallery_stops_within_its_render(studio):
    c = Controls(**{**FAST, "steps": 30, "octaves": 1})
    lines = []

    def cancel_at_step_10(line):
        lines.append(line)
        studio.cancel("g")

    with pytest.raises(InceptionismError, match=r"^cancelled: 2 cells asked"):
        studio.channels(c, "block9", count=2, cell_size=48, session="g", on_line=cancel_at_step_10)
    assert len(lines) == 1 and "step 10/30" in lines[0]  # not rendered to its 30th step
