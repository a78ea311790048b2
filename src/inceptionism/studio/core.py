"""The web studio: a Gradio page over :func:`dream_tensor`.

:class:`Studio` holds what the page needs and is usable without a browser (the tests call it
directly): one loaded model per name, reused; one dream at a time (Gradio's queue, and a lock per
model); previews at every octave's end; cancel; results written as PNGs with their recipe into a
folder the studio owns and removes on exit; a recipe (pasted JSON or a dropped PNG) turned back
into the controls' values. Uploads arrive as files in Gradio's own cache and are read with the
project's loader and its pixel limit: no path from the browser is ever opened.
"""

from __future__ import annotations

import atexit
import dataclasses
import json
import os
import re
import shutil
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

from PIL import Image

from inceptionism.configure import build_config, parse_tile
from inceptionism.engine.config import DreamConfig
from inceptionism.engine.loop import Progress, resolve_objective
from inceptionism.engine.progress import format_seconds
from inceptionism.errors import InceptionismError
from inceptionism.explore.cells import (
    atlas_layers,
    cell_jobs,
    lucid_title,
    pick_channels,
    run_cells,
    sheet_title,
)
from inceptionism.explore.vary import Cell, parse_vary, sweep_sheets, varied_fields
from inceptionism.featurevis.render import FeatureVisConfig
from inceptionism.io.image import (
    LoadedImage,
    image_size,
    load_image,
    parse_recipe,
    read_recipe,
    save_image,
)
from inceptionism.io.samples import list_samples
from inceptionism.io.sheets import contact_sheet
from inceptionism.jobs.job import FileRef, Job, Start, blank_start, photo_start
from inceptionism.jobs.recipes import job_recipe, read_job
from inceptionism.jobs.run import RunContext, start_tensor, stream_job
from inceptionism.models import DreamModel, get_model, get_spec, layer_table, list_models
from inceptionism.ops.objectives import Objective

# "auto": the start follows what the visitor gave: an upload wins, else the sample, else noise
SOURCES = ("auto", "upload", "sample", "noise")
RESULT_LIFETIME = 3600  # seconds a result file is kept for download
MAX_CELLS = 36  # cells of one sweep
MAX_FRAMES = 120  # frames of one zoom loop
# The recipe fields the page has sliders for (a preset sets them) and the seed; their defaults
# are DreamConfig's.
SLIDERS = ("step_size", "octaves", "steps", "octave_scale", "jitter")
RECIPE_FIELDS = (*SLIDERS, "seed")
# DreamConfig fields the Dream tab has a control for beyond the sliders (widgets built from the
# field's metadata); None in Controls keeps the preset's (or the replayed recipe's) value.
ADVANCED = ("grad_norm", "detail", "tile", "keep_colors", "precision", "smooth", "tv")
PRESET_FIELDS = (*SLIDERS, *ADVANCED)
_D = DreamConfig()


@dataclass(frozen=True)
class Limits:
    max_upload_mb: float = 20.0
    max_pixels: int = 16_000_000  # decoded pixels of an upload
    max_side: int = 1024  # the largest dream the sliders allow
    max_queue: int = 16  # visitors waiting for a dream; more are turned away
    time_limit: float = 900.0  # seconds one dream may run before it is stopped


@dataclass
class Controls:
    """Every value the page sends for a dream."""

    source: str = "auto"
    upload: str | None = None  # a file in Gradio's upload cache
    sample: str = "sample:coffee"
    model: str = _D.model
    layers: list[str] | None = None
    objective: str = ""  # a full objective string (advanced); wins over ``layers`` when given
    preset: str = "default"
    step_size: float = _D.step_size
    octaves: int = _D.octaves
    steps: int = _D.steps
    octave_scale: float = _D.octave_scale
    jitter: int = _D.jitter
    seed: int = _D.seed
    size: int = 512  # long side of the dream
    guide: str | None = None  # a guide image (upload or sample:NAME): the objective "guide"
    mask: str | None = None  # where to dream (white) and where not (black)
    class_: str | None = None  # an ImageNet class (number or name) added to the objective
    grad_norm: str | None = None
    detail: str | None = None
    tile: str | None = None
    keep_colors: bool | None = None
    precision: str | None = None
    smooth: float | None = None
    tv: float | None = None
    # a replayed recipe (JSON): its whole config, the base instead of the preset, so that the
    # fields without a control (detail, clip, pixel range, ...) come back too; and the size
    # of its noise start (a noise start may take a photo's shape)
    recipe: str = ""


