"""The `train` command: a thin shell over :func:`inceptionism.train.train`."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from inceptionism.cli.catalog import short_help
from inceptionism.cli.params import (
    FloatRange,
    IntRange,
    examples,
    note,
)
from inceptionism.errors import ConfigError


@click.command(
    short_help=short_help("train"),
    epilog=examples(
        "train my_photos/ -o mynet.pt",
        "train my_photos/ -o mynet.pt --epochs 12 --unfreeze 3 --size 192",
        "dream sample:coffee -o mine.png --model mynet.pt --class roses",
    ),
)
@click.argument("folder", type=click.Path(file_okay=False, path_type=Path))
@click.option("--output", "-o", "out", required=True, type=click.Path(path_type=Path),
              metavar="NET.pt",
              help="The trained weights; NET.json (metadata) goes beside them.")  # fmt: skip
@click.option("--base", default="efficientnet_lite0", show_default=True, metavar="MODEL",
              help="The registered model to start from (`inceptionism models`).")  # fmt: skip
@click.option("--unfreeze", type=IntRange(0, 999), default=2, show_default=True,
              help="How many of the last blocks train with the new head (0: the head "
              "alone).")  # fmt: skip
@click.option("--epochs", type=IntRange(1, 10_000), default=8, show_default=True)
@click.option("--lr", type=FloatRange(1e-7, 10.0), default=1e-3, show_default=True,
              help="Learning rate (AdamW).")  # fmt: skip
@click.option("--batch-size", type=IntRange(1, 4096), default=16, show_default=True)
@click.option("--size", type=IntRange(16, 1024), default=224, show_default=True,
              help="Training image size (square crops).")  # fmt: skip
@click.option("--held-out", type=FloatRange(0.01, 0.9), default=0.2, show_default=True,
              help="Fraction of each class held out to measure accuracy.")  # fmt: skip
@click.option("--patience", type=IntRange(1, 10_000), default=3, show_default=True,
              help="Stop after this many epochs without a better held-out accuracy.")  # fmt: skip
@click.option("--seed", type=IntRange(0, 2**31 - 1), default=0, show_default=True)
@click.option("--name", default=None, help="The network's name in its metadata (default: NET).")
@click.option("--device", default="auto", show_default=True, help="cpu, cuda, cuda:N or auto.")
@click.option("--restart", is_flag=True, help="Ignore an unfinished run's NET.pt.resume.")
@click.option("--force", "-f", is_flag=True, help="Overwrite an existing NET.pt and NET.json.")
@click.option("--quiet", "-q", is_flag=True, help="No progress lines.")
def train(folder: Path, out: Path, base: str, unfreeze: int, epochs: int, lr: float,
          batch_size: int, size: int, held_out: float, patience: int, seed: int,
          name: str | None, device: str, restart: bool, force: bool,
          quiet: bool) -> None:  # fmt: skip
    """Fine-tune a network on FOLDER (one sub-folder of pictures per class): a new head for
    your classes and the last blocks, held-out accuracy each epoch, early stop. An interrupted
    run continues from NET.pt.resume when started again. Then dream with --model NET.pt and
    --class NAME."""
    from inceptionism.configure import device_for
    from inceptionism.models import get_spec
    from inceptionism.models.trained import WEIGHT_SUFFIXES, meta_path
    from inceptionism.train import TrainConfig, resume_path
    from inceptionism.train import train as run_training

    if out.suffix.lower() not in WEIGHT_SUFFIXES:
        raise ConfigError(f"-o {out}: name the weights file NET.pt or NET.pth")
    for path in (out, meta_path(out)):
        if path.exists() and not force:
            raise ConfigError(f"{path} exists: pass --force to overwrite it")
    if restart:
        resume_path(out).unlink(missing_ok=True)
    elif resume_path(out).is_file():
        note(f"resuming the unfinished run in {resume_path(out)}", quiet)
    config = TrainConfig(base_model=get_spec(base).name, unfreeze=unfreeze, epochs=epochs,
                         lr=lr, batch_size=batch_size, size=size, held_out=held_out,
                         patience=patience, seed=seed)  # fmt: skip
    tty = sys.stderr.isatty()

    def on_data(data: Any, n_train: int, n_val: int) -> None:
        if data.skipped:
            file, why = data.skipped[0]
            click.echo(f"skipped {len(data.skipped)} unreadable file(s), e.g. {why}", err=True)
        counts = ", ".join(f"{c} {n}" for c, n in data.counts().items())
        note(f"{len(data.pictures)} pictures ({counts}): {n_train} to train, {n_val} held out",
             quiet)  # fmt: skip

    def on_epoch(r: Any) -> None:
        if quiet:
            return
        from inceptionism.engine.progress import format_seconds

        head = f"epoch {r.epoch}/{r.epochs}"
        if r.held_out_accuracy is None:
            if tty:
                click.echo(f"\r{head} batch {r.batch}/{r.batches} loss {r.loss:.3f} "
                           f"ETA {format_seconds(r.eta)}  ", err=True, nl=False)  # fmt: skip
            return
        mark = " *" if r.best else ""
        stop = " (no better for a while: early stop)" if r.stopped_early else ""
        click.echo(f"{chr(13) if tty else ''}{head}: loss {r.loss:.3f}, train accuracy "
                   f"{r.train_accuracy:.2f}, held-out {r.held_out_accuracy:.2f} "
                   f"({r.held_out_correct}/{r.held_out_total}), "
                   f"{format_seconds(r.elapsed)}{mark}{stop}", err=True)  # fmt: skip

    result = run_training(folder, out, config, device=device_for(device), progress=on_epoch,
                          resume=not restart, name=name, on_data=on_data)  # fmt: skip
    meta = result.meta
    note(f"wrote {out} and {meta_path(out)}: {len(meta['classes'])} classes, best held-out "
         f"accuracy {meta['held_out_accuracy']:.2f}; dream with --model {out} --class "
         f"{meta['classes'][0]}", quiet)  # fmt: skip
