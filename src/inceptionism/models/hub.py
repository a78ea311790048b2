"""Networks from the Hugging Face Hub: ``--model hf:ORG/NAME[@REVISION]``.

A repo's ``config.json`` names its architecture and its ``pretrained_cfg`` (mean, std); its
weights are ``model.safetensors`` (else ``pytorch_model.bin``, read only as tensors). Both come
through huggingface_hub and its cache, so a repo fetched once dreams offline
(``HF_HUB_OFFLINE=1``). Where the architecture is one of the project's own (timm's
``inception_v3``, ``resnet50``, ``vgg16``, ``vgg19``), the project's module is built and timm's
keys mapped onto it (:func:`canonical_keys`), so the layer names users know (``mixed5``,
``layer3``, ``block5_conv3``) work; any other architecture is built with timm where it is
importable, its layers the stages of timm's ``feature_info``.

The spec records the repo, the revision asked for, the commit it resolved to and the weights
file (``ModelSpec.hub``); recipes write it down and replay looks for that commit in the cache.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import torch
from torch import nn

from inceptionism.errors import MissingExtraError, WeightsError
from inceptionism.models.registry import (
    _REGISTRY,
    LayerInfo,
    ModelSpec,
    get_spec,
    register_model,
    register_resolver,
)
from inceptionism.models.weights import Weights

PREFIX = "hf:"
# "hf:ORG/NAME" or "hf:ORG/NAME@REVISION" (a branch, a tag or a commit hash)
_NAME = re.compile(r"^hf:([\w.-]+/[\w.-]+)(?:@([\w./-]+))?$")
WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")
# timm's architecture name -> the project's registered network with the same modules
OWN_ARCHITECTURES = {
    "inception_v3": "inception_v3",
    "resnet50": "resnet50",
    "vgg16": "vgg16",
    "vgg19": "vgg19",
}


def is_hub_name(name: str) -> bool:
    return name.startswith(PREFIX)


def parse_name(name: str) -> tuple[str, str | None]:
    """``hf:ORG/NAME[@REV]`` -> (repo id, revision or None)."""
    match = _NAME.match(name.strip())
    if not match:
        raise WeightsError(
            f"--model {name}: a Hub model is hf:ORG/NAME or hf:ORG/NAME@REVISION "
            "(e.g. hf:timm/inception_v3.tv_in1k)"
        )
    return match.group(1), match.group(2)


def _hub() -> Any:
    try:
        import huggingface_hub
        import huggingface_hub.constants
        import huggingface_hub.errors  # noqa: F401  (submodules: not attributes until imported)
    except ImportError:
        raise MissingExtraError("a Hugging Face Hub model (hf:ORG/NAME)", "hub") from None
    return huggingface_hub


def _offline() -> bool:
    return bool(_hub().constants.HF_HUB_OFFLINE)


def _fix(repo: str, revision: str | None) -> str:
    rev = f" --revision {revision}" if revision else ""
    return (
        f"fetch it on a connected machine with `hf download {repo}{rev}` (into the same "
        "HF_HOME), or pass --weights FILE with the matching --model"
    )


def fetch(repo: str, filename: str, revision: str | None) -> Path:
    """One file of a repo through huggingface_hub's cache (downloaded where the network allows,
    with its progress bar). Every failure is one WeightsError naming the repo and the fix."""
    hub = _hub()
    errors = hub.errors
    where = f"{repo}@{revision}" if revision else repo
    try:
        return Path(hub.hf_hub_download(repo, filename, revision=revision))
    except errors.RepositoryNotFoundError:
        raise WeightsError(f"hf:{repo}: no such repo on the Hub (or it is private)") from None
    except errors.RevisionNotFoundError:
        raise WeightsError(f"hf:{where}: the repo has no revision {revision!r}") from None
    except errors.LocalEntryNotFoundError:  # (a kind of EntryNotFoundError: caught first)
        if not _cached_repo(repo).is_dir():
            state = "offline (HF_HUB_OFFLINE is set)" if _offline() else "no connection"
            raise WeightsError(
                f"hf:{where} is not in the Hugging Face cache and cannot be downloaded "
                f"({state}): {_fix(repo, revision)}"
            ) from None
        raise FileNotFoundError(filename) from None
    except errors.EntryNotFoundError:  # the remote answered: the file is not in the repo
        raise FileNotFoundError(filename) from None
    except (OSError, errors.HfHubHTTPError) as e:  # a broken connection, a full disk
        first = (str(e).strip().splitlines() or [""])[0][:160]
        raise WeightsError(f"hf:{where}: cannot fetch {filename} ({first})") from e


def _cached_repo(repo: str) -> Path:
    return Path(_hub().constants.HF_HUB_CACHE) / ("models--" + repo.replace("/", "--"))


def cached_repos() -> list[tuple[str, str, str]]:
    """The repos the Hugging Face cache holds that look like timm models (a snapshot with a
    config.json naming an architecture): ``(hf:ORG/NAME, architecture, refs)``, by name. Read
    from the cache's folders, without any network; empty when huggingface_hub is not
    installed."""
    try:
        root = Path(_hub().constants.HF_HUB_CACHE)
    except MissingExtraError:
        return []
    found = []
    for folder in sorted(root.glob("models--*--*")):
        repo = folder.name[len("models--") :].replace("--", "/", 1)
        architecture = None
        for config in sorted(folder.glob("snapshots/*/config.json")):
            try:
                architecture = json.loads(config.read_text(encoding="utf-8")).get("architecture")
            except (OSError, ValueError, AttributeError):
                continue
            if isinstance(architecture, str):
                break
        if isinstance(architecture, str):
            refs = sorted(p.name for p in (folder / "refs").glob("*") if p.is_file())
            found.append((f"hf:{repo}", architecture, ", ".join(refs) or "-"))
    return found


def cached_commit(repo: str, revision: str | None) -> str | None:
    """The commit the cache holds for a revision (a ref's file, or a snapshot folder for a
    commit hash), without any network."""
    folder = _cached_repo(repo)
    rev = revision or "main"
    ref = folder / "refs" / rev
    if ref.is_file():
        return ref.read_text().strip() or None
    return rev if (folder / "snapshots" / rev).is_dir() else None


class HubWeights:
    """A WeightsSource: the weights file of a repo at the commit its config.json came from."""

    def __init__(self, repo: str, commit: str, revision: str | None):
        self.repo, self.commit, self.revision = repo, commit, revision
        self._path: Path | None = None

    def path(self) -> Path:
        if self._path is None:
            self._path = self._find()
        return self._path

    def _find(self) -> Path:
        for filename in WEIGHT_FILES:
            try:
                return fetch(self.repo, filename, self.commit)
            except FileNotFoundError:
                continue
        raise WeightsError(
            f"hf:{self.repo}@{self.commit[:12]} has no {' or '.join(WEIGHT_FILES)} in the cache "
            f"or on the Hub: {_fix(self.repo, self.commit)}"
        )

    def describe(self) -> str:
        snapshot = _cached_repo(self.repo) / "snapshots" / self.commit
        where = f"{self.repo}@{self.commit[:12]}"
        if any((snapshot / name).is_file() for name in WEIGHT_FILES):
            return f"present: Hugging Face cache, {where}"
        return f"missing: downloaded on first use from the Hub, {where} (or --weights FILE)"


def read_config(repo: str, revision: str | None) -> tuple[dict[str, Any], str]:
    """A repo's config.json and the commit it was read at."""
    try:
        path = fetch(repo, "config.json", revision)
    except FileNotFoundError:
        where = f"{repo}@{revision}" if revision else repo
        raise WeightsError(
            f"hf:{where} has no config.json (not a timm model repo): pass --weights FILE "
            "with --model NAME instead"
        ) from None
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise WeightsError(f"hf:{repo}: config.json is not readable JSON ({e})") from None
    if not isinstance(config, dict):
        raise WeightsError(f"hf:{repo}: config.json is not a JSON object")
    return config, path.parent.name


