"""Each seed preset against its seed's own loop, transcribed, on the same weights.

The transcriptions work in the seed's units (Keras and TF2: InceptionV3's [-1, 1] input; TF1:
0-255) with the seed's own resize, floor and epsilon; the project works in [0, 1]. In float64
both must agree to 1e-9 per pixel after 3 octaves x 20 steps, in two regimes: the weights as
initialised, where mean |g| is near or below the seed's floor (so the floor's units matter),
and the objective scaled by 1e5 so mean |g| is far above it. Keras 3 itself runs the Keras loop
too. In float32 (chaotic at ReLU kinks over many steps) the first gradient and the one-step
8-bit image are compared.
"""

from __future__ import annotations

import os

os.environ.setdefault("KERAS_BACKEND", "torch")

import h5py  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from scipy import ndimage  # noqa: E402

from inceptionism import DreamConfig, dream_tensor  # noqa: E402
from inceptionism.ascent import objective_gradient, random_shift  # noqa: E402
from inceptionism.image import load_image  # noqa: E402
from inceptionism.models import get_model, get_spec  # noqa: E402
from inceptionism.models.blocks import init_random  # noqa: E402
from inceptionism.objectives import Objective  # noqa: E402
from inceptionism.techniques import start_image  # noqa: E402

keras = pytest.importorskip("keras")
from keras.src.legacy.saving import legacy_h5_format  # noqa: E402

pytestmark = [
    pytest.mark.skipif(
        keras.backend.backend() != "torch", reason="KERAS_BACKEND was set to another backend"
    ),
    pytest.mark.filterwarnings("ignore:The structure of `inputs`:UserWarning"),
]

KERAS_LAYERS = {  # the seeds' layer coefficients
    "keras-classic": (("mixed2", 0.2), ("mixed3", 0.5), ("mixed4", 2.0), ("mixed5", 1.5)),
    "dlwp": (("mixed2", 0.2), ("mixed3", 3.0), ("mixed4", 2.0), ("mixed5", 1.5)),
}
SCALED = 1e5  # the second regime: objective (and gradient) this many times larger


# --- weights and pictures ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def v3_file(tmp_path_factory):
    """Keras's own InceptionV3, as Keras initialises it, in the published files' layout."""
    keras.utils.set_random_seed(0)
    model = keras.applications.InceptionV3(
        weights=None, include_top=False, input_shape=(None, None, 3)
    )
    path = tmp_path_factory.mktemp("parity") / "inception_v3_weights_notop.h5"
    with h5py.File(path, "w") as f:
        legacy_h5_format.save_weights_to_hdf5_group(f, model)
    return path


@pytest.fixture(scope="module")
def v3_f64(v3_file):
    # unfused: BatchNorm computed as Keras computes it, so Keras itself can be compared too
    return get_model("inception_v3", weights=v3_file, fuse=False).double()


@pytest.fixture(scope="module")
def photo():
    """A 128 x 144 crop of coffee.png in [0, 1], float64: mixed3..5 keep an inner part."""
    from inceptionism.samples import sample_path

    rgb = load_image(sample_path("sample:coffee")).resized_to_fit(200).rgb
    return rgb[:, :, :128, 20:164].double()


@pytest.fixture(scope="module")
def googlenet_f64(tmp_path_factory):
    net = init_random(get_spec("googlenet").build(), torch.Generator().manual_seed(0))
    path = tmp_path_factory.mktemp("parity") / "googlenet-00000000.pth"
    torch.save(net.state_dict(), path)
    return get_model("googlenet", weights=path, fuse=False).double()


# --- the seeds' resizes, written out -------------------------------------------------------------


def zoom(img, shape):
    """scipy.ndimage.zoom(order=1), as Keras 2's deep_dream.py and the book's notebook call it."""
    return ndimage.zoom(img, (1, shape[0] / img.shape[1], shape[1] / img.shape[2]), order=1)


def _half_pixel_axis(n_in, n_out):
    src = np.maximum((np.arange(n_out) + 0.5) * (n_in / n_out) - 0.5, 0.0)
    lo = np.floor(src).astype(int)
    return lo, np.minimum(lo + 1, n_in - 1), src - lo


def half_pixel(img, shape):
    """tf.image.resize (bilinear, antialias off), as TF2 and keras.ops.image.resize compute it."""
    if tuple(img.shape[1:]) == tuple(shape):
        return img
    y0, y1, fy = _half_pixel_axis(img.shape[1], shape[0])
    x0, x1, fx = _half_pixel_axis(img.shape[2], shape[1])
    rows = img[:, y0] * (1 - fy)[:, None] + img[:, y1] * fy[:, None]
    return rows[:, :, x0] * (1 - fx) + rows[:, :, x1] * fx


