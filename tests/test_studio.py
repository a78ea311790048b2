"""The web studio: its functions directly (no Gradio needed), its server through gradio_client,
and the page in a real headless browser (Debian's chromium driven by Playwright); the last two
need the `web` extra and are skipped without it."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from inceptionism.errors import InceptionismError
from inceptionism.io.image import read_recipe
from inceptionism.studio.core import Controls, Limits, Studio

FAST = dict(model="efficientnet_lite0", steps=2, octaves=2, size=64, seed=5)
ARTIFACTS = Path(__file__).parent / "artifacts"
CHROMIUM = "/usr/bin/chromium"


@pytest.fixture(scope="module")
def studio():
    s = Studio(Limits(max_upload_mb=5, max_pixels=4_000_000, max_side=512))
    yield s
    s.close()


@pytest.fixture(scope="module")
def photo(tmp_path_factory):
    from inceptionism.io.samples import sample_path

    path = tmp_path_factory.mktemp("studio") / "coffee.png"
    Image.open(sample_path("sample:coffee")).convert("RGB").resize((96, 64)).save(path)
    return path


def test_dream_yields_previews_then_a_png_with_its_recipe(studio, photo):
    c = Controls(source="upload", upload=str(photo), **FAST)
    steps = list(studio.dream(c))
    previews, (result, status, png) = steps[:-1], steps[-1]
    assert len(previews) == 2 and all(p[2] is None for p in previews)
    assert previews[0][0].size[0] < previews[1][0].size[0]  # the dream grows octave by octave
    assert status.startswith("done") and result.size == (64, 43)
    recipe = read_recipe(png)
    assert recipe["model"] == "efficientnet_lite0" and recipe["config"]["steps"] == 2
    assert recipe["start"]["source"]["input"] == "upload"
    assert recipe["start"]["source"]["path"] == "upload"  # no server path in the recipe
    assert recipe["start"]["source"]["sha256"]  # the upload is identified by its hash
    assert Path(png).parent == studio.workdir
    before = np.asarray(Image.open(photo).resize(result.size)).astype(float)
    assert np.abs(np.asarray(result).astype(float) - before).mean() > 2


def test_samples_and_noise(studio):
    *_, (result, _, png) = studio.dream(Controls(source="noise", **FAST))
    assert result.size == (64, 64) and read_recipe(png)["config"]["init"] == "noise"
    *_, (result, _, png) = studio.dream(Controls(source="sample", sample="sample:chelsea", **FAST))
    assert read_recipe(png)["start"]["source"]["input"] == "sample:chelsea"


def test_the_model_is_loaded_once(studio):
    first = studio.model("efficientnet_lite0")[0]
    list(studio.dream(Controls(source="noise", **FAST)))
    assert studio.model("efficientnet_lite0")[0] is first


def test_replay_fills_the_controls(studio):
    c = Controls(source="sample", sample="sample:astronaut", layers=["block9"],
                 objective="block9:3,block12=0.5", step_size=0.01, jitter=7, **FAST)  # fmt: skip
    *_, (_, _, png) = studio.dream(c)
    back = studio.controls_from_recipe(png, None)
    assert (back.source, back.sample, back.model) == ("sample", "sample:astronaut", c.model)
    assert (back.steps, back.octaves, back.seed, back.jitter) == (2, 2, 5, 7)
    assert back.step_size == pytest.approx(0.01) and back.size == 64
    assert back.objective == "block9:3=1,block12=0.5" and back.layers == ["block9", "block12"]
    text = json.dumps(read_recipe(png))
    assert studio.controls_from_recipe(None, text) == back
    with pytest.raises(InceptionismError, match="JSON"):
        studio.controls_from_recipe(None, "{not json")
    with pytest.raises(InceptionismError, match="drop a PNG"):
        studio.controls_from_recipe(None, "  ")


def test_uploads_are_checked(studio, tmp_path, photo):
    text = tmp_path / "notes.png"
    text.write_text("hello, world")
    with pytest.raises(InceptionismError, match=r"^the upload: notes\.png: not an image file") as e:
        list(studio.dream(Controls(source="upload", upload=str(text), **FAST)))
    assert str(tmp_path) not in str(e.value)  # no server path in what the page shows
    small = Studio(Limits(max_upload_mb=5, max_pixels=2000))
    with pytest.raises(InceptionismError, match="pixels"):
        list(small.dream(Controls(source="upload", upload=str(photo), **FAST)))
    tiny = Studio(Limits(max_upload_mb=0.001))
    with pytest.raises(InceptionismError, match="MB"):
        list(tiny.dream(Controls(source="upload", upload=str(photo), **FAST)))
    with pytest.raises(InceptionismError, match="upload a photo"):
        list(studio.dream(Controls(source="upload", upload=None, **FAST)))
    for s in (small, tiny):
        s.close()


def test_cancel_stops_the_dream(studio):
    c = Controls(source="noise", **{**FAST, "octaves": 4, "steps": 5, "size": 96})
    gen = studio.dream(c)
    first = next(gen)  # the first octave's preview
    assert first[2] is None
    studio.cancel()
    rest = list(gen)
    assert rest[-1] == (None, "cancelled", None)
    assert len(rest) < 4  # it did not run to the end


def test_replay_keeps_a_neuron_spec_whole(studio):
    """An objective with a neuron (its coordinates hold a comma) comes back unchanged."""
    recipe = {
        "format": 2,
        "model": "efficientnet_lite0",
        "start": {"kind": "noise"},
        "config": {"model": "efficientnet_lite0", "layers": "block10:5@12,9=0.5"},
    }
    back = studio.controls_from_recipe(None, json.dumps(recipe))
    assert back.objective == "block10:5@12,9=0.5" and back.layers == ["block10"]
    assert studio.config(back).layers == "block10:5@12,9=0.5"  # and into the dream unchanged


def test_objective_none_uses_the_layers(studio):
    c = Controls(source="noise", objective=None, layers=["block9"], **FAST)
    *_, (result, status, png) = studio.dream(c)
    assert status.startswith("done") and read_recipe(png)["config"]["layers"] == "block9=1"


def test_cancel_is_per_visitor(studio):
    c = Controls(source="noise", **{**FAST, "octaves": 3, "steps": 3, "size": 96})
    mine, theirs = studio.dream(c, session="a"), studio.dream(c, session="b")
    next(mine)
    next(theirs)
    studio.cancel("b")
    assert list(theirs)[-1] == (None, "cancelled", None)
    assert list(mine)[-1][1].startswith("done")  # the other visitor's dream went on


def test_a_recipe_naming_code_is_refused(studio, tmp_path):
    recipe = {"format": 2, "model": "os:system", "network": {"size": 32},
              "config": {"model": "os:system"}, "start": {"kind": "noise"}}  # fmt: skip
    with pytest.raises(InceptionismError, match="does not have"):
        studio.controls_from_recipe(None, json.dumps(recipe))
    with pytest.raises(InceptionismError, match="nested"):
        studio.controls_from_recipe(None, "[" * 50_000 + "]" * 50_000)


def test_results_are_removed_on_close(photo):
    s = Studio()
    *_, (_, _, png) = s.dream(Controls(source="noise", **FAST))
    assert Path(png).is_file()
    s.close()
    assert not Path(png).exists() and not s.workdir.exists()


NO_GRADIO = """
import sys

