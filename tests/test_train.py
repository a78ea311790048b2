"""`inceptionism train`: tiny synthetic class folders (two colours), a few epochs at 32-48 px."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from inceptionism.configure import Options, build_config
from inceptionism.errors import ConfigError, UnknownNameError
from inceptionism.io.image import load_image
from inceptionism.models import get_model
from inceptionism.models import trained as trained_module
from inceptionism.models.trained import is_trained, meta_path, read_meta, register_trained
from inceptionism.models.weights import read_state_dict
from inceptionism.train import TrainConfig, read_folder, resume_path, split, train

COLOURS = {"blue": (40, 60, 210), "red": (210, 50, 40)}
FAST = TrainConfig(unfreeze=1, epochs=2, size=48, batch_size=8, lr=3e-4)


def make_folder(root: Path, per_class: int = 6, side: int = 40, seed: int = 0) -> Path:
    """Two classes that differ by colour, with noise and a random bright square."""
    rng = np.random.default_rng(seed)
    for name, colour in COLOURS.items():
        folder = root / name
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            pixels = np.array(colour) + rng.normal(0, 25, (side, side + 8, 3))
            y, x = rng.integers(0, side - 8, 2)
            pixels[y : y + 8, x : x + 8] = 255
            Image.fromarray(np.clip(pixels, 0, 255).astype("uint8")).save(folder / f"{i}.png")
    return root


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A network trained once on the two colours: (weights path, result)."""
    root = tmp_path_factory.mktemp("train")
    folder = make_folder(root / "pictures")
    (folder / "red" / "broken.jpg").write_bytes(b"not a picture")
    out = root / "colours.pt"
    result = train(folder, out, FAST)
    return out, result


def test_training_learns_a_separable_set(trained):
    out, result = trained
    first, last = result.history[0], result.history[-1]
    assert last.loss < first.loss
    assert result.meta["held_out_accuracy"] > 0.5  # chance is 0.5
    assert [r.epoch for r in result.history] == [1, 2]
    assert all(r.eta == 0.0 and r.held_out_total == 2 for r in result.history)


def test_metadata_records_classes_recipe_and_data(trained):
    out, result = trained
    meta = read_meta(out)
    assert is_trained(str(out)) and meta_path(out) == out.with_suffix(".json")
    assert meta["classes"] == ["blue", "red"] and meta["base_model"] == "efficientnet_lite0"
    assert meta["input_size"] == 48 and meta["recipe"]["unfreeze"] == 1
    assert meta["data"]["skipped"] == 1 and meta["data"]["counts"] == {"blue": 6, "red": 6}
    assert len(meta["data"]["sha256"]) == 64 and len(meta["weights_sha256"]) == 64
    assert not resume_path(out).exists()  # a finished run leaves no resume file


@pytest.mark.parametrize("safetensors", [True, False])
def test_either_weights_format_loads(safetensors, trained, tmp_path, monkeypatch):
    """safetensors where installed, else a tensors-only torch state dict: both load."""
    out, _ = trained
    if safetensors and not trained_module.has_safetensors():
        pytest.skip("safetensors is not installed")
    state = read_state_dict(out)
    monkeypatch.setattr(trained_module, "has_safetensors", lambda: safetensors)
    copy = tmp_path / "copy.pt"
    meta = {k: v for k, v in read_meta(out).items() if k != "weights_sha256"}
    written = trained_module.write_trained(copy, state, meta)
    assert written["weights_format"] == ("safetensors" if safetensors else "torch-state-dict")
    assert (copy.read_bytes()[:2] == b"PK") != safetensors  # torch.save writes a zip
    model = get_model(register_trained(str(copy)).name)
    assert model.layer("logits").channels == 2
    assert model.weights_sha256 == written["weights_sha256"]


def test_unreadable_pictures_are_skipped_and_counted(tmp_path):
    folder = make_folder(tmp_path / "p", per_class=3)
    (folder / "blue" / "x.png").write_bytes(b"\x89PNG broken")
    data = read_folder(folder, 32)
    assert len(data.skipped) == 1 and len(data.pictures) == 6
    assert data.skipped[0][0].name == "x.png"


def test_split_holds_out_every_class(tmp_path):
    data = read_folder(make_folder(tmp_path / "p", per_class=5), 32)
    train_set, val = split(data, 0.2, seed=3)
    assert sorted(p.label for p in val) == [0, 1] and len(train_set) == 8
    again, val2 = split(data, 0.2, seed=3)
    assert [p.path for p in val] == [p.path for p in val2]


