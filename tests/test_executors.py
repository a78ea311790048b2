"""Executors: the local one and Ray (a local instance with 2 workers, tiny images). The Ray
tests are skipped when Ray is not installed; CI installs it with the test extra."""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import os
import signal
import socket
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import inceptionism
from inceptionism.engine.config import DreamConfig
from inceptionism.errors import ConfigError
from inceptionism.executors.base import Executor, LocalExecutor
from inceptionism.executors.ray import RayExecutor
from inceptionism.executors.select import parse_executor
from inceptionism.executors.worker import Dreamed, Failed, ModelKey, NeedFiles, Where, Worker
from inceptionism.io.image import read_recipe, to_uint8
from inceptionism.jobs.job import Job, photo_start
from inceptionism.jobs.recipes import job_recipe
from inceptionism.jobs.run import RunContext
from inceptionism.jobs.write import watching

HAS_RAY = importlib.util.find_spec("ray") is not None
needs_ray = pytest.mark.skipif(not HAS_RAY, reason="ray is not installed (the cluster extra)")
TINY = ["--model", "efficientnet_lite0", "--steps", "1", "--octaves", "1", "-q"]
CONFIG = DreamConfig(model="efficientnet_lite0", steps=2, octaves=1)


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    """Six small photos of different sizes (32 to 48 px)."""
    folder = tmp_path_factory.mktemp("photos")
    rng = np.random.default_rng(13)
    for k in range(6):
        h, w = 32 + 3 * k, 48 - 2 * k
        Image.fromarray(rng.integers(0, 255, (h, w, 3), np.uint8)).save(folder / f"p{k}.png")
    return folder


@pytest.fixture(scope="module")
def ray_session():
    """One local Ray instance (2 CPUs: 2 workers) for the module; executors made while it runs
    join it and kill only their own actors."""
    if not HAS_RAY:
        pytest.skip("ray is not installed")
    session = RayExecutor(workers=2).open()
    yield session
    session.close()


