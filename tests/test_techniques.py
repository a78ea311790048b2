"""Steering a dream: channels, neurons, classes, guides, start images, masks, colours, gradient
processing. Each checked by what it should do to activations or pixels."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from inceptionism import DreamConfig, dream_tensor
from inceptionism.engine.techniques import guide_features, keep_colors, start_image
from inceptionism.errors import ConfigError
from inceptionism.ops.gradients import (
    gaussian_blur,
    lap_merge,
    lap_normalize,
    lap_split_n,
    normalize_gradient,
    smoothing_sigma,
)
from inceptionism.ops.objectives import Context, Objective, Term, guide_similarity

ONE = dict(octaves=1, jitter=0)


def _channel_means(model, x, layer):
    with torch.no_grad():
        return model.activations(x, [layer])[layer].mean(dim=(0, 2, 3))


def test_targeted_channel_rises_more_than_the_others(lite0):
    x = start_image("noise", 96, 96, seed=0)
    cfg = DreamConfig(layers="block9:7", objective="mean", steps=10, step_size=0.02, **ONE)
    out = dream_tensor(x, lite0, cfg)
    rise = _channel_means(lite0, out, "block9") - _channel_means(lite0, x, "block9")
    others = torch.cat([rise[:7], rise[8:]])
    assert rise[7] > 0 and rise[7] > others.max()


def test_neuron_changes_the_image_mainly_inside_its_receptive_field(lite0):
    x = start_image("grey", 128, 128, seed=0)
    # block3 has stride 8: neuron (8, 8) looks at pixels around (64, 64)
    cfg = DreamConfig(layers="block3:5@8,8", steps=6, step_size=0.02, **ONE)
    out = dream_tensor(x, lite0, cfg)
    change = (out - x).abs().sum(dim=1)[0]
    inside = change[32:96, 32:96].sum()
    assert float(inside / change.sum()) > 0.9
    assert float(change[64 - 4 : 64 + 4, 64 - 4 : 64 + 4].mean()) > float(change.mean())


def test_class_objective_raises_the_logit(lite0):
    x = start_image("noise", 96, 96, seed=1)
    cfg = DreamConfig(layers="logits:963", steps=8, step_size=0.02, **ONE)  # 963: pizza
    out = dream_tensor(x, lite0, cfg)
    with torch.no_grad():
        before, after = lite0(x)[0], lite0(out)[0]
    assert after[963] - before[963] > 1.0
    assert int(after.argsort(descending=True).tolist().index(963)) < int(
        before.argsort(descending=True).tolist().index(963)
    )


def test_guide_objective_moves_features_towards_the_guide(lite0, small_photo):
    guide = start_image("noise", 64, 64, seed=3)
    guide = torch.nn.functional.interpolate(
        torch.rand(1, 3, 8, 8, generator=torch.Generator().manual_seed(4)), size=(64, 64)
    )  # big colour blocks: features far from the photo's
    layer = "block6"
    feats = guide_features(lite0, guide, [layer])
    term, ctx = Term(layer), Context(guide=feats)

    def similarity(img):
        with torch.no_grad():
            return float(guide_similarity(lite0.activations(img, [layer])[layer], term, ctx))

    guided = dream_tensor(
        small_photo,
        lite0,
        DreamConfig(layers=layer, objective="guide", steps=8, **ONE),
        guide=guide,
    )
    plain = dream_tensor(small_photo, lite0, DreamConfig(layers=layer, steps=8, **ONE))
    assert similarity(guided) > similarity(small_photo)
    assert similarity(guided) - similarity(small_photo) > similarity(plain) - similarity(
        small_photo
    )
    with pytest.raises(ConfigError, match="needs a guide image"):
        dream_tensor(small_photo, lite0, DreamConfig(layers=layer, objective="guide", **ONE))


def test_start_images():
    a, b = start_image("noise", 20, 30, seed=5), start_image("noise", 20, 30, seed=5)
    assert torch.equal(a, b) and not torch.equal(a, start_image("noise", 20, 30, seed=6))
    # the seeds' grey noise: uniform(0, 1) + 100 on 0-255
    assert float(a.min()) >= 100 / 255 and float(a.max()) <= 101 / 255
    assert torch.equal(start_image("grey", 4, 4, 0), torch.full((1, 3, 4, 4), 0.5))


def test_mask_keeps_black_areas_and_dreams_white_ones(lite0, small_photo):
    h, w = small_photo.shape[-2:]
    mask = torch.zeros(1, 1, h, w)
    mask[..., :, w // 2 :] = 1.0  # dream the right half only
    out = dream_tensor(small_photo, lite0, DreamConfig(steps=4, octaves=2), mask=mask)
    change = (out - small_photo).abs()
    left, right = change[..., : w // 2 - 8], change[..., w // 2 + 8 :]
    assert float(left.max()) < 1e-3  # untouched, but for the soft edge region
    assert float(right.mean()) > 0.01


def test_keep_colors_keeps_chroma_and_takes_luminance(lite0, small_photo):
    out = dream_tensor(small_photo, lite0, DreamConfig(steps=4, octaves=2, keep_colors=True))
    plain = dream_tensor(small_photo, lite0, DreamConfig(steps=4, octaves=2))

    def ycc(t):  # the reference: Pillow's own RGB -> YCbCr (BT.601, full range), on 8 bits
        arr = (t[0].clamp(0, 1) * 255).round().byte().permute(1, 2, 0).numpy()
        y = np.asarray(Image.fromarray(arr, "RGB").convert("YCbCr")).astype(np.float32)
        return torch.from_numpy(y / 255).permute(2, 0, 1)[None]

    inside = (out > 0.01) & (out < 0.99)  # where clamping did not bite
    inside = inside.all(dim=1, keepdim=True)
    chroma_err = (ycc(out)[:, 1:] - ycc(small_photo)[:, 1:]).abs()
    # two roundings to 8 bits on each side: within 2 levels of the photo's chroma
    assert float(chroma_err.masked_select(inside.expand_as(chroma_err)).max()) <= 2.5 / 255
    assert torch.allclose(ycc(out)[:, :1], ycc(plain)[:, :1], atol=0.05)
    assert keep_colors(small_photo, small_photo).sub(small_photo).abs().max() < 1e-5


def test_laplacian_pyramid_properties():
    g = torch.randn(1, 3, 45, 61, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    bands = lap_split_n(g, 4)
    assert len(bands) == 5 and bands[-1].shape == g.shape and bands[0].shape[-2:] == (3, 4)
    assert torch.allclose(lap_merge(bands), g, atol=1e-12)  # exact reconstruction
    flat = torch.full((1, 3, 32, 32), 0.7, dtype=torch.float64)
    assert all(float(b.abs().max()) < 1e-12 for b in lap_split_n(flat, 3)[1:])  # no detail
    # normalisation is invariant to the gradient's scale and equalises the bands
    assert torch.allclose(lap_normalize(g), lap_normalize(40.0 * g), atol=1e-9)
    steep = g + 30.0 * torch.nn.functional.interpolate(
        torch.randn(1, 3, 3, 4, dtype=torch.float64), size=(45, 61), mode="bilinear"
    )  # a strong smooth component swamps the fine detail
    low_share = lambda t: float(lap_split_n(t, 4)[0].square().mean() / t.square().mean())  # noqa: E731
    assert low_share(lap_normalize(steep)) < low_share(steep)
    n = normalize_gradient(g, "laplacian", 4)
    assert float(n.abs().mean()) == pytest.approx(1.0)


def test_smoothing_grows_with_the_octave_and_removes_fine_detail():
    assert [smoothing_sigma(2.0, i, 4) for i in range(4)] == [0.5, 1.0, 1.5, 2.0]
    noise = torch.randn(1, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    blurred = gaussian_blur(noise, 2.0)
    assert float(blurred.std()) < 0.3 * float(noise.std())
    assert torch.allclose(gaussian_blur(torch.ones(1, 3, 20, 20), 3.0), torch.ones(1, 3, 20, 20))
    assert torch.equal(gaussian_blur(noise, 0.0), noise)


def _tv(x):
    return float(
        (x[..., 1:, :] - x[..., :-1, :]).abs().mean() + (x[..., 1:] - x[..., :-1]).abs().mean()
    )


def test_smoothing_and_tv_give_smoother_dreams(lite0, small_photo):
    base = DreamConfig(steps=6, octaves=2, jitter=0)
    plain = dream_tensor(small_photo, lite0, base)
    smooth = dream_tensor(small_photo, lite0, base.replace(smooth=2.0))
    tv = dream_tensor(small_photo, lite0, base.replace(tv=0.5))
    assert _tv(smooth) < _tv(plain) and _tv(tv) < _tv(plain)


def test_bad_channel_and_neuron_specs_are_refused(lite0, small_photo):
    with pytest.raises(ConfigError, match="channel 999 of 'block9' is out of range"):
        dream_tensor(small_photo, lite0, DreamConfig(layers="block9:999", **ONE))
    with pytest.raises(ConfigError, match="outside its"):
        dream_tensor(small_photo, lite0, DreamConfig(layers="block9:1@500,2", **ONE))
    with pytest.raises(ConfigError, match="no spatial grid"):
        dream_tensor(small_photo, lite0, DreamConfig(layers="logits:3@1,1", **ONE))
    assert Objective.parse("logits:3").terms[0].channels == (3,)
