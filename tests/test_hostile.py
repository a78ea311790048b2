"""Hostile inputs: recipes, paths, uploads and option values from a stranger or a careless user.

Every case runs the real command in a child process under an address-space limit and checks
what the README promises: exit code 2, one line on stderr without a traceback, nothing written
or imported (marker files), memory bounded.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, PngImagePlugin

from inceptionism.io.image import RECIPE_KEY

ADDRESS_SPACE = 8 << 30  # torch maps a lot of address space; a decoded 20000^2 image needs more


def run_child(*args: object, cwd: Path, limit: int = ADDRESS_SPACE) -> tuple[int, str, float]:
    """Run ``inceptionism ARGS`` in a fresh process under an address-space limit; returns the
    exit code, stderr and the child's peak RSS in MB."""

    def cap() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    err_file = cwd / f".stderr-{os.getpid()}.txt"
    with open(err_file, "wb") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "inceptionism", *map(str, args)],
            cwd=cwd, stdout=subprocess.DEVNULL, stderr=err, preexec_fn=cap, env=env,
        )  # fmt: skip
        _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    text = err_file.read_text()
    err_file.unlink()
    return proc.returncode, text, usage.ru_maxrss / 1024


def one_line(err: str) -> bool:
    lines = [ln for ln in err.splitlines() if ln.strip()]
    return (
        len(lines) == 1 and lines[0].startswith("inceptionism: error:") and "Traceback" not in err
    )


def recipe_png(path: Path, recipe: object, size: tuple[int, int] = (8, 8), text: str | None = None):
    info = PngImagePlugin.PngInfo()
    info.add_itxt(RECIPE_KEY, text if text is not None else json.dumps(recipe))
    Image.new("RGB", size).save(path, pnginfo=info)
    return path


def good_recipe(**changes: object) -> dict:
    recipe = {
        "format": 2, "kind": "dream", "model": "efficientnet_lite0",
        "config": {"model": "efficientnet_lite0", "layers": "block9=1", "steps": 1, "octaves": 1,
                   "init": "noise"},
        "start": {"kind": "noise", "size": [32, 32]},
    }  # fmt: skip
    recipe.update(changes)
    return recipe


# --- a recipe is data, never code ----------------------------------------------------------------


@pytest.fixture
def planted(tmp_path):
    """A module in the current folder that leaves a marker file when imported or called."""
    pkg = tmp_path / "evilpkg"
    pkg.mkdir()
    marker = tmp_path / "IMPORTED"
    (pkg / "__init__.py").write_text("")
    (pkg / "mod.py").write_text(
        f"open({str(marker)!r}, 'w').write('imported')\n"
        "def build():\n"
        f"    open({str(marker)!r}, 'w').write('called')\n"
        "    raise SystemExit(0)\n"
    )
    return marker


@pytest.mark.parametrize(
    "model, network",
    [
        ("evilpkg.mod:build", {"input_norm": None, "input_range": None, "size": 32}),
        ("evilpkg.mod:build", None),
        ("os:system", {"input_norm": None, "input_range": None, "size": 32}),
        ("builtins:exit", None),
        ("evil.pt", None),
    ],
)
def test_replay_never_imports_or_loads_code_a_recipe_names(tmp_path, planted, model, network):
    (tmp_path / "evil.pt").write_bytes(b"PK not really torchscript")
    recipe = good_recipe(model=model, network=network)
    recipe["config"]["model"] = model
    png = recipe_png(tmp_path / "dream.png", recipe)
    code, err, _ = run_child("replay", png, "-o", tmp_path / "out.png", cwd=tmp_path)
    assert code == 2 and one_line(err), err
    assert "--model" in err  # says which flag re-creates it on purpose
    assert not planted.exists() and not (tmp_path / "out.png").exists()


