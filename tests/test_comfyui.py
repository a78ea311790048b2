"""The ComfyUI node pack, run the way ComfyUI runs it: the pack loaded from its custom_nodes
entry, stand-in ``comfy``, ``folder_paths`` and ``server`` modules, every node called under
``torch.inference_mode()`` with inputs made there; pictures saved by the pack replay on the CLI.
"""

from __future__ import annotations

import ast
import importlib.util
import json
import os
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pytest
import torch

from inceptionism.io.image import load_image, read_recipe

ROOT = Path(__file__).resolve().parent.parent
MODEL = "efficientnet_lite0"
# two bold steps at one scale (octave_scale 0: the preset's); enough to see, quick
QUICK = {"steps": 2, "octaves": 1, "octave_scale": 0.0, "step_size": 0.05, "jitter": 0}


class Interrupted(Exception):
    """The stand-in of comfy.model_management.InterruptProcessingException."""


class ProgressBar:
    def __init__(self, total: int):
        self.total, self.current, self.updates = total, 0, 0
        ProgressBar.bars.append(self)

    def update(self, value: int) -> None:
        self.update_absolute(self.current + value)

    def update_absolute(self, value: int, total: int | None = None, preview=None) -> None:
        self.current, self.updates = value, self.updates + 1
        if total is not None:
            self.total = total

    bars: list[ProgressBar] = []


@pytest.fixture
def comfy(tmp_path, monkeypatch):
    """Stand-ins for ComfyUI's modules in sys.modules; ``comfy.interrupt_after`` makes the
    interrupt check raise after that many calls."""
    dirs = {k: tmp_path / k for k in ("input", "output", "temp")}
    for d in dirs.values():
        d.mkdir()
    state = types.SimpleNamespace(checks=0, interrupt_after=None, dirs=dirs)

    def check() -> None:
        state.checks += 1
        if state.interrupt_after is not None and state.checks > state.interrupt_after:
            raise Interrupted("Processing interrupted")

    mm = types.ModuleType("comfy.model_management")
    mm.get_torch_device = lambda: torch.device("cpu")
    mm.throw_exception_if_processing_interrupted = check
    mm.InterruptProcessingException = Interrupted
    utils = types.ModuleType("comfy.utils")
    utils.ProgressBar = ProgressBar
    package = types.ModuleType("comfy")
    package.__path__ = []
    package.utils, package.model_management = utils, mm

    fp = types.ModuleType("folder_paths")
    fp.get_input_directory = lambda: str(dirs["input"])
    fp.get_output_directory = lambda: str(dirs["output"])
    fp.get_temp_directory = lambda: str(dirs["temp"])
    fp.exists_annotated_filepath = lambda name: (dirs["input"] / name).is_file()
    fp.get_annotated_filepath = lambda name: str(dirs["input"] / name)

    def get_save_image_path(prefix, output_dir, width=0, height=0):
        sub, name = os.path.split(os.path.normpath(prefix))
        folder = os.path.join(output_dir, sub)
        taken = [p for p in Path(folder).glob(f"{name}_*_.png")] if os.path.isdir(folder) else []
        return folder, name, len(taken) + 1, sub, prefix

    fp.get_save_image_path = get_save_image_path
    server = types.ModuleType("server")
    server.PromptServer = type("PromptServer", (), {"instance": None})
    for name, module in {"comfy": package, "comfy.utils": utils, "comfy.model_management": mm,
                         "folder_paths": fp, "server": server}.items():  # fmt: skip
        monkeypatch.setitem(sys.modules, name, module)
    ProgressBar.bars.clear()
    return state


@pytest.fixture
def pack(comfy, monkeypatch):
    """The node mappings, imported as ComfyUI's load_custom_node imports a custom_nodes folder:
    under the folder's name, entered in sys.modules before it runs."""
    entry = ROOT / "comfyui_pack" / "__init__.py"
    spec = importlib.util.spec_from_file_location("comfyui-inceptionism", entry)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "comfyui-inceptionism", module)
    spec.loader.exec_module(module)
    return module.NODE_CLASS_MAPPINGS