def _norm(cfg: dict[str, Any], key: str, default: tuple[float, ...]) -> tuple[float, ...]:
    value = cfg.get(key, default)
    if (
        not isinstance(value, (list, tuple))
        or len(value) != 3
        or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)
        or (key == "std" and min(value) <= 0)
    ):
        raise WeightsError(f"pretrained_cfg.{key} {value!r}: expected three numbers")
    return tuple(float(v) for v in value)


def hub_spec(name: str, commit: str | None = None) -> ModelSpec:
    """The spec of ``hf:ORG/NAME[@REV]``: the project's architecture (or timm's) with the
    repo's normalisation and weights. ``commit`` reads that commit instead of the revision's
    (replay, when the cache holds it)."""
    repo, revision = parse_name(name)
    config, resolved = read_config(repo, commit or revision)
    architecture = config.get("architecture")
    if not isinstance(architecture, str):
        raise WeightsError(
            f"hf:{repo}: config.json names no timm 'architecture' (a transformers repo?); "
            "inceptionism reads timm's image models"
        )
    cfg = config.get("pretrained_cfg") or {}
    if not isinstance(cfg, dict):
        raise WeightsError(f"hf:{repo}: config.json's pretrained_cfg is not an object")
    own = OWN_ARCHITECTURES.get(architecture)
    base = get_spec(own) if own else None
    mean = _norm(cfg, "mean", base.mean if base else (0.485, 0.456, 0.406))
    std = _norm(cfg, "std", base.std if base else (0.229, 0.224, 0.225))
    weights = Weights(HubWeights(repo, resolved, revision), mean, std)  # type: ignore[arg-type]
    origin = {"repo": repo, "revision": revision or "main", "commit": resolved,
              "architecture": architecture}  # fmt: skip
    size = cfg.get("input_size")
    train = size[-1] if isinstance(size, list) and size and isinstance(size[-1], int) else None
    if base is not None:
        return ModelSpec(
            name=name,
            description=f"{architecture} from the Hub ({repo}), the project's module",
            build=base.build,
            weights=weights,
            default_layers=base.default_layers,
            train_size=train or base.train_size,
            labels=base.labels,
            optional_parts=base.optional_parts,
            preset=base.preset,
            hub=origin,
        )
    build, rows = timm_network(architecture, config)
    return ModelSpec(
        name=name,
        description=f"{architecture} from the Hub ({repo}), built by timm",
        build=build,
        weights=weights,
        default_layers=((_default_layer(rows), 1.0),),
        train_size=train or 224,
        table=lambda _net: rows,
        hub=origin,
    )


