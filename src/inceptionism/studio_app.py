"""The Gradio page of the web studio (needs the `web` extra); the logic lives in studio.py."""

# no `from __future__ import annotations`: Gradio finds gr.Request parameters by annotation
import os
from dataclasses import asdict, fields
from typing import Any

from .config import PRESETS
from .errors import InceptionismError, MissingExtraError
from .studio import SLIDERS, SOURCES, Controls, Studio, public

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")


def import_gradio():
    try:
        import gradio as gr
    except ImportError:
        raise MissingExtraError("the web studio (Gradio)", "web") from None
    return gr


def build_app(studio: Studio, defaults: Controls | None = None):
    """The page: source, model and layers, recipe sliders, Dream/Cancel, result and download,
    and a replay box that fills the controls from a PNG or a pasted recipe."""
    gr = import_gradio()
    d = defaults or Controls()
    layer_names, default_layers = studio.layer_choices(d.model)
    with gr.Blocks(title="inceptionism studio", analytics_enabled=False,
                   delete_cache=(3600, 3600)) as app:  # fmt: skip
        gr.Markdown("## inceptionism studio\nDeepDream a photo, a sample or noise.")
        with gr.Row():
            with gr.Column(scale=1):
                source = gr.Radio(list(SOURCES), value="upload", label="Start from")
                # a file, not an Image: Gradio would decode an upload before our pixel limit
                upload = gr.File(type="filepath", label="Photo", file_types=["image"],
                                 elem_id="upload", height=120)  # fmt: skip
                sample = gr.Dropdown(studio.sample_names(), value=d.sample, label="Sample")
                size = gr.Slider(64, studio.limits.max_side, value=d.size, step=16,
                                 label="Size (long side, px)")  # fmt: skip
                model = gr.Dropdown(studio.model_names(), value=d.model, label="Model")
                layers = gr.Dropdown(layer_names, value=default_layers, multiselect=True,
                                     label="Layers")  # fmt: skip
                objective = gr.Textbox(label="Objective (advanced, wins over Layers)",
                                       placeholder="block12:20,block14=0.5")  # fmt: skip
                preset = gr.Dropdown(list(PRESETS), value="default", label="Preset")
                step_size = gr.Slider(0.001, 0.05, value=d.step_size, step=0.001,
                                      label="Strength (step size)")  # fmt: skip
                octaves = gr.Slider(1, 8, value=d.octaves, step=1, label="Octaves")
                steps = gr.Slider(1, 100, value=d.steps, step=1, label="Steps per octave")
                octave_scale = gr.Slider(1.1, 2.0, value=d.octave_scale, step=0.05,
                                         label="Octave scale")  # fmt: skip
                jitter = gr.Slider(0, 64, value=d.jitter, step=1, label="Jitter (px)")
                seed = gr.Number(value=d.seed, precision=0, label="Seed")
                recipe = gr.State(d.recipe)  # a replayed recipe's whole config, until a preset
            with gr.Column(scale=1):
                with gr.Row():
                    go = gr.Button("Dream", variant="primary", elem_id="dream")
                    stop = gr.Button("Cancel", elem_id="cancel")
                status = gr.Textbox(label="Status", interactive=False, elem_id="status")
                result = gr.Image(label="Dream", type="pil", interactive=False, elem_id="result",
                                  height=480, buttons=["download", "fullscreen"])  # fmt: skip
                download = gr.File(label="PNG with its recipe", elem_id="download")
                with gr.Accordion("Replay a recipe", open=False):
                    recipe_png = gr.File(label="A PNG made by inceptionism", file_types=[".png"])
                    recipe_text = gr.Textbox(label="...or its recipe (JSON)", lines=4)
                    load = gr.Button("Fill the controls")

        named = locals()
        order = [f.name for f in fields(Controls)]  # one component per field, in its order
        controls = [named[name] for name in order]

        def run(request: gr.Request, *values):  # type: ignore[name-defined]
            c = Controls(**dict(zip(order, values)))
            try:
                yield from studio.dream(c, _session(request))
            except InceptionismError as e:
                raise gr.Error(public(str(e), c.upload)) from None
            except Exception as e:  # a bug: one line on the page, no server paths
                raise gr.Error(public(f"the dream failed: {type(e).__name__}: {e}")) from None

        def stop_dream(request: gr.Request) -> str:  # type: ignore[name-defined]
            return studio.cancel(_session(request))

        def on_model(name: str):
            names, defaults = studio.layer_choices(name)
            return gr.update(choices=names, value=defaults)

        def on_preset(name: str, model_name: str):
            v = studio.preset_values(name, model_name)
            return [v[k] for k in SLIDERS] + [""]  # a preset picked: no replayed recipe now

        def on_load(png: str | None, text: str | None):
            try:
                c = studio.controls_from_recipe(png, text)
            except InceptionismError as e:
                raise gr.Error(public(str(e), png)) from None
            values = asdict(c)
            out = []
            for name in order:
                if name == "upload":
                    out.append(gr.update())  # a photo must be uploaded again
                elif name == "layers":
                    names, _ = studio.layer_choices(c.model)
                    out.append(gr.update(choices=names, value=values["layers"]))
                else:
                    out.append(values[name])
            return out

        model.change(on_model, model, layers, api_visibility="private")
        preset.change(on_preset, [preset, model], [named[k] for k in SLIDERS] + [recipe],
                      api_visibility="private")  # fmt: skip
        job = go.click(run, controls, [result, status, download], api_name="dream")
        stop.click(stop_dream, None, status, cancels=[job], api_visibility="private")
        load.click(on_load, [recipe_png, recipe_text], controls, api_name="replay")
    return app


def _session(request: Any) -> str:
    """The visitor's session: Cancel stops this visitor's dream, not another's."""
    return str(getattr(request, "session_hash", "") or "")


def launch(studio: Studio, host: str, port: int | None, defaults: Controls | None = None):
    """Start the server in the background (one dream at a time, queued); returns the app and
    its local URL. ``app.block_thread()`` waits until Ctrl-C."""
    import_gradio()
    app = build_app(studio, defaults)
    app.queue(default_concurrency_limit=1)
    app.launch(
        server_name=host,
        server_port=port,
        share=False,
        inbrowser=False,
        max_file_size=f"{studio.limits.max_upload_mb:g}mb",
        prevent_thread_lock=True,
        quiet=True,
        footer_links=[],
    )
    return app, app.local_url