def run(pack, name: str, **inputs):
    """ComfyUI's executor, reduced: a fresh node, its FUNCTION, under inference mode."""
    cls = pack[name]
    required = cls.INPUT_TYPES()["required"]
    missing = set(required) - set(inputs)
    assert not missing, f"{name} needs {missing}"
    with torch.inference_mode():
        return getattr(cls(), cls.FUNCTION)(**inputs)


def images(b: int, h: int = 48, w: int = 64) -> torch.Tensor:
    """A smooth [B, H, W, 3] batch, made under inference mode as ComfyUI's loaders make it."""
    with torch.inference_mode():
        y = torch.linspace(0, 1, h)[:, None, None]
        x = torch.linspace(0, 1, w)[None, :, None]
        base = torch.cat([y.expand(h, w, 1), x.expand(h, w, 1), (0.5 * (x + y)).expand(h, w, 1)], 2)
        return torch.stack([(base * (0.6 + 0.3 * i)).clamp(0, 1) for i in range(b)])


@pytest.fixture
def model(pack):
    (handle,) = run(pack, "InceptionismLoadModel", model=MODEL, preset="default")
    return handle


def check_out(out: torch.Tensor, shape: tuple[int, ...], inputs: torch.Tensor | None = None):
    assert tuple(out.shape) == shape
    assert out.dtype == torch.float32 and not out.is_inference()
    assert float(out.min()) >= 0 and float(out.max()) <= 1
    if inputs is not None:
        assert (out - inputs).abs().mean() > 1e-3


def test_the_pack_is_a_comfyui_node_pack(pack):
    from inceptionism.comfyui import NODE_DISPLAY_NAME_MAPPINGS

    assert set(NODE_DISPLAY_NAME_MAPPINGS) == set(pack)
    for cls in pack.values():
        types_ = cls.INPUT_TYPES()
        assert set(types_) <= {"required", "optional", "hidden"}
        assert isinstance(cls.RETURN_TYPES, tuple) and cls.CATEGORY == "inceptionism"
        assert callable(getattr(cls(), cls.FUNCTION))
    assert MODEL in pack["InceptionismLoadModel"].INPUT_TYPES()["required"]["model"][0]


def test_no_eval_or_exec_in_the_pack():
    files = [*(ROOT / "src/inceptionism/comfyui").glob("*.py"), ROOT / "comfyui_pack/__init__.py"]
    for path in files:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
                assert node.func.id not in ("eval", "exec", "compile"), path


def test_importing_the_pack_needs_no_comfyui():
    code = ("import sys, inceptionism.comfyui as c; assert c.NODE_CLASS_MAPPINGS; "
            "assert not {'comfy', 'folder_paths', 'server'} & set(sys.modules)")  # fmt: skip
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


def test_loader_keeps_one_model_built_outside_inference_mode(pack, model):
    (again,) = run(pack, "InceptionismLoadModel", model=MODEL, preset="default")
    assert again.model is model.model
    assert not any(p.is_inference() for p in model.model.net.parameters())
    with pytest.raises(Exception, match="efficientnet_lite0"):  # the valid names
        run(pack, "InceptionismLoadModel", model=MODEL, preset="default", model_id="lite_zero")


@pytest.mark.parametrize("b", [1, 2])
def test_dream_a_batch(pack, comfy, model, b):
    x = images(b)
    out, recipe = run(pack, "InceptionismDream", model=model, image=x, preset="default",
                      layers="", seed=0, **QUICK)  # fmt: skip
    check_out(out, (b, 48, 64, 3), x)
    assert len(recipe.items) == b
    (bar,) = ProgressBar.bars
    assert bar.current == bar.total == b * 2 and bar.updates >= b * 2
    assert comfy.checks >= b * 2  # the interrupt check ran at every step
    if b == 2:
        assert (out[0] - out[1]).abs().mean() > 1e-3


def test_dream_with_a_mask_and_a_guide(pack, model):
    x = images(2)
    with torch.inference_mode():
        mask = torch.zeros(1, 48, 64)
        mask[:, :, 32:] = 1.0
        guide = images(1, 40, 40).flip(-1)
    out, recipe = run(pack, "InceptionismDream", model=model, image=x, preset="default",
                      layers="block6", seed=1, mask=mask, guide=guide, **QUICK)  # fmt: skip
    check_out(out, (2, 48, 64, 3), x)
    change = (out - x).abs().mean(dim=(0, 1, 3))
    assert change[40:].mean() > 5 * change[:24].mean()  # the dream stays where the mask is white
    data = recipe.items[0][0]
    assert data["config"]["objective"] == "guide" and data["mask"] and data["guide"]


