"""The executor interface and the local executor: jobs in, each result reported in order,
retries and cancel in one place."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from inceptionism.engine.loop import Progress
from inceptionism.engine.progress import format_seconds
from inceptionism.errors import InceptionismError
from inceptionism.io.image import LoadedImage
from inceptionism.jobs.job import Job
from inceptionism.jobs.run import RunContext, run_job

MAX_ATTEMPTS = 3  # times the driver gives one job to a worker before calling it failed


@dataclass(frozen=True)
class Done:
    """One finished job: its position in the list, the result (or the user error it raised),
    the seconds it took on its worker, and which worker ran it."""

    index: int
    job: Job
    image: LoadedImage | None
    error: InceptionismError | None = None
    seconds: float = 0.0
    worker: str = "local"


@dataclass(frozen=True)
class Tally:
    """Progress across all workers: jobs done of total, elapsed seconds since the first job."""

    done: int
    total: int
    failed: int
    elapsed: float

    @property
    def throughput(self) -> float | None:
        """Jobs a second so far."""
        return self.done / self.elapsed if self.done and self.elapsed > 0 else None

    @property
    def eta(self) -> float | None:
        rate = self.throughput
        return (self.total - self.done) / rate if rate else None

    def describe(self) -> str:
        rate = self.throughput
        shown = f"{rate * 60:.1f} jobs/min" if rate else "-- jobs/min"
        return f"{self.done}/{self.total} done, {shown}, ETA {format_seconds(self.eta)}"


OnDone = Callable[[Done, Tally], Any]


Live = Callable[[int, Job], Callable[[Progress], Any] | None]


class Executor:
    """Dreams a list of jobs and writes each job's outputs with its recipe. ``on_done(done,
    tally)`` is called once per job as it finishes (in any order for a parallel executor); a
    job's user error is reported there, not raised. ``live(i, job)`` may give a per-step
    progress callback (only where steps can be watched: the local executor)."""

    name = "local"
    parallel = False

    def open(self) -> Executor:
        """Connect (to a cluster) before any output is written; a bad address fails here."""
        return self

    def close(self) -> None:
        pass

    def __enter__(self) -> Executor:
        return self.open()

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def run(
        self,
        jobs: Sequence[Job],
        context: RunContext,
        on_done: OnDone | None = None,
        live: Live | None = None,
    ) -> list[Done]:
        raise NotImplementedError


class LocalExecutor(Executor):
    """Today's behaviour: each job in turn in this process, on the model ``context`` holds."""

    def run(
        self,
        jobs: Sequence[Job],
        context: RunContext,
        on_done: OnDone | None = None,
        live: Live | None = None,
    ) -> list[Done]:
        t0, results, failed = time.perf_counter(), [], 0
        for i, job in enumerate(jobs):
            began = time.perf_counter()
            try:
                image, error = run_job(job, context, live(i, job) if live else None), None
            except InceptionismError as e:
                image, error = None, e
                failed += 1
            done = Done(i, job, image, error, time.perf_counter() - began)
            results.append(done)
            if on_done is not None:
                on_done(done, Tally(i + 1, len(jobs), failed, time.perf_counter() - t0))
        return results