@pytest.fixture
def other_threads():
    """The local references dream with another thread count than the workers' (2 workers on
    2 CPUs: one each; here 3): pixels must not depend on it."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(3)
    yield
    torch.set_num_threads(before)


def pixels(path: Path) -> np.ndarray:
    with Image.open(path) as im:
        return np.asarray(im.convert("RGBA"))


def same_outputs(a: Path, b: Path, pattern: str = "*.png") -> list[str]:
    """Names in both folders, after checking their pixels and recipes (less executor) agree."""
    names = sorted(p.name for p in a.glob(pattern))
    assert names and names == sorted(p.name for p in b.glob(pattern))
    for name in names:
        assert np.array_equal(pixels(a / name), pixels(b / name)), name
        ra, rb = read_recipe(a / name), read_recipe(b / name)
        assert "executor" not in ra and rb.pop("executor")["kind"] == "ray"
        assert ra == rb, name
    return names


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --- without Ray ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text,kind,address,workers",
    [("local", "local", None, None), ("ray", "ray", None, None), ("ray:3", "ray", None, 3),
     ("ray:auto", "ray", "auto", None), ("ray://10.0.0.1:10001", "ray", "ray://10.0.0.1:10001",
                                         None)],
)  # fmt: skip
def test_parse_executor(text, kind, address, workers):
    spec = parse_executor(text)
    assert (spec.kind, spec.address, spec.workers) == (kind, address, workers)


@pytest.mark.parametrize("text", ["ray://host", "ray://:1", "ray://h:99999", "ray:0", "dask", ""])
def test_parse_executor_refuses(text):
    with pytest.raises(ConfigError):
        parse_executor(text)


def test_without_ray_exit_2_naming_the_extra(monkeypatch, run_cli, photos, tmp_path):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` raises ImportError
    out = tmp_path / "out"
    r = run_cli("dream", photos, "-o", out, "--executor", "ray", *TINY)
    assert r.code == 2 and len(r.err_lines) == 1
    assert "cluster extra" in r.err and "[cluster]" in r.err  # the hint fits the install
    assert not out.exists()


def test_bad_executor_text_is_one_line(run_cli, photos, tmp_path):
    r = run_cli("dream", photos, "-o", tmp_path / "out", "--executor", "ray://nohost", *TINY)
    assert r.code == 2 and len(r.err_lines) == 1 and "HOST:PORT" in r.err


def test_zoom_refuses_ray(run_cli, tmp_path):
    r = run_cli("zoom", "noise", "-o", tmp_path / "z/", "--size", "32x32", "--executor", "ray",
                *TINY)  # fmt: skip
    assert r.code == 2 and len(r.err_lines) == 1 and "sequential" in r.err
    assert not (tmp_path / "z").exists()


def test_local_executor_reports_every_job_in_order(lite0, photos, tmp_path):
    jobs = [Job(CONFIG, photo_start(str(p)), tmp_path / p.name) for p in sorted(photos.glob("*"))]
    seen = []
    LocalExecutor().run(jobs[:2], RunContext(lite0), lambda d, t: seen.append((d.index, t.done)))
    assert seen == [(0, 1), (1, 2)]
    assert (tmp_path / "p0.png").exists() and (tmp_path / "p1.png").exists()


def test_worker_asks_for_files_it_cannot_see_and_dreams_them(lite0, photos, tmp_path):
    """The worker core (no Ray): a photo not at its recorded path is asked for; sent, its bytes
    are checked against the recorded hash and give the local pixels."""
    moved = tmp_path / "moved.png"
    moved.write_bytes((photos / "p1.png").read_bytes())
    job = Job(CONFIG, photo_start(str(moved)), None)
    ctx = RunContext(lite0)
    text = json.dumps(job_recipe(job, lite0))
    data = moved.read_bytes()
    moved.unlink()  # as if on another machine
    worker = Worker(ModelKey.of(ctx))
    assert worker.dream(text) == NeedFiles((str(moved.resolve()),))
    bad = worker.dream(text, 0, {str(moved.resolve()): data[:-1] + b"x"})
    assert isinstance(bad, Failed) and "sha256" in bad.message
    reply = worker.dream(text, 0, {str(moved.resolve()): data})
    moved.write_bytes(data)
    local = LocalExecutor().run([job], ctx)[0].image
    assert isinstance(reply, Dreamed) and reply.where.device == "cpu"
    assert np.array_equal(reply.planes.rgb, to_uint8(local.rgb))


# --- on a local Ray instance ---------------------------------------------------------------------


@needs_ray
def test_bad_cluster_address_exit_2_nothing_written(run_cli, photos, tmp_path):
    out = tmp_path / "out"
    r = run_cli("dream", photos, "-o", out, "--executor", f"ray://127.0.0.1:{closed_port()}",
                *TINY)  # fmt: skip
    assert r.code == 2 and len(r.err_lines) == 1 and "no Ray cluster answers" in r.err
    assert not out.exists()


@needs_ray
def test_starting_ray_prints_nothing_of_its_own(photos, run_cli, tmp_path):
    """A fresh local Ray instance from the command line (its own process, one worker: ray:1):
    with -q nothing on stderr (Ray's start-up notices, e.g. about token authentication, are not
    shown), and the same pixels as a local run."""
    out = tmp_path / "out"
    env = {**os.environ, "PYTHONPATH": str(Path(inceptionism.__file__).parents[1])}
    r = subprocess.run([sys.executable, "-m", "inceptionism", "dream", str(photos), "-o",
                        str(out), "--executor", "ray:1", *TINY], capture_output=True, text=True,
                       env=env, timeout=600)  # fmt: skip
    assert r.returncode == 0 and r.stderr == "", r.stderr
    assert run_cli("dream", photos, "-o", tmp_path / "local", *TINY).code == 0
    assert len(same_outputs(tmp_path / "local", out)) == 6


@needs_ray
def test_batch_on_ray_equals_local(ray_session, other_threads, run_cli, photos, tmp_path):
    for name, extra in (("local", []), ("ray", ["--executor", "ray"])):
        r = run_cli("dream", photos, "-o", tmp_path / name, *TINY, *extra)
        assert r.code == 0, r.err
    assert len(same_outputs(tmp_path / "local", tmp_path / "ray")) == 6
    # a re-run resumes: every output exists, nothing is dreamed again
    before = {p: p.stat().st_mtime_ns for p in (tmp_path / "ray").iterdir()}
    r = run_cli("dream", photos, "-o", tmp_path / "ray", "--executor", "ray", *TINY[:-1])
    assert r.code == 0 and "nothing to do" in r.err
    assert before == {p: p.stat().st_mtime_ns for p in (tmp_path / "ray").iterdir()}


@needs_ray
def test_sweep_on_ray_equals_local(ray_session, other_threads, run_cli, tmp_path):
    for name, extra in (("local", []), ("ray", ["--executor", "ray"])):
        args = ["--vary", "step-size=0.01,0.03,0.05", "--cells", tmp_path / name]
        r = run_cli("sweep", "noise", "--size", "32x32", "-o", tmp_path / f"{name}.png", *args,
                    *TINY, *extra)  # fmt: skip
        assert r.code == 0, r.err
    assert len(same_outputs(tmp_path / "local", tmp_path / "ray")) == 3
    assert np.array_equal(pixels(tmp_path / "local.png"), pixels(tmp_path / "ray.png"))


@needs_ray
def test_blend_0_video_on_ray_equals_local(ray_session, other_threads, run_cli, tmp_path):
    pytest.importorskip("imageio_ffmpeg")
    clip = make_clip(tmp_path / "clip.mp4", 4)
    for name, extra in (("local", []), ("ray", ["--executor", "ray"])):
        r = run_cli("video", clip, "-o", tmp_path / f"{name}/", "--blend", "0", *TINY, *extra)
        assert r.code == 0, r.err
    assert len(same_outputs(tmp_path / "local", tmp_path / "ray")) == 4


def make_clip(path: Path, frames: int, size: str = "40x32") -> Path:
    from inceptionism.io.video import ffmpeg_exe

    subprocess.run([ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi",
                    "-i", f"testsrc=size={size}:rate=12", "-frames:v", str(frames), "-c:v",
                    "libx264", "-pix_fmt", "yuv420p", str(path)], check=True)  # fmt: skip
    return path


def test_chunks_plan_and_shot_cuts():
    from inceptionism.motion.chunks import burn_in_frames, plan_chunks, shot_cuts

    assert burn_in_frames(0.5) == 7 and burn_in_frames(0) == 0 and burn_in_frames(1) == 60
    assert plan_chunks(24, 2, [], 7) == [(1, 1, 12), (6, 13, 24)]
    assert plan_chunks(24, 2, [10], 7) == [(1, 1, 9), (10, 10, 12), (10, 13, 24)]
    grey = [np.full((8, 8, 3), v, np.uint8) for v in (10, 12, 200, 201)]
    assert shot_cuts(grey) == [3]


@needs_ray
def test_blend_video_in_chunks_with_a_full_burn_in_equals_sequential(
    ray_session, other_threads, run_cli, tmp_path
):
    """Two chunks of 3 frames; the burn-in (7 frames at --blend 0.5) reaches back to frame 1, so
    the second chunk re-dreams frames 1-3 and continues exactly as one sequential run."""
    pytest.importorskip("imageio_ffmpeg")
    clip = make_clip(tmp_path / "clip.mp4", 6)
    for name, extra in (("local", []), ("ray", ["--executor", "ray"])):
        r = run_cli("video", clip, "-o", tmp_path / f"{name}/", "--blend", "0.5", *TINY, *extra)
        assert r.code == 0, r.err
    names = sorted(p.name for p in (tmp_path / "local").glob("*.png"))
    assert len(names) == 6 and names == sorted(p.name for p in (tmp_path / "ray").glob("*.png"))
    for name in names:
        assert np.array_equal(pixels(tmp_path / "local" / name), pixels(tmp_path / "ray" / name))
    burn = tmp_path / "ray" / "burnin" / "frame_000003.png"
    # frames 2-3 fade into chunk 2, whose burn-in dreamed them from frame 1 too: the same dreams
    assert sorted(p.name for p in burn.parent.iterdir()) == [
        f"frame_00000{k}.png" for k in (1, 2, 3)
    ]
    assert np.array_equal(pixels(burn), pixels(tmp_path / "ray" / "frame_000003.png"))
    assert read_recipe(tmp_path / "ray" / "frame_000003.png")["crossfade"]["weight"] == 2 / 3
    fourth = read_recipe(tmp_path / "ray" / "frame_000004.png")
    assert fourth["start"]["previous"]["path"] == str(burn.resolve())
    assert fourth["motion"]["burn_in"] == 7 and fourth["executor"]["kind"] == "ray"


@needs_ray
def test_killed_worker_is_retried_and_every_output_written_once(
    ray_session, other_threads, lite0, photos, tmp_path
):
    writes: Counter[Path] = Counter()

    def counting(path, _recipe):
        writes[Path(path)] += 1

    ctx = RunContext(lite0)
    inputs = sorted(photos.glob("*.png"))
    jobs = [Job(CONFIG, photo_start(str(p)), tmp_path / "ray" / p.name) for p in inputs]
    killed: list[int] = []
    with RayExecutor(workers=2) as ray_executor, watching(counting):
        pids = ray_executor.worker_pids(ctx)
        assert len(pids) == 2

        def kill_the_other(done, _tally) -> None:
            if not killed:  # the other worker is busy with its first job: kill it mid-job
                victim = next(p for p in pids if not done.worker.endswith(f":{p}"))
                os.kill(victim, signal.SIGKILL)
                killed.append(victim)

        results = ray_executor.run(jobs, ctx, kill_the_other)
        after = ray_executor.worker_pids(ctx)
    assert killed and killed[0] not in after  # that actor was restarted
    assert sorted(d.index for d in results) == list(range(len(jobs)))
    assert all(d.error is None for d in results)
    assert set(writes) == {j.output for j in jobs} and set(writes.values()) == {1}
    assert not [p for p in (tmp_path / "ray").iterdir() if p.name.startswith(".")]  # no parts
    local = [j.replace(output=tmp_path / "local" / j.output.name) for j in jobs]
    LocalExecutor().run(local, ctx)
    for j in jobs:
        assert np.array_equal(pixels(j.output), pixels(tmp_path / "local" / j.output.name))


@needs_ray
def test_interrupted_run_leaves_complete_outputs_and_resumes(
    ray_session, other_threads, run_cli, photos, tmp_path
):
    """Ctrl-C after the first output: what is there is complete (a readable PNG with its
    recipe, no part files), and the same command dreams only the rest."""
    calls = []

    def interrupt(path, _recipe):  # after the first file is in place, as Ctrl-C would
        calls.append(path)
        raise KeyboardInterrupt

    out = tmp_path / "out"
    with watching(interrupt):
        r = run_cli("dream", photos, "-o", out, "--executor", "ray", *TINY)
    assert r.code == 130 and "interrupted" in r.err
    assert [p.name for p in out.iterdir()] == [calls[0].name]
    assert read_recipe(calls[0])["executor"]["kind"] == "ray"
    r = run_cli("dream", photos, "-o", out, "--executor", "ray", *TINY[:-1])
    assert r.code == 0 and "skip" in r.err and r.err.count("wrote") == 5


# --- cross-fade between chunks -------------------------------------------------------------------


class InProcessChains(Executor):
    """The chunked video driver's executor without Ray: each chain through
    :meth:`Worker.dream_chain` in this process, in the given order (``reverse``: the later chunk
    finishes first)."""

    parallel = True

    def __init__(self, workers: int = 2, reverse: bool = False):
        self.workers, self.reverse, self.worker = workers, reverse, None
        self.chains: list[list[int]] = []

    def pool(self, ctx, jobs=0):
        return [None] * self.workers

    def run_chains(self, chains, ctx, on_chain):
        if self.worker is None:
            self.worker = Worker(ModelKey.of(ctx))
        order = range(len(chains))
        for i in reversed(order) if self.reverse else order:
            jobs, skip = chains[i]
            self.chains.append([j.index for j in jobs])
            texts = [json.dumps(job_recipe(j, ctx.model, ctx.weights_file)) for j in jobs]
            reply = self.worker.dream_chain(texts, skip)
            assert not isinstance(reply, Failed), reply
            where = Where(reply.where.device, "test", 1, reply.where.seconds)
            on_chain(i, dataclasses.replace(reply, where=where))


FADE = ["--model", "efficientnet_lite0", "--steps", "3", "--octaves", "1", "--blend", "0.5", "-q"]


@pytest.fixture(scope="module")
def chunked(tmp_path_factory):
    """12 frames of 48x36 in 2 chunks with a burn-in of 4 and a cross-fade over 3 frames (4-6):
    chunk 2 keeps 7-12 and dreams 3-6 as its burn-in. Returns the clip, a runner (``out``,
    ``reverse``: the later chunk first) and the folder of one finished run."""
    from inceptionism.cli import motion as cli_motion
    from inceptionism.cli.main import main as cli

    pytest.importorskip("imageio_ffmpeg")
    tmp = tmp_path_factory.mktemp("chunked")
    clip = make_clip(tmp / "clip.mp4", 12, "48x36")
    worker: list[Worker] = []

    def run(out: Path, reverse: bool = False) -> InProcessChains:
        fake = InProcessChains(reverse=reverse)
        fake.worker = worker[0] if worker else None
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(cli_motion, "burn_in_frames", lambda _blend: 4)
            mp.setattr(cli_motion, "crossfade_frames", lambda w: min(3, w))
            mp.setattr(cli_motion, "make_executor", lambda *_a, **_k: fake)
            assert cli(["video", str(clip), "-o", f"{out}/", *FADE]) == 0
        worker[:] = [fake.worker]
        return fake

    first = run(tmp / "out")
    assert first.chains == [list(range(1, 7)), list(range(3, 13))]
    return clip, run, tmp / "out"


def test_crossfaded_frames_mix_both_chunks_and_replay_exactly(chunked, run_cli, tmp_path):
    from inceptionism.jobs.job import mix_dreams

    _clip, _run, out = chunked
    assert len(list(out.glob("frame_*.png"))) == 12
    listed = {d: sorted(p.name for p in (out / d).iterdir()) for d in ("burnin", "crossfade")}
    assert listed == {"burnin": [f"frame_{k:06d}.png" for k in (3, 4, 5, 6)],
                      "crossfade": [f"frame_{k:06d}.png" for k in (4, 5, 6)]}  # fmt: skip
    for k, w in ((4, 0.25), (5, 0.5), (6, 0.75)):
        name = f"frame_{k:06d}.png"
        recipe = read_recipe(out / name)
        assert recipe["crossfade"]["weight"] == w
        burn = out / "burnin" / f"frame_{k - 1:06d}.png"
        assert recipe["crossfade"]["previous"]["path"] == str(burn.resolve())
        a, b = (pixels(out / d / name)[..., :3] for d in ("crossfade", "burnin"))
        assert not np.array_equal(a, b)  # two different dreams ...
        assert np.array_equal(pixels(out / name)[..., :3], mix_dreams(a, b, w))  # ... mixed
    for k in (3, 7, 8):
        assert "crossfade" not in read_recipe(out / f"frame_{k:06d}.png")
    seventh = read_recipe(out / "frame_000007.png")["start"]["previous"]["path"]
    assert seventh == str((out / "burnin" / "frame_000006.png").resolve())
    for k in (3, 4, 5, 6, 7):  # the frames around the seam, re-created pixel for pixel
        name = f"frame_{k:06d}.png"
        r = run_cli("replay", out / name, "-o", tmp_path / name, "-q")
        assert r.code == 0, r.err
        assert np.array_equal(pixels(tmp_path / name), pixels(out / name)), name


def test_crossfade_lowers_the_seam(chunked):
    """The seam (frame 6 -> 7, the first frame of chunk 2) by the warping error, with the
    cross-fade and without it (chunk 1's own dream of frame 6, in crossfade/, is what a run
    without a cross-fade writes there), against the steps inside chunk 2."""
    from inceptionism.io.video import probe, read_frames
    from inceptionism.ops.warp import flow_warp

    pytest.importorskip("cv2")
    clip, _run, out = chunked
    src = list(read_frames(clip, probe(clip)))

    def err(a: np.ndarray, b: np.ndarray, k: int) -> float:  # a: frame k-1, b: frame k
        warped = flow_warp(a.astype(np.float32), src[k - 2], src[k - 1])
        return float(np.abs(b.astype(np.float32) - warped).mean())

    frame = {k: pixels(out / f"frame_{k:06d}.png")[..., :3] for k in range(1, 13)}
    inner = float(np.median([err(frame[k - 1], frame[k], k) for k in range(8, 13)]))
    faded = err(frame[6], frame[7], 7)
    plain = err(pixels(out / "crossfade" / "frame_000006.png")[..., :3], frame[7], 7)
    assert plain > 1.1 * inner  # without the fade the seam is a jump ...
    assert faded < 0.5 * (plain + inner)  # ... which the fade takes more than half of


def test_chunked_run_with_crossfade_resumes_exactly(chunked, tmp_path):
    """Frames deleted from a finished run (in the cross-fade, and some of each chunk) are
    dreamed again with the same pixels, whichever chunk finishes first."""
    import shutil

    _clip, run, done = chunked
    out = tmp_path / "out"
    shutil.copytree(done, out)
    before = {p.name: pixels(p) for p in out.glob("frame_*.png")}

    def same() -> None:
        assert sorted(p.name for p in out.glob("frame_*.png")) == sorted(before)
        for name, px in before.items():
            assert np.array_equal(pixels(out / name), px), name

    for k in (6, 9, 10, 11, 12):
        (out / f"frame_{k:06d}.png").unlink()
    assert run(out).chains == [[6], [9, 10, 11, 12]]  # each chunk from its first gap
    same()
    for k in (4, 5, 6):  # the whole fade: chunk 1 again from 4, chunk 2's dreams from burnin/
        (out / f"frame_{k:06d}.png").unlink()
    assert run(out, reverse=True).chains == [[4, 5, 6]]
    same()
    for k in (4, 5, 6):
        (out / f"frame_{k:06d}.png").unlink()
    (out / "burnin" / "frame_000004.png").unlink()  # now chunk 2's burn-in is dreamed again
    assert run(out, reverse=True).chains == [list(range(3, 13)), [4, 5, 6]]
    same()