def test_the_class_name_targets_its_logit(trained, tmp_path):
    out, _ = trained
    name = register_trained(str(out)).name
    config = build_config(Options.of({"model": name, "class_": "red"}))
    assert config.layers == "logits:1=1"
    assert build_config(Options.of({"model": name, "class_": "0"})).layers == "logits:0=1"
    model = get_model(name)
    unseen = make_folder(tmp_path / "unseen", per_class=2, seed=1)
    for label, colour in enumerate(COLOURS):  # blue 0, red 1
        for file in (unseen / colour).iterdir():
            logits = model(load_image(file).resized_to_fit(48).rgb)
            assert int(logits.argmax()) == label  # the logit the class name targets
    with pytest.raises(UnknownNameError, match="green"):
        build_config(Options.of({"model": name, "class_": "green"}))


def test_the_python_api_dreams_a_class_by_its_name(trained):
    """docs/train.md's Python example: the class name to its logit, then the API's dream; the
    dream raises that logit on the picture it changes."""
    from inceptionism import dream
    from inceptionism.models.trained import class_number

    out, _ = trained
    name = register_trained(str(out)).name
    red = class_number(name, "red")
    start = torch.full((1, 3, 48, 48), 0.5)
    start[:, 2] = 0.7  # a bluish grey
    picture = dream(start, model=name, layers=f"logits:{red}", steps=6, octaves=1)
    model = get_model(name)
    with torch.no_grad():
        before, after = model(start)[0, red], model(picture)[0, red]
    assert not torch.equal(picture, start) and float(after) > float(before)


def test_the_checkpoint_loads_lists_dreams_and_replays(trained, run_cli, tmp_path):
    out, _ = trained
    listed = run_cli("layers", out)
    assert listed.code == 0
    assert any(line.split()[:2] == ["logits", "2"] for line in listed.out.splitlines())
    dream, again = tmp_path / "d.png", tmp_path / "r.png"
    made = run_cli("dream", "sample:coffee", "-o", dream, "--model", out, "--class", "red",
                   "--max-size", 64, "--steps", 2, "--octaves", 1, "-q")  # fmt: skip
    assert made.code == 0, made.err
    recipe = json.loads(Image.open(dream).text["inceptionism"])
    assert recipe["network"]["checkpoint"] == str(out.resolve())
    assert recipe["weights_sha256"] == read_meta(out)["weights_sha256"]
    assert recipe["config"]["layers"] == "logits:1=1"
    replayed = run_cli("replay", dream, "-o", again, "-q")
    assert replayed.code == 0, replayed.err
    assert np.array_equal(np.asarray(Image.open(dream)), np.asarray(Image.open(again)))


def test_replay_refuses_a_changed_checkpoint(trained, run_cli, tmp_path):
    out, _ = trained
    copy = tmp_path / "copy.pt"
    copy.write_bytes(out.read_bytes())
    meta_path(copy).write_text(meta_path(out).read_text())
    dream = tmp_path / "d.png"
    made = run_cli("dream", "sample:coffee", "-o", dream, "--model", copy, "--max-size", 48,
                   "--steps", 1, "--octaves", 1, "-q")  # fmt: skip
    assert made.code == 0, made.err
    with open(copy, "ab") as f:
        f.write(b"\0")
    refused = run_cli("replay", dream, "-o", tmp_path / "r.png", "-q")
    assert refused.code == 2 and len(refused.err_lines) == 1
    assert "changed" in refused.err


def test_resume_continues_to_the_same_weights(tmp_path):
    folder = make_folder(tmp_path / "p", per_class=5)
    whole = train(folder, tmp_path / "whole.pt", FAST)

    def stop_after_first(report):
        if report.held_out_accuracy is not None and report.epoch == 1:
            raise KeyboardInterrupt

    out = tmp_path / "cut.pt"
    with pytest.raises(KeyboardInterrupt):
        train(folder, out, FAST, progress=stop_after_first)
    assert resume_path(out).is_file() and not out.exists()
    epochs = []
    resumed = train(folder, out, FAST, progress=lambda r: epochs.append(r.epoch))
    assert set(epochs) == {2}  # the first epoch is not run again
    a, b = read_state_dict(whole.weights), read_state_dict(out)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert resumed.meta["held_out_accuracy"] == whole.meta["held_out_accuracy"]


def test_resume_refuses_another_recipe(tmp_path):
    folder = make_folder(tmp_path / "p", per_class=3)
    out = tmp_path / "n.pt"

    def stop(report):
        if report.held_out_accuracy is not None:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(folder, out, FAST, progress=stop)
    with pytest.raises(ConfigError, match="another recipe"):
        train(folder, out, TrainConfig(unfreeze=0, epochs=2, size=32, lr=1e-2))


def _one_class(root: Path) -> Path:
    make_folder(root)
    for f in (root / "red").iterdir():
        f.unlink()
    (root / "red").rmdir()
    return root


