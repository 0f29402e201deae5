"""The Ray executor: the same bytes as the local one, on one node or two, through a killed actor;
one-line errors for an unreachable cluster and a missing extra. Every Ray here runs on
127.0.0.1 and is shut down by its test."""

from __future__ import annotations

import json
import os
import sys
import textwrap
from pathlib import Path

import pytest

os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")  # localhost stays 127.0.0.1 (before ray loads)
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
ray = pytest.importorskip("ray")

from support.folders import COLORS, make_folder, snapshot  # noqa: E402
from support.params import folder_corpus_params  # noqa: E402
from support.toy_models import save_smallcnns  # noqa: E402

from lwise_build.config.load import parse_params  # noqa: E402
from lwise_build.config.schema import to_plain  # noqa: E402
from lwise_build.errors import UserError  # noqa: E402
from lwise_build.stages.enhance.stage import Enhance  # noqa: E402
from lwise_build.stages.ingest.stage import Ingest  # noqa: E402
from lwise_build.stages.metamers.stage import Metamers  # noqa: E402
from lwise_build.stages.score.stage import Score  # noqa: E402

RAY_INIT = {"include_dashboard": False, "log_to_driver": False, "object_store_memory": 100 * 2**20}


def params(raw: Path, **ray):
    plain = json.loads(json.dumps(to_plain(folder_corpus_params(raw)), default=str))
    plain["executor"] = {"kind": "ray", "ray": {"actors": 2, **ray}}
    return parse_params(plain)


def build(monkeypatch, root: Path, raw: Path, executor: str, stages=(Score, Enhance, Metamers), **ray) -> dict:
    monkeypatch.setenv("LWISE_DATA", str(root / "data"))
    monkeypatch.setenv("LWISE_CACHE", str(root / "cache"))
    save_smallcnns(root / "data" / "toy" / "models", ("guide", "observer", "extra"), list(COLORS))
    p = params(raw, **ray)
    Ingest(p, "toy").run()
    used = {}
    for cls in stages:
        stage = cls(p, "toy", executor=executor)
        stage.run()
        used[cls.name] = {u.node for u in stage.ray_units}
    return used


@pytest.fixture
def raw(tmp_path: Path) -> Path:
    return make_folder(tmp_path / "raw", per_class=6)


@pytest.fixture
def local_ray():
    ray.init(num_cpus=2, _node_ip_address="127.0.0.1", **RAY_INIT)
    yield
    ray.shutdown()


def test_ray_build_equals_the_local_build(tmp_path, monkeypatch, raw, local_ray, caplog):
    build(monkeypatch, tmp_path / "local", raw, "local")
    with caplog.at_level("INFO", logger="lwise_build"):
        nodes = build(monkeypatch, tmp_path / "ray", raw, "ray")
    assert all(len(n) == 1 for n in nodes.values())  # it did run on Ray
    assert snapshot(tmp_path / "ray") == snapshot(tmp_path / "local")
    said = [r.getMessage() for r in caplog.records if "ray:" in r.getMessage()]
    assert len(said) >= 3 and all("node(s); start-up" in m for m in said)  # one line per Ray run


def test_utilisation_separates_start_up_from_busy_time():
    from lwise_build.stages.executors import UnitRun, utilisation

    runs = [UnitRun("n", "a", 4.0, 6.0), UnitRun("n", "a", 6.0, 8.0), UnitRun("n", "b", 5.0, 7.0)]
    # first batch began 4 s after submission; 6 busy seconds of 2 actors x 4 s
    assert utilisation(runs, 0.0) == "ray: 3 batches on 2 actor(s), 1 node(s); start-up 4.0 s, then actors busy 75%"
    assert utilisation([], 0.0) == "ray: nothing computed"


def test_two_nodes_share_the_work_and_give_the_same_bytes(tmp_path, monkeypatch):
    from ray.cluster_utils import Cluster
    from ray.data import DataContext

    raw = make_folder(tmp_path / "raw", per_class=16)  # 48 images: several batches per stage
    # Ray Data starts a pool's actors asynchronously, so the first actor up may take every batch
    # before the second is ready; waiting for the whole pool puts one batch on each node first.
    data_context = DataContext.get_current()
    waited, data_context.wait_for_min_actors_s = data_context.wait_for_min_actors_s, 120
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False,
                                                             "object_store_memory": 100 * 2**20})
    cluster.add_node(num_cpus=1, object_store_memory=100 * 2**20)
    try:
        ray.init(address=cluster.address, log_to_driver=False)
        nodes = build(monkeypatch, tmp_path / "ray", raw, "ray", stages=(Score, Enhance), address=cluster.address)
        assert len(nodes["enhance"] | nodes["score"]) == 2  # units ran on both nodes
        build(monkeypatch, tmp_path / "local", raw, "local", stages=(Score, Enhance))
        assert snapshot(tmp_path / "ray") == snapshot(tmp_path / "local")
    finally:
        data_context.wait_for_min_actors_s = waited
        ray.shutdown()
        cluster.shutdown()


