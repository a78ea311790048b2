"""Zoom loops and dreamed videos, on tiny clips the tests make with the bundled ffmpeg."""

from __future__ import annotations

import subprocess
from fractions import Fraction

import numpy as np
import pytest
import torch
from PIL import Image, ImageFilter

pytest.importorskip("imageio_ffmpeg")

from inceptionism.io.image import read_recipe  # noqa: E402
from inceptionism.io.video import count_frames, ffmpeg_exe, frame_numbers, probe  # noqa: E402
from inceptionism.motion import frames as motion  # noqa: E402
from inceptionism.ops.warp import flow_warp, transform  # noqa: E402

FAST = ["--model", "efficientnet_lite0", "--steps", "1", "--octaves", "1", "-q"]


def make_clip(path, frames=6, rate="12", size="64x48", audio=True):
    """A test pattern that moves, with a sine tone on the audio track."""
    n = Fraction(rate)
    cmd = [ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y",
           "-f", "lavfi", "-i", f"testsrc=size={size}:rate={rate}"]  # fmt: skip
    if audio:
        cmd += ["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=22050"]
    cmd += ["-frames:v", str(frames), "-t", f"{float(frames / n):.4f}", "-c:v", "libx264",
            "-pix_fmt", "yuv420p"]  # fmt: skip
    if audio:
        cmd += ["-c:a", "aac"]
    subprocess.run([*cmd, str(path)], check=True)
    return path


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    return make_clip(tmp_path_factory.mktemp("clips") / "clip.mp4")


def frames_of(path):
    from inceptionism.io.video import read_frames

    return list(read_frames(path, probe(path)))


def test_video_keeps_frames_fps_and_audio_and_changes_the_picture(clip, tmp_path, run_cli):
    out = tmp_path / "dreamed.mp4"
    r = run_cli("video", clip, "-o", out, *FAST)
    assert r.code == 0, r.err
    info = probe(out)
    assert info.fps == Fraction(12) and info.has_audio and (info.width, info.height) == (64, 48)
    assert count_frames(out) == count_frames(clip) == 6
    src, dst = frames_of(clip), frames_of(out)
    assert np.abs(np.stack(dst).astype(float) - np.stack(src)).mean() > 2
    recipe = read_recipe(tmp_path / "dreamed.mp4.frames" / "frame_000003.png")
    assert recipe["motion"]["command"] == "video" and recipe["config"]["seed"] == 3


def test_ntsc_rate_and_a_clip_without_sound(tmp_path, run_cli):
    silent = make_clip(tmp_path / "ntsc.mp4", frames=4, rate="30000/1001", audio=False)
    out = tmp_path / "out.mp4"
    assert run_cli("video", silent, "-o", out, *FAST).code == 0
    info = probe(out)
    assert info.fps == Fraction(30000, 1001) and not info.has_audio
    assert count_frames(out) == 4


def test_time_range(clip, tmp_path, run_cli):
    out = tmp_path / "part.mp4"
    r = run_cli("video", clip, "-o", out, "--start", "0.25", "--end", "0.5", *FAST)
    assert r.code == 0, r.err
    assert count_frames(out) == 3 and probe(out).has_audio


def test_interrupted_run_is_playable_and_resumes_like_an_uninterrupted_one(
    clip, tmp_path, run_cli, monkeypatch
):
    whole = tmp_path / "whole.mp4"
    assert run_cli("video", clip, "-o", whole, "--blend", "0.5", *FAST).code == 0

    out = tmp_path / "resumed.mp4"
    original = motion.FrameRun.finished
    calls = []

    def stop_after_three(self, k, seconds):
        original(self, k, seconds)
        calls.append(k)
        if k == 3:
            raise KeyboardInterrupt

    monkeypatch.setattr(motion.FrameRun, "finished", stop_after_three)
    r = run_cli("video", clip, "-o", out, "--blend", "0.5", *FAST)
    assert r.code == 130 and "interrupted after 3 of 6 frames" in r.err
    assert count_frames(out) == 3 and probe(out).has_audio  # a playable partial result
    calls.clear()
    r = run_cli("video", clip, "-o", out, "--blend", "0.5", *FAST)
    assert r.code == 0, r.err
    assert calls == [4, 5, 6]  # only the missing frames were dreamed
    frames = tmp_path / "resumed.mp4.frames"
    for k in range(1, 7):
        a = np.asarray(Image.open(frames / f"frame_{k:06d}.png"))
        b = np.asarray(Image.open(tmp_path / "whole.mp4.frames" / f"frame_{k:06d}.png"))
        assert np.array_equal(a, b), k
    assert count_frames(out) == 6


def test_other_settings_do_not_reuse_frames(clip, tmp_path, run_cli):
    out = tmp_path / "o.mp4"
    assert run_cli("video", clip, "-o", out, *FAST).code == 0
    r = run_cli("video", clip, "-o", out, "--blend", "0.2", *FAST)
    assert r.code == 2 and "other settings" in r.err
    r = run_cli("video", clip, "-o", out, "--blend", "0.2", "--force", *FAST)
    assert r.code == 0
    assert read_recipe(tmp_path / "o.mp4.frames" / "frame_000001.png")["motion"]["blend"] == 0.2