# --- the seeds' loops ----------------------------------------------------------------------------


def keras_loss_and_grads(model, img, layers):
    """Keras deep_dream.py's loss and its gradient w.r.t. the [-1, 1] image (C, H, W)."""
    t = torch.tensor(img[None], requires_grad=True)
    acts = model.activations((t + 1) / 2, [n for n, _ in layers])  # the net sees t itself
    loss = 0.0
    for name, coeff in layers:
        a = acts[name]
        scaling = float(np.prod(a.shape))
        loss = loss + coeff * a[:, :, 2:-2, 2:-2].square().sum() / scaling
    (g,) = torch.autograd.grad(loss, t)
    return float(loss), g[0].numpy()


def keras_loop(model, photo01, layers, resize, iterations=20, max_loss=10.0, steps_out=None):
    """keras/examples/deep_dream.py (and DLWP 8.2), float64, channels first, [-1, 1] pixels."""
    step, num_octave, octave_scale = 0.01, 3, 1.4
    img = photo01 * 2 - 1  # inception_v3.preprocess_input: x / 127.5 - 1
    original_shape = img.shape[1:]
    successive_shapes = [original_shape]
    for i in range(1, num_octave):
        successive_shapes.append(tuple(int(dim / (octave_scale**i)) for dim in original_shape))
    successive_shapes = successive_shapes[::-1]
    original_img = np.copy(img)
    shrunk_original_img = resize(img, successive_shapes[0])
    for shape in successive_shapes:
        img = resize(img, shape)
        for _ in range(iterations):
            loss_value, grad_values = keras_loss_and_grads(model, img, layers)
            if max_loss is not None and loss_value > max_loss:
                if steps_out is not None:
                    steps_out.append("stop")
                break
            grad_values /= max(np.mean(np.abs(grad_values)), 1e-7)  # K.epsilon()
            img = img + step * grad_values
        upscaled_shrunk_original_img = resize(shrunk_original_img, shape)
        same_size_original = resize(original_img, shape)
        img = img + (same_size_original - upscaled_shrunk_original_img)
        shrunk_original_img = resize(original_img, shape)
    return np.clip(img / 2 + 0.5, 0, 1)  # deprocess_image, before the uint8 cast


def _scaled(layers, k):
    return tuple((n, w * k) for n, w in layers)


def _spec(layers):
    return ",".join(f"{n}={w!r}" for n, w in layers)


def _ours(model, photo, preset, layers, **overrides):
    cfg = DreamConfig.preset(preset, model=model.name, layers=_spec(layers), **overrides)
    events = []
    out = dream_tensor(photo, model, cfg, events.append)
    return out[0].numpy(), sum(e.stopped_early for e in events)


# --- Keras: keras-classic (half-pixel resize) and dlwp (scipy zoom) ------------------------------


@pytest.mark.parametrize("regime", [1.0, SCALED], ids=["as-initialised", "scaled"])
@pytest.mark.parametrize("preset, resize", [("keras-classic", half_pixel), ("dlwp", zoom)])
def test_keras_presets_reproduce_the_keras_loop(v3_f64, photo, preset, resize, regime):
    layers = _scaled(KERAS_LAYERS[preset], regime)
    # the regime is what it claims: mean |g| in Keras's units against its 1e-7 floor
    _, g = objective_gradient(v3_f64, photo, Objective.of(_spec(layers)), "l2", 2)
    mean_g = float((g / 2).abs().mean())
    assert (mean_g < 1e-6) if regime == 1.0 else (mean_g > 1e-3)
    stops: list[str] = []
    ref = keras_loop(v3_f64, photo[0].numpy(), layers, resize, steps_out=stops)
    ours, our_stops = _ours(v3_f64, photo, preset, layers)
    assert our_stops == len(stops)
    assert np.abs(ours - ref).max() < 1e-9
    assert np.abs(ours - photo[0].numpy()).mean() > 2e-3  # the dream did something


def test_the_floor_is_in_the_seeds_units(v3_f64, photo):
    """Where mean |g| is below the floor, the floor's units decide the step: the old [0, 1]
    floor (pixel_range unit, step 0.005) lands measurably away from the seed's loop."""
    layers = KERAS_LAYERS["dlwp"]
    ref = keras_loop(v3_f64, photo[0].numpy(), layers, zoom, iterations=3)
    old, _ = _ours(v3_f64, photo, "dlwp", layers, steps=3, pixel_range="unit", step_size=0.005)
    assert np.abs(old - ref).max() > 1e-4