class Studio:
    def __init__(self, limits: Limits | None = None, device: str = "cpu"):
        self.limits = limits or Limits()
        self.device = device
        self.models: dict[str, DreamModel] = {}
        self.locks: dict[str, threading.Lock] = {}
        self.registry_lock = threading.Lock()
        self.workdir = Path(tempfile.mkdtemp(prefix="inceptionism-studio-"))
        self.cancel_events: dict[str, threading.Event] = {}
        atexit.register(self.close)

    def close(self) -> None:
        shutil.rmtree(self.workdir, ignore_errors=True)

    # --- what the controls offer -------------------------------------------------------------

    def model_names(self) -> list[str]:
        return list_models()

    def layer_choices(self, model: str) -> tuple[list[str], list[str]]:
        """(every layer, the model's default layers)."""
        names = [i.name for i in layer_table(model) if i.stride]
        return names, [n for n, _ in get_spec(model).default_layers]

    def sample_names(self) -> list[str]:
        return [f"sample:{n}" for n in list_samples()]

    def preset_values(self, preset: str, model: str) -> dict[str, Any]:
        """The values a preset gives the page's sliders and advanced controls."""
        c = DreamConfig.preset(preset, model=model)
        values = {k: getattr(c, k) for k in PRESET_FIELDS}
        values["tile"] = str(values["tile"])
        return values

    # --- a dream -----------------------------------------------------------------------------

    def model(self, name: str) -> tuple[DreamModel, threading.Lock]:
        with self.registry_lock:
            if name not in self.models:
                self.models[name] = get_model(name, device=self.device)
                self.locks[name] = threading.Lock()
            return self.models[name], self.locks[name]

    def source(self, c: Controls) -> str:
        """What the dream starts from: "auto" follows what the visitor gave (an upload wins,
        else the chosen sample, else noise)."""
        if c.source == "auto":
            return "upload" if c.upload else "sample" if c.sample else "noise"
        if c.source not in SOURCES:
            raise InceptionismError(f"unknown source {c.source!r}; use {', '.join(SOURCES)}")
        return c.source

    def config(self, c: Controls) -> DreamConfig:
        """The controls' config: a replayed recipe's config (same model) or the preset's,
        with the sliders, the advanced controls, the start and the layers on top; no layers
        picked keeps the base's. A guide sets the objective "guide"; a class adds its logit
        (configure.build_config, as the CLI's --class)."""
        objective = (c.objective or "").strip()
        layers = objective or (",".join(c.layers) if c.layers else None)
        init = "noise" if self.source(c) == "noise" else "photo"
        sliders = {k: type(getattr(_D, k))(getattr(c, k)) for k in RECIPE_FIELDS}  # from floats
        advanced = {k: getattr(c, k) for k in ADVANCED if getattr(c, k) is not None}
        if "tile" in advanced:
            advanced["tile"] = parse_tile(str(advanced["tile"]))
        for k in ("smooth", "tv"):
            if k in advanced:
                advanced[k] = float(advanced[k])
        base = self._replayed(c.recipe)[0]
        if base is None or base.model != c.model:
            base = DreamConfig.preset(c.preset or "default", model=c.model)
        config = base.replace(init=init, **sliders, **advanced)
        if layers:
            config = config.replace(layers=layers)
        if c.guide:
            config = config.replace(objective="guide")
        if c.class_ is not None and str(c.class_).strip():
            every = {f: getattr(config, f) for f in DreamConfig.__dataclass_fields__}
            config = build_config({"model": config.model, "class_": str(c.class_)}, every)
        resolve_objective(config.model, config)
        return config

    def _replayed(self, text: str) -> tuple[DreamConfig | None, tuple[int, int] | None]:
        """A replayed recipe's config and noise size (None, None without one)."""
        if not text:
            return None, None
        try:
            data = json.loads(text)
            config = DreamConfig.from_dict(data["config"])
            size = data.get("noise_size")
            if size is not None:
                w, h = (max(16, min(int(v), self.limits.max_side)) for v in size)
                size = (w, h)
        except (ValueError, TypeError, KeyError):
            raise InceptionismError("the replayed recipe is not one the studio wrote") from None
        return config, size

    def start(self, c: Controls, config: DreamConfig) -> tuple[Start, str]:
        """The job's start: the upload or sample checked on its header (never decoded before
        the pixel limit is applied), or noise; and the label the recipe records."""
        side = max(16, min(int(c.size), self.limits.max_side))
        source = self.source(c)
        if source == "noise":
            shape = self._replayed(c.recipe)[1] or (side, side)
            return blank_start("noise", shape, self.limits.max_pixels), "noise"
        if source == "sample":
            return photo_start(c.sample, "photo", side, self.limits.max_pixels), c.sample
        if not c.upload:
            raise InceptionismError("upload a photo first (or pick a sample or noise)")
        self._check_upload(c.upload, "upload")
        try:
            return photo_start(c.upload, "photo", side, self.limits.max_pixels), "upload"
        except InceptionismError as e:
            raise InceptionismError(f"the upload: {public(str(e), c.upload)}") from None

    def _check_upload(self, path: str, what: str) -> None:
        size = Path(path).stat().st_size
        if size > self.limits.max_upload_mb * 1e6:
            limit = self.limits.max_upload_mb
            raise InceptionismError(f"the {what} is {size / 1e6:.1f} MB; the limit is {limit:g} MB")

    def steering(self, c: Controls) -> dict[str, FileRef]:
        """The guide and mask (an upload or sample:NAME), checked on their headers."""
        refs = {}
        for what in ("guide", "mask"):
            path = getattr(c, what)
            if not path:
                continue
            try:
                if not str(path).startswith("sample:"):
                    self._check_upload(path, what)
                refs[what] = FileRef.of(path)
                image_size(refs[what].local(), self.limits.max_pixels)
            except InceptionismError as e:
                raise InceptionismError(f"the {what}: {public(str(e), path)}") from None
        return refs

    def job(self, c: Controls) -> Job:
        """The job the controls describe (the same Job the CLI builds)."""
        config = self.config(c)
        start, label = self.start(c, config)
        refs = self.steering(c)
        return Job(config, start, None, guide=refs.get("guide"), mask=refs.get("mask"),
                   label=label)  # fmt: skip

    def thumbnail(self, path: str, side: int = 320) -> Image.Image:
        """An upload shown on the page: checked (size, pixels) and decoded small."""
        try:
            self._check_upload(path, "upload")
            return load_image(path, self.limits.max_pixels).resized_to_fit(side).to_pil()
        except InceptionismError as e:
            raise InceptionismError(f"the upload: {public(str(e), path)}") from None

    def before(self, job: Job) -> Image.Image:
        """The start picture at the dream's size (the "before" of the before/after slider)."""
        return LoadedImage(start_tensor(job.start, job.config.seed)[0]).to_pil()

    def cancel(self, session: str = "") -> str:
        """Cancel the dream of this visitor (``session``) only."""
        self._event(session).set()
        return "cancelling..."

    def _event(self, session: str) -> threading.Event:
        with self.registry_lock:
            return self.cancel_events.setdefault(session, threading.Event())

    def dream(
        self,
        c: Controls,
        session: str = "",
        on_step: Callable[[Progress], Any] | None = None,
        job: Job | None = None,
    ) -> Iterator[tuple[Image.Image | None, str, str | None]]:
        """Yields (preview, status, None) at each octave's end, then (result, status, PNG);
        ``on_step`` gets every step's progress. Past the time limit the dream is stopped."""
        self._forget_old_results()
        job = job or self.job(c)
        model, lock = self.model(job.config.model)
        cancel = self._event(session)
        began = time.monotonic()
        result = None
        late = False
        for item in stream_job(job, RunContext(model), cancel, lock):
            if isinstance(item, Progress):
                if time.monotonic() - began > self.limits.time_limit:
                    late = True
                    cancel.set()
                elif item.octave_done and item.image is not None:
                    yield LoadedImage(item.image).to_pil(), _status(item), None
                elif on_step is not None:
                    on_step(item)
            else:
                result = item
        if late:
            raise InceptionismError(
                f"the dream ran past the studio's limit of {self.limits.time_limit:g} s; "
                "try a smaller size or fewer steps"
            )
        if result is None:
            yield None, "cancelled", None
            return
        recipe = scrubbed(job_recipe(job, model), job, job.label == "upload")
        out = self.workdir / f"dream-{uuid.uuid4().hex[:12]}.png"
        save_image(result, out, recipe=recipe)
        yield result.to_pil(), f"done in {time.monotonic() - began:.1f} s", str(out)

    def _forget_old_results(self) -> None:
        now = time.time()
        for p in self.workdir.glob("*-*"):  # results, not Gradio's cache (gradio/)
            if now - p.stat().st_mtime > RESULT_LIFETIME:
                shutil.rmtree(p) if p.is_dir() else p.unlink(missing_ok=True)

    # --- a sweep -----------------------------------------------------------------------------

    def sweep(self, c: Controls, vary: str, cell_size: int = 192) -> tuple[list[str], list[str]]:
        """`inceptionism sweep` of the controls' dream: once per combination of the ``vary``
        lines (NAME=V1,V2,...), as labelled sheets; returns the sheets and every cell's PNG
        with its recipe."""
        self._forget_old_results()
        job = self.job(c)
        varies = [v.strip() for v in vary.splitlines() if v.strip()]
        if not varies:
            raise InceptionismError("name what to vary: NAME=V1,V2 (e.g. step-size=0.003,0.01)")
        sheets = sweep_sheets(job.config, [parse_vary(v, job.config) for v in varies])
        self._check_cells(sum(len(cells) for _, _, cells, _, _ in sheets))
        folder = self._folder("sweep")
        skip = varied_fields([cell for _, _, cells, _, _ in sheets for cell in cells])
        paths, cell_files = [], []
        for suffix, extras, cells, columns, rows in sheets:
            title = sheet_title(job.config, skip, job.label) + " ".join(["", *extras])
            info = {"kind": "sweep", "vary": varies, "extra": extras}
            name = f"sweep.{suffix}.png" if suffix else "sweep.png"
            path, files = self._sheet(job, cells, folder / name, columns, rows, title, info,
                                      cell_size)  # fmt: skip
            paths.append(path)
            cell_files += files
        return paths, cell_files

    def atlas(
        self, c: Controls, layers: str = "all", cell_size: int = 192
    ) -> tuple[str, list[str]]:
        """`inceptionism atlas` of the controls' dream: one cell per layer (``all`` or a comma
        list), each dreamed on that layer alone; returns the sheet and the cells' PNGs."""
        self._forget_old_results()
        job = self.job(c)
        table = atlas_layers(job.config.model, layers or "all")
        self._check_cells(len(table))
        cells = [
            Cell(f"{n} ({k} ch)", f"layer_{n}", job.config.replace(layers=n)) for n, k in table
        ]
        title = sheet_title(job.config, {"layers"}, job.label)
        info = {"kind": "atlas", "layers": [n for n, _ in table]}
        folder = self._folder("atlas")
        return self._sheet(job, cells, folder / "atlas.png", min(6, len(cells)), [], title, info,
                           cell_size)  # fmt: skip

    def channels(
        self, c: Controls, layer: str, count: int = 9, cell_size: int = 128, lucid: bool = True
    ) -> tuple[str, list[str]]:
        """`inceptionism channels`: what makes each of ``layer``'s first ``count`` channels
        fire, rendered from noise with the lucid recipe (feature visualisation, the controls'
        steps and seed, ``cell_size`` squares) or, ``lucid`` off, dreamed from noise with the
        controls' settings; returns the sheet and the cells' PNGs."""
        self._forget_old_results()
        side = max(32, min(int(cell_size), self.limits.max_side))
        c = dataclasses.replace(c, source="noise", size=side, layers=[layer], objective="")
        c.recipe = ""
        config = self.config(c)
        start = blank_start("noise", (side, side), self.limits.max_pixels)
        job = Job(config, start, None, label="noise")
        picked = pick_channels(config.model, layer, int(count), None)
        self._check_cells(len(picked))
        fv = FeatureVisConfig.preset("lucid", size=side, steps=config.steps, seed=config.seed)
        cells = [Cell(f"{layer}:{k}", f"{layer}_{k}", config.replace(layers=f"{layer}:{k}"))
                 for k in picked]  # fmt: skip
        title = lucid_title(fv, f"{config.model} {layer}") if lucid else sheet_title(
            config, {"layers"}, "noise")  # fmt: skip
        columns = min(8, max(1, round(len(cells) ** 0.5 + 0.5)))
        info = {
            "kind": "channels",
            "layer": layer,
            **({"featurevis": fv.to_dict()} if lucid else {}),
        }
        folder = self._folder("channels")
        return self._sheet(job, cells, folder / "channels.png", columns, [], title, info, side,
                           fv if lucid else None)  # fmt: skip

    def _check_cells(self, count: int) -> None:
        if count > MAX_CELLS:
            raise InceptionismError(f"{count} cells; the studio dreams at most {MAX_CELLS}")

    def _folder(self, kind: str) -> Path:
        folder = self.workdir / f"{kind}-{uuid.uuid4().hex[:12]}"
        folder.mkdir()
        return folder

    def _sheet(self, job: Job, cells: list[Cell], path: Path, columns: int, rows: list[str],
               title: str, info: dict[str, Any], size: int,
               fv: FeatureVisConfig | None = None) -> tuple[str, list[str]]:  # fmt: skip
        """The cells dreamed (explore/'s jobs and runner) and laid out as one sheet."""
        refs = {k: r for k in ("guide", "mask") if (r := getattr(job, k)) is not None}
        jobs = cell_jobs(cells, job.start, path.parent, refs, fv)
        with self.model(job.config.model)[1]:
            images = run_cells(lambda j: RunContext(self.model(j.config.model)[0]), jobs)
        files = []
        for cell_job in jobs:  # the cells' recipes without the upload's server path
            assert cell_job.output is not None
            recipe = scrubbed(read_recipe(cell_job.output), cell_job, job.label == "upload")
            with Image.open(cell_job.output) as im:
                save_image(im.copy(), cell_job.output, recipe=recipe)
            files.append(str(cell_job.output))
        pairs: list[tuple[str, Image.Image | None]] = list(zip([c.label for c in cells], images))
        sheet = contact_sheet(pairs, columns, title, int(size), rows or None)
        save_image(sheet, path, {"sheet": info, "model": job.config.model})
        return str(path), files

    # --- a zoom loop --------------------------------------------------------------------------

    def zoom(
        self,
        c: Controls,
        frames: int = 8,
        zoom: float = 1.05,
        rotate: float = 0.0,
        fps: float = 12.0,
        on_frame: Callable[[Any], Any] | None = None,
        session: str = "",
    ) -> tuple[str, list[str]]:
        """`inceptionism zoom` of the controls' dream: frame 1 the start dreamed, each next one
        the last zoomed and rotated, then dreamed; returns the MP4 and every frame's PNG with
        its recipe."""
        from inceptionism.motion.frames import FrameRun, FramesTarget, finish_frames, run_settings
        from inceptionism.motion.sequential import zoom_loop

        self._forget_old_results()
        frames = int(frames)
        if not 1 <= frames <= MAX_FRAMES:
            raise InceptionismError(f"frames: from 1 to {MAX_FRAMES} in the studio, got {frames}")
        job = self.job(c)
        first = dataclasses.replace(job.start, quantize=True)  # frames are carried as 8 bits
        refs = {k: r for k in ("guide", "mask") if (r := getattr(job, k)) is not None}
        folder = self.workdir / f"zoom-{uuid.uuid4().hex[:12]}"
        folder.mkdir()
        target = FramesTarget(str(folder / "zoom.mp4"), True, [])
        model, lock = self.model(job.config.model)
        run = RunContext(model)
        source = "upload" if job.label == "upload" else job.label
        settings = run_settings("zoom", job.config, run, source=source,
                                source_sha256=first.source.sha256 if first.source else None,
                                size=list(first.size or ()), zoom=float(zoom),
                                rotate=float(rotate), shift=[0.0, 0.0])  # fmt: skip
        frame_run = FrameRun(target.frames, frames, settings, run,
                             on_frame=self._deadline(frames, on_frame, session),
                             force=True, refs=refs)  # fmt: skip
        with lock:
            zoom_loop(first, job.config, frame_run, float(zoom), float(rotate), (0.0, 0.0))
            finish_frames(target, frame_run, Fraction(float(fps)).limit_denominator(1001))
        files = self._scrub_files(target.frames, job)
        assert target.file is not None
        return str(target.file), files

    def video(
        self,
        c: Controls,
        video: str,
        blend: float = 0.5,
        flow: bool = False,
        t_start: float | None = None,
        t_end: float | None = None,
        on_frame: Callable[[Any], Any] | None = None,
        session: str = "",
    ) -> tuple[str, list[str]]:
        """`inceptionism video` with the controls' settings: each frame of the uploaded
        ``video`` (long side at most the controls' size) dreamed, the previous dream mixed in
        by ``blend`` (along the optical flow with ``flow``), its sound kept; returns the MP4
        and every frame's PNG with its recipe. Refused up front past MAX_FRAMES frames."""
        from inceptionism.io.video import probe_range, read_frames
        from inceptionism.motion.frames import FrameRun, FramesTarget, finish_frames, run_settings
        from inceptionism.motion.sequential import dream_video

        self._forget_old_results()
        if not video:
            raise InceptionismError("upload a video first")
        self._check_upload(video, "video")
        config = self.config(c)
        refs = self.steering(c)
        side = max(16, min(int(c.size), self.limits.max_side))
        path = Path(video)
        try:
            info, total = probe_range(path, t_start, t_end, self.limits.max_pixels)
        except InceptionismError as e:
            raise InceptionismError(f"the video: {public(str(e), video)}") from None
        if total > MAX_FRAMES:
            raise InceptionismError(
                f"the video has {total} frames in that range; the studio dreams at most "
                f"{MAX_FRAMES} (set a start and an end)"
            )
        spec: dict[str, Any] = {"max_size": side, "max_pixels": self.limits.max_pixels,
                                "t_start": t_start, "t_end": t_end, "blend": float(blend),
                                "flow": bool(flow)}  # fmt: skip
        ref = FileRef.of(path)
        folder = self._folder("video")
        target = FramesTarget(str(folder / "video.mp4"), True, [])
        model, lock = self.model(config.model)
        run = RunContext(model)
        settings = run_settings("video", config, run, source="upload", source_sha256=ref.sha256,
                                blend=float(blend), flow=bool(flow), start=t_start, end=t_end,
                                max_size=side)  # fmt: skip
        frame_run = FrameRun(target.frames, total, settings, run, force=True, refs=refs,
                             on_frame=self._deadline(total, on_frame, session))  # fmt: skip
        audio: dict[str, Any] = {"audio_from": path if info.has_audio else None, "start": t_start,
                                 "end": t_end}  # fmt: skip
        with lock:
            dream_video(ref, read_frames(path, info, t_start, t_end), config, frame_run, spec)
            finish_frames(target, frame_run, info.fps, **audio)
        job = Job(config, Start("video", ref, frame=1, **spec), None, "frame",
                  refs.get("guide"), refs.get("mask"), label="upload")  # fmt: skip
        return str(target.file), self._scrub_files(target.frames, job)

    def _deadline(
        self, total: int, on_frame: Callable[[Any], Any] | None, session: str
    ) -> Callable:
        """A frame callback that stops a run once its first frames say it would run late, or
        once its visitor (``session``) cancels."""
        began = time.monotonic()
        cancel = self._event(session)
        cancel.clear()

        def frame_done(p: Any) -> None:
            if cancel.is_set():
                raise InceptionismError(f"cancelled after {p.k} of {total} frames")
            if on_frame is not None:
                on_frame(p)
            late = time.monotonic() - began + (p.eta or 0.0)
            if late > self.limits.time_limit:
                raise InceptionismError(
                    f"{total} frames would take about {late:.0f} s, over the studio's limit "
                    f"of {self.limits.time_limit:g} s; ask for fewer frames or a smaller size"
                )

        return frame_done

    def _scrub_files(self, folder: Path, job: Job) -> list[str]:
        """The frames' recipes without the uploads' server paths."""
        files = sorted(str(p) for p in folder.glob("*.png"))
        for path in files:
            recipe = read_recipe(path)
            source = recipe["start"].get("source")
            if job.label == "upload" and source:
                source.update(input="upload", path="upload")
            recipe = scrubbed(recipe, job, False)
            with Image.open(path) as im:
                save_image(im.copy(), path, recipe=recipe)
        return files

    # --- replay ------------------------------------------------------------------------------

    def controls_from_recipe(self, png: str | None, text: str | None) -> Controls:
        """The controls that re-create a recipe: from a dropped PNG or pasted JSON, checked
        against the recipe schema (a recipe never names code the studio would run)."""
        if png:
            try:
                data = read_recipe(png)
            except InceptionismError as e:
                raise InceptionismError(public(str(e), png)) from None
        elif text and text.strip():
            data = parse_recipe(text)
        else:
            raise InceptionismError("drop a PNG made by inceptionism or paste its recipe")
        recipe = read_job(data)
        if recipe.model not in list_models() or recipe.network is not None:
            raise InceptionismError(
                f"the recipe names the network {recipe.model!r}, which the studio does not have"
            )
        config, start = recipe.job.config, recipe.job.start
        label = start.source.input if start.source is not None else ""
        size = start.max_size or max(start.size or (512,))
        blank, noise_size = start.kind == "noise", start.size
        motion = recipe.job.motion or {}
        if motion.get("command") == "zoom":  # a zoom frame: its loop's start and seed
            label, blank = str(motion.get("source") or ""), motion.get("source") == "noise"
            noise_size = tuple(motion.get("size") or ()) or None  # type: ignore[assignment]
            size = max(noise_size or (size,))
            config = config.replace(seed=config.seed - (recipe.job.index or 1))
        if blank:
            kind = "noise"
        elif label.startswith("sample:"):
            kind = "sample"
        else:
            kind = "upload"
        advanced: dict[str, Any] = {k: getattr(config, k) for k in ADVANCED}
        advanced["tile"] = str(advanced["tile"])
        return Controls(
            source=kind, sample=label if kind == "sample" else Controls.sample,
            model=config.model,
            layers=Objective.of(config.layers).layers if config.layers else None,
            objective=config.layers or "", preset="default",
            size=int(min(size, self.limits.max_side)),
            recipe=json.dumps({"config": config.to_dict(),
                               "noise_size": noise_size if kind == "noise" else None}),
            **{k: getattr(config, k) for k in RECIPE_FIELDS},
            **advanced,
        )  # fmt: skip


def scrubbed(recipe: dict[str, Any], job: Job, upload: bool) -> dict[str, Any]:
    """A recipe without the server paths of a job's uploads (their hashes identify them);
    ``upload``: the start is one."""
    uploads = {"start": job.start.source if upload else None,
               "guide": job.guide, "mask": job.mask}  # fmt: skip
    for key, ref in uploads.items():
        if ref is not None and not ref.input.startswith("sample:"):
            where = recipe["start"]["source"] if key == "start" else recipe[key]
            name = "upload" if key == "start" else key
            where.update(input=name, path=name)
    return recipe


def public(message: str, *paths: str | None) -> str:
    """A message for the page: the server's file paths replaced by their names."""
    for path in [*paths, tempfile.gettempdir()]:
        if path:
            message = message.replace(str(Path(path).parent) + os.sep, "")
    return re.sub(r"(/[^\s/:]+)+/([^\s/:]+)", r"\2", message)


def _status(p: Progress) -> str:
    return (
        f"octave {p.octave}/{p.octaves} ({p.shape[1]}x{p.shape[0]}) - "
        f"{format_seconds(p.elapsed)} elapsed, ETA {format_seconds(p.eta)}"
    )


os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
