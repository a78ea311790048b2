"""Each seed preset against its seed's own loop, transcribed, on the same weights.

The transcriptions work in the seed's units (Keras and TF2: InceptionV3's [-1, 1] input; TF1:
0-255) with the seed's own resize, floor and epsilon; the project works in [0, 1]. In float64
both must agree to 1e-9 per pixel after 3 octaves x 20 steps, in two regimes: the weights as
initialised, where mean |g| is near or below the seed's floor (so the floor's units matter),
and the objective scaled by 1e5 so mean |g| is far above it. Keras 3 itself runs the Keras loop
too, in float64 throughout (its type promotion patched: on the torch backend it rounds float64
to float32). In float32 (chaotic at ReLU kinks over many steps) the first gradient and the one-step
8-bit image are compared.
"""

from __future__ import annotations

import contextlib

import h5py
import numpy as np
import pytest
import torch
from keras_torch import KERAS_MARKS, keras, legacy_h5_format
from scipy import ndimage

from inceptionism import DreamConfig, dream_tensor
from inceptionism.engine.ascent import objective_gradient, random_shift
from inceptionism.engine.techniques import start_image
from inceptionism.io.image import load_image
from inceptionism.models import get_model, get_spec
from inceptionism.models.blocks import init_random
from inceptionism.ops.objectives import Objective

pytestmark = [*KERAS_MARKS, pytest.mark.slow]  # transcribed seed loops: .ci/run's second run

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
    from inceptionism.io.samples import sample_path

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
    return float(loss.detach()), g[0].numpy()


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


@contextlib.contextmanager
def keras_float64():
    """Keras 3 in float64 throughout: the dtype policy (weights, layer computations), floatx
    (the Input layer's dtype) and its type promotion, which on every backend but TensorFlow
    rounds a promoted float64 to float32 (JAX's default): BatchNormalization computes in
    ``result_type(inputs.dtype, "float32")`` and ``ops.maximum(mean, 1e-7)`` promotes too."""
    from keras.src.backend.common import dtypes

    policy, floatx = keras.config.dtype_policy(), keras.config.floatx()
    with pytest.MonkeyPatch.context() as mp:
        mp.setitem(dtypes.BIT64_TO_BIT32_DTYPE, "float64", "float64")
        keras.config.set_dtype_policy("float64")
        keras.config.set_floatx("float64")
        try:
            yield
        finally:
            keras.config.set_dtype_policy(policy)
            keras.config.set_floatx(floatx)


@pytest.fixture(scope="module")
def keras_v3_f64(v3_file):
    """Keras 3's InceptionV3 in float64, loaded from the same file: the seed's feature
    extractor for a set of layer names."""
    with keras_float64():
        base = keras.applications.InceptionV3(
            weights=None, include_top=False, input_shape=(None, None, 3)
        )
    with h5py.File(v3_file, "r") as f:
        legacy_h5_format.load_weights_from_hdf5_group(f, base)
    return lambda names: keras.Model(base.inputs, {n: base.get_layer(n).output for n in names})


def keras3_loop(extractor, photo01, layers, iterations=20, max_loss=10.0):
    """The Keras loop written with keras.ops on Keras 3 itself (channels last, [-1, 1])."""
    ops = keras.ops
    model = extractor([n for n, _ in layers])

    def loss_and_grads(img):
        img = img.detach().requires_grad_(True)
        feats = model(img)
        loss = 0.0
        for name, coeff in layers:
            a = feats[name]
            # prod(cast(shape, "float32")) in the seed: an exact integer, kept float64 here
            loss = loss + coeff * ops.sum(ops.square(a[:, 2:-2, 2:-2, :])) / float(a.numel())
        (grads,) = torch.autograd.grad(loss, img)
        return float(loss.detach()), grads

    with keras_float64():
        original = ops.convert_to_tensor(photo01.transpose(1, 2, 0)[None] * 2 - 1, "float64")
        h, w = original.shape[1:3]
        shapes = [(int(h / 1.4**i), int(w / 1.4**i)) for i in range(3)][::-1]
        shrunk = ops.image.resize(original, shapes[0])
        img, stops = original, 0
        for shape in shapes:
            img = ops.image.resize(img, shape)
            for _ in range(iterations):
                loss, grads = loss_and_grads(img)
                if loss > max_loss:
                    stops += 1
                    break
                grads = grads / ops.maximum(ops.mean(ops.abs(grads)), 1e-7)
                img = (img + 0.01 * grads).detach()
            img = img + ops.image.resize(original, shape) - ops.image.resize(shrunk, shape)
            shrunk = ops.image.resize(original, shape)
        out = ops.convert_to_numpy(img)[0].transpose(2, 0, 1)
    return np.clip(out / 2 + 0.5, 0, 1), stops


