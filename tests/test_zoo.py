"""The canonical networks: torchvision's key layout, strict loading of synthetic checkpoints,
layer tables checked by a dry forward, BatchNorm folding, a small dream on each."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from inceptionism.engine.config import DreamConfig
from inceptionism.engine.loop import dream_tensor
from inceptionism.errors import WeightsError
from inceptionism.io.image import read_recipe
from inceptionism.models import get_model, get_spec, layer_table
from inceptionism.models.blocks import init_random
from inceptionism.models.weights import MIRROR_ENV

ZOO = ["googlenet", "inception_v3", "vgg16", "vgg19", "resnet50"]

# torchvision's documented parameter counts ("num_params" in each weights enum: googlenet's is
# counted without the auxiliary heads, inception_v3's with AuxLogits).
TORCHVISION_PARAMS = {
    "googlenet": 6_624_904,
    "inception_v3": 27_161_264,
    "vgg16": 138_357_544,
    "vgg19": 143_667_240,
    "resnet50": 25_557_032,
}
# Keys and shapes read off torchvision's model definitions, a few per network, the unusual ones
# on purpose (googlenet's "5x5" branch is a 3x3 convolution there).
KNOWN_KEYS = {
    "googlenet": {
        "conv1.conv.weight": (64, 3, 7, 7),
        "conv1.bn.running_var": (64,),
        "inception4c.branch3.1.conv.weight": (64, 24, 3, 3),
        "inception5b.branch4.1.bn.bias": (128,),
        "aux1.conv.conv.weight": (128, 512, 1, 1),
        "aux2.fc1.weight": (1024, 2048),
        "fc.weight": (1000, 1024),
    },
    "inception_v3": {
        "Conv2d_1a_3x3.conv.weight": (32, 3, 3, 3),
        "Mixed_5b.branch_pool.conv.weight": (32, 192, 1, 1),
        "Mixed_6b.branch7x7dbl_2.conv.weight": (128, 128, 7, 1),
        "Mixed_7c.branch3x3dbl_3b.conv.weight": (384, 384, 3, 1),
        "AuxLogits.conv1.conv.weight": (768, 128, 5, 5),
        "AuxLogits.fc.weight": (1000, 768),
        "fc.weight": (1000, 2048),
    },
    "vgg16": {
        "features.0.weight": (64, 3, 3, 3),
        "features.28.weight": (512, 512, 3, 3),
        "classifier.0.weight": (4096, 25088),
        "classifier.6.bias": (1000,),
    },
    "vgg19": {
        "features.34.weight": (512, 512, 3, 3),
        "classifier.3.weight": (4096, 4096),
    },
    "resnet50": {
        "conv1.weight": (64, 3, 7, 7),
        "layer1.0.downsample.0.weight": (256, 64, 1, 1),
        "layer3.5.conv2.weight": (256, 256, 3, 3),
        "layer4.2.conv3.weight": (2048, 512, 1, 1),
        "layer4.0.downsample.1.running_mean": (2048,),
        "fc.weight": (1000, 2048),
    },
}
KEY_COUNTS = {"googlenet": 364, "inception_v3": 580, "vgg16": 32, "vgg19": 38, "resnet50": 320}
SMALL = {"inception_v3": 96}  # the smallest input each net takes comfortably; others 64


def synthetic_state(name: str, seed: int = 0) -> dict[str, torch.Tensor]:
    """Random values in the network's own key layout (what a torchvision file holds)."""
    g = torch.Generator().manual_seed(seed)
    return init_random(get_spec(name).build(), g).state_dict()


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    """One synthetic checkpoint per network, written once; the biggest are VGG's (~550 MB)."""
    folder = tmp_path_factory.mktemp("zoo")
    paths = {}

    def get(name: str) -> Path:
        if name not in paths:
            paths[name] = folder / f"{name}.pth"
            torch.save(synthetic_state(name), paths[name])
        return paths[name]

    return get


@pytest.mark.parametrize("name", ZOO)
def test_key_layout_is_torchvisions(name):
    net = get_spec(name).build()
    state = net.state_dict()
    assert len(state) == KEY_COUNTS[name]
    for key, shape in KNOWN_KEYS[name].items():
        assert tuple(state[key].shape) == shape, key
    if name == "googlenet":
        net = get_spec(name).build(aux_logits=False)
    assert sum(p.numel() for p in net.parameters()) == TORCHVISION_PARAMS[name]


