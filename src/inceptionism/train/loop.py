"""Fine-tune a registered network on a class folder: a new head for the user's classes, the
last blocks unfrozen, held-out accuracy per epoch, early stop, resume from a checkpoint.

The result is written by :func:`inceptionism.models.trained.write_trained`: weights (tensors
only) and metadata that ``--model FILE`` loads like any other network.
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from inceptionism._version import __version__
from inceptionism.errors import ConfigError, WeightsError
from inceptionism.models import block_layers, get_spec, layer_table
from inceptionism.models.builder import parts_present, read_weights
from inceptionism.models.trained import _atomic, replace_head, write_trained
from inceptionism.models.weights import load_strict
from inceptionism.train.data import (
    Augment,
    Dataset,
    Picture,
    augmented,
    centred,
    read_folder,
    split,
)


@dataclass(frozen=True)
class TrainConfig:
    """A training recipe; recorded in the trained network's metadata."""

    base_model: str = "efficientnet_lite0"  # any registered model with a Linear classifier
    unfreeze: int = 2  # the last N blocks (and everything after them) train; 0: the head alone
    epochs: int = 8
    lr: float = 1e-3  # AdamW
    weight_decay: float = 1e-4
    batch_size: int = 16
    size: int = 224  # training and held-out image size (square)
    held_out: float = 0.2  # fraction of each class held out for accuracy
    patience: int = 3  # early stop after this many epochs without a better held-out accuracy
    seed: int = 0
    augment: Augment = Augment()

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class EpochReport:
    """What one epoch did (``batch`` < ``batches`` while it runs)."""

    epoch: int
    epochs: int
    batch: int
    batches: int
    loss: float
    train_accuracy: float
    held_out_accuracy: float | None  # None until the epoch ends
    held_out_correct: int
    held_out_total: int
    elapsed: float  # seconds in this epoch
    eta: float | None  # seconds left in this epoch
    best: bool = False
    stopped_early: bool = False


@dataclass(frozen=True)
class TrainResult:
    weights: Path
    meta: dict[str, Any]
    history: list[EpochReport]
    dataset: Dataset


Progress = Callable[[EpochReport], None]


def resume_path(out: Path) -> Path:
    """Where an unfinished run keeps its state: ``mynet.pt`` -> ``mynet.pt.resume``."""
    return out.with_name(out.name + ".resume")


def base_network(name: str, classes: int) -> tuple[nn.Module, str]:
    """A registered model with its weights and a new head; the head's module path."""
    spec = get_spec(name)
    path = spec.weights.path()
    if path is None:
        raise ConfigError(f"--base {name}: its weights live in its code; pick a registered model")
    state, entry = read_weights(path, spec)

    net = spec.build(**parts_present(spec, state), **dict(entry.build))
    load_strict(getattr(net, "script", net), state, str(path))
    return net, replace_head(net, classes)


def set_trainable(net: nn.Module, base: str, head: str, unfreeze: int) -> list[nn.Parameter]:
    """Freeze everything but the head and the last ``unfreeze`` blocks (with what follows them)."""
    net.requires_grad_(False)
    names = [n for n, _ in net.named_parameters()]
    start = len(names)
    blocks = block_layers(base)
    if unfreeze > 0:
        if unfreeze > len(blocks):
            raise ConfigError(f"--unfreeze {unfreeze}: {base} has {len(blocks)} blocks")
        module = {i.name: i.module for i in layer_table(base)}[blocks[-unfreeze]]
        start = next(i for i, n in enumerate(names) if n.startswith(module + "."))
    trainable = set(names[start:]) | {n for n in names if n.startswith(head + ".")}
    params = []
    for n, p in net.named_parameters():
        if n in trainable:
            p.requires_grad_(True)
            params.append(p)
    return params