def test_zoom_to_gif_mp4_and_folder(tmp_path, run_cli, coffee_path):
    args = ["--frames", "3", "--max-size", "64", "--zoom", "1.1", "--rotate", "2", *FAST]
    gif = tmp_path / "z.gif"
    assert run_cli("zoom", coffee_path, "-o", gif, "--fps", "8", *args).code == 0
    with Image.open(gif) as im:
        assert im.n_frames == 3
    mp4 = tmp_path / "z.mp4"
    assert run_cli("zoom", "noise", "-o", mp4, "--size", "64x48", *args).code == 0
    assert count_frames(mp4) == 3 and probe(mp4).fps == Fraction(12)
    folder = tmp_path / "frames"
    assert run_cli("zoom", coffee_path, "-o", f"{folder}/", *args).code == 0
    assert frame_numbers(folder) == [1, 2, 3]
    # each frame is the last one zoomed and dreamed again: consecutive frames differ
    a, b = (np.asarray(Image.open(folder / f"frame_00000{k}.png")).astype(float) for k in (1, 2))
    assert np.abs(a - b).mean() > 2


def test_zoom_resumes_and_extends(tmp_path, run_cli, coffee_path):
    args = ["--max-size", "64", *FAST]
    folder = tmp_path / "f"
    assert run_cli("zoom", coffee_path, "-o", f"{folder}/", "--frames", "2", *args).code == 0
    first = (folder / "frame_000002.png").stat().st_mtime_ns
    assert run_cli("zoom", coffee_path, "-o", f"{folder}/", "--frames", "4", *args).code == 0
    assert frame_numbers(folder) == [1, 2, 3, 4]
    assert (folder / "frame_000002.png").stat().st_mtime_ns == first  # reused, not redone
    fresh = tmp_path / "g"
    assert run_cli("zoom", coffee_path, "-o", f"{fresh}/", "--frames", "4", *args).code == 0
    last = [np.asarray(Image.open(d / "frame_000004.png")) for d in (folder, fresh)]
    assert np.array_equal(*last)


def test_frames_sort_numerically_past_999999_names(tmp_path):
    for k in (2, 10, 999, 1000, 1001, 12):
        (tmp_path / f"frame_{k:06d}.png").write_bytes(b"")
    (tmp_path / "frame_7.png").write_bytes(b"")
    (tmp_path / "other.png").write_bytes(b"")
    assert frame_numbers(tmp_path) == [2, 7, 10, 12, 999, 1000, 1001]


def test_transform_geometry():
    x = torch.rand(1, 3, 40, 60)
    assert torch.equal(transform(x), x)
    moved = transform(x, shift=(5, 3))
    torch.testing.assert_close(moved[..., 10:30, 15:50], x[..., 7:27, 10:45], atol=1e-5, rtol=0)
    # zoom keeps the centre where it is and magnifies around it
    ramp = torch.linspace(0, 1, 60).expand(1, 3, 40, 60).contiguous()
    zoomed = transform(ramp, zoom=2.0)
    row = zoomed[0, 0, 20]
    assert abs(row[30].item() - ramp[0, 0, 20, 30].item()) < 0.02
    span = (ramp[0, 0, 20, 40] - ramp[0, 0, 20, 20]).item()
    assert (row[40] - row[20]).item() == pytest.approx(span / 2, abs=0.02)


def test_flow_warp_moves_detail_with_the_scene():
    rng = np.random.default_rng(0)
    base = (rng.random((60, 80)) * 255).astype(np.uint8)
    base = np.asarray(Image.fromarray(base).filter(ImageFilter.GaussianBlur(2)))
    prev = np.repeat(base[..., None], 3, axis=2)
    cur = np.roll(prev, 4, axis=1)  # the scene moved 4 px right
    detail = rng.normal(0, 10, prev.shape).astype(np.float32)
    warped = flow_warp(detail, prev, cur)
    inner = (slice(10, 50), slice(15, 65))
    moved = np.roll(detail, 4, axis=1)
    err_warped = np.abs(warped[inner] - moved[inner]).mean()
    err_static = np.abs(detail[inner] - moved[inner]).mean()
    assert err_warped < 0.5 * err_static


