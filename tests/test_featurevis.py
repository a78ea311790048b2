"""Feature visualisation, by measurable properties: the new recipe is more robust to
transformations than today's DeepDream of noise at the same number of steps and no richer in
high frequencies; a batch gives each channel its own picture; the objectives mean what they say."""

from __future__ import annotations

import pytest
import torch

from inceptionism.engine.config import DreamConfig
from inceptionism.engine.loop import dream_tensor
from inceptionism.engine.techniques import start_image
from inceptionism.errors import ConfigError, UnknownNameError
from inceptionism.featurevis.render import (
    Direction,
    FeatureVisConfig,
    class_objective,
    gram_similarity,
    high_frequency_share,
    render,
    render_channels,
    render_classes,
    render_diverse,
    robust_activation,
)
from inceptionism.ops.objectives import Objective

LAYER = "block6"


def _today(model, channels, size, steps_per_octave):
    out = []
    for c in channels:
        config = DreamConfig(model=model.name, layers=f"{LAYER}:{c}", objective="mean",
                             grad_norm="laplacian", step_size=0.02, steps=steps_per_octave,
                             octaves=3, init="noise")  # fmt: skip
        out.append(dream_tensor(start_image("noise", size, size, 0), model, config))
    return torch.cat(out)


def test_new_recipe_beats_todays_on_robust_activation_without_more_high_frequencies(lite0):
    channels, size, spo = [0, 1, 2, 3], 96, 8
    units = [f"{LAYER}:{c}" for c in channels]
    old = _today(lite0, channels, size, spo)
    new = torch.stack(render_channels(lite0, LAYER, channels, steps=3 * spo, size=size))
    assert new.shape == (4, 3, size, size)
    assert float(new.min()) >= 0 and float(new.max()) <= 1
    old_score = robust_activation(lite0, old, units)
    new_score = robust_activation(lite0, new, units)
    assert float(new_score.mean()) > float(old_score.mean())
    assert float(high_frequency_share(new).mean()) <= float(high_frequency_share(old).mean())


def test_a_batch_gives_each_channel_its_own_picture(lite0):
    channels = [3, 10, 17, 24, 31, 38]
    images = torch.stack(render_channels(lite0, LAYER, channels, steps=16, size=64, batch=6))
    with torch.no_grad():
        acts = lite0.activations(images, [LAYER])[LAYER][:, channels].mean(dim=(-2, -1))
    assert acts.argmax(dim=1).tolist() == list(range(len(channels)))


def test_a_units_start_does_not_depend_on_batching(lite0):
    units = ["block3:0", "block3:1", "block3:2"]
    config = FeatureVisConfig(steps=0, size=32)
    a = render(lite0, units, config.replace(batch=3))
    b = render(lite0, units, config.replace(batch=1))
    assert torch.allclose(a, b, atol=1e-6)
    assert not torch.allclose(a[0], a[1])  # each unit its own seeded start
    c = render(lite0, units, config.replace(seed=1))
    assert not torch.allclose(a, c)


def test_renders_are_reproducible(lite0):
    config = FeatureVisConfig(steps=3, size=32)
    a = render(lite0, ["block3:5"], config)
    b = render(lite0, ["block3:5"], config)
    assert torch.equal(a, b)


def test_class_objective_minus_mean_of_others():
    logits = torch.randn(1, 10, generator=torch.Generator().manual_seed(0))
    acts = {"logits": logits}
    plain = class_objective(3, classes=10)
    assert float(plain(acts, "mean")) == pytest.approx(float(logits[0, 3]))
    others = torch.cat([logits[0, :3], logits[0, 4:]]).mean()
    relative = class_objective(3, minus_mean=True, classes=10)
    assert float(relative(acts, "mean")) == pytest.approx(float(logits[0, 3] - others), abs=1e-5)
    with pytest.raises(ConfigError, match="out of range"):
        class_objective(10, classes=10)


def test_direction_is_the_mean_projection_on_a_unit_vector():
    a = torch.randn(1, 4, 3, 5, generator=torch.Generator().manual_seed(0))
    acts = {"L": a}
    one_hot = Direction("L", (0.0, 2.0, 0.0, 0.0))
    assert float(one_hot(acts)) == pytest.approx(float(Objective.parse("L:1")(acts, "mean")))
    v = torch.tensor([1.0, -1.0, 0.5, 2.0])
    expected = (a * (v / v.norm()).view(1, 4, 1, 1)).sum(dim=1).mean()
    assert float(Direction("L", tuple(v.tolist()))(acts)) == pytest.approx(float(expected))
    cos = Direction("L", tuple(v.tolist()), cosine=True)(acts)
    assert -1 <= float(cos) <= 1
    with pytest.raises(ConfigError, match="4 channels"):
        Direction("L", (1.0, 2.0))(acts)


def test_gram_similarity():
    a = torch.rand(1, 4, 6, 6, generator=torch.Generator().manual_seed(0))
    assert float(gram_similarity(torch.cat([a, a]))) == pytest.approx(1.0, abs=1e-5)
    x = torch.zeros(2, 2, 3, 3)
    x[0, 0], x[1, 1] = 1.0, 1.0  # each image fires a different channel: orthogonal Grams
    assert float(gram_similarity(x)) == pytest.approx(0.0)
    assert float(gram_similarity(a)) == 0.0


def test_diversity_pushes_a_batch_of_one_unit_apart(lite0):
    def similarity(images):
        with torch.no_grad():
            return float(gram_similarity(lite0.activations(images, ["block3"])["block3"]))

    options = dict(steps=12, size=48, transforms="none")
    plain = torch.stack(render_diverse(lite0, "block3:7", 3, diversity=0.0, **options))
    diverse = torch.stack(render_diverse(lite0, "block3:7", 3, diversity=20.0, **options))
    assert similarity(diverse) < similarity(plain)


def test_class_and_neuron_units_render(lite0):
    (img,) = render_classes(lite0, [963], steps=2, size=32)
    assert img.shape == (3, 32, 32)
    out = render(lite0, ["block6:4@1,1", Direction("block6", (1.0,) * 80)],
                 FeatureVisConfig(steps=2, size=32))  # fmt: skip
    assert out.shape == (2, 3, 32, 32)


def test_bad_requests_fail_before_any_work(lite0):
    with pytest.raises(ConfigError, match="channels 0..79"):
        render_channels(lite0, LAYER, [80])
    with pytest.raises(UnknownNameError, match="block6"):
        render(lite0, ["blok6:1"])
    with pytest.raises(ConfigError, match="no units"):
        render(lite0, [])
    with pytest.raises(ConfigError, match="param"):
        FeatureVisConfig(param="wavelet")
    with pytest.raises(ConfigError, match="unknown transform"):
        FeatureVisConfig(transforms="blur")
    with pytest.raises(ConfigError, match="steps"):
        FeatureVisConfig(steps=-1)
    with pytest.raises(UnknownNameError):
        FeatureVisConfig.preset("nope")
    assert FeatureVisConfig.preset("lucid") == FeatureVisConfig()
    assert FeatureVisConfig(transforms="standard").transforms.startswith("pad=12,jitter=8")


def test_progress_reports_every_step(lite0):
    seen = []
    render(lite0, ["block3:0"] * 3, FeatureVisConfig(steps=2, size=32, batch=2),
           on_progress=lambda done, total, value: seen.append((done, total)))  # fmt: skip
    assert seen == [(1, 4), (2, 4), (3, 4), (4, 4)]
