"""The studio's shared state and its dream: the loaded models (one per name, reused, a lock
each), the offered trained networks, the controls turned into the same :class:`Job` the CLI
builds (start, guide, mask, checked on their headers before any decoding), one dream streamed
with previews, cancel per visitor, and the folder of results the studio owns and removes on
exit. Sweeps and atlases (studio/sheets.py) and motion (studio/motion.py) build on it."""

from __future__ import annotations

import atexit
import shutil
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from PIL import Image

from inceptionism.configure import Options, build_config, parse_tile
from inceptionism.engine.config import DreamConfig
from inceptionism.engine.loop import Progress, resolve_objective
from inceptionism.engine.progress import format_seconds
from inceptionism.errors import InceptionismError
from inceptionism.io.image import LoadedImage, image_size, load_image
from inceptionism.io.samples import list_samples
from inceptionism.jobs.job import FileRef, Job, Start, blank_start, photo_start
from inceptionism.jobs.recipes import job_recipe
from inceptionism.jobs.run import RunContext, start_tensor, stream_job
from inceptionism.jobs.write import write_image
from inceptionism.models import DreamModel, get_model, get_spec, layer_table, list_models
from inceptionism.models.trained import class_names
from inceptionism.studio.controls import (
    ADVANCED,
    MAX_CELLS,
    PRESET_FIELDS,
    RECIPE_FIELDS,
    RESULT_LIFETIME,
    SOURCES,
    Controls,
    Limits,
)
from inceptionism.studio.recipe import public, replayed, scrubbed
from inceptionism.studio.trained import register_checkpoints

_D = DreamConfig()


class StudioBase:
    """``trained``: checkpoints of `inceptionism train` (files, or folders holding them)
    offered in the model list by their metadata's name."""

    def __init__(
        self,
        limits: Limits | None = None,
        device: str = "cpu",
        trained: Iterable[str | Path] = (),
    ):
        self.limits = limits or Limits()
        self.device = device
        self.models: dict[str, DreamModel] = {}
        self.locks: dict[str, threading.Lock] = {}
        self.registry_lock = threading.Lock()
        self.workdir = Path(tempfile.mkdtemp(prefix="inceptionism-studio-"))
        self.cancel_events: dict[str, threading.Event] = {}
        self.trained: dict[str, Path] = register_checkpoints(trained)
        atexit.register(self.close)

    def close(self) -> None:
        shutil.rmtree(self.workdir, ignore_errors=True)

    # --- what the controls offer -------------------------------------------------------------

    def model_names(self) -> list[str]:
        """The zoo's models, then the trained networks the studio was given (not networks of
        one's own registered elsewhere in this process)."""
        zoo = [n for n in list_models() if get_spec(n).origin is None]
        return [*zoo, *self.trained]

    def offers(self, model: str, network: dict[str, Any] | None = None) -> bool:
        """Whether the studio dreams with ``model`` (a recipe's ``network``: the trained
        checkpoint it records must be the one the studio offers under that name)."""
        if model in self.trained:
            checkpoint = (network or {}).get("checkpoint")
            return checkpoint == str(self.trained[model].resolve())
        return network is None and model in self.model_names()

    def layer_choices(self, model: str) -> tuple[list[str], list[str]]:
        """(every layer, the model's default layers)."""
        names = [i.name for i in layer_table(model) if i.stride]
        return names, [n for n, _ in get_spec(model).default_layers]

    def class_choices(self, model: str) -> list[str]:
        """The class names offered for ``model``'s class target: a trained network's classes
        (none for the zoo's networks: their classes are given by number)."""
        return list(class_names(model) or []) if model in self.trained else []

    def sample_names(self) -> list[str]:
        return [f"sample:{n}" for n in list_samples()]

    def preset_values(self, preset: str, model: str) -> dict[str, Any]:
        """The values a preset gives the page's sliders and advanced controls."""
        c = DreamConfig.preset(preset, model=model)
        values = {k: getattr(c, k) for k in PRESET_FIELDS}
        values["tile"] = str(values["tile"])
        return values

    # --- the job -----------------------------------------------------------------------------

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
        if c.model not in self.model_names():
            raise InceptionismError(f"the studio has no model {c.model!r}")
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
        base = replayed(c.recipe, self.limits.max_side)[0]
        if base is None or base.model != c.model:
            base = DreamConfig.preset(c.preset or "default", model=c.model)
        config = base.replace(init=init, **sliders, **advanced)
        if layers:
            config = config.replace(layers=layers)
        if c.guide:
            config = config.replace(objective="guide")
        if c.class_ is not None and str(c.class_).strip():
            every = {f: getattr(config, f) for f in DreamConfig.__dataclass_fields__}
            options = Options({**every, "class_": str(c.class_)}, frozenset(every))
            config = build_config(options)
        resolve_objective(config.model, config)
        return config

    def start(self, c: Controls, config: DreamConfig) -> tuple[Start, str]:
        """The job's start: the upload or sample checked on its header (never decoded before
        the pixel limit is applied), or noise; and the label the recipe records."""
        side = max(16, min(int(c.size), self.limits.max_side))
        source = self.source(c)
        if source == "noise":
            shape = replayed(c.recipe, self.limits.max_side)[1] or (side, side)
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

    # --- cancel ------------------------------------------------------------------------------

    def cancel(self, session: str = "") -> str:
        """Cancel the dream, sheet or motion run of this visitor (``session``) only."""
        self._event(session).set()
        return "cancelling..."

    def _event(self, session: str) -> threading.Event:
        with self.registry_lock:
            return self.cancel_events.setdefault(session, threading.Event())

    # --- a dream -----------------------------------------------------------------------------

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
        write_image(out, result, recipe)
        yield result.to_pil(), f"done in {time.monotonic() - began:.1f} s", str(out)

    # --- the results folder ------------------------------------------------------------------

    def _forget_old_results(self) -> None:
        now = time.time()
        for p in self.workdir.glob("*-*"):  # results, not Gradio's cache (gradio/)
            if now - p.stat().st_mtime > RESULT_LIFETIME:
                shutil.rmtree(p) if p.is_dir() else p.unlink(missing_ok=True)

    def _folder(self, kind: str) -> Path:
        folder = self.workdir / f"{kind}-{uuid.uuid4().hex[:12]}"
        folder.mkdir()
        return folder

    def _check_cells(self, count: int) -> None:
        if count > MAX_CELLS:
            raise InceptionismError(f"{count} cells; the studio dreams at most {MAX_CELLS}")

    def _rewrite(self, path: str | Path, recipe: dict[str, Any]) -> None:
        """A written file again with ``recipe`` (the server paths of uploads scrubbed)."""
        with Image.open(path) as im:
            write_image(path, im.copy(), recipe)


def _status(p: Progress) -> str:
    return (
        f"octave {p.octave}/{p.octaves} ({p.shape[1]}x{p.shape[0]}) - "
        f"{format_seconds(p.elapsed)} elapsed, ETA {format_seconds(p.eta)}"
    )