def _empty_class(root: Path) -> Path:
    make_folder(root)
    (root / "green").mkdir()
    return root


def _too_few(root: Path) -> Path:
    make_folder(root, per_class=1)
    return root


def _all_unreadable(root: Path) -> Path:
    make_folder(root)
    for f in (root / "red").iterdir():
        f.write_bytes(b"junk")
    return root


@pytest.mark.parametrize(
    "make, words",
    [
        (_one_class, "two or more class sub-folders, found one (blue)"),
        (_empty_class, "is empty"),
        (_too_few, "at least 2 per class"),
        (_all_unreadable, "no readable pictures"),
    ],
)
def test_each_folder_error_is_one_line_exit_2(make, words, run_cli, tmp_path):
    folder = make(tmp_path / "p")
    result = run_cli("train", folder, "-o", tmp_path / "n.pt", "--size", 32, "--epochs", 1, "-q")
    assert result.code == 2
    assert len(result.err_lines) == 1 and words in result.err
    assert not (tmp_path / "n.pt").exists()


def test_cli_trains_reports_skips_and_refuses_to_overwrite(run_cli, tmp_path):
    folder = make_folder(tmp_path / "p", per_class=4)
    (folder / "blue" / "bad.png").write_bytes(b"bad")
    out = tmp_path / "n.pt"
    args = ("train", folder, "-o", out, "--size", 32, "--epochs", 1, "--unfreeze", 1)
    first = run_cli(*args)
    assert first.code == 0, first.err
    assert "skipped 1 unreadable file(s)" in first.err
    assert "epoch 1/1" in first.err and "held-out" in first.err
    assert out.is_file() and meta_path(out).is_file()
    again = run_cli(*args)
    assert again.code == 2 and len(again.err_lines) == 1 and "--force" in again.err
    other = run_cli("train", folder, "-o", tmp_path / "n.safetensors")
    assert other.code == 2 and len(other.err_lines) == 1 and "NET.pt" in other.err
    unknown = run_cli("dream", "sample:coffee", "-o", tmp_path / "d.png", "--model", out,
                      "--class", "green", "--max-size", 48, "--steps", 1)  # fmt: skip
    assert unknown.code == 2 and len(unknown.err_lines) == 1 and "blue, red" in unknown.err


class Payload:
    """Unpickling this writes a file: what a malicious checkpoint would do."""

    def __init__(self, marker: str):
        self.marker = marker

    def __reduce__(self):
        return (Path.write_text, (Path(self.marker), "ran"))


def test_a_checkpoint_holding_a_pickle_is_refused(trained, run_cli, tmp_path):
    out, _ = trained
    evil = tmp_path / "evil.pt"
    marker = tmp_path / "pwned"
    state = read_state_dict(out)
    torch.save({**state, "extra": Payload(str(marker))}, evil)
    meta_path(evil).write_text(meta_path(out).read_text())
    result = run_cli("dream", "sample:coffee", "-o", tmp_path / "d.png", "--model", evil,
                     "--max-size", 48, "--steps", 1, "-q")  # fmt: skip
    assert result.code == 2 and len(result.err_lines) == 1
    assert not marker.exists()


@pytest.mark.slow  # creating a torch optimizer imports torch._dynamo: seconds
def test_adamw_matches_torch():
    from inceptionism.train.loop import AdamW

    gen = torch.Generator().manual_seed(0)
    start = torch.randn(5, 3, generator=gen)
    ours, theirs = torch.nn.Parameter(start.clone()), torch.nn.Parameter(start.clone())
    optims = AdamW([ours], lr=1e-2, weight_decay=1e-2), torch.optim.AdamW([theirs], 1e-2)
    for _ in range(20):
        x = torch.randn(3, generator=gen)
        for p, optim in zip((ours, theirs), optims):
            optim.zero_grad()
            ((p @ x) ** 2).sum().backward()
            optim.step()
    torch.testing.assert_close(ours, theirs)


def test_the_metadata_name_finds_the_file_here(trained, run_cli, tmp_path, monkeypatch):
    out, _ = trained
    (tmp_path / "fresh.pt").write_bytes(out.read_bytes())
    meta = read_meta(out) | {"name": "fresh"}
    (tmp_path / "fresh.json").write_text(json.dumps(meta))
    monkeypatch.chdir(tmp_path)
    made = run_cli("dream", "sample:coffee", "-o", "d.png", "--model", "fresh", "--class", "blue",
                   "--max-size", 48, "--steps", 1, "--octaves", 1, "-q")  # fmt: skip
    assert made.code == 0, made.err
    recipe = json.loads(Image.open(tmp_path / "d.png").text["inceptionism"])
    assert recipe["model"] == "fresh.pt" and recipe["config"]["layers"] == "logits:0=1"