def test_an_interrupt_stops_the_dream(pack, comfy, model):
    comfy.interrupt_after = 1
    with pytest.raises(Interrupted):
        run(pack, "InceptionismDream", model=model, image=images(1), preset="default", layers="",
            seed=0, **QUICK)  # fmt: skip
    assert comfy.checks == 2


@pytest.mark.parametrize("node", ["InceptionismZoomLoop", "InceptionismDreamFrames",
                                  "InceptionismFeatureVis"])  # fmt: skip
def test_every_dreaming_node_stops_at_an_interrupt(pack, comfy, model, node):
    inputs = {
        "InceptionismZoomLoop": dict(image=images(1), frames=3, zoom=1.1, rotate=0.0, shift_x=0.0,
                                     shift_y=0.0, preset="default", layers="", seed=0, **QUICK),
        "InceptionismDreamFrames": dict(frames=images(3), blend=0.5, flow=False,
                                        preset="default", layers="", seed=0, **QUICK),
        "InceptionismFeatureVis": dict(layer="block6", channels="0-1", preset="lucid", steps=4,
                                       size=32, seed=0),
    }[node]  # fmt: skip
    comfy.interrupt_after = 2
    with pytest.raises(Interrupted):
        run(pack, node, model=model, **inputs)
    assert comfy.checks == 3
    assert ProgressBar.bars[0].current < ProgressBar.bars[0].total


def test_wrong_input_types_are_one_clear_error(pack, model):
    from inceptionism.comfyui.host import NodeInputError

    with torch.inference_mode():
        mask = torch.ones(1, 48, 64)
    cases = [({"image": mask}, "expected an IMAGE"), ({"image": "photo.png"}, "got str"),
             ({"image": images(1), "model": "efficientnet_lite0"}, "Load DeepDream model"),
             ({"image": images(1), "mask": images(1)}, "expected a MASK")]  # fmt: skip
    for change, words in cases:
        inputs = {"model": model, "preset": "default", "layers": "", "seed": 0, **QUICK, **change}
        with pytest.raises(NodeInputError) as e:
            run(pack, "InceptionismDream", **inputs)
        message = str(e.value)
        assert words in message and "\n" not in message


def test_unknown_layer_names_the_valid_ones(pack, model):
    with pytest.raises(Exception, match="block6"):
        run(pack, "InceptionismDream", model=model, image=images(1), preset="default",
            layers="blok6", seed=0, **QUICK)  # fmt: skip


def test_zoom_loop_makes_frames(pack, comfy, model):
    x = images(1)
    frames, recipe = run(pack, "InceptionismZoomLoop", model=model, image=x, frames=3, zoom=1.1,
                         rotate=2.0, shift_x=1.0, shift_y=0.0, preset="default", layers="",
                         seed=0, **QUICK)  # fmt: skip
    check_out(frames, (3, 48, 64, 3), x.expand(3, -1, -1, -1))
    assert (frames[2] - frames[1]).abs().mean() > 1e-3
    assert [r["kind"] for r, _ in recipe.items] == ["frame"] * 3
    assert ProgressBar.bars[0].current == ProgressBar.bars[0].total == 3 * 2


def test_dream_frames_blends_the_last_dream(pack, model):
    clip = images(3)
    out, recipe = run(pack, "InceptionismDreamFrames", model=model, frames=clip, blend=0.5,
                      flow=False, preset="default", layers="", seed=0, **QUICK)  # fmt: skip
    check_out(out, (3, 48, 64, 3), clip)
    assert [r["index"] for r, _ in recipe.items] == [1, 2, 3]
    plain, _ = run(pack, "InceptionismDreamFrames", model=model, frames=clip, blend=0.0,
                   flow=False, preset="default", layers="", seed=0, **QUICK)  # fmt: skip
    assert torch.equal(plain[0], out[0]) and not torch.equal(plain[1], out[1])


