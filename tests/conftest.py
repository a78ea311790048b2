"""Shared fixtures: the real embedded weights, small real photos, a CLI runner."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from inceptionism.cli.main import main
from inceptionism.io.image import load_image
from inceptionism.io.samples import sample_path
from inceptionism.models import get_model

torch.set_num_threads(2)


@pytest.fixture(scope="session")
def lite0():
    return get_model("efficientnet_lite0")


@pytest.fixture(scope="session")
def coffee_path():
    return sample_path("sample:coffee")


@pytest.fixture(scope="session")
def small_photo(coffee_path):
    """coffee.png downscaled to 96 px on its long side, (1, 3, H, W) in [0, 1]."""
    return load_image(coffee_path).resized_to_fit(96).rgb


class CliResult:
    def __init__(self, code: int, out: str, err: str):
        self.code, self.out, self.err = code, out, err

    @property
    def err_lines(self) -> list[str]:
        return [line for line in self.err.splitlines() if line.strip()]


@pytest.fixture
def run_cli(capsys):
    def run(*args) -> CliResult:
        capsys.readouterr()
        code = main([str(a) for a in args])
        captured = capsys.readouterr()
        return CliResult(code, captured.out, captured.err)

    return run


@pytest.fixture
def bad_inputs(tmp_path):
    """One file of each kind the loader must refuse, by name."""
    folder = tmp_path / "bad"
    folder.mkdir()
    bomb = folder / "bomb.png"
    Image.new("1", (12000, 10000)).save(bomb)  # 120 Mpx of zeros: a few kB on disk
    good = folder / "good.png"
    Image.fromarray(np.zeros((64, 64, 3), np.uint8) + 100).save(good)
    truncated = folder / "truncated.jpg"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), np.uint8)).save(
        folder / "full.jpg"
    )
    truncated.write_bytes((folder / "full.jpg").read_bytes()[:600])
    (folder / "full.jpg").unlink()
    good.unlink()
    text = folder / "notes.png"
    text.write_text("this is not an image\n")
    empty = folder / "empty.jpg"
    empty.write_bytes(b"")
    return {"bomb": bomb, "truncated": truncated, "text": text, "empty": empty}
