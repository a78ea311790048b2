"""Experiments as contact sheets: parameter sweeps, layer atlases, channel galleries.

Each cell is one ``dream_tensor`` call on a model loaded once; cells share the seed, so what
differs between them is the varied parameter only. Cells feature-visualised with the lucid
recipe (a channel gallery, an atlas of noise with ``--preset lucid``) are rendered together
instead, in batches of one forward/backward pass (featurevis.render). With a cells folder every
cell is also written as its own PNG with its recipe, and an interrupted run resumes from the
cells it has.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PIL import Image

from inceptionism.engine.config import DreamConfig
from inceptionism.engine.loop import Progress, resolve_objective
from inceptionism.engine.progress import ProgressBar
from inceptionism.errors import ConfigError, ImageError, InceptionismError, UnknownNameError
from inceptionism.executors.base import Done, Executor, LocalExecutor, Tally
from inceptionism.executors.select import make_executor
from inceptionism.explore.vary import NOT_FIELDS, VARIABLES, Cell
from inceptionism.featurevis.render import FeatureVisConfig, Rendering
from inceptionism.io.image import LoadedImage, read_recipe
from inceptionism.io.outputs import check_outputs
from inceptionism.jobs.job import FileRef, Job, Start
from inceptionism.jobs.recipes import job_recipe, same_work
from inceptionism.jobs.run import RunContext, render_featurevis, start_tensor
from inceptionism.jobs.write import write_image, write_sheet
from inceptionism.models import layer_index, layer_table

VARIABLES.update({name: name for name in NOT_FIELDS})


def cell_jobs(
    cells: list[Cell],
    start: Start,
    cells_dir: Path | None,
    refs: dict[str, FileRef],
    featurevis: FeatureVisConfig | None = None,
) -> list[Job]:
    """Every cell as a job: built (so checked: objective, guide, sizes) before any work. With
    ``featurevis`` the cells are one render of the lucid recipe, each cell's objective its unit."""
    units = []
    for cell in cells:
        try:
            units.append(str(resolve_objective(cell.config.model, cell.config)))
        except ConfigError as e:
            raise ConfigError(f"cell {cell.label}: {e}") from None
    jobs = []
    for k, cell in enumerate(cells, 1):
        rendering = Rendering(featurevis, tuple(units), k - 1) if featurevis else None
        try:
            jobs.append(
                Job(cell.config, start, cells_dir / f"{cell.key}.png" if cells_dir else None,
                    "cell", refs.get("guide"), refs.get("mask"), label=cell.label, index=k,
                    featurevis=rendering)
            )  # fmt: skip
        except ConfigError as e:
            raise ConfigError(f"cell {cell.label}: {e}") from None
    return jobs


def job_work(job: Job) -> float:
    """A job's work: steps times the pixels of every octave (what progress is weighted by)."""
    w, h = job.start.size or (512, 512)
    c = job.config
    shapes = [(h / c.octave_scale**i) * (w / c.octave_scale**i) for i in range(c.octaves)]
    return float(max(c.steps, 1) * sum(max(s, 256.0) for s in shapes))


