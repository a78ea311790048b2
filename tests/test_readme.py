"""Every `inceptionism ...` line of the README's code blocks (and of the guides in docs/ that
the README sends readers to), run as a user would (in a child process, in a folder holding the
files it names), at tiny sizes: exit code 0 and the output it names. Lines that need what this
machine cannot have are listed in SKIPPED with the reason; a new command that is neither run
nor listed fails the test."""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

pytestmark = pytest.mark.slow  # whole commands in child processes: .ci/run's second run

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
# the guides the README's sections moved to (ComfyUI's page replays a PNG its own tests make,
# tests/test_comfyui.py)
GUIDES = ("steering", "explore", "motion", "algorithm", "models", "performance",
          "security", "architecture", "ray", "train", "studio", "hub")  # fmt: skip

# Lines not run here, by a part of the line, with the reason.
SKIPPED = {
    "--model inception_v3": "needs InceptionV3 weights (a download; offline here)",
    "--model googlenet": "needs GoogLeNet weights (a download; offline here)",
    "inceptionism serve": "starts the web server (tests/test_studio.py drives it)",
    "--executor ray": "needs a Ray cluster and its shared folder",
    "--model hf:": "needs the Hub (offline here; tests/test_hub.py uses a hand-laid cache)",
    "layers hf:": "needs the Hub (offline here; tests/test_hub.py lists a cached repo's layers)",
}

# What a listing command prints, in part (layers of an EfficientNet-Lite also "block12").
LISTINGS = {
    "models": ["efficientnet_lite2", "keras-classic"],
    "presets": ["keras-classic", "tf1-lapnorm"],
    "layers": ["channels", "stride"],
}

# Per command: options that make it tiny (replacing the README's value where it gives one).
TINY = {
    "dream": {"--steps": "1", "--octaves": "1"},
    "sweep": {"--steps": "1", "--octaves": "1", "--max-size": "64", "--cell-size": "64"},
    "atlas": {"--steps": "1", "--octaves": "1", "--max-size": "64", "--cell-size": "64"},
    "channels": {"--steps": "2", "--size": "48x48", "--cell-size": "64"},
    "zoom": {"--steps": "1", "--octaves": "1", "--frames": "2"},
    "video": {"--steps": "1", "--octaves": "1", "--max-size": "48"},
    "train": {"--epochs": "1", "--size": "32"},
}
STARTS = ("noise", "grey")


def readme_commands(readme: Path | None = None) -> list[tuple[str, str]]:
    """(where, command) for every `inceptionism` command in a non-Python code block of the
    README and its guides; continuation lines joined, `a && b` split, the shell comment
    dropped."""
    files = [readme or README, *(ROOT / "docs" / f"{g}.md" for g in GUIDES if readme is None)]
    found = []
    for path in files:
        found += [(f"{path.name}:{n}", c) for n, c in _commands(path.read_text().splitlines())]
    return found


def _commands(lines: list[str]) -> list[tuple[int, str]]:
    found = []
    lang, i = None, 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("```"):
            lang = None if lang is not None else (line[3:].strip() or "text")
            i += 1
            continue
        start = i
        while line.endswith("\\") and i + 1 < len(lines):
            i += 1
            line = line[:-1] + " " + lines[i].strip()
        i += 1
        if lang is None or lang == "python":
            continue
        for part in line.split("&&"):
            if "inceptionism " not in part or part.lstrip().startswith(("#", "from ", "import ")):
                continue
            words = shlex.split(part, comments=True)
            if words and Path(words[0]).name == "inceptionism":
                found.append((start + 1, shlex.join(["inceptionism", *words[1:]])))
    return found


def skip_reason(command: str) -> str | None:
    return next((why for part, why in SKIPPED.items() if part in command), None)


def unknown_commands(commands: list[tuple[str, str]]) -> list[str]:
    """Commands neither skipped nor of a kind this test knows how to run small."""
    known = (*TINY, *LISTINGS, "replay")
    return [c for _, c in commands if skip_reason(c) is None and shlex.split(c)[1] not in known]