def test_feature_visualisation_renders_one_picture_per_channel(pack, model):
    out, recipe = run(pack, "InceptionismFeatureVis", model=model, layer="block6",
                      channels="0-1, 5", preset="lucid", steps=2, size=32, seed=0)  # fmt: skip
    check_out(out, (3, 32, 32, 3))
    assert [r["featurevis"]["units"] for r, _ in recipe.items][0] == [
        "block6:0=1", "block6:1=1", "block6:5=1"]  # fmt: skip
    assert (out[0] - out[1]).abs().mean() > 1e-3
    (bar,) = ProgressBar.bars
    assert bar.current == bar.total == 2  # the three units in one pass of two steps


def _saved(comfy, result) -> list[Path]:
    return [comfy.dirs["output"] / i["subfolder"] / i["filename"] for i in result["ui"]["images"]]


def test_saved_pngs_replay_on_the_cli_pixel_for_pixel(pack, comfy, model, run_cli, tmp_path):
    with torch.inference_mode():
        mask = torch.linspace(0, 1, 64).expand(1, 48, 64).clone()
    out, recipe = run(pack, "InceptionismDream", model=model, image=images(2), preset="default",
                      layers="block4,block6:3=2", seed=3, mask=mask, **QUICK)  # fmt: skip
    fv, fv_recipe = run(pack, "InceptionismFeatureVis", model=model, layer="block6",
                        channels="2-3", preset="lucid", steps=2, size=32, seed=0)  # fmt: skip
    saved = _saved(comfy, run(pack, "InceptionismSaveWithRecipe", images=out, recipe=recipe,
                              filename_prefix="inceptionism/dream"))  # fmt: skip
    saved += _saved(comfy, run(pack, "InceptionismSaveWithRecipe", images=fv, recipe=fv_recipe,
                               filename_prefix="fv"))  # fmt: skip
    assert len(saved) == 4
    for k, path in enumerate(saved):
        again = tmp_path / f"again{k}.png"
        r = run_cli("replay", path, "-o", again, "--quiet")
        assert r.code == 0, r.err
        assert np.array_equal(np.asarray(_pixels(again)), np.asarray(_pixels(path))), path


def _pixels(path: Path) -> np.ndarray:
    from PIL import Image

    with Image.open(path) as im:
        return np.array(im.convert("RGB"))


def test_a_changed_picture_is_saved_without_the_recipe(pack, comfy, model):
    out, recipe = run(pack, "InceptionismDream", model=model, image=images(1), preset="default",
                      layers="", seed=0, **QUICK)  # fmt: skip
    with torch.inference_mode():
        changed = 1 - out
    (path,) = _saved(comfy, run(pack, "InceptionismSaveWithRecipe", images=changed,
                                recipe=recipe, filename_prefix="x"))  # fmt: skip
    with pytest.raises(Exception, match="recipe"):
        read_recipe(path)


def test_load_recipe_gives_the_picture_and_its_settings(pack, comfy, model):
    out, recipe = run(pack, "InceptionismDream", model=model, image=images(1), preset="default",
                      layers="block6", seed=7, **QUICK)  # fmt: skip
    (path,) = _saved(comfy, run(pack, "InceptionismSaveWithRecipe", images=out, recipe=recipe,
                                filename_prefix="r"))  # fmt: skip
    (comfy.dirs["input"] / "r.png").write_bytes(path.read_bytes())
    assert "r.png" in pack["InceptionismLoadRecipe"].INPUT_TYPES()["required"]["image"][0]
    image, loaded, text = run(pack, "InceptionismLoadRecipe", image="r.png")
    assert torch.equal(image, torch.from_numpy(_pixels(path)).float()[None] / 255)
    assert '"seed": 7' in text and loaded.items[0][0]["config"]["layers"] == "block6=1"
    # the loaded recipe is the base of a Dream node: its layers come back with empty widgets
    again, again_recipe = run(pack, "InceptionismDream", model=model, image=images(1),
                              preset="default", layers="", seed=7, recipe=loaded,
                              **QUICK)  # fmt: skip
    assert again_recipe.items[0][0]["config"]["layers"] == "block6=1"
    assert torch.equal(again, out)
    assert pack["InceptionismLoadRecipe"].VALIDATE_INPUTS("missing.png") != True  # noqa: E712


def test_install_writes_a_custom_nodes_entry(tmp_path):
    from inceptionism.comfyui.install import PACK, main

    (tmp_path / "custom_nodes").mkdir()
    assert main(["install", str(tmp_path)]) == 0
    entry = tmp_path / "custom_nodes" / PACK / "__init__.py"
    assert "NODE_CLASS_MAPPINGS" in entry.read_text() and PACK != "inceptionism"
    assert main(["install"]) == 2
    assert load_image is not None