class AdamW:
    """Adam with decoupled weight decay (Loshchilov & Hutter), as torch.optim.AdamW computes it
    without its options; written here because creating a torch optimizer imports torch._dynamo
    (7 s on these machines, longer than a small training run)."""

    def __init__(self, params: list[nn.Parameter], lr: float, weight_decay: float = 0.0,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8):  # fmt: skip
        self.params, self.lr, self.weight_decay = params, lr, weight_decay
        self.betas, self.eps, self.steps = betas, eps, 0
        self.m = [torch.zeros_like(p) for p in params]
        self.v = [torch.zeros_like(p) for p in params]

    def zero_grad(self, set_to_none: bool = True) -> None:
        for p in self.params:
            p.grad = None

    @torch.no_grad()
    def step(self) -> None:
        self.steps += 1
        b1, b2 = self.betas
        c1, c2 = 1 - b1**self.steps, 1 - b2**self.steps
        for p, m, v in zip(self.params, self.m, self.v):
            if p.grad is None:
                continue
            p.mul_(1 - self.lr * self.weight_decay)
            m.mul_(b1).add_(p.grad, alpha=1 - b1)
            v.mul_(b2).addcmul_(p.grad, p.grad, value=1 - b2)
            p.addcdiv_(m, (v / c2).sqrt_().add_(self.eps), value=-self.lr / c1)

    def state_dict(self) -> dict[str, Any]:
        return {"steps": self.steps, "m": list(self.m), "v": list(self.v)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.steps = int(state["steps"])
        for mine, saved in ((self.m, state["m"]), (self.v, state["v"])):
            if len(saved) != len(mine):
                raise ConfigError("the resume file trains other parameters; pass --restart")
            for a, b in zip(mine, saved):
                a.copy_(b)


def init_head(layer: nn.Module, seed: int) -> None:
    """PyTorch's default Linear initialisation (uniform in +-1/sqrt(fan_in)), from ``seed``."""
    assert isinstance(layer, nn.Linear)
    gen = torch.Generator().manual_seed(seed)
    bound = layer.in_features**-0.5
    with torch.no_grad():
        for p in (layer.weight, layer.bias):
            p.copy_((torch.rand(p.shape, generator=gen) * 2 - 1) * bound)


def _batches(pics: list[Picture], size: int, gen: torch.Generator) -> list[list[Picture]]:
    order = torch.randperm(len(pics), generator=gen).tolist()
    return [[pics[i] for i in order[k : k + size]] for k in range(0, len(order), size)]


def evaluate(net: nn.Module, pics: list[Picture], size: int, mean, std, device) -> int:
    """How many held-out pictures the network classifies right."""
    net.eval()
    correct = 0
    with torch.no_grad():
        for k in range(0, len(pics), 32):
            chunk = pics[k : k + 32]
            x = torch.stack([centred(p, size) for p in chunk]).to(device)
            pred = net((x - mean) / std).argmax(1).cpu()
            correct += int((pred == torch.tensor([p.label for p in chunk])).sum())
    return correct


def train(
    folder: str | os.PathLike,
    out: str | os.PathLike,
    config: TrainConfig = TrainConfig(),
    device: str | torch.device = "cpu",
    progress: Progress | None = None,
    resume: bool = True,
    name: str | None = None,
    on_data: Callable[[Dataset, int, int], None] | None = None,
) -> TrainResult:
    """Train a head (and the last blocks) of ``config.base_model`` on ``folder``'s classes;
    write ``out`` and its metadata. An unfinished run of the same recipe on the same data
    (``out.resume``) continues where it stopped when ``resume``. ``on_data`` hears of the
    pictures read (skipped ones included) and the split sizes before training starts."""
    out, device = Path(out), torch.device(device)
    if config.epochs < 1 or config.batch_size < 1 or config.lr <= 0:
        raise ConfigError("--epochs, --batch-size and --lr must be positive")
    data = read_folder(Path(folder), config.size)
    train_set, val_set = split(data, config.held_out, config.seed)
    if on_data:
        on_data(data, len(train_set), len(val_set))
    base = get_spec(config.base_model)
    net, head = base_network(base.name, len(data.classes))
    params = set_trainable(net, base.name, head, config.unfreeze)
    net.to(device)
    mean = torch.tensor(base.mean, device=device).view(1, 3, 1, 1)
    std = torch.tensor(base.std, device=device).view(1, 3, 1, 1)
    init_head(net.get_submodule(head), config.seed)
    optim = AdamW(params, lr=config.lr, weight_decay=config.weight_decay)
    recipe = config.to_dict()
    state: dict[str, Any] = {"epoch": 0, "best": -1.0, "since_best": 0, "history": []}
    best_weights = {k: v.clone() for k, v in net.state_dict().items()}
    checkpoint = resume_path(out)
    if resume and checkpoint.is_file():
        saved = _read_resume(checkpoint)
        if saved["recipe"] != _comparable(recipe) or saved["data_sha256"] != data.data_sha256:
            raise ConfigError(
                f"{checkpoint}: an unfinished run with another recipe or other pictures; delete "
                "it or pass --restart"
            )
        net.load_state_dict(saved["model"])
        optim.load_state_dict(saved["optim"])
        best_weights = saved["best_weights"]
        state = {k: saved[k] for k in ("epoch", "best", "since_best")} | {"history": []}
    history: list[EpochReport] = []
    stopped = False
    for epoch in range(state["epoch"] + 1, config.epochs + 1):
        gen = torch.Generator().manual_seed(config.seed * 100_003 + epoch)
        report = _epoch(net, train_set, config, epoch, gen, mean, std, device, optim, progress)
        correct = evaluate(net, val_set, config.size, mean, std, device)
        accuracy = correct / len(val_set)
        best = accuracy > state["best"]
        if best:
            state["best"], state["since_best"] = accuracy, 0
            best_weights = {k: v.detach().clone() for k, v in net.state_dict().items()}
        else:
            state["since_best"] += 1
        stopped = state["since_best"] >= config.patience and epoch < config.epochs
        report = dataclasses.replace(report, held_out_accuracy=accuracy, held_out_correct=correct,
                                     held_out_total=len(val_set), eta=0.0, best=best,
                                     stopped_early=stopped)  # fmt: skip
        history.append(report)
        state["epoch"] = epoch
        _write_resume(checkpoint, net, optim, best_weights, state, recipe, data.data_sha256)
        if progress:
            progress(report)
        if stopped:
            break
    meta = {
        "name": name or out.stem,
        "classes": data.classes,
        "base_model": base.name,
        "mean": list(base.mean),
        "std": list(base.std),
        "input_size": config.size,
        "recipe": recipe,
        "data": {"sha256": data.data_sha256, "counts": data.counts(),
                 "skipped": len(data.skipped), "train": len(train_set),
                 "held_out": len(val_set), "folder": str(Path(folder).resolve())},
        "held_out_accuracy": state["best"],
        "epochs_run": state["epoch"],
        "inceptionism": __version__,
        "torch": torch.__version__,
    }  # fmt: skip
    written = write_trained(out, best_weights, meta)
    checkpoint.unlink(missing_ok=True)
    return TrainResult(out, written, history, data)


def _epoch(net, pics, config, epoch, gen, mean, std, device, optim, progress) -> EpochReport:
    net.eval()  # BatchNorm keeps its ImageNet statistics: a few hundred pictures cannot refit them
    batches = _batches(pics, config.batch_size, gen)
    start, total, right, seen = time.perf_counter(), 0.0, 0, 0
    report = None
    for b, chunk in enumerate(batches, 1):
        x = torch.stack([augmented(p, config.size, config.augment, gen) for p in chunk])
        y = torch.tensor([p.label for p in chunk])
        logits = net(((x.to(device)) - mean) / std)
        loss = F.cross_entropy(logits, y.to(device))
        optim.zero_grad(set_to_none=True)
        loss.backward()
        optim.step()
        total += float(loss.detach()) * len(chunk)
        right += int((logits.argmax(1).cpu() == y).sum())
        seen += len(chunk)
        elapsed = time.perf_counter() - start
        report = EpochReport(epoch, config.epochs, b, len(batches), total / seen, right / seen,
                             None, 0, 0, elapsed, elapsed / b * (len(batches) - b))  # fmt: skip
        if progress and b < len(batches):
            progress(report)
    assert report is not None
    return report


def _comparable(recipe: dict[str, Any]) -> dict[str, Any]:
    """The recipe as it reads back from a resume file (tuples as lists), minus the epochs: a
    stopped run may be resumed with more of them."""
    import json

    out = json.loads(json.dumps(recipe))
    out.pop("epochs", None)
    return out


def _write_resume(path, net, optim, best_weights, state, recipe, data_sha256) -> None:
    """Everything an interrupted run needs, as tensors and plain values (weights_only loads it)."""
    import json

    blob = {
        "model": net.state_dict(),
        "optim": optim.state_dict(),
        "best_weights": best_weights,
        "epoch": state["epoch"],
        "best": float(state["best"]),
        "since_best": state["since_best"],
        "recipe": json.dumps(_comparable(recipe), sort_keys=True),
        "data_sha256": data_sha256,
    }
    _atomic(path, lambda tmp: torch.save(blob, tmp))


def _read_resume(path: Path) -> dict[str, Any]:
    import json

    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
        blob["recipe"] = json.loads(blob["recipe"])
    except Exception as e:
        first = (str(e).strip().splitlines() or [""])[0][:160]
        why = f"{path}: not a resume file ({first}); delete it or pass --restart"
        raise WeightsError(why) from None
    return blob