@pytest.mark.parametrize("name", ZOO)
def test_layer_table_matches_a_dry_forward(name):
    size = get_spec(name).train_size
    model = get_model_random(name)
    table = model.layer_list
    with torch.no_grad():
        acts = model.activations(torch.rand(1, 3, size, size), [i.name for i in table])
    for info in table:
        a = acts[info.name]
        assert a.shape[1] == info.channels, info
        if info.stride:
            # valid-padded nets (inception_v3) shrink a little more than the nominal stride
            assert 0.85 <= size / a.shape[-1] / info.stride < 1.2, (info, a.shape)
        else:
            assert a.dim() == 2


def get_model_random(name: str, fuse: bool = True, seed: int = 0):
    """A DreamModel with random weights, built without a file."""
    from inceptionism.models.fuse import fold_batchnorm
    from inceptionism.models.registry import DreamModel

    spec = get_spec(name)
    net = init_random(spec.build(), torch.Generator().manual_seed(seed))
    if fuse and hasattr(net, "conv_bn_pairs"):
        fold_batchnorm(net, net.conv_bn_pairs())
    return DreamModel(spec, net, net.layer_table())


def test_inception_v3_has_the_keras_names_and_channel_counts(run_cli):
    r = run_cli("layers", "inception_v3")
    assert r.code == 0, r.err
    rows = {line.split()[0]: line.split() for line in r.out.splitlines()[1:]}
    expected = [256, 288, 288, 768, 768, 768, 768, 768, 1280, 2048, 2048]
    for i, channels in enumerate(expected):
        assert int(rows[f"mixed{i}"][1]) == channels
    assert "Mixed_6c" in rows["mixed5"]  # torchvision's name is listed as an alias


def test_aliases_reach_the_same_activation():
    model = get_model_random("inception_v3")
    x = torch.rand(1, 3, 96, 96)
    with torch.no_grad():
        acts = model.activations(x, ["mixed5", "Mixed_6c"])
    assert torch.equal(acts["mixed5"], acts["Mixed_6c"])
    g = get_model_random("googlenet")
    with torch.no_grad():
        acts = g.activations(torch.rand(1, 3, 64, 64), ["inception4c", "inception_4c/output"])
    assert torch.equal(acts["inception4c"], acts["inception_4c/output"])


@pytest.mark.parametrize("name", ZOO)
def test_folding_batchnorm_changes_nothing(name):
    fused, plain = get_model_random(name, fuse=True), get_model_random(name, fuse=False)
    x = torch.rand(1, 3, SMALL.get(name, 64), SMALL.get(name, 64))
    names = [i.name for i in fused.layer_list if i.stride][-3:] + ["logits"]
    with torch.no_grad():
        a, b = fused.activations(x, names), plain.activations(x, names)
    for n in names:
        scale = b[n].abs().max()
        assert (a[n] - b[n]).abs().max() <= 1e-4 * scale + 1e-6, n


@pytest.mark.parametrize("name", ZOO)
def test_synthetic_checkpoint_loads_with_weights_and_dreams(name, checkpoints, tmp_path, run_cli):
    photo = tmp_path / "photo.png"
    side = SMALL.get(name, 64)
    rng = np.random.default_rng(1)
    Image.fromarray(rng.integers(0, 255, (side, side + 16, 3), np.uint8)).save(photo)
    out = tmp_path / "dream.png"
    r = run_cli("dream", photo, "--model", name, "--weights", checkpoints(name), "-o", out,
                "--steps", "2", "--octaves", "1", "--jitter", "0", "-q")  # fmt: skip
    assert r.code == 0, r.err
    before = np.asarray(Image.open(photo)).astype(float)
    after = np.asarray(Image.open(out)).astype(float)
    assert after.shape == before.shape and np.abs(after - before).mean() > 0.5
    recipe = read_recipe(out)
    assert recipe["model"] == name and recipe["weights_file"] == str(checkpoints(name).resolve())


