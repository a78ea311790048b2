"""Your own network: TorchScript files and package.module:factory with --weights; layers found by
a dry forward; --input-norm/--input-range; recipes that replay."""

from __future__ import annotations

import sys
import textwrap

import numpy as np
import pytest
import torch
from PIL import Image

from inceptionism.errors import ConfigError, WeightsError
from inceptionism.io.image import read_recipe
from inceptionism.models import get_model, layer_table
from inceptionism.models.custom import parse_input_format, register_network
from inceptionism.models.registry import _REGISTRY

pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit:DeprecationWarning")

NET_SOURCE = textwrap.dedent(
    """
    import torch
    from torch import nn


    class Block(nn.Module):
        def __init__(self, cin, cout):
            super().__init__()
            self.conv = nn.Conv2d(cin, cout, 3, stride=2, padding=1)
            self.act = nn.ReLU()

        def forward(self, x):
            return self.act(self.conv(x))


    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.stem = Block(3, 8)
            self.body = nn.Sequential(Block(8, 16), Block(16, 32))
            self.head = nn.Linear(32, 5)

        def forward(self, x):
            return self.head(self.body(self.stem(x)).mean(dim=(2, 3)))


    def make():
        torch.manual_seed(0)
        return Net()


    def broken():
        raise RuntimeError("no GPU here")


    def not_a_net():
        return 42
    """
)


@pytest.fixture
def netdir(tmp_path, monkeypatch):
    """A module `usernet` importable from the working directory, its TorchScript and weights."""
    (tmp_path / "usernet.py").write_text(NET_SOURCE)
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    sys.modules.pop("usernet", None)
    import usernet

    torch.manual_seed(1)
    net = usernet.make()
    for p in net.parameters():
        torch.nn.init.normal_(p, std=0.3)
    torch.save(net.state_dict(), tmp_path / "trained.pth")
    torch.jit.script(net).save(str(tmp_path / "net.pt"))
    photo = tmp_path / "photo.png"
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (48, 64, 3), np.uint8)).save(photo)
    yield tmp_path, net
    for name in [n for n in _REGISTRY if n in ("usernet:make", "net.pt")]:
        _REGISTRY.pop(name)
    sys.modules.pop("usernet", None)


EXPECTED = [  # name, channels, stride at a 64 px dry run
    ("stem.conv", 8, 2),
    ("stem.act", 8, 2),
    ("stem", 8, 2),
    ("body.0.conv", 16, 4),
    ("body.0.act", 16, 4),
    ("body.0", 16, 4),
    ("body.1.conv", 32, 8),
    ("body.1.act", 32, 8),
    ("body.1", 32, 8),
    ("body", 32, 8),
    ("head", 5, 0),
]


@pytest.mark.parametrize("model", ["usernet:make", "net.pt"])
def test_layers_come_from_a_dry_forward(netdir, model):
    register_network(model, size=64)
    rows = {(i.name, i.channels, i.stride) for i in layer_table(model)}
    assert rows == set(EXPECTED)


def test_layers_command_lists_them_in_execution_order(netdir, run_cli):
    r = run_cli("layers", "usernet:make", "--size", "64")
    assert r.code == 0, r.err
    lines = r.out.splitlines()[1:]
    hints = [line for line in lines if line.startswith(("early (", "middle (", "late ("))]
    assert len(hints) == 3  # the depth thirds of its main line
    names = [line.split()[0] for line in lines if line not in hints]
    assert (
        names.index("stem")
        < names.index("body.0.conv")
        < names.index("body.1")
        < names.index("head")
    )
    assert set(names) == {n for n, _, _ in EXPECTED}


def test_torchscript_taps_equal_the_python_modules_outputs(netdir):
    _, net = netdir
    register_network("net.pt", size=64)
    scripted = get_model("net.pt", channels_last=False)
    x = torch.rand(1, 3, 40, 56)
    names = ["stem.act", "body.0", "body.1.conv", "head"]
    got = scripted.activations(x, names)
    captured = {}
    hooks = [
        net.get_submodule(n).register_forward_hook(
            lambda _m, _i, out, n=n: captured.setdefault(n, out)
        )
        for n in names
    ]
    with torch.no_grad():
        net(x)  # input format defaults to none on [0, 1]: the same pixels
    for h in hooks:
        h.remove()
    for n in names:
        torch.testing.assert_close(got[n], captured[n], rtol=1e-5, atol=1e-6)
    # gradients flow back to the image through the rewritten graph
    x.requires_grad_(True)
    scripted.activations(x, ["body.0"])["body.0"].square().mean().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


