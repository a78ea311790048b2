"""The command line, round 3: non-finite and over-long numbers, symlinked outputs, batch
collisions, library warnings, install hints and a --help a newcomer can read.

Usage errors are checked for exit code 2, exactly one line on stderr and nothing written; where
stderr cleanliness is the point (library warnings) the command runs in a child process.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import click
import numpy as np
import pytest
from PIL import Image

from inceptionism import errors
from inceptionism.cli.main import cli
from inceptionism.cli.options import CLI_FIELDS, OTHER, SECTIONS, SectionedCommand
from inceptionism.engine.config import PRESETS, DreamConfig

LONG = "9" * 5000  # int() refuses strings of over 4300 digits
SMALL = ("--model", "lite0", "--steps", "1", "--octaves", "1", "-q")


def one_error_line(err: str) -> str:
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("inceptionism: error:") and "Traceback" not in err, err
    return lines[0]


@pytest.fixture
def photo(tmp_path):
    path = tmp_path / "in.png"
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (40, 48, 3), dtype=np.uint8)).save(path)
    return path


def listing(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


# --- NaN and infinity ----------------------------------------------------------------------------

FLOAT_FIELDS = [
    f for f in CLI_FIELDS
    if isinstance(getattr(DreamConfig(), f.name), float) and not f.metadata.get("integer")
]  # fmt: skip
DREAM_FLOAT_CASES = [
    ("dream", "in.png", "-o", "out.png", f.metadata.get("flag") or "--" + f.name.replace("_", "-"),
     value)
    for f in FLOAT_FIELDS for value in ("nan", "inf", "-inf")
]  # fmt: skip
MOTION_CASES = [
    ("zoom", "missing.png", "-o", "z.mp4", "--zoom", "nan"),
    ("zoom", "missing.png", "-o", "z.mp4", "--rotate", "nan"),
    ("zoom", "missing.png", "-o", "z.mp4", "--fps", "nan"),
    ("zoom", "missing.png", "-o", "z.mp4", "--fps", "inf"),
    ("zoom", "missing.png", "-o", "z.mp4", "--shift", "nan,0"),
    ("zoom", "missing.png", "-o", "z.mp4", "--shift", "0,-inf"),
    ("video", "missing.mp4", "-o", "v.mp4", "--blend", "nan"),
    ("video", "missing.mp4", "-o", "v.mp4", "--start", "nan"),
    ("video", "missing.mp4", "-o", "v.mp4", "--end", "nan"),
    ("serve", "--max-upload-mb", "nan"),
    ("serve", "--max-upload-mb", "inf"),
    ("dream", "in.png", "-o", "out.png", "--max-loss", "nan"),
    ("dream", "in.png", "-o", "out.png", "--input-range", "nan,1"),
    ("dream", "in.png", "-o", "out.png", "--input-norm", "0.5,0.5,inf/1,1,1"),
    ("sweep", "in.png", "-o", "s.png", "--vary", "step-size=0.01,nan"),
    ("sweep", "in.png", "-o", "s.png", "--vary", "octave-scale=inf"),
    ("channels", "block3", "-o", "c.png", "--transforms", "scale=nan"),
]


def test_every_float_field_of_the_config_is_covered():
    names = {f.name for f in FLOAT_FIELDS}
    assert {"step_size", "octave_scale", "smooth", "tv", "grad_eps"} <= names, names


@pytest.mark.parametrize("args", DREAM_FLOAT_CASES + MOTION_CASES, ids=" ".join)
def test_non_finite_numbers_are_refused_with_one_line(tmp_path, photo, run_cli, monkeypatch, args):
    monkeypatch.chdir(tmp_path)
    before = listing(tmp_path)
    r = run_cli(*args)
    assert r.code == 2, r.err
    line = one_error_line(r.err)
    option = next(a for a in args if a.startswith("--"))
    assert option in line and "finite" in line, line
    assert listing(tmp_path) == before


# --- integers of thousands of digits -------------------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        ("dream", "in.png", "-o", "out.png", "--layers", f"block12:{LONG}"),
        ("dream", "in.png", "-o", "out.png", "--layers", f"block12:3@{LONG},2"),
        ("dream", "in.png", "-o", "out.png", "--steps", LONG),
        ("dream", "in.png", "-o", "out.png", "--seed", LONG),
        ("dream", "in.png", "-o", "out.png", "--class", LONG),
        ("dream", "in.png", "-o", "out.png", "--tile", LONG),
        ("dream", "-o", "out.png", "--init", "noise", "--size", f"{LONG}x16"),
        ("dream", "in.png", "-o", "out.png", "--executor", f"ray:{LONG}"),
        ("dream", "in.png", "-o", "out.png", "--device", f"cuda:{LONG}"),
        ("zoom", "in.png", "-o", "z.mp4", "--frames", LONG),
        ("channels", "block3", "-o", "c.png", "--channels", f"3,{LONG}"),
        ("sweep", "in.png", "-o", "s.png", "--vary", f"steps=1,{LONG}"),
        ("serve", "--port", LONG),
    ],
    ids=lambda a: " ".join(a)[:60],
)
def test_integers_of_thousands_of_digits_get_one_short_line(
    tmp_path, photo, run_cli, monkeypatch, args
):
    monkeypatch.chdir(tmp_path)
    before = listing(tmp_path)
    r = run_cli(*args)
    assert r.code == 2, r.err[:500]
    assert len(one_error_line(r.err)) < 400, r.err[:500]
    assert listing(tmp_path) == before


# --- symlinked outputs ---------------------------------------------------------------------------


@pytest.fixture
def links(tmp_path, photo):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "kept.png").write_bytes(b"not to be touched")
    os.symlink(elsewhere / "ghost.png", tmp_path / "dangling.png")
    os.symlink(elsewhere / "kept.png", tmp_path / "live.png")
    os.symlink(photo, tmp_path / "to_input.png")
    return tmp_path


@pytest.mark.parametrize("name", ["dangling.png", "live.png"])
def test_a_symlink_output_is_an_existing_file(links, photo, run_cli, name):
    r = run_cli("dream", photo, "-o", links / name, *SMALL)
    assert r.code == 2 and "--force" in one_error_line(r.err), r.err
    assert os.path.islink(links / name)
    assert not (links / "elsewhere" / "ghost.png").exists()  # a dangling link's target: never
    assert (links / "elsewhere" / "kept.png").read_bytes() == b"not to be touched"


@pytest.mark.parametrize("name", ["dangling.png", "live.png"])
def test_force_replaces_the_link_never_its_target(links, photo, run_cli, name):
    r = run_cli("dream", photo, "-o", links / name, *SMALL, "--force")
    assert r.code == 0, r.err
    assert not os.path.islink(links / name)
    assert Image.open(links / name).size == (48, 40)
    assert sorted(os.listdir(links / "elsewhere")) == ["kept.png"]
    assert (links / "elsewhere" / "kept.png").read_bytes() == b"not to be touched"


def test_a_link_to_an_input_is_refused_even_with_force(links, photo, run_cli):
    data = photo.read_bytes()
    r = run_cli("dream", photo, "-o", links / "to_input.png", *SMALL, "--force")
    assert r.code == 2 and "input" in one_error_line(r.err), r.err
    assert photo.read_bytes() == data and os.path.islink(links / "to_input.png")


def test_replay_onto_a_dangling_link_is_refused(links, photo, run_cli):
    assert run_cli("dream", photo, "-o", links / "dream.png", *SMALL).code == 0
    r = run_cli("replay", links / "dream.png", "-o", links / "dangling.png", "-q")
    assert r.code == 2 and "symbolic link" in one_error_line(r.err), r.err
    assert not (links / "elsewhere" / "ghost.png").exists()


def test_an_output_folder_that_is_a_dangling_link_is_refused(links, photo, run_cli):
    os.symlink(links / "elsewhere" / "nowhere", links / "outdir")
    r = run_cli("dream", photo, links / "live.png", "-o", f"{links / 'outdir'}/", *SMALL)
    assert r.code == 2 and "symbolic link" in one_error_line(r.err), r.err
    assert not (links / "elsewhere" / "nowhere").exists()


# --- batch collisions ----------------------------------------------------------------------------


def test_a_batch_collision_names_both_inputs(tmp_path, photo, run_cli, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for folder, name in (("a", "x.png"), ("b", "x.jpg")):
        (tmp_path / folder).mkdir()
        Image.open(photo).save(tmp_path / folder / name)
    r = run_cli("dream", "a/x.png", "b/x.jpg", "-o", "out/", *SMALL)
    assert r.code == 2, r.err
    line = one_error_line(r.err)
    assert "a/x.png" in line and "b/x.jpg" in line, line
    assert not (tmp_path / "out").exists()
    r = run_cli("dream", "a/x.png", "a/x.png", "-o", "out/", *SMALL)
    assert r.code == 2 and "twice" in one_error_line(r.err), r.err


def test_an_octave_file_colliding_with_another_inputs_output(tmp_path, photo, run_cli):
    photo.rename(tmp_path / "x.png")
    Image.open(tmp_path / "x.png").save(tmp_path / "x.octave1.png")
    r = run_cli("dream", tmp_path / "x.png", tmp_path / "x.octave1.png", "-o", tmp_path / "out",
                "--save-octaves", "--octaves", "2", "--model", "lite0", "-q")  # fmt: skip
    line = one_error_line(r.err)
    assert r.code == 2 and "x.png and" in line and "x.octave1.png would" in line, line
    assert not (tmp_path / "out").exists()


# --- one line on stderr, in a child process ------------------------------------------------------


def run_child(*args: object, cwd: Path, prelude: str = "") -> tuple[int, str]:
    """``inceptionism ARGS`` in a fresh interpreter (``prelude``: Python run first)."""
    code = (
        f"{prelude}\nimport sys\nfrom inceptionism.cli.main import main\n"
        "sys.exit(main(sys.argv[1:]))"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    proc = subprocess.run([sys.executable, "-c", code, *map(str, args)], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=600)  # fmt: skip
    return proc.returncode, proc.stderr


def jpeg_with_broken_exif(path: Path, truncate: bool) -> Path:
    """A JPEG whose EXIF entry points past its data (Pillow warns "Truncated File Read" on
    reading it), its scan data cut in half when ``truncate``."""
    import io
    import struct

    ifd = struct.pack("<H", 1) + struct.pack("<HHII", 0x010E, 2, 100, 5000) + struct.pack("<I", 0)
    exif = b"Exif\0\0II*\0" + struct.pack("<I", 8) + ifd
    buf = io.BytesIO()
    pixels = np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(buf, "JPEG", exif=exif)
    data = buf.getvalue()
    path.write_bytes(data[: len(data) // 2] if truncate else data)
    return path


def test_pillow_warnings_before_an_error_are_not_shown(tmp_path):
    jpeg_with_broken_exif(tmp_path / "bad.jpg", truncate=True)
    code, err = run_child("dream", "bad.jpg", "-o", "out.png", *SMALL, cwd=tmp_path)
    assert code == 2 and "truncated" in one_error_line(err).lower(), err
    assert not (tmp_path / "out.png").exists()


def test_warnings_of_a_successful_run_are_one_line_each(tmp_path):
    jpeg_with_broken_exif(tmp_path / "odd.jpg", truncate=False)
    code, err = run_child("dream", "odd.jpg", "-o", "out.png", *SMALL, cwd=tmp_path)
    assert code == 0, err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert lines and all(ln.startswith("inceptionism: warning:") for ln in lines), err
    assert len(lines) == len(set(lines))


def test_a_library_warning_during_a_failing_command_is_folded_away(tmp_path, photo):
    prelude = (
        "import warnings\n"
        "import inceptionism.cli.options as o\n"
        "real = o.build_config\n"
        "def noisy(*a, **k):\n"
        "    warnings.warn('torch says something', UserWarning)\n"
        "    return real(*a, **k)\n"
        "o.build_config = noisy\n"
    )
    code, err = run_child("dream", photo, "-o", "out.png", "--layers", "nosuchlayer",
                          "--model", "lite0", cwd=tmp_path, prelude=prelude)  # fmt: skip
    assert code == 2 and "nosuchlayer" in one_error_line(err), err


# --- weights and install hints -------------------------------------------------------------------


def test_missing_keras_file_is_named_before_h5py(tmp_path, photo, run_cli, monkeypatch):
    monkeypatch.setitem(sys.modules, "h5py", None)  # as if h5py were not installed
    r = run_cli("dream", photo, "-o", tmp_path / "out.png", "--model", "inception_v3",
                "--weights", tmp_path / "missing.h5", "-q")  # fmt: skip
    line = one_error_line(r.err)
    assert r.code == 2 and "not found" in line and "missing.h5" in line, line
    assert "h5py" not in line
    (tmp_path / "there.h5").write_bytes(b"")
    r = run_cli("dream", photo, "-o", tmp_path / "out.png", "--model", "inception_v3",
                "--weights", tmp_path / "there.h5", "-q")  # fmt: skip
    assert r.code == 2 and "h5py" in one_error_line(r.err), r.err


@pytest.mark.parametrize(
    "direct_url, package, expected",
    [
        ('{"url": "file:///home/me/inceptionism", "dir_info": {"editable": true}}',
         "/home/me/inceptionism/src/inceptionism", 'pip install -e ".[video]"'),
        ('{"url": "file:///tmp/clone%20x", "dir_info": {}}',
         "/venv/lib/python3.11/site-packages/inceptionism", 'pip install "/tmp/clone x[video]"'),
        ('{"url": "https://files/x.whl", "archive_info": {}}',
         "/venv/lib/python3.11/site-packages/inceptionism", 'pip install "inceptionism[video]"'),
        (None, "/venv/lib/python3.11/site-packages/inceptionism",
         'pip install "inceptionism[video]"'),
    ],
)  # fmt: skip
def test_install_hint_follows_how_the_package_was_installed(
    monkeypatch, direct_url, package, expected
):
    origin = errors.origin_of(direct_url, Path(package))
    monkeypatch.setattr(errors, "install_origin", lambda: origin)
    assert errors.install_hint("video").startswith(expected)
    assert expected in str(errors.MissingExtraError("--flow (OpenCV)", "video"))


def test_a_source_tree_without_metadata_counts_as_a_clone(tmp_path):
    (tmp_path / "src" / "inceptionism").mkdir(parents=True)
    (tmp_path / "pyproject.toml").write_text("")
    assert errors.origin_of(None, tmp_path / "src" / "inceptionism") == ("editable", str(tmp_path))


def test_every_extra_hint_comes_from_the_one_helper():
    src = Path(errors.__file__).parent
    offenders = [
        str(p.relative_to(src)) for p in src.rglob("*.py")
        if p.name != "errors.py" and re.search(r"inceptionism\[", p.read_text())
    ]  # fmt: skip
    assert not offenders, offenders


# --- help ----------------------------------------------------------------------------------------


@pytest.fixture
def help_of(run_cli):
    def show(*path: str) -> str:
        r = run_cli(*path, "--help")
        assert r.code == 0, r.err
        return r.out

    return show


def test_dream_help_groups_its_options_under_headings(help_of):
    text = help_of("dream")
    headings = [ln[:-1] for ln in text.splitlines() if re.match(r"^[A-Z].*:$", ln)]
    assert headings == [*SECTIONS, OTHER], headings
    command = cli.get_command(None, "dream")
    assert isinstance(command, SectionedCommand)
    loose = [p.name for p in command.params
             if isinstance(p, click.Option) and command.section_of(p) == OTHER]  # fmt: skip
    assert not loose, loose  # every option of dream sits under a heading


@pytest.mark.parametrize("name", ["dream", "zoom", "video", "sweep", "atlas", "channels", "replay"])
def test_dreaming_commands_have_headed_help(name):
    command = cli.get_command(None, name)
    assert isinstance(command, SectionedCommand)
    loose = [p.name for p in command.params
             if isinstance(p, click.Option) and command.section_of(p) == OTHER]  # fmt: skip
    assert not loose, loose


def test_ranges_read_as_numbers(help_of):
    text = " ".join(help_of("dream").split())
    assert "1-178,956,970" in text, text
    assert "e+" not in text and "9223372036854775807" not in text
    assert "-180 to 180" in " ".join(help_of("zoom").split())


@pytest.mark.parametrize("name", ["", *cli.list_commands(None)])
def test_every_command_shows_three_examples_with_its_real_options(help_of, name):
    text = help_of(*([name] if name else []))
    examples = re.findall(r"^    inceptionism (.+)$", text, flags=re.M)
    assert len(examples) == 3, text
    for line in examples:
        words = shlex.split(line)
        command = cli.get_command(None, words[0])
        known = {o for p in command.params for o in (*p.opts, *p.secondary_opts)}
        unknown = [w for w in words[1:] if w.startswith("-") and w not in known]
        assert not unknown, (line, unknown)


def test_the_command_list_is_not_cut(help_of):
    text = help_of()
    rows = text.split("Commands:")[1].split("Examples:")[0]
    assert "..." not in rows
    assert all(f"  {name} " in rows for name in cli.list_commands(None))


@pytest.mark.parametrize("name, lucid", [("dream", True), ("atlas", True), ("channels", True),
                                         ("zoom", False), ("sweep", False)])  # fmt: skip
def test_preset_choices_come_from_the_registry(help_of, name, lucid):
    block = help_of(name).split("`inceptionism presets`):")[1].split("-m, --model")[0]
    shown = [w.strip(",") for w in block.split()]  # whole names: none cut at a hyphen
    assert shown == [*PRESETS, *(["lucid"] if lucid else [])], shown


def test_presets_command_lists_what_dream_accepts(run_cli):
    r = run_cli("presets")
    names = [ln.split()[0] for ln in r.out.splitlines()[1:]]
    assert names == [*PRESETS, "lucid"]
