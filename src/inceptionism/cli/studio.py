"""The `serve` command: the web studio on a local port."""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

import click

from inceptionism.cli.catalog import short_help
from inceptionism.cli.params import (
    FloatRange,
    IntRange,
    examples,
    note,
)
from inceptionism.configure import device_for
from inceptionism.errors import ConfigError
from inceptionism.studio.core import Limits, Studio


@click.command(
    short_help=short_help("serve"),
    epilog=examples(
        "serve",
        "serve --port 8000 --max-side 768",
        "serve --models mynet.pt --models trained/",
    ),
)
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to bind; 0.0.0.0 exposes the studio to your network.")  # fmt: skip
@click.option("--port", type=IntRange(0, 65535), default=7860, show_default=True,
              help="Port to listen on.")  # fmt: skip
@click.option("--max-upload-mb", type=FloatRange(0.1, 1000), default=20.0,
              show_default=True, help="Largest upload accepted.")  # fmt: skip
@click.option("--max-pixels", type=IntRange(min=1024), default=16_000_000,
              show_default=True, help="Largest decoded upload, in pixels.")  # fmt: skip
@click.option("--max-side", type=IntRange(64, 8192), default=1024, show_default=True,
              help="Largest dream (long side) the size slider allows.")  # fmt: skip
@click.option("--max-queue", type=IntRange(1, 10_000), default=16, show_default=True,
              help="Visitors that may wait for a dream; more are turned away.")  # fmt: skip
@click.option("--time-limit", type=FloatRange(1, 86_400), default=900.0, show_default=True,
              help="Seconds one dream may run before it is stopped.")  # fmt: skip
@click.option("--device", default="auto", show_default=True, help="cpu, cuda, cuda:N or auto.")
@click.option("--models", "trained", multiple=True, type=click.Path(exists=True, path_type=Path),
              metavar="PATH", help="Networks you trained (`inceptionism train`): a checkpoint "
              "or a folder of them, offered in the model list; repeat for more.")  # fmt: skip
def serve(host: str, port: int, max_upload_mb: float, max_pixels: int, max_side: int,
          max_queue: int, time_limit: float, device: str,
          trained: tuple[Path, ...]) -> None:  # fmt: skip
    """Open the web studio: upload or pick a photo, choose model, layers and recipe, watch the
    dream grow octave by octave, download the PNG with its recipe. Needs the `web` extra."""
    limits = Limits(max_upload_mb, max_pixels, max_side, max_queue, time_limit)
    studio = Studio(limits, device=str(device_for(device)), trained=trained)
    # Gradio's cache (every visitor's uploads) inside the studio's folder, removed with it;
    # read when gradio is imported
    own_cache = "GRADIO_TEMP_DIR" not in os.environ
    if own_cache:
        os.environ["GRADIO_TEMP_DIR"] = str(studio.workdir / "gradio")
    from inceptionism.studio.app import forget_files, import_gradio, launch

    try:
        import_gradio()  # a missing extra fails before anything starts
    except BaseException:
        if own_cache:
            del os.environ["GRADIO_TEMP_DIR"]
        studio.close()
        raise
    try:
        app, url = launch(studio, host, port)
    except OSError as e:
        raise ConfigError(f"cannot serve on {host}:{port} ({e})") from e
    note(f"inceptionism studio on {url} (Ctrl-C stops it)")

    terminated = []

    def on_term(_signum: int, _frame: object) -> None:
        terminated.append(True)
        raise KeyboardInterrupt  # SIGTERM ends the studio as Ctrl-C does: results removed

    signal.signal(signal.SIGTERM, on_term)
    try:
        app.block_thread()
    finally:
        app.close()
        forget_files(app)
        studio.close()
        if terminated:  # exit 0 now: a dream's native threads must not outlive the interpreter
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(0)
