"""Networks trained with `inceptionism train` in the studio (issue 27): offered in the model
list by their metadata's name, their class names offered for the class target, a dream with
one replayed by the CLI to the same pixels; a checkpoint that cannot be offered is skipped with
one line naming it. The network is trained here in seconds (two colours, 32 px, one epoch)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from inceptionism.errors import InceptionismError
from inceptionism.io.image import read_recipe
from inceptionism.models import get_spec
from inceptionism.models.trained import meta_path, read_meta
from inceptionism.studio.core import Controls, Limits, Studio
from inceptionism.train import TrainConfig, train

COLOURS = {"blue": (40, 60, 210), "red": (210, 50, 40)}
DREAM = dict(steps=2, octaves=1, size=64, seed=3)


def make_folder(root: Path, per_class: int = 5, side: int = 32) -> Path:
    """Two classes that differ by colour, with noise (tests/test_train.py's pattern)."""
    rng = np.random.default_rng(0)
    for name, colour in COLOURS.items():
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            pixels = np.array(colour) + rng.normal(0, 25, (side, side, 3))
            Image.fromarray(np.clip(pixels, 0, 255).astype("uint8")).save(root / name / f"{i}.png")
    return root


@pytest.fixture(scope="module")
def nets(tmp_path_factory):
    """A folder holding one trained network, ``colours.pt`` (with ``colours.json``)."""
    root = tmp_path_factory.mktemp("studio-trained")
    pictures = make_folder(root / "pictures")
    fast = TrainConfig(unfreeze=0, epochs=1, size=32, batch_size=8)
    train(pictures, root / "models" / "colours.pt", fast)
    return root / "models"


@pytest.fixture(scope="module")
def studio(nets):
    s = Studio(Limits(max_side=256), trained=[nets])
    yield s
    s.close()


def test_a_folder_of_trained_networks_is_offered(nets, tmp_path, capsys):
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "broken.pt").write_bytes(b"not weights")
    (bad / "broken.json").write_text("{not json")
    (bad / "stray.pt").write_bytes(b"no metadata beside it: not a checkpoint, passed over")
    s = Studio(trained=[nets, bad, tmp_path / "missing.pt"])
    try:
        names = s.model_names()
        assert names[-1] == "colours" and names.count("colours") == 1
        assert "efficientnet_lite0" in names
        assert s.class_choices("colours") == ["blue", "red"]
        assert s.class_choices("efficientnet_lite0") == []  # the zoo's classes go by number
        layers, defaults = s.layer_choices("colours")
        assert "logits" not in defaults and set(defaults) <= set(layers)
    finally:
        s.close()
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 2, err  # one line per checkpoint skipped, none for the stray file
    assert all(line.startswith("studio: skipping the trained network ") for line in err)
    assert "broken.pt" in err[0] and "not a network from `inceptionism train`" in err[0]
    assert "missing.pt" in err[1] and "no such file" in err[1]


def test_a_taken_name_falls_back_to_the_file_name_and_changed_weights_are_skipped(
    nets, tmp_path, capsys
):
    weights = (nets / "colours.pt").read_bytes()
    mine = tmp_path / "mine.pt"
    mine.write_bytes(weights)
    meta_path(mine).write_text(json.dumps(read_meta(nets / "colours.pt") | {"name": "vgg16"}))
    changed = tmp_path / "changed.pt"
    changed.write_bytes(weights + b"\0")
    meta_path(changed).write_text(meta_path(nets / "colours.pt").read_text())
    s = Studio(trained=[mine, changed])
    try:
        assert s.trained == {"mine": mine}
        assert get_spec("vgg16").origin is None  # the zoo's vgg16 is left alone
    finally:
        s.close()
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and "changed.pt" in err[0] and "changed since" in err[0], err


def test_a_dream_with_a_trained_class_replays_on_the_cli(studio, nets, tmp_path, run_cli):
    c = Controls(source="sample", sample="sample:coffee", model="colours", class_="red", **DREAM)
    *_, (result, status, png) = studio.dream(c)
    assert status.startswith("done"), status
    recipe = read_recipe(png)
    assert recipe["model"] == "colours"
    assert recipe["config"]["layers"].endswith("logits:1=1")  # "red" is the second class
    assert recipe["network"]["checkpoint"] == str((nets / "colours.pt").resolve())
    out = tmp_path / "again.png"
    r = run_cli("replay", png, "-o", out, "-q")
    assert r.code == 0, r.err
    assert np.array_equal(np.asarray(Image.open(out)), np.asarray(Image.open(png)))
    with pytest.raises(InceptionismError, match="green"):  # a name the network does not have
        studio.job(Controls(model="colours", class_="green", **DREAM))


def test_its_recipe_fills_the_controls_only_where_the_checkpoint_is_offered(studio, tmp_path):
    *_, (_, _, png) = studio.dream(Controls(source="noise", model="colours", **DREAM))
    back = studio.controls_from_recipe(png, None)
    assert back.model == "colours" and back.seed == 3
    assert studio.config(back).layers == read_recipe(png)["config"]["layers"]
    elsewhere = read_recipe(png)
    elsewhere["network"]["checkpoint"] = str(tmp_path / "colours.pt")
    with pytest.raises(InceptionismError, match="does not have"):
        studio.controls_from_recipe(None, json.dumps(elsewhere))
    plain = Studio()  # registered in this process, but not given to this studio
    try:
        assert "colours" not in plain.model_names()
        with pytest.raises(InceptionismError, match="does not have"):
            plain.controls_from_recipe(png, None)
        with pytest.raises(InceptionismError, match="^the studio has no model 'colours'$"):
            plain.job(Controls(source="noise", model="colours", **DREAM))
    finally:
        plain.close()


def test_the_page_lists_it_and_offers_its_classes_when_it_is_picked(studio):
    pytest.importorskip("gradio")  # the page needs the `web` extra
    from inceptionism.studio.app import build_app

    app = build_app(studio, Controls(model="efficientnet_lite0"))
    shown = {getattr(b, "elem_id", None) or getattr(b, "label", None): b
             for b in app.blocks.values()}  # fmt: skip
    assert ("colours", "colours") in shown["Model"].choices
    assert shown["class"].choices == []  # the zoo's network: a class number is typed
    on_model = next(f.fn for f in app.fns.values() if f.fn.__name__ == "on_model")
    layers, classes = on_model("colours")
    assert classes["choices"] == ["blue", "red"]
    assert layers["value"] == studio.layer_choices("colours")[1]
