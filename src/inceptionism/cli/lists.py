"""`presets` and `samples`: lists that need no network, so they answer without loading torch."""

from __future__ import annotations

import click

from inceptionism.cli.catalog import short_help
from inceptionism.cli.params import examples, table
from inceptionism.engine.presets import LUCID, LUCID_DESCRIPTION, PRESETS, preset_names
from inceptionism.errors import ImageError, install_hint
from inceptionism.io.samples import list_samples


@click.command(
    short_help=short_help("presets"),
    epilog=examples(
        "presets",
        "dream sample:coffee -o classic.png --preset keras-classic",
        "channels block12 -o lucid.png --preset lucid",
    ),
)
def presets() -> None:
    """List the named recipes."""
    described = {**{k: p.description for k, p in PRESETS.items()}, LUCID: LUCID_DESCRIPTION}
    rows = [(name, described[name]) for name in preset_names(lucid=True)]
    table(("preset", "description"), rows)


@click.command(
    short_help=short_help("samples"),
    epilog=examples(
        "samples",
        "dream sample:grace_hopper -o hopper.png",
        "zoom sample:chelsea -o cat.mp4 --frames 24",
    ),
)
def samples() -> None:
    """List the sample photos usable as sample:NAME."""
    found = list_samples()
    if not found:
        raise ImageError(f"no sample photos installed: {install_hint('samples')}")
    table(("sample", "file"), [(f"sample:{k}", str(v)) for k, v in sorted(found.items())])