def test_flow_lowers_the_warping_error_against_blend_alone(tmp_path, run_cli):
    """A pan across a photo (4 px a frame): with --flow the previous dream's detail follows the
    scene, so each dreamed frame differs less from the last one warped along the source's
    motion (the warping error, flow_warp) than with --blend alone, which leaves the old
    detail where it was (measured 4.6 vs 7.3 levels on average)."""
    from inceptionism.io.samples import sample_path

    photo = np.asarray(Image.open(sample_path("sample:coffee")).convert("RGB").resize((200, 130)))
    for k in range(8):
        Image.fromarray(photo[20:84, 10 + 4 * k : 106 + 4 * k]).save(tmp_path / f"src_{k:03d}.png")
    clip = tmp_path / "pan.mp4"
    subprocess.run([ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y", "-framerate", "12",
                    "-i", str(tmp_path / "src_%03d.png"), "-c:v", "libx264", "-pix_fmt",
                    "yuv420p", "-crf", "12", str(clip)], check=True)  # fmt: skip
    sources = frames_of(clip)
    common = ["--blend", "0.5", "--steps", "4", "--octaves", "1", "--model", "efficientnet_lite0",
              "-q"]  # fmt: skip
    error = {}
    for name, extra in (("blend", []), ("flow", ["--flow"])):
        r = run_cli("video", clip, "-o", f"{tmp_path / name}/", *common, *extra)
        assert r.code == 0, r.err
        dreams = [np.asarray(Image.open(tmp_path / name / f"frame_{k:06d}.png"), np.float32)
                  for k in range(1, len(sources) + 1)]  # fmt: skip
        error[name] = np.mean([
            np.abs(dreams[k] - flow_warp(dreams[k - 1], sources[k - 1], sources[k])).mean()
            for k in range(1, len(dreams))
        ])  # fmt: skip
    assert error["flow"] < 0.8 * error["blend"], error


@pytest.mark.parametrize(
    "args, message",
    [
        (["video", "missing.mp4", "-o", "o.mp4"], "no such file"),
        (["video", "notes.txt", "-o", "o.mp4"], "not a video"),
        (["video", "CLIP", "-o", "o.avi"], ".mp4, .gif or a folder"),
        (["video", "CLIP", "-o", "o.mp4", "--start", "2", "--end", "1"], "must be after"),
        (["zoom", "noise", "-o", "z.mp4", "--zoom", "0"], "--zoom"),
        (["zoom", "noise", "-o", "z.mp4", "--shift", "3"], "DX,DY"),
        (["video", "CLIP", "-o", "CLIP"], "is an input"),
    ],
)
def test_bad_inputs_exit_2_with_one_line(tmp_path, clip, run_cli, monkeypatch, args, message):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "notes.txt").write_text("hello\n")
    args = [str(clip) if a == "CLIP" else a for a in args]
    before = sorted(p.name for p in tmp_path.iterdir())
    r = run_cli(*args, *FAST)
    assert r.code == 2 and len(r.err_lines) == 1 and message in r.err, r.err
    assert sorted(p.name for p in tmp_path.iterdir()) == before


def _frame_recipe(tmp_path, **extra):
    from inceptionism.engine.config import DreamConfig
    from inceptionism.jobs.job import FileRef, Job, Start
    from inceptionism.jobs.recipes import job_recipe
    from inceptionism.models import get_model

    video = make_clip(tmp_path / "c.mp4", frames=2, audio=False)
    prev = FileRef(str(tmp_path / "p.png"), str(tmp_path / "p.png"), None)
    start = Start("video", FileRef.of(video), frame=2, previous=prev, blend=0.5)
    job = Job(DreamConfig(model="efficientnet_lite0"), start, None, "frame", label="frame 2",
              index=2)  # fmt: skip
    return {**job_recipe(job, get_model("efficientnet_lite0")), **extra}


def test_crossfade_in_a_recipe_is_checked_and_old_recipes_read(tmp_path):
    from inceptionism.jobs.recipes import RecipeError, read_job

    plain = _frame_recipe(tmp_path)
    assert "crossfade" not in plain and read_job(plain).job.crossfade is None  # as before
    other = {"input": "b.png", "path": str(tmp_path / "b.png"), "sha256": None}
    fade = read_job({**plain, "crossfade": {"weight": 0.25, "previous": other}}).job.crossfade
    assert fade is not None and fade.weight == 0.25 and fade.previous.path == other["path"]
    fresh = read_job({**plain, "crossfade": {"weight": 0.5, "previous": None}}).job.crossfade
    assert fresh is not None and fresh.previous is None
    bad = [
        ({"weight": 0, "previous": None}, "crossfade.weight"),
        ({"weight": 1.0, "previous": None}, "crossfade.weight"),
        ({"weight": "half", "previous": None}, "weight"),
        ({"previous": None}, "crossfade.weight"),
        ({"weight": 0.5, "previous": {"path": 3}}, "crossfade.previous"),
        ([0.5], "'crossfade' must be an object"),
    ]
    for value, words in bad:
        with pytest.raises(RecipeError, match=words.replace(".", r"\.")) as e:
            read_job({**plain, "crossfade": value})
        assert "\n" not in str(e.value)
    still = {**plain, "kind": "dream", "crossfade": {"weight": 0.5, "previous": None}}
    with pytest.raises(RecipeError, match="video frames only"):
        read_job(still)