def tiny(args: list[str]) -> list[str]:
    """The README's arguments with small sizes, one or two steps and frames."""
    args = list(args)
    command = args[0]
    options = dict(TINY.get(command, {}))
    noise = any(a in STARTS for a in args[1:2]) or "--init" in args
    if command in ("dream", "zoom"):
        options["--size" if noise else "--max-size"] = "64x64" if noise else "64"
    if command == "video" and "--start" in args:  # a 3-second clip: seconds 1 to 2
        options.update({"--start": "1", "--end": "2"})
    for k, a in enumerate(args):
        if a == "--vary" and args[k + 1].startswith("steps="):  # 10,20,100 -> 1,2,3
            n = len(args[k + 1].split("=", 1)[1].split(","))
            args[k + 1] = "steps=" + ",".join(str(v) for v in range(1, n + 1))
    for option, value in options.items():
        if option in args:
            args[args.index(option) + 1] = value
        else:
            args += [option, value]
    return args


@pytest.fixture(scope="module")
def world(tmp_path_factory, coffee_path) -> Path:
    """A folder holding every file the README's commands name: photos, a clip, a dream with its
    recipe, a TorchScript network and a package with a network factory and its weights, a
    folder of two classes' pictures and a network trained on it (mynet.pt: cat, roses) with
    a dream of it (roses.png)."""
    root = tmp_path_factory.mktemp("world")
    photo = Image.open(coffee_path).convert("RGB").resize((96, 64))
    for name in ("photo.jpg", "a.jpg", "b.png", "big.jpg", "photos/x.jpg", "photos/y.png"):
        (root / name).parent.mkdir(exist_ok=True)
        photo.save(root / name)
    rng = np.random.default_rng(0)
    for label, colour in (("cat", (200, 120, 40)), ("roses", (40, 90, 200))):
        (root / "my_photos" / label).mkdir(parents=True)
        for i in range(6):
            pixels = np.array(colour) + rng.normal(0, 20, (40, 40, 3))
            Image.fromarray(np.clip(pixels, 0, 255).astype("uint8")).save(
                root / "my_photos" / label / f"{i}.png"
            )
    trained = run(["train", "my_photos", "-o", "mynet.pt", *tiny(["train"])[1:]], root)
    assert trained.returncode == 0, trained.stderr
    roses = run(["dream", "photo.jpg", "-o", "roses.png", "--model", "mynet.pt", "--class",
                 "roses", *tiny(["dream"])[1:]], root)  # fmt: skip
    assert roses.returncode == 0, roses.stderr
    import imageio_ffmpeg

    subprocess.run(
        [imageio_ffmpeg.get_ffmpeg_exe(), "-v", "error", "-f", "lavfi", "-i",
         "testsrc=size=48x32:rate=4:duration=3", "-f", "lavfi", "-i",
         "sine=frequency=440:duration=3", "-pix_fmt", "yuv420p", "-shortest",
         str(root / "clip.mp4")],
        check=True,
    )  # fmt: skip
    run(["dream", "photo.jpg", "-o", "dream.png", "--steps", "1", "--octaves", "1",
         "--max-size", "64"], root)  # fmt: skip
    net = torch.nn.Sequential(
        torch.nn.Conv2d(3, 8, 3, stride=2, padding=1), torch.nn.ReLU(),
        torch.nn.Conv2d(8, 16, 3, stride=2, padding=1), torch.nn.ReLU(),
    )  # fmt: skip
    torch.jit.script(net).save(str(root / "my_net.pt"))
    (root / "mypackage").mkdir()
    (root / "mypackage" / "__init__.py").write_text("")
    (root / "mypackage" / "nets.py").write_text(
        "import torch\n\n\nclass Net(torch.nn.Module):\n    def __init__(self):\n"
        "        super().__init__()\n        self.encoder = torch.nn.Sequential(\n"
        "            torch.nn.Conv2d(3, 8, 3, 2, 1), torch.nn.ReLU(),\n"
        "            torch.nn.Conv2d(8, 16, 3, 2, 1), torch.nn.ReLU())\n\n"
        "    def forward(self, x):\n        return self.encoder(x)\n\n\n"
        "def build():\n    return Net()\n"
    )
    sys.path.insert(0, str(root))
    try:
        from mypackage.nets import build

        torch.save(build().state_dict(), root / "trained.pth")
    finally:
        sys.path.remove(str(root))
        sys.modules.pop("mypackage.nets", None)
        sys.modules.pop("mypackage", None)
    return root


