"""Keras application weight files: Keras 3 itself (torch backend) builds InceptionV3 and VGG with
random weights and writes them in the legacy HDF5 layout the published files use; our networks
load them through --weights and must compute what Keras computes."""

from __future__ import annotations

import h5py
import numpy as np
import pytest
import torch
from keras_torch import KERAS_MARKS, keras, legacy_h5_format

from inceptionism.errors import WeightsError
from inceptionism.models import get_model

pytestmark = KERAS_MARKS


def randomize(model, seed: int) -> None:
    """Random weights at sensible scales; BatchNorm statistics far from 0 and 1 on purpose."""
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        values = []
        for w in layer.weights:
            shape, path = tuple(w.shape), w.path
            if "moving_variance" in path:
                values.append(rng.uniform(0.5, 2.0, shape))
            elif "moving_mean" in path or "beta" in path or "bias" in path:
                values.append(rng.normal(0, 0.1, shape))
            elif "gamma" in path:
                values.append(rng.uniform(0.5, 1.5, shape))
            else:  # kernels: He scale over the fan-in
                fan_in = int(np.prod(shape[:-1]))
                values.append(rng.normal(0, (2 / fan_in) ** 0.5, shape))
        if values:
            layer.set_weights([v.astype("float32") for v in values])


def write_legacy_h5(model, path) -> None:
    with h5py.File(path, "w") as f:
        legacy_h5_format.save_weights_to_hdf5_group(f, model)


def keras_outputs(model, layer_names, x_nhwc):
    sub = keras.Model(model.inputs, [model.get_layer(n).output for n in layer_names])
    outs = sub(x_nhwc, training=False)
    outs = outs if isinstance(outs, list | tuple) else [outs]
    return [keras.ops.convert_to_numpy(o) for o in outs]


def rel_error(ours: torch.Tensor, theirs: np.ndarray) -> float:
    theirs_t = torch.from_numpy(np.asarray(theirs))
    return ((ours - theirs_t).abs().max() / theirs_t.abs().max()).item()


@pytest.fixture(scope="module")
def pixels():
    """A smooth random picture in [0, 1], (1, 3, H, W) and (1, H, W, 3)."""
    g = torch.Generator().manual_seed(0)
    x = torch.nn.functional.interpolate(torch.rand(1, 3, 20, 20, generator=g), size=(139, 139))
    return x, x.permute(0, 2, 3, 1).numpy()


@pytest.fixture(scope="module")
def inception_file(tmp_path_factory):
    model = keras.applications.InceptionV3(weights=None, input_shape=(139, 139, 3))
    randomize(model, 1)
    path = tmp_path_factory.mktemp("keras") / "inception_v3_weights.h5"
    write_legacy_h5(model, path)
    return model, path


def test_inception_v3_mixed5_and_predictions_match_keras(inception_file, pixels):
    model, path = inception_file
    x, x_nhwc = pixels
    theirs_mixed5, theirs_mixed2, probs = keras_outputs(
        model,
        ["mixed5", "mixed2", "predictions"],
        x_nhwc * 2 - 1,  # Keras: x / 127.5 - 1
    )
    ours = get_model("inception_v3", weights=path)
    with torch.no_grad():
        acts = ours.activations(x, ["mixed5", "mixed2", "logits"])
    assert rel_error(acts["mixed5"].permute(0, 2, 3, 1), theirs_mixed5) < 1e-4
    assert rel_error(acts["mixed2"].permute(0, 2, 3, 1), theirs_mixed2) < 1e-4
    assert rel_error(acts["logits"].softmax(1), probs) < 1e-4
    # unfused too: the conversion, not the BatchNorm folding, is what is being checked
    plain = get_model("inception_v3", weights=path, fuse=False)
    with torch.no_grad():
        a = plain.activations(x, ["mixed5"])["mixed5"]
    assert rel_error(a.permute(0, 2, 3, 1), theirs_mixed5) < 1e-4


def test_torchvision_pooling_would_not_match(inception_file, pixels):
    """Why keras_pooling exists: counting the padding in the 3x3 average pools, as torchvision
    does, moves mixed5 measurably away from Keras."""
    model, path = inception_file
    x, x_nhwc = pixels
    (theirs,) = keras_outputs(model, ["mixed5"], x_nhwc * 2 - 1)
    ours = get_model("inception_v3", weights=path, fuse=False)
    for m in ours.net.modules():
        if hasattr(m, "count_pad"):
            m.count_pad = True
    with torch.no_grad():
        a = ours.activations(x, ["mixed5"])["mixed5"]
    assert rel_error(a.permute(0, 2, 3, 1), theirs) > 1e-3