CRASHING = textwrap.dedent('''
    import os
    import time
    from pathlib import Path
    from lwise_build.stages.score.stage import Score

    class CrashOnce(Score):
        """Kills its actor's process the first time it computes (the marker file says when)."""
        def compute(self, batch):
            marker = Path(os.environ["LWISE_TEST_CRASH_MARKER"])
            if marker.exists():
                marker.unlink()
                os._exit(1)
            return super().compute(batch)

    class AlwaysFails(Score):
        def compute(self, batch):
            raise ValueError("this unit is broken")

    class WaitsForTheFirst(Score):
        """Two batches (the first image, the rest); the second computes only once the first's
        result is in the driver's cache, and gives up after 30 s; it writes how many cached
        results it saw to LWISE_TEST_SEEN."""
        def batches(self, items):
            first = [it for it in items if it.payload.where == items[0].payload.where]
            return [first, [it for it in items if it not in first]]

        def compute(self, batch):
            cache, deadline = Path(os.environ["LWISE_TEST_CACHE_DIR"]), time.time() + 30
            later = len({it.payload.where for it in batch}) > 1
            while later and not list(cache.rglob("*.parquet")):
                if time.time() > deadline:
                    raise RuntimeError("the first batch never reached the cache")
                time.sleep(0.1)
            if later:
                Path(os.environ["LWISE_TEST_SEEN"]).write_text(str(len(list(cache.rglob("*.parquet")))))
            return super().compute(batch)
''')


def test_a_killed_actor_is_retried(tmp_path, monkeypatch, raw):
    (tmp_path / "crashmod.py").write_text(CRASHING)
    marker = tmp_path / "crash-once"
    marker.write_text("")
    monkeypatch.setenv("LWISE_TEST_CRASH_MARKER", str(marker))
    monkeypatch.setenv("PYTHONPATH", f"{tmp_path}{os.pathsep}{os.environ.get('PYTHONPATH', '')}")
    monkeypatch.syspath_prepend(str(tmp_path))
    import crashmod

    ray.init(num_cpus=2, _node_ip_address="127.0.0.1", **RAY_INIT)  # workers inherit PYTHONPATH
    try:
        build(monkeypatch, tmp_path / "ray", raw, "ray", stages=(crashmod.CrashOnce,))
    finally:
        ray.shutdown()
    assert not marker.exists()  # an actor did die, and the stage still finished
    build(monkeypatch, tmp_path / "local", raw, "local", stages=(Score,))
    assert snapshot(tmp_path / "ray")["scores/data-00000-of-00001.parquet"] == \
        snapshot(tmp_path / "local")["scores/data-00000-of-00001.parquet"]


def test_a_unit_that_keeps_failing_fails_the_stage_naming_it(tmp_path, monkeypatch, raw):
    (tmp_path / "crashmod.py").write_text(CRASHING)
    monkeypatch.setenv("PYTHONPATH", f"{tmp_path}{os.pathsep}{os.environ.get('PYTHONPATH', '')}")
    monkeypatch.syspath_prepend(str(tmp_path))
    import crashmod

    ray.init(num_cpus=2, _node_ip_address="127.0.0.1", **RAY_INIT)
    try:
        with pytest.raises(UserError, match=r"score: the unit of \d+ items starting with .* failed on Ray: "
                                             r"ValueError: this unit is broken"):
            build(monkeypatch, tmp_path / "ray", raw, "ray", stages=(crashmod.AlwaysFails,))
    finally:
        ray.shutdown()


def test_each_result_reaches_the_cache_while_later_batches_run(tmp_path, monkeypatch, raw):
    (tmp_path / "crashmod.py").write_text(CRASHING)
    monkeypatch.setenv("LWISE_TEST_CACHE_DIR", str(tmp_path / "ray" / "cache" / "score"))
    seen = tmp_path / "seen"
    monkeypatch.setenv("LWISE_TEST_SEEN", str(seen))
    monkeypatch.setenv("PYTHONPATH", f"{tmp_path}{os.pathsep}{os.environ.get('PYTHONPATH', '')}")
    monkeypatch.syspath_prepend(str(tmp_path))
    import crashmod

    ray.init(num_cpus=2, _node_ip_address="127.0.0.1", **RAY_INIT)  # workers inherit the env
    try:  # an interrupted run keeps every finished batch only if none is held back
        build(monkeypatch, tmp_path / "ray", raw, "ray", stages=(crashmod.WaitsForTheFirst,))
    finally:
        ray.shutdown()
    # the second batch ran only after the first batch's result was in the driver's cache
    assert seen.exists() and int(seen.read_text()) >= 1


def test_an_unreachable_cluster_is_one_line(tmp_path, monkeypatch, raw):
    with pytest.raises(UserError, match=r"cannot reach a Ray cluster at '127\.0\.0\.1:9'"):
        build(monkeypatch, tmp_path, raw, "ray", stages=(Score,), address="127.0.0.1:9")


def test_ray_not_installed_names_the_extra(tmp_path, monkeypatch, raw):
    monkeypatch.setitem(sys.modules, "ray", None)
    with pytest.raises(UserError, match=r"pip install 'lwise-build\[ray\]'"):
        build(monkeypatch, tmp_path, raw, "ray", stages=(Score,))
