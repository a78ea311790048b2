"""The commands by name: the module that defines each, and the line `inceptionism --help`
shows for it. The group (cli/main.py) imports a command's module only when that command runs
or shows its own help, so `inceptionism --help` answers without loading torch."""

from __future__ import annotations

COMMANDS: dict[str, tuple[str, str]] = {
    "dream": ("inceptionism.cli.dream", "Dream photos, folders or noise into new images."),
    "replay": ("inceptionism.cli.dream", "Re-create an output from the recipe in its PNG."),
    "models": ("inceptionism.cli.dream", "List the registered models."),
    "layers": ("inceptionism.cli.dream", "List a model's targetable layers."),
    "presets": ("inceptionism.cli.lists", "List the named recipes."),
    "samples": ("inceptionism.cli.lists", "List the sample photos (sample:NAME)."),
    "sweep": ("inceptionism.cli.explore", "Dream one start per combination of --vary values."),
    "atlas": ("inceptionism.cli.explore", "One cell per layer: what each layer sees."),
    "channels": ("inceptionism.cli.explore", "What makes each of a layer's channels fire."),
    "zoom": ("inceptionism.cli.motion", "An endless zoom, each frame dreamed from the last."),
    "video": ("inceptionism.cli.motion", "Dream a video frame by frame, keeping its sound."),
    "serve": ("inceptionism.cli.studio", "Open the web studio in your browser."),
    "train": (
        "inceptionism.cli.train",
        "Teach a network your pictures (one sub-folder per class).",
    ),  # fmt: skip
}


def short_help(name: str) -> str:
    """The line ``--help`` shows for command ``name`` (the command's own short_help too)."""
    return COMMANDS[name][1]
