"""The chunked video's resume planner (``motion.chunks.plan_resume``), a pure function, checked
by its properties over random plans and random leftovers of interrupted runs: every frame ends
up written, a resumed chunk always starts from a dream that is on disk, a finished run dreams
nothing, a fresh run dreams every chunk from its burn-in."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from inceptionism.motion.chunks import Chunk, Resume, chunk_plan, plan_resume


@st.composite
def leftovers(draw):
    """A chunk plan and what an interrupted run left: frames written, burn-in frames and the
    earlier chunks' dreams of cross-faded frames on disk."""
    total = draw(st.integers(1, 40))
    cuts = draw(st.lists(st.integers(2, total), max_size=3)) if total > 1 else []
    plan = chunk_plan(total, draw(st.integers(1, 5)), sorted(set(cuts)),
                      draw(st.integers(0, 6)), draw(st.integers(0, 3)))  # fmt: skip
    frames = range(1, total + 1)
    have = set(draw(st.lists(st.sampled_from(frames), max_size=total)))
    stored = [j for c in plan for j in c.stored]
    tails = [j for c in plan for j in c.tail]
    burn_ok = (
        set(draw(st.lists(st.sampled_from(stored), max_size=len(stored)))) if stored else set()
    )
    tail_ok = set(draw(st.lists(st.sampled_from(tails), max_size=len(tails)))) if tails else set()
    return total, plan, have, burn_ok, tail_ok


def simulate(
    plan: list[Chunk], resumes: list[Resume], have: set[int], burn_ok: set[int]
) -> set[int]:
    """The frames a run following ``resumes`` writes (what ``_ChunkedVideo`` does with them)."""
    written: set[int] = set()
    earlier: set[int] = set()  # frames whose earlier-chunk dream this run makes
    later: set[int] = set()  # burn-in frames this run dreams again
    for r in resumes:
        c = plan[r.chunk]
        for k in range(r.keep, c.last + 1):
            if k < c.first:
                later.add(k)
            elif k in c.tail:
                earlier.add(k)
            elif k not in have:
                written.add(k)
    for n, p in enumerate(plan[:-1]):
        todo = [j for j in p.tail if j not in have]
        if not todo or not all(j in earlier for j in todo):
            continue
        again = any(r.chunk == n + 1 and r.burn_in_again for r in resumes)
        if all(j in (later if again else burn_ok) for j in todo):
            written.update(todo)
    return written


@settings(max_examples=400, deadline=None)
@given(leftovers())
def test_every_frame_is_written_after_a_resume(case):
    total, plan, have, burn_ok, tail_ok = case
    resumes = plan_resume(plan, have, burn_ok, tail_ok)
    written = simulate(plan, resumes, have, burn_ok)
    assert have | written >= set(range(1, total + 1))
    assert not written & have  # nothing already there is written again
    assert len({r.chunk for r in resumes}) == len(resumes)


@settings(max_examples=400, deadline=None)
@given(leftovers())
def test_a_resumed_chunk_starts_from_a_dream_on_disk(case):
    _total, plan, have, burn_ok, tail_ok = case
    for r in plan_resume(plan, have, burn_ok, tail_ok):
        c = plan[r.chunk]
        assert c.burn_start <= r.start <= r.keep <= c.last
        if r.start != c.burn_start:  # continues after a frame it finds on disk
            before = r.start - 1
            assert before >= c.first and set(range(c.first, r.start)) <= have
            assert before in (tail_ok if before in c.tail else have)
            assert not r.burn_in_again
        assert r.burn_in_again == (r.start == c.burn_start and c.burned)


@settings(max_examples=200, deadline=None)
@given(leftovers())
def test_a_finished_run_dreams_nothing_and_a_fresh_one_everything(case):
    total, plan, _have, burn_ok, tail_ok = case
    stored = {j for c in plan for j in c.stored}
    assert plan_resume(plan, set(range(1, total + 1)), stored, tail_ok) == []
    fresh = plan_resume(plan, set(), burn_ok, tail_ok)
    assert [r.chunk for r in fresh] == list(range(len(plan)))
    assert all(r.start == plan[r.chunk].burn_start for r in fresh)


def test_the_plan_covers_each_frame_once_and_fades_only_into_burned_chunks():
    plan = chunk_plan(24, 3, [10], 4, 3)
    kept = [k for c in plan for k in range(c.first, c.last + 1)]
    assert kept == list(range(1, 25))
    for before, c in zip(plan, plan[1:]):
        assert before.fade_out == c.fade_in
        assert c.fade_in == 0 or (c.burned and c.fade_in <= c.first - c.burn_start)
    assert plan[1].first == 9 and plan[2].first == 10 and plan[2].burn_start == 10  # the cut


def test_a_chunk_whose_faded_dream_is_gone_starts_again():
    """Chunk 1 (frames 1-12) fades into chunk 2 over 10-12; frame 12 is missing. Its dream
    continues from its own dream of 11, kept in crossfade/: when that file is there the chunk
    resumes at 12, when it is gone the chunk starts again from frame 1."""
    plan = chunk_plan(24, 2, [], 4, 3)
    assert list(plan[0].tail) == [10, 11, 12]
    have = set(range(1, 25)) - {12}
    stored = set(plan[1].stored)
    (resumed,) = plan_resume(plan, have, stored, {10, 11, 12})
    assert (resumed.chunk, resumed.start, resumed.keep) == (0, 12, 12)
    (again,) = plan_resume(plan, have, stored, {10, 12})
    assert (again.chunk, again.start, again.keep) == (0, 1, 1)