def test_inception_v3_notop_file(tmp_path, pixels):
    model = keras.applications.InceptionV3(
        weights=None, include_top=False, input_shape=(139, 139, 3)
    )
    randomize(model, 2)
    path = tmp_path / "inception_v3_weights_notop.h5"
    write_legacy_h5(model, path)
    x, x_nhwc = pixels
    (theirs,) = keras_outputs(model, ["mixed5"], x_nhwc * 2 - 1)
    ours = get_model("inception_v3", weights=path)
    assert "logits" not in ours.layers and "mixed10" in ours.layers
    with torch.no_grad():
        a = ours.activations(x, ["mixed5"])["mixed5"]
    assert rel_error(a.permute(0, 2, 3, 1), theirs) < 1e-4


@pytest.mark.parametrize("name", ["vgg16", "vgg19"])
def test_vgg_matches_keras_with_caffe_input(name, tmp_path):
    builder = keras.applications.VGG16 if name == "vgg16" else keras.applications.VGG19
    model = builder(weights=None, include_top=False, input_shape=(64, 80, 3))
    randomize(model, 3)
    path = tmp_path / f"{name}_weights_notop.h5"
    write_legacy_h5(model, path)
    g = torch.Generator().manual_seed(4)
    x = torch.rand(1, 3, 64, 80, generator=g)
    # Keras's preprocess_input for VGG: RGB -> BGR, minus the ImageNet means, on 0-255
    bgr = (x.permute(0, 2, 3, 1).numpy() * 255)[..., ::-1] - np.array([103.939, 116.779, 123.68])
    last = "block5_conv3" if name == "vgg16" else "block5_conv4"
    theirs = keras_outputs(model, ["block3_conv2", last], bgr.astype("float32"))
    ours = get_model(name, weights=path)
    with torch.no_grad():
        acts = ours.activations(x, ["block3_conv2", last])
    assert rel_error(acts["block3_conv2"].permute(0, 2, 3, 1), theirs[0]) < 1e-4
    assert rel_error(acts[last].permute(0, 2, 3, 1), theirs[1]) < 1e-4


@pytest.mark.slow
def test_vgg16_full_file_classifier_matches_keras(tmp_path):
    model = keras.applications.VGG16(weights=None)  # the head needs 224x224
    randomize(model, 5)
    path = tmp_path / "vgg16_weights.h5"
    write_legacy_h5(model, path)
    x = torch.rand(1, 3, 224, 224, generator=torch.Generator().manual_seed(6))
    bgr = (x.permute(0, 2, 3, 1).numpy() * 255)[..., ::-1] - np.array([103.939, 116.779, 123.68])
    (probs,) = keras_outputs(model, ["predictions"], bgr.astype("float32"))
    ours = get_model("vgg16", weights=path)
    with torch.no_grad():
        mine = ours(x).softmax(1)
    assert rel_error(mine, probs) < 1e-4  # fc1's flatten order converted from NHWC


def test_wrong_network_truncated_and_foreign_files_are_refused(tmp_path, inception_file):
    _, inception_path = inception_file
    with pytest.raises(WeightsError, match="does not fit vgg16"):
        get_model("vgg16", weights=inception_path)
    vgg = keras.applications.VGG16(weights=None, include_top=False, input_shape=(32, 32, 3))
    vgg_path = tmp_path / "vgg.h5"
    write_legacy_h5(vgg, vgg_path)
    with pytest.raises(WeightsError, match="does not fit inception_v3"):
        get_model("inception_v3", weights=vgg_path)
    truncated = tmp_path / "truncated.h5"
    truncated.write_bytes(inception_path.read_bytes()[:100_000])
    with pytest.raises(WeightsError, match="not a readable Keras HDF5"):
        get_model("inception_v3", weights=truncated)
    text = tmp_path / "notes.h5"
    text.write_text("not hdf5\n")
    with pytest.raises(WeightsError, match="not a readable Keras HDF5"):
        get_model("inception_v3", weights=text)
    with pytest.raises(WeightsError, match="converted for"):
        get_model("resnet50", weights=inception_path)


def test_cli_dreams_with_a_keras_file(inception_file, tmp_path, run_cli):
    _, path = inception_file
    from PIL import Image

    photo = tmp_path / "p.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (96, 112, 3), np.uint8)).save(photo)
    out = tmp_path / "d.png"
    r = run_cli("dream", photo, "--model", "inception_v3", "--weights", path, "--preset",
                "keras-classic", "--steps", "2", "--octaves", "1", "-o", out, "-q")  # fmt: skip
    assert r.code == 0, r.err
    diff = np.abs(np.asarray(Image.open(out)).astype(int) - np.asarray(Image.open(photo)))
    assert diff.mean() > 0.5