def test_factory_loads_weights_strictly(netdir):
    tmp, net = netdir
    register_network("usernet:make", size=64)
    model = get_model("usernet:make", weights=tmp / "trained.pth", channels_last=False)
    x = torch.rand(1, 3, 32, 32)
    torch.testing.assert_close(model(x), net(x))
    bad = dict(torch.load(tmp / "trained.pth"))
    bad.pop("head.bias")
    torch.save(bad, tmp / "bad.pth")
    with pytest.raises(WeightsError, match="head.bias"):
        get_model("usernet:make", weights=tmp / "bad.pth")


def test_dream_with_own_network_and_replay(netdir, run_cli):
    tmp, _ = netdir
    out = tmp / "dream.png"
    common = ["--steps", "3", "--octaves", "2", "--seed", "3", "-q"]
    r = run_cli("dream", "photo.png", "--model", "usernet:make", "--weights", "trained.pth",
                "--input-norm", "imagenet", "--layers", "body.1:3", "-o", out, *common)  # fmt: skip
    assert r.code == 0, r.err
    before = np.asarray(Image.open(tmp / "photo.png")).astype(int)
    after = np.asarray(Image.open(out)).astype(int)
    assert np.abs(after - before).mean() > 1.0
    recipe = read_recipe(out)
    assert recipe["model"] == "usernet:make"
    assert recipe["network"]["input_norm"] == "imagenet"
    _REGISTRY.pop("usernet:make")
    # a recipe never makes replay import code: the network is named on purpose with --model
    r = run_cli("replay", out, "-o", tmp / "again.png", "-q")
    assert r.code == 2 and "--model usernet:make" in r.err and not (tmp / "again.png").exists()
    r = run_cli("replay", out, "-o", tmp / "again.png", "-q", "--model", "usernet:make",
                "--weights", "trained.pth")  # fmt: skip
    assert r.code == 0, r.err
    assert np.array_equal(np.asarray(Image.open(tmp / "again.png")), after.astype(np.uint8))


def test_torchscript_dream_uses_a_default_layer(netdir, run_cli):
    tmp, _ = netdir
    r = run_cli("dream", "photo.png", "--model", "net.pt", "-o", "d.png", "--steps", "2",
                "--octaves", "1", "-q")  # fmt: skip
    assert r.code == 0, r.err
    assert read_recipe(tmp / "d.png")["config"]["layers"] == "body=1"  # deepest at stride <= 16


def test_input_format_arithmetic():
    assert parse_input_format(None, None).on_unit_pixels() == ((0.0,) * 3, (1.0,) * 3)
    mean, std = parse_input_format(None, "-1,1").on_unit_pixels()  # 2x - 1 == (x - 0.5) / 0.5
    assert mean == (0.5,) * 3 and std == (0.5,) * 3
    mean, std = parse_input_format("imagenet", "0,255").on_unit_pixels()
    np.testing.assert_allclose(mean, (0.485, 0.456, 0.406))
    np.testing.assert_allclose(std, (0.229, 0.224, 0.225))
    mean, std = parse_input_format("123.68,116.78,103.94/1", "0,255").on_unit_pixels()
    np.testing.assert_allclose(mean, np.array([123.68, 116.78, 103.94]) / 255)
    np.testing.assert_allclose(std, (1 / 255,) * 3)


@pytest.mark.parametrize(
    "norm, rng, message",
    [
        ("1,2", None, "MEAN/STD"),
        ("0.5/0", None, "positive"),
        ("a/b", None, "numbers"),
        (None, "1,0", "upper end"),
        (None, "0,1,2", "2 numbers"),
    ],
)
def test_bad_input_formats(norm, rng, message):
    with pytest.raises(ConfigError, match=message):
        parse_input_format(norm, rng)


@pytest.mark.parametrize(
    "model, message",
    [
        ("missing.pt", "no such file"),
        ("usernet:nothere", "no callable 'nothere'"),
        ("usernet:broken", "no GPU here"),
        ("usernet:not_a_net", "not a Module"),
        ("nosuchpackage.mod:make", "cannot import"),
        ("trained.pth", "not a TorchScript file"),
    ],
)
def test_bad_networks_get_one_line(netdir, run_cli, model, message):
    r = run_cli("dream", "photo.png", "--model", model, "-o", "x.png", "-q")
    assert r.code == 2 and len(r.err_lines) == 1 and message in r.err, r.err
    assert not (netdir[0] / "x.png").exists()


def test_input_options_are_refused_for_zoo_models(netdir, run_cli):
    r = run_cli("dream", "photo.png", "--model", "efficientnet_lite0", "--input-norm", "imagenet",
                "-o", "x.png")  # fmt: skip
    assert r.code == 2 and "your own network" in r.err
