"""`inceptionism --help`, `presets`, `samples` and `train --help` answer without loading torch
(the commands' modules are imported only when one runs): checked in a child process where
importing torch fails."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import inceptionism

SRC = str(Path(inceptionism.__file__).parents[1])
NO_TORCH = """
import sys
class NoTorch:
    def find_spec(self, name, path=None, target=None):
        if name == "torch" or name.startswith("torch."):
            raise ImportError("torch is blocked in this test")
sys.meta_path.insert(0, NoTorch())
from inceptionism.cli.main import main
code = main(sys.argv[1:])
assert "torch" not in sys.modules
sys.exit(code)
"""


@pytest.mark.parametrize(
    "args,expect",
    [
        (["--help"], "Commands:"),
        (["presets"], "keras-classic"),
        (["samples"], "sample:grace_hopper"),
        (["train", "--help"], "--unfreeze"),
    ],
)
def test_answers_without_torch(args, expect):
    r = subprocess.run([sys.executable, "-c", NO_TORCH, *args], capture_output=True, text=True,
                       env={"PYTHONPATH": SRC, "PATH": "/usr/bin:/bin"}, timeout=120)  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert expect in r.stdout


def test_the_help_lists_every_command_as_the_commands_describe_themselves():
    """The group's list comes from the catalogue; each command's own short help is the same
    line (both read cli/catalog.py), and every catalogued command exists."""
    from inceptionism.cli.catalog import COMMANDS
    from inceptionism.cli.main import cli

    for name, (_module, line) in COMMANDS.items():
        command = cli.get_command(None, name)
        assert command is not None and command.name == name
        assert command.short_help == line


def test_a_blocked_torch_really_breaks_a_dream():
    """The check above can fail: a command that needs torch does not run under the block."""
    r = subprocess.run([sys.executable, "-c", NO_TORCH, "models"], capture_output=True,
                       text=True, env={"PYTHONPATH": SRC, "PATH": "/usr/bin:/bin"},
                       timeout=120)  # fmt: skip
    assert r.returncode != 0 and "torch is blocked" in r.stderr