@pytest.mark.parametrize("name", ["googlenet", "resnet50"])
def test_a_dream_raises_its_objective(name, checkpoints):
    model = get_model(name, weights=checkpoints(name))
    x = torch.rand(1, 3, 64, 64)
    config = DreamConfig(model=name, steps=4, octaves=1, jitter=0, seed=0)
    layer = model.spec.default_layers[0][0]

    def loss(img):
        with torch.no_grad():
            return model.activations(img, [layer])[layer].square().mean().item()

    out = dream_tensor(x, model, config)
    assert loss(out) > loss(x) * 1.05


@pytest.mark.parametrize(
    "change, named",
    [
        ("missing", "layer2.1.bn2.running_mean"),
        ("extra", "layer5.0.conv1.weight"),
        ("shape", "layer4.0.conv2.weight"),
    ],
)
def test_a_checkpoint_that_differs_is_refused_naming_the_key(tmp_path, change, named):
    state = synthetic_state("resnet50")
    if change == "missing":
        del state[named]
    elif change == "extra":
        state[named] = torch.zeros(1)
    else:
        state[named] = torch.zeros(512, 512, 1, 1)
    path = tmp_path / "bad.pth"
    torch.save(state, path)
    with pytest.raises(WeightsError, match=named.replace(".", r"\.")):
        get_model("resnet50", weights=path)


def test_heads_and_aux_branches_are_optional(tmp_path):
    state = synthetic_state("googlenet")
    no_aux = {k: v for k, v in state.items() if not k.startswith("aux")}
    torch.save(no_aux, tmp_path / "no_aux.pth")
    model = get_model("googlenet", weights=tmp_path / "no_aux.pth")
    assert "logits" in model.layers and not hasattr(model.net, "aux1")
    notop = {k: v for k, v in no_aux.items() if not k.startswith("fc.")}
    torch.save(notop, tmp_path / "notop.pth")
    model = get_model("googlenet", weights=tmp_path / "notop.pth")
    assert "logits" not in model.layers and "inception5b" in model.layers
    # half an aux head is not a choice, it is a broken file
    half = {k: v for k, v in state.items() if not k.startswith("aux2.")}
    torch.save(half, tmp_path / "half.pth")
    with pytest.raises(WeightsError, match="aux2"):
        get_model("googlenet", weights=tmp_path / "half.pth")


def test_old_checkpoints_without_batch_counters_load(tmp_path):
    state = {k: v for k, v in synthetic_state("resnet50").items() if "num_batches" not in k}
    torch.save(state, tmp_path / "old.pth")
    assert "layer3" in get_model("resnet50", weights=tmp_path / "old.pth").layers


def test_wrong_architecture_is_refused(checkpoints):
    with pytest.raises(WeightsError, match="do not fit"):
        get_model("vgg16", weights=checkpoints("resnet50"))


def test_googlenet_offline_with_empty_cache_exits_2_and_writes_nothing(
    tmp_path, monkeypatch, run_cli
):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cache = tmp_path / "empty-cache"
    monkeypatch.setenv("INCEPTIONISM_CACHE", str(cache))
    monkeypatch.setenv(MIRROR_ENV, f"http://127.0.0.1:{port}/models")  # nothing listens there
    photo = tmp_path / "x.jpg"
    Image.new("RGB", (64, 64), (90, 120, 150)).save(photo)
    before = sorted(p.name for p in tmp_path.iterdir())
    r = run_cli("dream", photo, "--model", "googlenet", "-o", tmp_path / "out.png")
    assert r.code == 2 and len(r.err_lines) == 1, r.err
    for needed in ("googlenet-1378be20.pth", str(cache), "--weights", "/models/googlenet"):
        assert needed in r.err
    assert sorted(p.name for p in tmp_path.iterdir()) == before
    assert not cache.exists() or not any(cache.iterdir())


def test_models_command_lists_the_zoo_with_weights_status(tmp_path, monkeypatch, run_cli):
    monkeypatch.setenv("INCEPTIONISM_CACHE", str(tmp_path))
    r = run_cli("models")
    for name in ZOO:
        row = next(line for line in r.out.splitlines() if line.startswith(name + " "))
        assert "missing" in row and "download.pytorch.org" in row
    assert [i.name for i in layer_table("vgg19") if i.name.startswith("block5_conv")] == [
        "block5_conv1.pre", "block5_conv1", "block5_conv2.pre", "block5_conv2",
        "block5_conv3.pre", "block5_conv3", "block5_conv4.pre", "block5_conv4",
    ]  # fmt: skip
