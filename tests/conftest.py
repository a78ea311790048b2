"""Shared fixtures: the real embedded weights, small real photos, a CLI runner."""

from __future__ import annotations

import pytest
import torch

from inceptionism.cli import main
from inceptionism.image import load_image
from inceptionism.models import get_model
from inceptionism.samples import sample_path

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