def register_hub_model(name: str, commit: str | None = None) -> ModelSpec:
    """Register ``hf:...`` under its own name (replacing an earlier registration)."""
    spec = hub_spec(name, commit)
    _REGISTRY.pop(name, None)
    return register_model(spec)


def replay_note(name: str, recorded: dict[str, Any]) -> str | None:
    """Register a recipe's Hub model at its recorded commit when the cache holds it; else at
    the cached revision, with one line saying the commits differ."""
    if not is_hub_name(name):
        return None
    repo, _ = parse_name(name)
    commit = recorded.get("commit") if recorded.get("repo") == repo else None
    if isinstance(commit, str) and cached_commit(repo, commit) == commit:
        register_hub_model(name, commit)
        return None
    spec = register_hub_model(name)
    now = (spec.hub or {}).get("commit", "")
    if commit and now != commit:
        return (
            f"warning: the cache holds {repo} at commit {now[:12]}, the recipe was made at "
            f"{str(commit)[:12]}; the result may differ (`hf download {repo} --revision "
            f"{commit}` fetches it)"
        )
    return None


# --- timm's key layouts --------------------------------------------------------------------------

# timm's VGG runs its first two classifier layers as convolutions (pre_logits.fc1: 7x7, fc2:
# 1x1) and names the last head.fc; torchvision's (the project's) are Linear classifier.0/3/6.
# A 7x7 convolution's weight (out, C, 7, 7) flattens in the order torchvision flattens its 7x7
# pooled map, so the values carry over unchanged.
_VGG_HEAD = {"pre_logits.fc1": "classifier.0", "pre_logits.fc2": "classifier.3",
             "head.fc": "classifier.6"}  # fmt: skip


