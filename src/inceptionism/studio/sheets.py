"""The studio's Explore tab: a sweep, an atlas and a channel gallery of the controls' dream
(explore/'s cells and runner), each written as a contact sheet plus every cell's PNG with its
recipe; a visitor's Cancel stops the run before its next cell (or step)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PIL import Image

from inceptionism.errors import InceptionismError
from inceptionism.executors.base import LocalExecutor
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
from inceptionism.io.image import read_recipe
from inceptionism.io.sheets import contact_sheet
from inceptionism.jobs.job import Job, blank_start
from inceptionism.jobs.run import RunContext
from inceptionism.jobs.write import write_sheet
from inceptionism.studio.base import StudioBase
from inceptionism.studio.controls import Controls
from inceptionism.studio.recipe import scrubbed

Line = Callable[[str], Any] | None  # gets each progress line of a sheet run


class _Stoppable(LocalExecutor):
    """The local executor, ``stop()`` asked before each cell and at each of its steps (it
    raises to end the run)."""

    def __init__(self, stop: Callable[[str | None], None]):
        self.stop = stop

    def run(self, jobs, ctx, on_done=None, live=None):  # type: ignore[no-untyped-def]
        def checked(_i: int, _job: Job) -> Callable[[Any], None]:
            self.stop(None)
            return lambda _progress: self.stop(None)

        return super().run(jobs, ctx, on_done, checked)


class Sheets(StudioBase):
    def sweep(
        self, c: Controls, vary: str, cell_size: int = 192, session: str = "", on_line: Line = None
    ) -> tuple[list[str], list[str]]:
        """`inceptionism sweep` of the controls' dream: once per combination of the ``vary``
        lines (NAME=V1,V2,...), as labelled sheets; returns the sheets and every cell's PNG
        with its recipe."""
        self._forget_old_results()
        job = self.job(c)
        varies = [v.strip() for v in vary.splitlines() if v.strip()]
        if not varies:
            raise InceptionismError("name what to vary: NAME=V1,V2 (e.g. step-size=0.003,0.01)")
        sheets = sweep_sheets(job.config, [parse_vary(v, job.config) for v in varies])
        total = sum(len(cells) for _, _, cells, _, _ in sheets)
        self._check_cells(total)
        folder = self._folder("sweep")
        skip = varied_fields([cell for _, _, cells, _, _ in sheets for cell in cells])
        stop = self._stopper(session, total, on_line)
        paths, cell_files = [], []
        for suffix, extras, cells, columns, rows in sheets:
            title = sheet_title(job.config, skip, job.label) + " ".join(["", *extras])
            info = {"kind": "sweep", "vary": varies, "extra": extras}
            name = f"sweep.{suffix}.png" if suffix else "sweep.png"
            path, files = self._sheet(job, cells, folder / name, columns, rows, title, info,
                                      cell_size, stop)  # fmt: skip
            paths.append(path)
            cell_files += files
        return paths, cell_files

    def atlas(
        self,
        c: Controls,
        layers: str = "all",
        cell_size: int = 192,
        session: str = "",
        on_line: Line = None,
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
                           cell_size, self._stopper(session, len(cells), on_line))  # fmt: skip

    def channels(
        self,
        c: Controls,
        layer: str,
        count: int = 9,
        cell_size: int = 128,
        lucid: bool = True,
        session: str = "",
        on_line: Line = None,
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
                           self._stopper(session, len(cells), on_line),
                           fv if lucid else None)  # fmt: skip

    def _stopper(self, session: str, total: int, on_line: Line) -> Callable[[str | None], None]:
        """What a sheet run calls with each progress line (None: a step): the line passed to
        ``on_line``, then the run ended (one line) once its visitor cancels. The visitor's
        earlier Cancel is forgotten."""
        cancel = self._event(session)
        cancel.clear()

        def stop(line: str | None = None) -> None:
            if line is not None and on_line is not None:
                on_line(line)
            if cancel.is_set():
                raise InceptionismError(f"cancelled: {total} cells asked, the rest not dreamed")

        return stop

    def _sheet(self, job: Job, cells: list[Cell], path: Path, columns: int, rows: list[str],
               title: str, info: dict[str, Any], size: int, stop: Callable[[str | None], None],
               fv: FeatureVisConfig | None = None) -> tuple[str, list[str]]:  # fmt: skip
        """The cells dreamed (explore/'s jobs and runner) and laid out as one sheet."""
        refs = {k: r for k in ("guide", "mask") if (r := getattr(job, k)) is not None}
        jobs = cell_jobs(cells, job.start, path.parent, refs, fv)
        with self.model(job.config.model)[1]:
            images = run_cells(lambda j: RunContext(self.model(j.config.model)[0]), jobs,
                               stop, _Stoppable(stop))  # fmt: skip
        files = []
        for cell_job in jobs:  # the cells' recipes without the upload's server path
            assert cell_job.output is not None
            self._rewrite(cell_job.output, scrubbed(read_recipe(cell_job.output), cell_job,
                                                    job.label == "upload"))  # fmt: skip
            files.append(str(cell_job.output))
        pairs: list[tuple[str, Image.Image | None]] = list(zip([c.label for c in cells], images))
        sheet = contact_sheet(pairs, columns, title, int(size), rows or None)
        write_sheet(path, sheet, info, job.config.model)
        return str(path), files