def test_format_1_recipe_naming_a_factory_is_refused_too(tmp_path, planted):
    recipe = {"format": 1, "model": "evilpkg.mod:build", "network": {"size": 32},
              "config": {"model": "evilpkg.mod:build", "init": "noise", "steps": 1},
              "source": {"input": "noise", "path": None, "size": [32, 32]}}  # fmt: skip
    png = recipe_png(tmp_path / "old.png", recipe)
    code, err, _ = run_child("replay", png, "-o", tmp_path / "out.png", cwd=tmp_path)
    assert code == 2 and one_line(err) and not planted.exists(), err


# --- malformed recipes: one line each, before anything is loaded or allocated --------------


def _deep(n: int) -> str:
    return '{"config": ' + "[" * n + "]" * n + "}"


MALFORMED = {
    "deep nesting": ("text", _deep(100_000)),
    "moderate nesting": ("text", '{"a":' * 50 + "1" + "}" * 50),
    "null config": ("recipe", good_recipe(config=None)),
    "integer config": ("recipe", good_recipe(config=7)),
    "config list": ("recipe", good_recipe(config=[1, 2])),
    "size abc": ("recipe", good_recipe(start={"kind": "noise", "size": "abc"})),
    "size negative": ("recipe", good_recipe(start={"kind": "noise", "size": [-5, 32]})),
    "size enormous": ("recipe", good_recipe(start={"kind": "noise", "size": [60000, 60000]})),
    "size huge ints": ("recipe", good_recipe(start={"kind": "noise", "size": [10**30, 2]})),
    "max_size text": ("recipe", good_recipe(start={"kind": "noise", "max_size": "big"})),
    "max_pixels negative": ("recipe", good_recipe(start={"kind": "noise", "max_pixels": -1})),
    "max_pixels enormous": ("recipe", good_recipe(start={"kind": "noise", "max_pixels": 10**15})),
    "octaves 100000": ("config", {"octaves": 100_000}),
    "steps 1e22": ("config", {"steps": 1e22}),
    "steps text": ("config", {"steps": "many"}),
    "step_size nan": ("text", None),
    "unknown field": ("config", {"colour": "blue"}),
    "start kind": ("recipe", good_recipe(start={"kind": "webcam"})),
    "job kind": ("recipe", good_recipe(kind="movie")),
    "format 99": ("recipe", good_recipe(format=99)),
    "not an object": ("text", "[1, 2, 3]"),
    "not json": ("text", "{config: nope"),
    "source path number": ("recipe", good_recipe(start={"kind": "photo", "source": {"path": 5}})),
    "octave scale blowup": ("config", {"octaves": 32, "octave_scale": 0.1}),
    "v1 size abc": ("recipe", {"format": 1, "model": "efficientnet_lite0",
                              "config": {"init": "noise"}, "source": {"size": "abc"}}),
}  # fmt: skip


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_recipes_get_one_line(tmp_path, case):
    kind, value = MALFORMED[case]
    text = None
    if kind == "recipe":
        recipe = value
    elif kind == "config":
        recipe = good_recipe()
        recipe["config"].update(value)
    else:
        recipe = None
        text = (
            value
            if value is not None
            else json.dumps(good_recipe()).replace('"steps": 1', '"step_size": NaN, "steps": 1')
        )
    png = recipe_png(tmp_path / "r.png", recipe, text=text)
    code, err, rss = run_child("replay", png, "-o", tmp_path / "out.png", cwd=tmp_path)
    assert code == 2 and one_line(err), (case, err)
    assert not (tmp_path / "out.png").exists()
    assert rss < 1500, f"{case}: {rss:.0f} MB"  # nothing large was allocated


def test_a_huge_recipe_png_is_not_decoded_to_read_its_recipe(tmp_path):
    """A 20000x20000 PNG (a few hundred kB on disk) carrying a recipe whose source is gone:
    replay reads the recipe from the chunks without decoding a pixel."""
    recipe = good_recipe(
        start={"kind": "photo", "source": {"input": "gone.jpg", "path": str(tmp_path / "gone.jpg")}}
    )
    recipe["config"]["init"] = "photo"
    png = recipe_png(tmp_path / "huge.png", recipe, size=(20000, 20000))
    assert png.stat().st_size < 2_000_000
    code, err, rss = run_child("replay", png, "-o", tmp_path / "out.png", cwd=tmp_path)
    assert code == 2 and one_line(err) and "gone.jpg" in err, err
    assert rss < 1200, rss  # the decoded image alone would be 1200 MB