def test_keras_3_rounds_float64_without_the_patch():
    """Why keras_float64 patches Keras's promotion: without it BatchNorm of a float64 input,
    and the l1 floor, come out in float32 (the whole-loop difference was 1.8e-8)."""
    from keras.src import backend

    g = torch.rand(2, 3, dtype=torch.float64)
    for rounded in (True, False):
        with keras_float64() if not rounded else contextlib.nullcontext():
            assert backend.result_type("float64", "float32") == ("float32" if rounded else
                                                                  "float64")  # fmt: skip
            floor = keras.ops.maximum(keras.ops.mean(g) * 0, 1e-7)
            assert (float(floor) == 1e-7) is not rounded


@pytest.mark.parametrize("regime", [1.0, SCALED], ids=["as-initialised", "scaled"])
def test_keras_3_itself_agrees(keras_v3_f64, v3_f64, photo, regime):
    """Keras 3 (torch backend, float64) running the loop with keras.ops, on the same file."""
    layers = _scaled(KERAS_LAYERS["keras-classic"], regime)
    theirs, their_stops = keras3_loop(keras_v3_f64, photo[0].numpy(), layers)
    ours, our_stops = _ours(v3_f64, photo, "keras-classic", layers)
    assert our_stops == their_stops
    assert np.abs(ours - theirs).max() < 1e-9
    assert np.abs(ours - photo[0].numpy()).mean() > 2e-3


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


# --- TF1 notebook: render_lapnorm ----------------------------------------------------------------

K5 = np.outer([1.0, 4, 6, 4, 1], [1.0, 4, 6, 4, 1]) / 256  # k5x5 = outer(k, k) / k.sum() * eye(3)


