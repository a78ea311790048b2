"""The Gradio page of the web studio (needs the `web` extra); the logic lives in studio/core.py.

The Dream tab's advanced controls are built from DreamConfig's field metadata (help, choices,
range), and every event hands a :class:`Controls` to :class:`Studio`, which builds the same
:class:`Job` the CLI builds. Endpoints carry the Controls' field names, so a client calls
``client.predict(sample="sample:chelsea", steps=2, api_name="/dream")``.
"""

# no `from __future__ import annotations`: Gradio finds gr.Request parameters by annotation
import os
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, fields
from typing import Any

from inceptionism.engine.config import PRESETS, DreamConfig
from inceptionism.engine.progress import format_seconds
from inceptionism.errors import InceptionismError
from inceptionism.studio.app_widgets import (
    EXAMPLES,
    SOURCE_LABELS,
    field_widget,
    import_gradio,
    keyword_fn,
    session_of,
    user_error,
)
from inceptionism.studio.core import ADVANCED, MAX_FRAMES, PRESET_FIELDS, Controls, Studio

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
__all__ = ["build_app", "forget_files", "import_gradio", "launch"]


def build_app(studio: Studio, defaults: Controls | None = None):
    """The page: the start (upload shown, sample, noise) with examples, model and layers,
    recipe sliders and advanced controls, guide, mask and class; Dream/Cancel with progress;
    a before/after slider, the PNG with its recipe, and a replay box that fills the controls."""
    gr = import_gradio()
    d = defaults or Controls()
    layer_names, default_layers = studio.layer_choices(d.model)
    preset_now = studio.preset_values(d.preset or "default", d.model)
    help_of = {f.name: f.metadata["help"] for f in fields(DreamConfig)}
    with gr.Blocks(title="inceptionism studio", analytics_enabled=False,
                   delete_cache=(3600, 3600)) as app:  # fmt: skip
        gr.Markdown("## inceptionism studio\nDeepDream a photo, a sample or noise.")
        with gr.Tab("Dream"), gr.Row():
            with gr.Column(scale=1):
                source = gr.Radio(SOURCE_LABELS, value=d.source, label="Start from",
                                  elem_id="source")  # fmt: skip
                # a file, not an Image: Gradio would decode an upload before our pixel limit
                upload = gr.File(type="filepath", label="Photo", file_types=["image"],
                                 elem_id="upload", height=100)  # fmt: skip
                shown = gr.Image(label="Your photo", interactive=False, height=160,
                                 elem_id="shown", visible=False)  # fmt: skip
                sample = gr.Dropdown(studio.sample_names(), value=d.sample, label="Sample")
                size = gr.Slider(64, studio.limits.max_side, value=d.size, step=16,
                                 label="Size (long side, px)")  # fmt: skip
                model = gr.Dropdown(studio.model_names(), value=d.model, label="Model",
                                    info=help_of["model"])  # fmt: skip
                layers = gr.Dropdown(layer_names, value=default_layers, multiselect=True,
                                     label="Layers")  # fmt: skip
                objective = gr.Textbox(label="Objective (advanced, wins over Layers)",
                                       placeholder="block12:20,block14=0.5",
                                       info=help_of["layers"])  # fmt: skip
                preset = gr.Dropdown(list(PRESETS), value=d.preset, label="Preset")
                step_size = gr.Slider(0.001, 0.05, value=d.step_size, step=0.001,
                                      label="Strength (step size)",
                                      info=help_of["step_size"])  # fmt: skip
                octaves = gr.Slider(1, 8, value=d.octaves, step=1, label="Octaves",
                                    info=help_of["octaves"])  # fmt: skip
                steps = gr.Slider(1, 100, value=d.steps, step=1, label="Steps per octave",
                                  info=help_of["steps"])  # fmt: skip
                octave_scale = gr.Slider(1.1, 2.0, value=d.octave_scale, step=0.05,
                                         label="Octave scale")  # fmt: skip
                jitter = gr.Slider(0, 64, value=d.jitter, step=1, label="Jitter (px)",
                                   info=help_of["jitter"])  # fmt: skip
                seed = gr.Number(value=d.seed, precision=0, label="Seed")
                with gr.Accordion("Steer: guide, mask, class", open=False):
                    guide = gr.File(type="filepath", label="Guide image (objective: guide)",
                                    file_types=["image"], elem_id="guide", height=80)  # fmt: skip
                    mask = gr.File(type="filepath", label="Mask (white: dream, black: keep)",
                                   file_types=["image"], elem_id="mask", height=80)  # fmt: skip
                    # a trained network's class names offered; a number typed for any network
                    class_ = gr.Dropdown(studio.class_choices(d.model), value=d.class_,
                                         allow_custom_value=True, elem_id="class",
                                         label="Class (number or name, added to the objective)",
                                         info="e.g. 207; a trained network offers its class "
                                         "names")  # fmt: skip
                with gr.Accordion("Advanced", open=False):
                    widgets = {k: field_widget(gr, k, preset_now[k]) for k in ADVANCED}
                grad_norm, detail, tile = widgets["grad_norm"], widgets["detail"], widgets["tile"]
                keep_colors, precision = widgets["keep_colors"], widgets["precision"]
                smooth, tv = widgets["smooth"], widgets["tv"]
                recipe = gr.State(d.recipe)  # a replayed recipe's whole config, until a preset
            with gr.Column(scale=1):
                with gr.Row():
                    go = gr.Button("Dream", variant="primary", elem_id="dream")
                    stop = gr.Button("Cancel", elem_id="cancel")
                status = gr.Textbox(label="Status", interactive=False, elem_id="status")
                result = gr.ImageSlider(label="Before / after", type="pil", interactive=False,
                                        elem_id="result", height=480)  # fmt: skip
                download = gr.File(label="PNG with its recipe", elem_id="download")
                gr.Examples([[s, p, "sample"] for s, p in EXAMPLES], [sample, preset, source],
                            label="Examples: a sample with a preset")  # fmt: skip
                with gr.Accordion("Replay a recipe", open=False):
                    recipe_png = gr.File(label="A PNG made by inceptionism", file_types=[".png"],
                                         elem_id="recipe_png")  # fmt: skip
                    recipe_text = gr.Textbox(label="...or its recipe (JSON)", lines=4)
                    load = gr.Button("Fill the controls", elem_id="load")

        with gr.Tab("Explore"):
            gr.Markdown(
                "A **sweep** dreams the Dream tab's start and settings once per combination of "
                "values, as a labelled sheet (`inceptionism sweep`). One line per parameter: "
                "`NAME=V1,V2,...` (any config option, `preset`, `class`; `;` separates layer "
                "specs)."
            )
            with gr.Row():
                with gr.Column(scale=1):
                    vary = gr.Textbox("step-size=0.003,0.006,0.012", lines=3, label="Vary",
                                      elem_id="vary")  # fmt: skip
                    cell_size = gr.Slider(64, 512, value=192, step=16, label="Cell size (px)")
                    go_sweep = gr.Button("Sweep", variant="primary", elem_id="sweep")
                    gr.Markdown("An **atlas** (`inceptionism atlas`): one cell per layer, each "
                                "dreamed on that layer alone.")  # fmt: skip
                    atlas_layers = gr.Textbox("all", label="Layers (all, or a,b,c)",
                                              elem_id="atlas_layers")  # fmt: skip
                    go_atlas = gr.Button("Atlas", elem_id="atlas")
                    gr.Markdown("A **channel gallery** (`inceptionism channels`): what makes "
                                "each of a layer's channels fire, from noise.")  # fmt: skip
                    layer = gr.Dropdown(layer_names, value=default_layers[-1], label="Layer",
                                        elem_id="channel_layer")  # fmt: skip
                    count = gr.Slider(1, 36, value=9, step=1, label="Channels (the first N)")
                    lucid = gr.Checkbox(True, label="Lucid recipe (feature visualisation; off: "
                                        "a DeepDream of noise)")  # fmt: skip
                    go_channels = gr.Button("Channels", elem_id="channels")
                    stop_sheets = gr.Button("Cancel", elem_id="cancel_sheets")
                with gr.Column(scale=2):
                    sweep_status = gr.Textbox(label="Status", interactive=False,
                                              elem_id="sweep_status")  # fmt: skip
                    sheets = gr.Gallery(label="Sheets", elem_id="sheets", columns=1, height=480,
                                        object_fit="contain")  # fmt: skip
                    sweep_files = gr.File(label="Sheets and cells, each with its recipe",
                                          file_count="multiple", elem_id="sweep_files")  # fmt: skip

        with gr.Tab("Motion"):
            gr.Markdown(
                "A **zoom loop** (`inceptionism zoom`): frame 1 is the Dream tab's dream, each "
                "next frame the last one zoomed and rotated, then dreamed again."
            )
            with gr.Row():
                with gr.Column(scale=1):
                    frames = gr.Slider(1, MAX_FRAMES, value=12, step=1, label="Frames",
                                       elem_id="zoom_frames")  # fmt: skip
                    zoom = gr.Slider(0.5, 2.0, value=1.05, step=0.01, label="Zoom per frame",
                                     info="Scale per frame (>1 zooms in).")  # fmt: skip
                    rotate = gr.Slider(-180, 180, value=0.0, step=0.5, label="Rotate per frame",
                                       info="Degrees per frame, counter-clockwise.")  # fmt: skip
                    fps = gr.Slider(1, 60, value=12, step=1, label="Frames per second")
                    go_zoom = gr.Button("Zoom", variant="primary", elem_id="zoom")
                    gr.Markdown("A **video** (`inceptionism video`): each frame dreamed with the "
                                "Dream tab's settings (long side at most its size), the sound "
                                "kept.")  # fmt: skip
                    clip = gr.File(type="filepath", label="Video", file_types=["video"],
                                   elem_id="clip", height=80)  # fmt: skip
                    blend = gr.Slider(0, 1, value=0.5, step=0.05, label="Blend",
                                      info="How much of the previous dream goes into the next "
                                      "frame's start.")  # fmt: skip
                    flow = gr.Checkbox(False, label="Along the optical flow (needs OpenCV)")
                    with gr.Row():
                        t_start = gr.Number(None, label="Start (s)", minimum=0)
                        t_end = gr.Number(None, label="End (s)", minimum=0,
                                          info="0 or empty: the end")  # fmt: skip
                    go_video = gr.Button("Dream the video", elem_id="dream_video")
                    stop_motion = gr.Button("Cancel", elem_id="cancel_motion")
                with gr.Column(scale=2):
                    zoom_status = gr.Textbox(label="Status", interactive=False,
                                             elem_id="zoom_status")  # fmt: skip
                    movie = gr.Video(label="Result", elem_id="video", height=400)
                    zoom_files = gr.File(label="Frames, each with its recipe",
                                         file_count="multiple", elem_id="zoom_files")  # fmt: skip

        named = locals()
        order = [f.name for f in fields(Controls)]  # one component per field, in its order
        controls = [named[name] for name in order]

        def controls_of(values: tuple) -> Controls:
            """The page's controls from a call's first values."""
            c = Controls(**dict(zip(order, values[: len(order)])))
            if not isinstance(c.recipe, str):  # an API call: the State is the session's
                c.recipe = ""
            if c.model != d.model and c.layers == default_layers:  # a client's other model
                c.layers = None  # without its own layers: that model's defaults
            return c

        def run(request, progress, *values):
            c = controls_of(values)
            try:
                job = studio.job(c)
                before = studio.before(job)
                yield (before, None), "starting...", None

                def step(p):
                    eta = format_seconds(p.eta)
                    progress(p.fraction, desc=f"octave {p.octave}/{p.octaves} step "
                             f"{p.step}/{p.steps}, ETA {eta}")  # fmt: skip

                for image, text, png in studio.dream(c, session_of(request), step, job):
                    yield ((before, image) if image is not None else None), text, png
            except InceptionismError as e:
                raise user_error(gr, e, c.upload, c.guide, c.mask) from None
            except Exception as e:  # a bug: one line on the page, no server paths
                failed = RuntimeError(f"the dream failed: {type(e).__name__}: {e}")
                raise user_error(gr, failed) from None

        def run_sheet(kind: str, work: Callable) -> Callable:
            """An Explore runner: the controls, then ``work``'s own values."""

            def run(request, progress, *values):
                c = controls_of(values)
                try:
                    progress(0, desc="dreaming the cells")
                    began = time.monotonic()
                    line = lambda text: progress(None, desc=text)  # noqa: E731
                    paths, cells = work(c, session_of(request), line, *values[len(order) :])
                except InceptionismError as e:
                    raise user_error(gr, e, c.upload, c.guide, c.mask) from None
                except Exception as e:
                    failed = RuntimeError(f"the {kind} failed: {type(e).__name__}: {e}")
                    raise user_error(gr, failed) from None
                done = f"done in {time.monotonic() - began:.1f} s: {len(cells)} cells"
                return paths, [*paths, *cells], done

            return run

        def sweep_work(c, session, line, what, cell):
            return studio.sweep(c, what or "", int(cell or 192), session, line)

        def atlas_work(c, session, line, what, cell):
            path, cells = studio.atlas(c, what or "all", int(cell or 192), session, line)
            return [path], cells

        def channels_work(c, session, line, name, n, cell, use_lucid):
            if not name:
                raise InceptionismError("pick a layer")
            path, cells = studio.channels(c, name, int(n or 9), int(cell or 128),
                                          use_lucid is not False, session, line)  # fmt: skip
            return [path], cells

        def run_motion(kind: str, work: Callable) -> Callable:
            """A Motion runner: the controls, then ``work``'s own values; frame progress."""

            def run(request, progress, *values):
                c = controls_of(values)

                def frame(p):
                    eta = format_seconds(p.eta)
                    progress(p.k / p.n, desc=f"frame {p.k}/{p.n}, ETA {eta}")

                try:
                    progress(0, desc="dreaming frame 1")
                    began = time.monotonic()
                    path, files = work(c, frame, session_of(request), *values[len(order) :])
                except InceptionismError as e:
                    paths = [v for v in values[len(order) :] if isinstance(v, str)]  # a video
                    raise user_error(gr, e, c.upload, c.guide, c.mask, *paths) from None
                except Exception as e:
                    failed = RuntimeError(f"the {kind} failed: {type(e).__name__}: {e}")
                    raise user_error(gr, failed) from None
                done = f"done in {time.monotonic() - began:.1f} s: {len(files)} frames"
                return path, files, done

            return run

        def zoom_work(c, frame, session, n, factor, degrees, rate):
            return studio.zoom(c, int(n or 12), float(factor or 1.05), float(degrees or 0),
                               float(rate or 12), frame, session)  # fmt: skip

        def video_work(c, frame, session, path, mix, along, begin, end):
            return studio.video(c, path or "", float(0.5 if mix is None else mix), bool(along),
                                begin or None, end or None, frame, session)  # fmt: skip

        def stop_dream(request: gr.Request) -> str:  # type: ignore[name-defined]
            return studio.cancel(session_of(request))

        def on_model(name: str):
            names, defaults = studio.layer_choices(name)
            return gr.update(choices=names, value=defaults), gr.update(
                choices=studio.class_choices(name))  # fmt: skip

        def on_preset(name: str, model_name: str):
            try:
                v = studio.preset_values(name, model_name)
            except InceptionismError as e:
                raise user_error(gr, e) from None
            return [v[k] for k in PRESET_FIELDS] + [""]  # a preset picked: no replayed recipe

        def on_upload(path: str | None):
            if not path:
                return gr.update(value=None, visible=False), "auto"
            try:
                return gr.update(value=studio.thumbnail(path), visible=True), "auto"
            except InceptionismError as e:
                raise user_error(gr, e, path) from None

        def on_load(png: str | None = None, recipe: str | None = ""):
            try:
                c = studio.controls_from_recipe(png, recipe)
            except InceptionismError as e:
                raise user_error(gr, e, png) from None
            values = asdict(c)
            out = []
            for name in order:
                if name in ("upload", "guide", "mask"):
                    out.append(gr.update())  # a photo must be uploaded again
                elif name == "layers":
                    names, _ = studio.layer_choices(c.model)
                    out.append(gr.update(choices=names, value=values["layers"]))
                else:
                    out.append(values[name])
            return out

        dream_fn = keyword_fn(order, run, gr)  # the State `recipe` is no API parameter
        model.change(on_model, model, [layers, class_], api_visibility="private")
        preset.change(on_preset, [preset, model], [named[k] for k in PRESET_FIELDS] + [recipe],
                      api_visibility="private")  # fmt: skip
        upload.change(on_upload, upload, [shown, source], api_visibility="private")
        job = go.click(dream_fn, controls, [result, status, download], api_name="dream",
                       concurrency_id="work")  # fmt: skip
        explored = [sheets, sweep_files, sweep_status]
        sheet_events: list[tuple[str, Any, Callable[..., Any], dict[str, Any]]] = [
            ("sweep", go_sweep, sweep_work, {"vary": vary, "cell_size": cell_size}),
            ("atlas", go_atlas, atlas_work, {"atlas_layers": atlas_layers, "cell_size": cell_size}),
            ("channels", go_channels, channels_work,
             {"layer": layer, "count": count, "cell_size": cell_size, "lucid": lucid}),
        ]  # fmt: skip
        for kind, button, work, own in sheet_events:
            fn = keyword_fn([*order, *own], run_sheet(kind, work), gr)
            button.click(fn, [*controls, *own.values()], explored, api_name=kind,
                         concurrency_id="work")  # fmt: skip
        motion_events: list[tuple[str, Any, Callable[..., Any], dict[str, Any]]] = [
            ("zoom", go_zoom, zoom_work,
             {"frames": frames, "zoom": zoom, "rotate": rotate, "fps": fps}),
            ("video", go_video, video_work,
             {"video": clip, "blend": blend, "flow": flow, "start": t_start, "end": t_end}),
        ]  # fmt: skip
        for kind, button, work, own in motion_events:
            fn = keyword_fn([*order, *own], run_motion(kind, work), gr)
            button.click(fn, [*controls, *own.values()], [movie, zoom_files, zoom_status],
                         api_name=kind, concurrency_id="work")  # fmt: skip
        # stops this visitor's sheet before its next cell, zoom or video after its frame
        stop_sheets.click(stop_dream, None, sweep_status, api_visibility="private")
        stop_motion.click(stop_dream, None, zoom_status, api_visibility="private")
        stop.click(stop_dream, None, status, cancels=[job], api_visibility="private")
        load.click(on_load, [recipe_png, recipe_text], controls, api_name="replay")
    return app


def forget_files(app: Any) -> None:
    """Remove every file Gradio's cache holds for this app (every visitor's uploads and the
    results it served): a stopped studio leaves nothing behind."""
    from gradio.route_utils import delete_files_created_by_app

    try:
        delete_files_created_by_app(app, age=None)
    except OSError as e:
        print(f"studio: could not remove every cached file ({e})", file=sys.stderr)


def launch(studio: Studio, host: str, port: int | None, defaults: Controls | None = None):
    """Start the server in the background (one dream at a time, at most ``max_queue`` waiting);
    returns the app and its local URL. ``app.block_thread()`` waits until Ctrl-C."""
    import_gradio()
    app = build_app(studio, defaults)
    app.queue(default_concurrency_limit=1, max_size=studio.limits.max_queue)
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