@pytest.mark.xfail(
    strict=True,
    reason="open: Keras 3 (torch backend, floatx float64) ends up to 0.49 away after 3x20 "
    "steps while the transcription agrees to 1e-9; likely part of its forward still runs in "
    "float32 (BatchNorm), which this test does not yet patch",
)
def test_keras_3_itself_agrees(v3_file, v3_f64, photo):
    """Keras 3 (torch backend, float64) running the loop with keras.ops, on the same file."""
    keras.config.set_floatx("float64")
    try:
        base = keras.applications.InceptionV3(
            weights=None, include_top=False, input_shape=(None, None, 3)
        )
    finally:
        keras.config.set_floatx("float32")
    with h5py.File(v3_file, "r") as f:
        legacy_h5_format.load_weights_from_hdf5_group(f, base)
    layers = KERAS_LAYERS["keras-classic"]
    extractor = keras.Model(base.inputs, {n: base.get_layer(n).output for n, _ in layers})
    ops = keras.ops

    def step(img):
        img = img.detach().requires_grad_(True)
        feats = extractor(img)
        loss = 0.0
        for name, coeff in layers:
            a = feats[name]
            loss = loss + coeff * ops.sum(ops.square(a[:, 2:-2, 2:-2, :])) / float(a.numel())
        (grads,) = torch.autograd.grad(loss, img)
        grads = grads / ops.maximum(ops.mean(ops.abs(grads)), 1e-7)
        return float(loss), (img + 0.01 * grads).detach()

    original = ops.convert_to_tensor(photo.permute(0, 2, 3, 1).numpy() * 2 - 1, "float64")
    h, w = original.shape[1:3]
    shapes = [(int(h / 1.4**i), int(w / 1.4**i)) for i in range(3)][::-1]
    shrunk = ops.image.resize(original, shapes[0])
    img = original
    for shape in shapes:
        img = ops.image.resize(img, shape)
        for _ in range(20):
            loss, new = step(img)
            if loss > 10.0:
                break
            img = new
        img = img + ops.image.resize(original, shape) - ops.image.resize(shrunk, shape)
        shrunk = ops.image.resize(original, shape)
    theirs = np.clip(ops.convert_to_numpy(img)[0].transpose(2, 0, 1) / 2 + 0.5, 0, 1)
    ours, _ = _ours(v3_f64, photo, "keras-classic", layers)
    assert np.abs(ours - theirs).max() < 1e-9


def test_keras_preset_in_float32(v3_file, v3_f64, photo):
    """float32 against the float64 loop: the first gradient, and one step's 8-bit image."""
    v3 = get_model("inception_v3", weights=v3_file)  # the fast path: fused, channels_last
    layers = KERAS_LAYERS["keras-classic"]
    _, g64 = keras_loss_and_grads(v3_f64, photo[0].numpy() * 2 - 1, layers)
    _, g32 = objective_gradient(v3, photo.float(), Objective.of(_spec(layers)), "l2", 2)
    g32 = g32[0].double().numpy().ravel()
    cosine = g32 @ g64.ravel() / np.linalg.norm(g32) / np.linalg.norm(g64)
    assert cosine >= 0.99999
    cfg = DreamConfig.preset("keras-classic", model="inception_v3", steps=1, octaves=1)
    ours = dream_tensor(photo.float(), v3, cfg)[0].double().numpy()
    ref = _keras_one_step(v3_f64, photo[0].numpy(), layers)
    assert np.array_equal(_u8(ours), _u8(ref))


def _keras_one_step(model, photo01, layers):
    img = photo01 * 2 - 1
    _, g = keras_loss_and_grads(model, img, layers)
    img = img + 0.01 * g / max(np.mean(np.abs(g)), 1e-7)
    return np.clip(img / 2 + 0.5, 0, 1)


def _u8(x):
    return (np.clip(x, 0, 1) * 255 + 0.5).astype(np.uint8)  # what image.py writes


# --- TF2 tutorial --------------------------------------------------------------------------------