class NoGradio:  # refuses gradio and its client, as an install without the `web` extra
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("gradio", "gradio_client"):
            raise ImportError(f"{name} is blocked")

sys.meta_path.insert(0, NoGradio())
try:
    import gradio  # noqa: F401
except ImportError:
    pass
else:
    raise SystemExit("the blocker let gradio through")
from inceptionism.studio.core import Controls, Studio

s = Studio()
c = Controls(source="noise", model="efficientnet_lite0", size=64, steps=2, octaves=1)
*_, (result, status, png) = s.dream(c)
s.close()
loaded = sorted(m for m in sys.modules if m.split(".")[0] in ("gradio", "gradio_client"))
print(status.split()[0], result.size[0], result.size[1], loaded)
"""


def test_the_logic_imports_and_dreams_without_gradio():
    """The studio's logic (every studio module but app*) needs no Gradio: with Gradio refused
    at import, the studio still dreams."""
    r = subprocess.run([sys.executable, "-c", NO_GRADIO], capture_output=True, text=True,
                       timeout=600)  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["done", "64", "64", "[]"], r.stdout


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def server():
    pytest.importorskip("gradio")  # the page and its server need the `web` extra
    pytest.importorskip("gradio_client")
    from inceptionism.studio.app import launch

    s = Studio(Limits(max_upload_mb=5, max_side=256))
    app, url = launch(s, "127.0.0.1", free_port(), defaults=Controls(**FAST))
    yield url
    app.close()
    s.close()


def test_server_binds_to_localhost_and_a_real_client_dreams(server, photo, tmp_path):
    from gradio_client import Client, handle_file

    assert server.startswith("http://127.0.0.1:")
    client = Client(server, verbose=False)
    result, status, png = client.predict(
        upload=handle_file(str(photo)), model="efficientnet_lite0", layers=["block9"],
        steps=2, octaves=2, seed=3, size=64, api_name="/dream",
    )  # fmt: skip
    assert status.startswith("done")
    assert len(result) == 2  # before and after
    recipe = read_recipe(png)  # downloaded by the client: the PNG carries its recipe
    assert recipe["config"]["layers"] == "block9=1" and recipe["config"]["seed"] == 3
    assert recipe["start"]["source"]["input"] == "upload"  # the upload won over the sample
    assert Image.open(png).size == (64, 43)
    filled = client.predict(png=handle_file(png), recipe="", api_name="/replay")
    assert filled[3] == "efficientnet_lite0" and filled[12] == 3
    # a sweep with only its start and what to vary given
    sheets, files, status = client.predict(
        sample="sample:chelsea", steps=1, octaves=1, vary="steps=1,2", cell_size=64,
        api_name="/sweep",
    )  # fmt: skip
    assert status.startswith("done") and len(sheets) == 1 and len(files) == 3
    assert read_recipe(files[0])["sheet"]["kind"] == "sweep"
    assert [read_recipe(f)["config"]["steps"] for f in files[1:]] == [1, 2]
    sheets, files, status = client.predict(
        sample="sample:chelsea", steps=1, octaves=1, atlas_layers="block4,block9", cell_size=64,
        api_name="/atlas",
    )  # fmt: skip
    assert status.startswith("done") and read_recipe(files[0])["sheet"]["kind"] == "atlas"
    sheets, files, status = client.predict(
        steps=2, layer="block9", count=2, cell_size=64, api_name="/channels"
    )  # fmt: skip
    assert status.startswith("done") and read_recipe(files[0])["sheet"]["kind"] == "channels"
    # a zoom loop likewise
    video, frames, status = client.predict(
        source="noise", steps=1, octaves=1, frames=2, api_name="/zoom"
    )  # fmt: skip
    assert status.startswith("done") and len(frames) == 2
    assert Path(video["video"] if isinstance(video, dict) else video).stat().st_size > 0
    assert read_recipe(frames[1])["start"]["kind"] == "zoom"
    # a video: only the upload given
    clip = tmp_path / "clip.mp4"
    make_clip(clip)
    movie, frames, status = client.predict(video=handle_file(str(clip)), steps=1, octaves=1,
                                           api_name="/video")  # fmt: skip
    assert status.startswith("done") and len(frames) == 3
    assert read_recipe(frames[0])["start"]["source"]["path"] == "upload"
    with pytest.raises(Exception, match="upload a video first"):
        client.predict(steps=1, api_name="/video")


def make_clip(path: Path) -> None:
    """Three frames of a moving test pattern with a tone (the bundled ffmpeg)."""
    import subprocess

    from inceptionism.io.video import ffmpeg_exe

    subprocess.run([ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi",
                    "-i", "testsrc=size=64x48:rate=12", "-f", "lavfi", "-i",
                    "sine=frequency=440:sample_rate=22050", "-frames:v", "3", "-t", "0.25",
                    "-c:v", "libx264", "-pix_fmt", "yuv420p", "-c:a", "aac", str(path)],
                   check=True)  # fmt: skip


def test_serve_without_gradio_says_what_to_install(monkeypatch, run_cli):
    import builtins

    real_import = builtins.__import__

    def no_gradio(name, *args, **kwargs):
        if name == "gradio":
            raise ImportError("no gradio")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_gradio)
    r = run_cli("serve")
    assert r.code == 2 and "[web]" in r.err  # the hint fits the install


def browser_available() -> bool:
    return Path(CHROMIUM).is_file()


@pytest.mark.slow  # every tab driven to a result: 25-45 s here
@pytest.mark.skipif(
    not browser_available() and os.environ.get("INCEPTIONISM_BROWSER_TEST") != "required",
    reason=f"no {CHROMIUM} (apt-get install chromium); .ci/run installs it and requires this test",
)
def test_in_a_real_browser(server, photo):
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
            ],  # fmt: skip
        )
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 1100})
            page.goto(server, wait_until="domcontentloaded")
            page.locator("#dream").wait_for(timeout=60_000)
            # the first click, with the page's defaults, dreams (the sample)
            page.locator("#dream").click()
            page.locator("#download a").first.wait_for(timeout=120_000)  # the finished PNG
            assert page.locator("#status textarea").input_value().startswith("done")
            first = page.locator("#download a").first.get_attribute("href")
            # an upload is shown, and wins over the sample
            page.locator("#upload input[type=file]").set_input_files(str(photo))
            page.locator("#upload").get_by_text(photo.name).first.wait_for(timeout=60_000)
            page.locator("#shown img").first.wait_for(timeout=60_000)
            page.locator("#dream").click()
            page.wait_for_function(
                "h => { const a = document.querySelector('#download a');"
                " return a && a.getAttribute('href') !== h; }", arg=first, timeout=120_000,
            )  # fmt: skip
            images = page.locator("#result img")
            assert images.count() >= 2, "no before/after on the page"
            status = page.locator("#status textarea").input_value()
            assert status.startswith("done"), status
            page.screenshot(path=str(ARTIFACTS / "studio.png"), full_page=True)
            page.screenshot(path=str(ARTIFACTS / "studio-dream.png"))
            # the Explore tab: a sweep of the Dream tab's settings
            page.get_by_role("tab", name="Explore").click()
            page.locator("#vary textarea").fill("steps=1,2")
            page.locator("#sweep").click()
            page.wait_for_function(
                "() => (document.querySelector('#sweep_status textarea') || {}).value"
                "?.startsWith('done')", timeout=120_000,
            )  # fmt: skip
            page.locator("#sheets img").first.wait_for(timeout=60_000)
            page.screenshot(path=str(ARTIFACTS / "studio-explore.png"))
            # the Motion tab: a zoom loop of two frames
            page.get_by_role("tab", name="Motion").click()
            page.locator("#zoom_frames input[type=number]").fill("2")
            page.locator("#zoom_frames input[type=number]").press("Enter")
            page.locator("#zoom").click()
            page.wait_for_function(
                "() => (document.querySelector('#zoom_status textarea') || {}).value"
                "?.startsWith('done')", timeout=120_000,
            )  # fmt: skip
            page.locator("#video video").first.wait_for(timeout=60_000)
            page.screenshot(path=str(ARTIFACTS / "studio-motion.png"))
            # and a video, with the page's start and end left as they are
            clip = ARTIFACTS / "clip.mp4"
            make_clip(clip)
            page.locator("#clip input[type=file]").set_input_files(str(clip))
            page.locator("#clip").get_by_text("clip.mp4").first.wait_for(timeout=60_000)
            page.locator("#dream_video").click()
            page.wait_for_function(
                "() => (document.querySelector('#zoom_status textarea') || {}).value"
                "?.endsWith(': 3 frames')", timeout=120_000,
            )  # fmt: skip
        finally:
            browser.close()
    assert (ARTIFACTS / "studio.png").stat().st_size > 10_000
    if os.environ.get("INCEPTIONISM_SCREENSHOT_TO"):
        shutil.copy(ARTIFACTS / "studio.png", os.environ["INCEPTIONISM_SCREENSHOT_TO"])
    if os.environ.get("INCEPTIONISM_SCREENSHOT_DIR"):  # docs/: one picture per tab
        for name in ("studio-dream.png", "studio-explore.png", "studio-motion.png"):
            shutil.copy(ARTIFACTS / name, Path(os.environ["INCEPTIONISM_SCREENSHOT_DIR"]) / name)