def run_cells(
    run_for: Callable[[Job], RunContext],
    jobs: list[Job],
    report: Callable[[str], None] | None = None,
    executor: Executor | None = None,
) -> list[Image.Image]:
    """Dream every cell job (reusing cells an earlier run left in the cells folder when their
    recipe describes the same work) on ``executor`` (default: in this process); progress is
    weighted by each cell's work. ``run_for`` gives the loaded model a job runs on (a sweep may
    vary the model: each model's cells go to the executor together)."""
    executor = executor or LocalExecutor()
    images: list[Image.Image | None] = [None] * len(jobs)
    work = [job_work(j) for j in jobs]
    total, t0 = sum(work), time.perf_counter()
    state = {"done": 0.0, "dreamed": 0.0}
    todo: list[int] = []

    def line(k: int, what: str, job: Job) -> None:
        if report is not None:
            elapsed = time.perf_counter() - t0
            eta = elapsed / state["dreamed"] * (total - state["done"]) if state["dreamed"] else None
            shown = "--" if eta is None else f"{eta:.0f}s"
            report(f"cell {k}/{len(jobs)} {what}: {job.label}  elapsed {elapsed:.0f}s ETA {shown}")

    for k, job in enumerate(jobs, 1):
        path = job.output
        if path is not None and path.exists():
            try:
                found = read_recipe(path)
            except InceptionismError:
                raise ImageError(
                    f"{path} exists and is not a cell written by inceptionism; "
                    "choose another --cells folder"
                ) from None
            run = run_for(job)
            if same_work(found, job_recipe(job, run.model, run.weights_file)):
                with Image.open(path) as im:
                    images[k - 1] = im.convert("RGB")
                state["done"] += work[k - 1]
                line(k, "reused", job)
                continue
        todo.append(k - 1)

    renders: dict[Any, list[int]] = {}  # lucid cells: one batched render per shared render
    for i in todo:
        r = jobs[i].featurevis
        if r is not None:
            renders.setdefault((jobs[i].config.model, r.config, r.units), []).append(i)
    for group in renders.values():
        run = run_for(jobs[group[0]])

        def steps_line(p: Progress, group: list[int] = group) -> None:
            if report is not None and (p.step % 10 == 0 or p.step == p.steps):
                report(f"cells {group[0] + 1}-{group[-1] + 1}/{len(jobs)} rendered together: "
                       f"step {p.step}/{p.steps}, mean unit value {p.loss:.3f}")  # fmt: skip

        rendered = render_featurevis([jobs[i] for i in group], run, steps_line)
        for i, image in zip(group, rendered):
            output = jobs[i].output
            if output is not None:
                write_image(output, image, job_recipe(jobs[i], run.model, run.weights_file))
            images[i] = image.to_pil().convert("RGB")
            state["done"] += work[i]
            state["dreamed"] += work[i]
            line(i + 1, "rendered", jobs[i])
    todo = [i for i in todo if jobs[i].featurevis is None]

    for model in dict.fromkeys(jobs[i].config.model for i in todo):
        group = [i for i in todo if jobs[i].config.model == model]

        def live(i: int, job: Job, group: list[int] = group) -> Callable[[Progress], None] | None:
            if report is None:
                return None
            k = group[i] + 1
            bar = ProgressBar(label=f"cell {k}/{len(jobs)} {job.label}: ")  # the live step line
            base, share = state["done"], work[k - 1]

            def on_progress(p: Progress) -> None:
                fraction = (base + p.fraction * share) / total
                bar(dataclasses.replace(p, elapsed=time.perf_counter() - t0, fraction=fraction))

            return on_progress

        def done(d: Done, _tally: Tally, group: list[int] = group) -> None:
            if d.error is not None:
                raise d.error
            k = group[d.index] + 1
            assert d.image is not None
            images[k - 1] = d.image.to_pil().convert("RGB")
            state["done"] += work[k - 1]
            state["dreamed"] += work[k - 1]
            line(k, "dreamed", d.job)

        executor.run([jobs[i] for i in group], run_for(jobs[group[0]]), done, live)
    return [im for im in images if im is not None]