def run(args: list[str], cwd: Path, threads: int | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(cwd)])}
    if threads is not None:
        env["INCEPTIONISM_THREADS"] = str(threads)
    return subprocess.run(
        [sys.executable, "-m", "inceptionism", *args], cwd=cwd, env=env,
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip


def outputs(args: list[str]) -> list[str]:
    return [args[k + 1] for k, a in enumerate(args[:-1]) if a in ("-o", "--output")]


COMMANDS = readme_commands()


def test_the_readme_has_commands_and_every_skip_is_used():
    assert len(COMMANDS) > 30
    used = {part for part in SKIPPED if any(part in c for _, c in COMMANDS)}
    assert used == set(SKIPPED), f"SKIPPED entries no README line needs: {set(SKIPPED) - used}"
    assert unknown_commands(COMMANDS) == [], "add these to TINY or LISTINGS, or to SKIPPED"


@pytest.fixture(scope="module")
def results(world, tmp_path_factory) -> dict[str, tuple[list[str], Path, Any]]:
    """Every command that can run here, each in its own copy of the world, two at a time
    with one torch thread each (most of a tiny command's time is starting Python and torch)."""

    def one(line: str, command: str) -> tuple[str, tuple[list[str], Path, Any]]:
        cwd = tmp_path_factory.mktemp("line" + line.replace(".md:", "-").replace(".", "-")) / "here"
        args = shlex.split(command)[1:]
        # the world's dreams are there for replay to read, mynet.pt for the dreams with it; a
        # command that writes one of them (and its metadata) finds none
        written = [Path(o.rstrip("/")) for o in outputs(args)]
        keep = shutil.ignore_patterns(*(f"{p.stem}.*" for p in written), *(p.name for p in written))
        shutil.copytree(world, cwd, ignore=keep)
        if args[0] not in LISTINGS:
            args = tiny(args)
        return line, (args, cwd, run(args, cwd, threads=1))

    todo = [(n, c) for n, c in COMMANDS if skip_reason(c) is None]
    with ThreadPoolExecutor(max_workers=2) as pool:
        return dict(pool.map(lambda nc: one(*nc), todo))


@pytest.mark.parametrize(
    "line, command", COMMANDS, ids=[n for n, _ in COMMANDS]
)  # fmt: skip
def test_readme_command(results, line, command):
    why = skip_reason(command)
    if why is not None:
        pytest.skip(why)
    args, cwd, r = results[line]
    assert r.returncode == 0, f"{line}: {shlex.join(args)}\n{r.stderr[-2000:]}"
    expected = LISTINGS.get(args[0], []) + (["block12"] if "layers efficientnet" in command else [])
    for part in expected:
        assert part in r.stdout, f"{line}: {part!r} not in the listing"
    for out in outputs(args):
        path = cwd / out
        if out.endswith("/"):
            assert path.is_dir() and any(path.iterdir()), f"{line}: {out} is empty"
        else:
            assert path.is_file() and path.stat().st_size > 0, f"{line}: no {out}"
            if path.suffix == ".png":
                assert np.asarray(Image.open(path)).size > 0


def test_a_new_command_is_run_or_listed(monkeypatch, tmp_path):
    """The guard itself: a README line with a command of an unknown kind is reported."""
    readme = tmp_path / "README.md"
    extra = "```bash\ninceptionism frobnicate x \\\n    -o y.png  # new\n```\n"
    readme.write_text(README.read_text() + "\n" + extra)
    commands = readme_commands(readme)
    assert commands[-1][1] == "inceptionism frobnicate x -o y.png"
    assert unknown_commands(commands) == ["inceptionism frobnicate x -o y.png"]