def tf_same_pads(n):
    """tf.nn.conv2d "SAME" padding of a 5-tap filter with stride 2 on a side of n."""
    total = max((-(-n // 2) - 1) * 2 + 5 - n, 0)
    return total // 2, total - total // 2


def tf1_conv(img):
    """tf.nn.conv2d(img, k5x5, [1, 2, 2, 1], "SAME") on (C, H, W): zero padding, every tap."""
    (t, b), (lf, r) = tf_same_pads(img.shape[1]), tf_same_pads(img.shape[2])
    padded = np.pad(img, ((0, 0), (t, b), (lf, r)))
    oh, ow = -(-img.shape[1] // 2), -(-img.shape[2] // 2)
    out = np.zeros((img.shape[0], oh, ow))
    for i in range(5):
        for j in range(5):
            out += K5[i, j] * padded[:, i : i + 2 * oh : 2, j : j + 2 * ow : 2]
    return out


def tf1_conv_transpose(low, shape):
    """tf.nn.conv2d_transpose(low, k5x5 * 4, shape, [1, 2, 2, 1]): the gradient of tf1_conv
    for an input of ``shape``, i.e. every tap scattered back, the padding cut off."""
    (t, b), (lf, r) = tf_same_pads(shape[0]), tf_same_pads(shape[1])
    oh, ow = low.shape[1:]
    padded = np.zeros((low.shape[0], shape[0] + t + b, shape[1] + lf + r))
    for i in range(5):
        for j in range(5):
            padded[:, i : i + 2 * oh : 2, j : j + 2 * ow : 2] += 4 * K5[i, j] * low
    return padded[:, t : t + shape[0], lf : lf + shape[1]]


def tf1_lap_split(img):
    lo = tf1_conv(img)
    return lo, img - tf1_conv_transpose(lo, img.shape[1:])


def tf1_lap_split_n(img, n):
    levels = []
    for _ in range(n):
        img, hi = tf1_lap_split(img)
        levels.append(hi)
    levels.append(img)
    return levels[::-1]


def tf1_lap_merge(levels):
    img = levels[0]
    for hi in levels[1:]:
        img = tf1_conv_transpose(img, hi.shape[1:]) + hi
    return img


def tf1_lap_normalize(img, scale_n=4):
    normalize_std = lambda a, eps=1e-10: a / max(np.sqrt(np.mean(np.square(a))), eps)  # noqa: E731
    return tf1_lap_merge([normalize_std(a) for a in tf1_lap_split_n(img, scale_n)])


def tf1_resize(img, size):
    """tf.image.resize_bilinear (TF1: no align_corners, no half-pixel centres) on (C, H, W)."""

    def axis(n_in, n_out):
        src = np.arange(n_out) * (n_in / n_out)
        lo = np.minimum(np.floor(src).astype(int), n_in - 1)
        return lo, np.minimum(lo + 1, n_in - 1), src - lo

    y0, y1, fy = axis(img.shape[1], size[0])
    x0, x1, fx = axis(img.shape[2], size[1])
    top = img[:, y0] + (img[:, y1] - img[:, y0]) * fy[:, None]
    return top[:, :, x0] + (top[:, :, x1] - top[:, :, x0]) * fx


def tf1_render_lapnorm(model, img0, layer, channel, shifts, weight=1.0, iter_n=10, step=1.0,
                       octave_n=3, octave_scale=1.4, lap_n=4, tile_size=512):  # fmt: skip
    """The TF1 notebook's render_lapnorm with calc_grad_tiled, float64, 0-255 (C, H, W);
    ``shifts`` supplies calc_grad_tiled's random (sy, sx) rolls (TF1 draws its own)."""

    def t_grad(sub):
        t = torch.tensor(sub[None], requires_grad=True)
        score = weight * model.activations(t / 255, [layer])[layer][:, channel].mean()
        return torch.autograd.grad(score, t)[0][0].numpy()

    def calc_grad_tiled(img):
        sz = tile_size
        h, w = img.shape[1:]
        sy, sx = next(shifts)
        img_shift = np.roll(np.roll(img, sx, 2), sy, 1)
        grad = np.zeros_like(img)
        for y in range(0, max(h - sz // 2, sz), sz):
            for x in range(0, max(w - sz // 2, sz), sz):
                sub = img_shift[:, y : y + sz, x : x + sz]
                grad[:, y : y + sz, x : x + sz] = t_grad(sub)
        return np.roll(np.roll(grad, -sx, 2), -sy, 1)

    img = img0.copy()
    for octave in range(octave_n):
        if octave > 0:
            hw = np.float32(img.shape[1:]) * np.float32(octave_scale)
            img = tf1_resize(img, np.int32(hw))
        for _ in range(iter_n):
            g = calc_grad_tiled(img)
            g = tf1_lap_normalize(g, lap_n)
            img += g * step
    return img


@pytest.mark.parametrize("size", [(16, 16), (21, 34), (40, 27)])
def test_tf1_laplacian_pyramid_is_the_notebooks(size):
    from inceptionism.ops.gradients import (
        lap_merge,
        lap_merge_tf1,
        lap_normalize_tf1,
        lap_split_n,
        lap_split_n_tf1,
        lap_split_tf1,
    )

    x = torch.rand(1, 3, *size, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    xn = x[0].numpy()
    # the transcription's transposed convolution is the adjoint of its convolution
    y = np.random.default_rng(0).random((3, -(-size[0] // 2), -(-size[1] // 2)))
    assert np.isclose((tf1_conv(xn) * y).sum(), (xn * tf1_conv_transpose(y, size)).sum() / 4)
    low, high = lap_split_tf1(x)
    ref_low, ref_high = tf1_lap_split(xn)
    np.testing.assert_allclose(low[0].numpy(), ref_low, atol=1e-13)
    np.testing.assert_allclose(high[0].numpy(), ref_high, atol=1e-13)
    ours, ref = lap_split_n_tf1(x, 4), tf1_lap_split_n(xn, 4)
    assert [tuple(b.shape[1:]) for b in ours] == [b.shape for b in ref]
    for band, ref_band in zip(ours, ref):
        np.testing.assert_allclose(band[0].numpy(), ref_band, atol=1e-13)
    # round trips: both pyramids give the image back, as the notebook's does
    np.testing.assert_allclose(lap_merge_tf1(ours)[0].numpy(), tf1_lap_merge(ref), atol=1e-13)
    np.testing.assert_allclose(tf1_lap_merge(ref), xn, atol=1e-13)
    np.testing.assert_allclose(lap_merge(lap_split_n(x, 4))[0].numpy(), xn, atol=1e-13)
    np.testing.assert_allclose(
        lap_normalize_tf1(x, 4)[0].numpy(), tf1_lap_normalize(xn, 4), atol=1e-12
    )
    assert np.abs(tf1_lap_normalize(xn, 4) - xn).max() > 0.1  # it does change the gradient


def test_tf1_level_sizes_are_the_notebooks():
    """grown_shapes(end) finds the levels a TF1 run passes through on its way to ``end``."""
    from inceptionism.ops.octaves import grown_shapes

    for start in [*range(16, 300), 224, 1000, 1023]:
        sides = [start]
        for _ in range(2):
            sides.append(int(np.int32(np.float32(sides[-1]) * np.float32(1.4))))
        assert [h for h, _ in grown_shapes(sides[-1], 50, 2, 0, 1.4)] == sides
    assert grown_shapes(438, 438, 2, 0, 1.4) == [(224, 224), (313, 313), (438, 438)]


@pytest.mark.parametrize("regime", [1.0, SCALED], ids=["as-initialised", "scaled"])
def test_tf1_lapnorm_reproduces_render_lapnorm(googlenet_f64, regime):
    cfg = DreamConfig.preset("tf1-lapnorm", model="googlenet", seed=7)
    assert cfg.layers == "mixed4d_3x3_bottleneck_pre_relu:65=1"
    cfg = cfg.replace(layers=f"mixed4d_3x3_bottleneck_pre_relu:65={regime!r}")
    out_shape = (124, 156)  # a TF1 run from 64 x 80: 64 x 80, 89 x 112, 124 x 156
    start = start_image(cfg.init, *out_shape, cfg.seed).double()
    # TF1 starts at the first level; here the output size is given and the start resized down
    img0 = tf1_resize(start[0].numpy() * 255, (64, 80))
    gen = torch.Generator().manual_seed(cfg.seed)
    shifts = iter(lambda: random_shift(cfg.jitter, gen), None)
    layer = "inception4d.3x3_reduce.pre"
    ref = tf1_render_lapnorm(googlenet_f64, img0, layer, 65, shifts, regime)
    ours = dream_tensor(start, googlenet_f64, cfg)[0].numpy()
    assert ref.shape == ours.shape == (3, *out_shape)
    assert np.abs(ours - np.clip(ref / 255, 0, 1)).max() < 1e-9
    assert np.abs(ours - start[0].numpy()).max() > 10 / 255


# --- resize flavours -----------------------------------------------------------------------------


@pytest.mark.parametrize("src, dst", [((20, 30), (37, 41)), ((50, 40), (21, 33))])
def test_half_pixel_resize_is_keras_ops_resize(src, dst):
    from inceptionism.ops.octaves import resize

    x = torch.rand(1, 3, *src, dtype=torch.float64)
    theirs = keras.ops.image.resize(x.permute(0, 2, 3, 1), dst)
    theirs = keras.ops.convert_to_numpy(theirs)[0].transpose(2, 0, 1)
    np.testing.assert_allclose(resize(x, dst, "half-pixel")[0].numpy(), theirs, atol=1e-12)
    np.testing.assert_allclose(half_pixel(x[0].numpy(), dst), theirs, atol=1e-12)
    # and the flavours really differ
    assert np.abs(resize(x, dst, "corners")[0].numpy() - theirs).max() > 1e-3
