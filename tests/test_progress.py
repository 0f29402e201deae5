"""Progress in logs: long work writes done/total lines with an ETA when stderr is not a terminal."""

from __future__ import annotations

import io
import logging
import sys

import pytest

from lwise_build import console


@pytest.fixture
def lines():
    """The lwise_build logger's lines during the test."""
    buf = io.StringIO()
    handler = logging.StreamHandler(buf)
    console.log.addHandler(handler)
    level = console.log.level
    console.log.setLevel(logging.INFO)
    try:
        yield lambda: buf.getvalue().splitlines()
    finally:
        console.log.removeHandler(handler)
        console.log.setLevel(level)


def test_a_log_gets_done_total_and_eta_lines(lines, monkeypatch):
    monkeypatch.setattr(sys, "stderr", io.StringIO())  # not a terminal
    bar = console.progress(total=10, desc="enhance shard 0", unit="steps")
    assert isinstance(bar, console.LogProgress)
    bar.every = 0.0  # a line on every update
    with bar:
        for _ in range(4):
            bar.update(1)
    got = lines()
    assert got[0].startswith("enhance shard 0: 1/10 steps (10%)") and "ETA" in got[0]
    assert "4/10 steps (40%)" in got[-1]  # the closing line says where it stopped
    assert len(got) == 5


def test_short_work_writes_nothing(lines):
    for _ in console.LogProgress(range(50), desc="quick", every=3600):
        pass
    assert lines() == []


def test_iterating_counts_items_and_threads_share_the_count(lines):
    bar = console.LogProgress(total=200, desc="units", unit="batches", every=3600)
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(lambda _: bar.update(1), range(200)))
    assert bar.n == 200
    assert "units: 200/200 batches" in bar.line(bar.start + 61) and "ETA" not in bar.line(bar.start + 61)


def test_durations_read_as_time_spans():
    assert [console.duration(s) for s in (4.2, 185, 7620)] == ["4s", "3m05s", "2h07m"]