# --- the example workflow (docs/comfyui-workflow.json) -----------------------------------------


class LoadImage:  # ComfyUI's own nodes in the example, as stand-ins
    RETURN_TYPES = ("IMAGE", "MASK")

    def run(self, image):
        return images(1), torch.ones(1, 48, 64)


class PreviewImage:
    RETURN_TYPES = ()

    def run(self, images):
        return {"ui": {"images": []}}


def check_input(node: str, name: str, value, spec: tuple, source_type: str | None) -> None:
    kind, options = spec[0], (spec[1] if len(spec) > 1 else {})
    where = f"node {node} input {name}"
    if source_type is not None:
        assert source_type == kind, f"{where}: {source_type} linked to {kind}"
    elif isinstance(kind, list):
        assert value in kind, f"{where}: {value!r} not among {kind}"
    else:
        assert kind in ("INT", "FLOAT", "STRING", "BOOLEAN"), f"{where}: {kind} needs a link"
        if kind in ("INT", "FLOAT"):
            assert options.get("min", -np.inf) <= value <= options.get("max", np.inf), where


def test_the_example_workflow_is_valid_and_runs(pack, comfy):
    prompt = json.loads((ROOT / "docs" / "comfyui-workflow.json").read_text())
    classes = {**pack, "LoadImage": LoadImage, "PreviewImage": PreviewImage}
    for node, item in prompt.items():
        cls = classes[item["class_type"]]
        if cls in (LoadImage, PreviewImage):
            continue
        types_ = cls.INPUT_TYPES()
        specs = {**types_["required"], **types_.get("optional", {})}
        assert set(types_["required"]) <= set(item["inputs"]) <= set(specs), node
        for name, value in item["inputs"].items():
            linked = None
            if isinstance(value, list):
                source = prompt[value[0]]
                linked = classes[source["class_type"]].RETURN_TYPES[value[1]]
            check_input(node, name, value, specs[name], linked)
    quick = {"model": MODEL, "steps": 1, "octaves": 1, "frames": 2, "size": 32, "channels": "0-1"}
    outputs: dict[str, tuple] = {}

    def execute(node: str) -> tuple:
        if node not in outputs:
            item = prompt[node]
            cls = classes[item["class_type"]]
            inputs = {k: execute(v[0])[v[1]] if isinstance(v, list) else quick.get(k, v)
                      for k, v in item["inputs"].items()}  # fmt: skip
            with torch.inference_mode():
                outputs[node] = getattr(cls(), getattr(cls, "FUNCTION", "run"))(**inputs)
        return outputs[node]

    for node in prompt:
        execute(node)
    saved = [p for p in comfy.dirs["output"].rglob("*.png")]
    assert len(saved) == 1 + 2 + 2  # the dream, two zoom frames, two channels
    assert all(read_recipe(p) for p in saved)


def test_motion_frames_saved_by_the_pack_replay_on_the_cli(pack, comfy, model, run_cli, tmp_path):
    zoom, zoom_recipe = run(pack, "InceptionismZoomLoop", model=model, image=images(1), frames=2,
                            zoom=1.1, rotate=0.0, shift_x=0.0, shift_y=2.0, preset="default",
                            layers="", seed=0, **QUICK)  # fmt: skip
    clip, clip_recipe = run(pack, "InceptionismDreamFrames", model=model, frames=images(2),
                            blend=0.5, flow=True, preset="default", layers="", seed=0,
                            **QUICK)  # fmt: skip
    saved = []
    for out, recipe in ((zoom, zoom_recipe), (clip, clip_recipe)):
        result = run(pack, "InceptionismSaveWithRecipe", images=out, recipe=recipe,
                     filename_prefix="motion")  # fmt: skip
        saved += _saved(comfy, result)[1:]  # the second frame: it starts from the first's dream
    for k, path in enumerate(saved):
        again = tmp_path / f"again{k}.png"
        r = run_cli("replay", path, "-o", again, "--quiet")
        assert r.code == 0, r.err
        assert np.array_equal(_pixels(again), _pixels(path)), path