def canonical_keys(architecture: str, state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A state dict in timm's layout for one of the project's architectures, in the project's
    (torchvision's) layout; any other state dict unchanged. inception_v3 and resnet50 already
    share their keys with timm (timm's inception_v3 file has no AuxLogits: the net is built
    without them)."""
    if architecture not in ("vgg16", "vgg19") or not any(
        k.startswith("pre_logits.") for k in state
    ):
        return state
    out: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        prefix, _, leaf = key.rpartition(".")
        if prefix in _VGG_HEAD:
            if leaf == "weight" and value.dim() == 4:
                value = value.flatten(1)
            key = f"{_VGG_HEAD[prefix]}.{leaf}"
        out[key] = value
    return out


# --- other architectures: timm --------------------------------------------------------------------


def timm_network(
    architecture: str, config: dict[str, Any]
) -> tuple[Callable[..., nn.Module], list[LayerInfo]]:
    """A builder for a timm architecture and its layer table: each entry of timm's
    ``feature_info`` (its stages) by module name, channels and reduction, plus the logits."""
    try:
        import timm
    except Exception as e:  # not installed, or installed beside a torchvision that fails
        why = "" if isinstance(e, ImportError) else f"; importing it failed: {e}"[:200]
        raise WeightsError(
            f"the Hub architecture {architecture!r} is not one of the project's "
            f"({', '.join(OWN_ARCHITECTURES)}): it needs timm (pip install timm){why}"
        ) from None
    kwargs = {"num_classes": config["num_classes"]} if "num_classes" in config else {}
    if architecture not in timm.list_models():
        raise WeightsError(f"timm {timm.__version__} has no architecture {architecture!r}")
    build = partial(_timm_build, timm.create_model, architecture, kwargs)
    with torch.device("meta"):
        net = build()
    return build, timm_table(net)


def _timm_build(create: Callable[..., nn.Module], arch: str, kwargs: dict, **_parts) -> nn.Module:
    return create(arch, pretrained=False, **kwargs)


def timm_table(net: nn.Module) -> list[LayerInfo]:
    """Layers from a timm network's ``feature_info`` (a list of dicts with ``module``,
    ``num_chs``, ``reduction``), named by module path with dots as underscores."""
    info = getattr(net, "feature_info", None)
    if not isinstance(info, list) or not info:
        raise WeightsError(f"{type(net).__name__}: timm gives no feature_info to name layers by")
    rows: list[LayerInfo] = []
    seen: set[str] = set()
    for entry in info:
        module, chs, stride = entry.get("module"), entry.get("num_chs"), entry.get("reduction")
        if not isinstance(module, str) or module in seen or not module:
            continue
        seen.add(module)
        kind = "stem" if not rows else "stage"
        name = module.replace(".", "_")
        aliases = (module,) if name != module else ()
        rows.append(LayerInfo(name, module, int(chs), int(stride), aliases, kind))
    classes = int(getattr(net, "num_classes", 0) or 0)
    head = _head_module(net)
    if classes and head:
        rows.append(LayerInfo("logits", head, classes, 0, kind="head"))
    return rows


def _head_module(net: nn.Module) -> str | None:
    """The classifier's module path (pretrained_cfg's ``classifier``), when it is a module."""
    path = getattr(net, "pretrained_cfg", {}).get("classifier")
    if not isinstance(path, str):
        return None
    try:
        net.get_submodule(path)
    except AttributeError:
        return None
    return path


def _default_layer(rows: list[LayerInfo]) -> str:
    """No curated choice for a network timm builds: the deepest stage at stride <= 16, the
    depth the classic recipes dream at."""
    grid = [r for r in rows if r.stride > 0]
    return next((r for r in reversed(grid) if r.stride <= 16), grid[0]).name


register_resolver("hf:", register_hub_model)