# --- paths: what the final rename will see ---------------------------------------------


@pytest.fixture
def photos(tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for name in ("in.png", "b.png"):
        Image.fromarray(rng.integers(0, 255, (40, 40, 3), np.uint8)).save(folder / name)
    return folder


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


FAST = ("--model", "lite0", "--steps", "1", "--octaves", "1", "-q")


@pytest.mark.parametrize(
    "args",
    [
        ("dream", "photos/in.png", "-o", "photos/nosuch/../in.png"),
        ("dream", "photos/in.png", "-o", "photos/nosuch/../in.png", "--force"),
        ("dream", "photos", "-o", "photos/tmp/.."),
        ("dream", "photos", "-o", "photos/tmp/../", "--force"),
        ("dream", "photos/in.png", "-o", "link.png", "--force"),
        ("dream", "photos/in.png", "-o", "hard.png", "--force"),
        ("dream", "photos/in.png", "--guide", "photos/b.png", "-o", "photos/x/../b.png"),
        ("sweep", "photos/in.png", "--vary", "steps=1,2", "-o", "photos/new/../in.png"),
        (
            "dream",
            "photos/in.png",
            "-o",
            "out.png",
            "--save-octaves",
            "--force",
            "--steps",
            "1",
            "--octaves",
            "2",
            "--model",
            "lite0",
        ),
    ],
)
def test_outputs_never_land_on_inputs(tmp_path, photos, args):
    (tmp_path / "link.png").symlink_to(photos / "in.png")
    os.link(photos / "in.png", tmp_path / "hard.png")  # the same file by another name
    (tmp_path / "out.octave1.png").symlink_to(photos / "in.png")  # an octave file, by a link
    before = _snapshot(photos)
    fast = FAST if "--save-octaves" not in args else ("-q",)
    code, err, _ = run_child(*args, *fast, cwd=tmp_path)
    assert code == 2 and one_line(err) and "input" in err, err
    assert _snapshot(photos) == before
    assert not (photos / "nosuch").exists() and not (photos / "tmp").exists()


def test_replay_onto_its_own_source_through_a_missing_folder(tmp_path, photos):
    code, err, _ = run_child("dream", "photos/in.png", "-o", "d.png", *FAST, cwd=tmp_path)
    assert code == 0, err
    before = _snapshot(photos)
    code, err, _ = run_child("replay", "d.png", "-o", "photos/x/../in.png", "--force", "-q",
                             cwd=tmp_path)  # fmt: skip
    assert code == 2 and one_line(err) and "input" in err, err
    assert _snapshot(photos) == before and not (photos / "x").exists()


def test_unwritable_sheet_location_is_refused_before_any_cell(tmp_path, photos):
    (tmp_path / "afile").write_text("a file where the sheet's folder should be")
    code, err, _ = run_child("sweep", "photos/in.png", "--vary", "steps=1,2", "-o",
                             "afile/sheet.png", "--cells", "cells", *FAST,
                             cwd=tmp_path)  # fmt: skip
    assert code == 2 and one_line(err) and "not a folder" in err, err
    assert not (tmp_path / "cells").exists()  # no cell was dreamed


# --- option values -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        ("--octaves", "5000", "--detail", "photo"),
        ("--steps", "1e22"),
        ("--steps", str(10**22)),
        ("--model", ""),
        ("--size", "100000x100000", "--init", "noise"),
        ("--max-pixels", str(10**12)),
        ("--octaves", "32", "--octave-scale", "0.1"),
        ("--tile", "99999999999"),
        ("--jitter", "-3"),
    ],
)
def test_option_values_out_of_bounds(tmp_path, photos, args):
    inputs = [] if "--init" in args else ["photos/in.png"]
    code, err, rss = run_child("dream", *inputs, "-o", "out.png", *args, cwd=tmp_path)
    assert code == 2 and one_line(err), err
    assert not (tmp_path / "out.png").exists() and rss < 1500