def tf2_tutorial_loop(model, photo01, layers, steps, shifts, tile_size=512):
    """The TF2 DeepDream tutorial's run_deep_dream_with_octaves with TiledGradients, float64,
    [-1, 1] pixels; ``shifts`` supplies the random rolls (TF draws its own)."""
    img = photo01 * 2 - 1
    base_shape = img.shape[1:]
    for octave in range(-2, 3):
        k = np.float32(1.3**octave)
        new_size = (int(np.float32(base_shape[0]) * k), int(np.float32(base_shape[1]) * k))
        img = half_pixel(img, new_size)
        for _ in range(steps):
            shift = next(shifts)
            rolled = torch.roll(torch.tensor(img), shift, dims=(1, 2)).requires_grad_(True)
            xs = list(range(0, new_size[1], tile_size))[:-1] or [0]
            ys = list(range(0, new_size[0], tile_size))[:-1] or [0]
            gradients = torch.zeros_like(rolled)
            for x in xs:
                for y in ys:
                    tile = rolled[:, y : y + tile_size, x : x + tile_size]
                    acts = model.activations((tile[None] + 1) / 2, [n for n, _ in layers])
                    loss = sum(w * acts[n].mean() for n, w in layers)
                    gradients = gradients + torch.autograd.grad(loss, rolled)[0]
            g = torch.roll(gradients, (-shift[0], -shift[1]), dims=(1, 2)).numpy()
            g = g / (g.std() + 1e-8)
            img = np.clip(img + g * 0.01, -1, 1)
    img = half_pixel(img, base_shape)
    return np.clip(img / 2 + 0.5, 0, 1)


@pytest.mark.parametrize("regime", [1.0, SCALED], ids=["as-initialised", "scaled"])
def test_tf_tutorial_reproduces_the_tutorial(v3_f64, photo, regime):
    small = torch.nn.functional.interpolate(photo, size=(80, 96), mode="area")
    layers = (("mixed3", regime), ("mixed5", regime))
    cfg = DreamConfig.preset("tf-tutorial", model="inception_v3", steps=4, seed=3)
    assert cfg.layers == "mixed3=1,mixed5=1"
    cfg = cfg.replace(layers=_spec(layers))
    gen = torch.Generator().manual_seed(cfg.seed)
    shifts = iter(lambda: random_shift(cfg.jitter, gen), None)
    ref = tf2_tutorial_loop(v3_f64, small[0].numpy(), layers, cfg.steps, shifts)
    ours = dream_tensor(small, v3_f64, cfg)[0].numpy()
    assert ours.shape == ref.shape == (3, 80, 96)
    assert np.abs(ours - ref).max() < 1e-9
    assert np.abs(ours - small[0].numpy()).mean() > 2e-3


# --- TF1 notebook: render_naive ------------------------------------------------------------------


def tf1_render_naive(model, img0_255, layer, channel, weight=1.0, iter_n=20, step=1.0):
    """The TF1 notebook's render_naive: mean of one channel, g / (g.std() + 1e-8), 0-255."""
    img = img0_255.copy()
    for _ in range(iter_n):
        t = torch.tensor(img[None], requires_grad=True)
        score = weight * model.activations(t / 255, [layer])[layer][:, channel].mean()
        (g,) = torch.autograd.grad(score, t)
        g = g[0].numpy()
        g /= g.std() + 1e-8
        img += g * step
    return img


@pytest.mark.parametrize("regime", [1.0, SCALED], ids=["as-initialised", "scaled"])
def test_tf1_naive_reproduces_render_naive(googlenet_f64, regime):
    cfg = DreamConfig.preset("tf1-naive", model="googlenet", seed=5)
    assert cfg.layers == "mixed4d_3x3_bottleneck_pre_relu:139=1"
    assert googlenet_f64.layer("mixed4d_3x3_bottleneck_pre_relu").name == (
        "inception4d.3x3_reduce.pre"
    )
    cfg = cfg.replace(layers=f"mixed4d_3x3_bottleneck_pre_relu:139={regime!r}")
    start = start_image(cfg.init, 64, 80, cfg.seed).double()
    layer = "inception4d.3x3_reduce.pre"
    ref = tf1_render_naive(googlenet_f64, start[0].numpy() * 255, layer, 139, regime)
    ours = dream_tensor(start, googlenet_f64, cfg)[0].numpy()
    assert np.abs(ours - np.clip(ref / 255, 0, 1)).max() < 1e-9
    assert np.abs(ours - start[0].numpy()).max() > 10 / 255


# --- resize flavours -----------------------------------------------------------------------------


@pytest.mark.parametrize("src, dst", [((20, 30), (37, 41)), ((50, 40), (21, 33))])
def test_half_pixel_resize_is_keras_ops_resize(src, dst):
    from inceptionism.octaves import resize

    x = torch.rand(1, 3, *src, dtype=torch.float64)
    theirs = keras.ops.image.resize(x.permute(0, 2, 3, 1), dst)
    theirs = keras.ops.convert_to_numpy(theirs)[0].transpose(2, 0, 1)
    np.testing.assert_allclose(resize(x, dst, "half-pixel")[0].numpy(), theirs, atol=1e-12)
    np.testing.assert_allclose(half_pixel(x[0].numpy(), dst), theirs, atol=1e-12)
    # and the flavours really differ
    assert np.abs(resize(x, dst, "corners")[0].numpy() - theirs).max() > 1e-3