class Sheets:
    """A sheet command's work: the start, the loaded model(s), the executor, the outputs.

    ``load`` loads the model a config names (each once: ``--vary model=...``); ``report`` gets
    the progress lines (None: quiet); ``on_close`` registers the executor's shutdown."""

    def __init__(self, config: DreamConfig, start: Start, *, refs: dict[str, FileRef], out: Path,
                 cells_dir: Path | None, force: bool, load: Callable[[DreamConfig], RunContext],
                 executor: tuple[str, str], report: Callable[[str], None] | None,
                 on_close: Callable[[Callable[[], None]], Any]) -> None:  # fmt: skip
        if out.suffix.lower() != ".png":
            raise ImageError(f"{out}: sheets are written as .png")
        if cells_dir is not None and cells_dir.exists() and not cells_dir.is_dir():
            raise ImageError(f"--cells {cells_dir}: exists and is not a folder")
        self.config, self.start, self.refs, self.out = config, start, refs, out
        self.cells_dir, self.force, self.load, self.report = cells_dir, force, load, report
        self.executor_spec, self.on_close = executor, on_close
        self.runs: dict[str, RunContext] = {}
        self.executor: Executor | None = None

    def jobs(self, cells: list[Cell], fv: Any = None) -> list[Job]:
        """Every cell as a job, checked (objective, guide, sizes) before any work; with ``fv``
        (a FeatureVisConfig) rendered with the lucid recipe, in shared batches."""
        return cell_jobs(cells, self.start, self.cells_dir, self.refs, fv)

    def check(self, sheets: list[Path], jobs: list[Job]) -> None:
        """The sheets never overwrite an input (nor, without --force, a file); cells may be
        redone (they are reused when their recipe matches)."""
        reads = [p for job in jobs[:1] for p in job.reads]
        check_outputs(sheets, reads, self.force)
        check_outputs([p for job in jobs for p in job.writes], [*reads, *sheets], force=True)

    def context(self, config: DreamConfig) -> RunContext:
        if config.model not in self.runs:
            self.runs[config.model] = self.load(config)
        return self.runs[config.model]

    def dream(self, jobs: list[Job]) -> list[Image.Image]:
        if self.executor is None:  # the executor joined (a cluster) before the model or a write
            self.executor = make_executor(*self.executor_spec).open()
            self.on_close(self.executor.close)
        return run_cells(lambda job: self.context(job.config), jobs, self.report, self.executor)

    def photo(self) -> Image.Image | None:
        """The photo as the cells saw it (downscaled), for the sheet's first cell."""
        if self.start.source is None:
            return None
        photo = dataclasses.replace(self.start, kind="photo")
        return LoadedImage(start_tensor(photo, 0)[0]).to_pil()

    def write(self, path: Path, sheet: Image.Image, info: dict[str, Any]) -> None:
        write_sheet(path, sheet, info, self.config.model)
        if self.report is not None:
            self.report(f"wrote {path}")


def sheet_title(config: DreamConfig, skip: set[str], source: str) -> str:
    """``SOURCE: model=... steps=...``: the fields DreamConfig marks for titles, less ``skip``."""
    keys = [f.name for f in dataclasses.fields(DreamConfig)
            if f.metadata.get("title") and f.name not in skip]  # fmt: skip
    parts = [f"{k.replace('_', '-')}={getattr(config, k)}" for k in keys]
    return f"{source}: " + " ".join(p for p in parts if not p.endswith("=None"))


def atlas_layers(model: str, spec: str) -> list[tuple[str, int]]:
    """(name, channels) of the layers an atlas shows: ``all`` (every main-line layer with a
    grid) or a comma list, each checked against the model's table."""
    table = layer_table(model)
    if spec.strip() == "all":
        return [(i.name, i.channels) for i in table if "." not in i.name and i.stride > 0]
    by_name = layer_index(table)
    names = [n.strip() for n in spec.split(",") if n.strip()]
    if not names:
        raise ConfigError("--layers: name at least one layer, or 'all'")
    for n in names:
        if n not in by_name:
            raise UnknownNameError("layer", n, list(by_name), where=model)
    return [(n, by_name[n].channels) for n in names]


def pick_channels(model: str, layer: str, count: int, listed: str | None) -> list[int]:
    """The channels a gallery shows: exactly ``listed`` (3,17,42), else the first ``count``."""
    channels = layer_index(layer_table(model))[layer].channels
    if not listed:
        return list(range(min(count, channels)))
    try:
        picked = [int(c) for c in listed.split(",") if c.strip()]
    except ValueError:
        raise ConfigError(f"--channels: expected numbers like 3,17,42, got {listed!r}") from None
    bad = [c for c in picked if not 0 <= c < channels]
    if bad or not picked:
        raise ConfigError(f"--channels {bad or listed}: {layer} has channels 0..{channels - 1}")
    return picked


def lucid_title(fv: Any, what: str) -> str:
    """``WHAT: lucid param=... steps=...``: a lucid sheet's title."""
    shown = ("param", "transforms", "steps", "lr", "size", "seed")
    values = fv.to_dict()
    return f"{what}: lucid " + " ".join(f"{k.replace('_', '-')}={values[k]}" for k in shown)