def test_nan_weights_stop_the_dream_with_one_line(tmp_path):
    import torch

    from inceptionism.models import get_spec
    from inceptionism.models.weights import read_state_dict

    state = read_state_dict(get_spec("efficientnet_lite0").weights.path())
    state = {k: torch.full_like(v, float("nan")) if v.is_floating_point() else v
             for k, v in state.items()}  # fmt: skip
    torch.save(state, tmp_path / "nan.pth")
    code, err, _ = run_child("dream", "--init", "noise", "--size", "32x32", "-o", "out.png",
                             "--weights", "nan.pth", *FAST, cwd=tmp_path)  # fmt: skip
    assert code == 2 and one_line(err) and "nan" in err.lower(), err
    assert not (tmp_path / "out.png").exists()


# --- leftovers -----------------------------------------------------------------------------------


def test_stale_part_files_of_dead_processes_are_removed(tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = tmp_path / f".out.png.{dead.pid}.abcd1234.part"
    stale.write_bytes(b"half a png")
    mine = tmp_path / f".other.png.{os.getppid()}.abcd1234.part"  # a live process's part
    mine.write_bytes(b"being written")
    foreign = tmp_path / ".notes.part"  # not of our naming: left alone
    foreign.write_bytes(b"x")
    code, err, _ = run_child("dream", "--init", "noise", "--size", "32x32", "-o", "out.png",
                             *FAST, cwd=tmp_path)  # fmt: skip
    assert code == 0, err
    assert not stale.exists() and mine.exists() and foreign.exists()
    assert (tmp_path / "out.png").exists()


# --- uploads to the studio ---------------------------------------------------------------

UPLOAD_SCRIPT = """
import sys
from inceptionism.studio.core import Controls, Limits, Studio
from inceptionism.errors import InceptionismError
studio = Studio(Limits(max_upload_mb=20, max_pixels=16_000_000))
try:
    list(studio.dream(Controls(source="upload", upload=sys.argv[1], model="efficientnet_lite0",
                               steps=1, octaves=1, size=64)))
except InceptionismError as e:
    print(e, file=sys.stderr)
    sys.exit(2)
finally:
    studio.close()
"""


@pytest.mark.parametrize("kind", ["bomb", "text", "truncated", "empty"])
def test_hostile_uploads_are_refused_before_decoding(tmp_path, kind):
    """A 144 Mpx upload (a few hundred kB of PNG), a text file, a truncated JPEG, an empty file:
    one line without a server path, in a child process whose memory is measured."""
    path = tmp_path / f"up.{'png' if kind in ('bomb', 'text') else 'jpg'}"
    if kind == "bomb":
        Image.new("1", (12000, 12000)).save(path)
    elif kind == "text":
        path.write_text("not an image")
    elif kind == "truncated":
        rng = np.random.default_rng(0)
        Image.fromarray(rng.integers(0, 255, (64, 64, 3), np.uint8)).save(path)
        path.write_bytes(path.read_bytes()[:500])
    else:
        path.write_bytes(b"")
    script = tmp_path / "upload.py"
    script.write_text(UPLOAD_SCRIPT)

    def cap() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (ADDRESS_SPACE, ADDRESS_SPACE))

    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    with open(tmp_path / "err.txt", "wb") as err:
        proc = subprocess.Popen(
            [sys.executable, str(script), str(path)],
            cwd=tmp_path,
            stdout=subprocess.DEVNULL,
            stderr=err,
            preexec_fn=cap,
            env=env,
        )
        _, status, usage = os.wait4(proc.pid, 0)  # fmt: skip
    text = (tmp_path / "err.txt").read_text()
    lines = [ln for ln in text.splitlines() if ln.strip()]
    assert os.waitstatus_to_exitcode(status) == 2 and len(lines) == 1, text
    assert str(tmp_path) not in text and "Traceback" not in text
    assert usage.ru_maxrss / 1024 < 1200  # 144 Mpx decoded would be 430 MB of RGB at least
