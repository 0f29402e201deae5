"""The stage specs (lwise_build/stages/<name>/spec.py, in lwise_build/stages/registry.py) are what
the CLI stage commands, ``resolve``'s files, ``check``'s plan, its split checks and the report's
"configured" view are derived from; each agrees with the stage class that does the work."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from lwise_build.cli import cli
from lwise_build.config.load import parse_params
from lwise_build.stages.registry import BY_NAME, SPECS, plan

DATA = {
    "models": {"m": {"arch": "smallcnn-tiny", "corpus": "full", "train": {"epochs": 1}}},
    "corpora": {
        "bare": {"ingest": {"source": "builtin:digits"}},
        "full": {"ingest": {"source": "builtin:digits", "image_size": 32}, "score": {"models": {"a": "m"}},
                 "enhance": {"model": "m", "budgets": [0.5, 2]}, "metamers": {"generators": ["m"]},
                 "curricula": {"lwise": {"preset": "control"}}},
    },
}


@pytest.fixture(scope="module")
def params():
    return parse_params(DATA)


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.name)
def test_each_spec_agrees_with_its_stage_class(spec) -> None:
    cls = spec.load()
    assert cls.stage_spec is spec  # declared with `spec=SPEC`: everything below comes from it
    assert (cls.name, cls.output, cls.section) == (spec.name, spec.output, spec.section)
    assert cls.has_plots == spec.draws_figures
    assert cls.__module__ == f"lwise_build.stages.{spec.name}.stage"  # all of a stage in its folder
    assert spec.key is getattr(cls, "cache_key", None)  # the unit key its spec declares (key.py)


def test_enabled_follows_the_declared_key(params) -> None:
    optional = {s.name for s in SPECS if s.enabled_by}
    assert optional == {"score", "enhance", "curriculum", "metamers"}
    assert all(s.enabled(params, "full") for s in SPECS)
    assert {s.name for s in SPECS if not s.enabled(params, "bare")} == optional


def test_the_plan_has_a_line_per_stage_and_model(params) -> None:
    lines = plan(params)
    assert lines[:2] == ["resolve@bare -> data/bare/resolved  (source fingerprint, resolved params)",
                         "ingest@bare -> data/bare/images  (builtin:digits, 224 px)"]
    assert "enhance@bare -> data/bare/enhanced  (disabled)" in lines
    assert "train@m -> data/full/models/m  (train, smallcnn-tiny)" in lines
    assert "enhance@full -> data/full/enhanced  (guide m, budgets 0.5, 2)" in lines
    assert "report@full -> data/full/report/index.html" in lines
    assert len(lines) == 2 * (len(SPECS) - 1) + 1  # train: once, for full's one model


def test_the_commands_come_from_the_specs() -> None:
    for spec in SPECS:
        cmd = cli.commands[spec.name]
        names = [p.name for p in cmd.params]
        assert cmd.help == spec.help
        assert names[:2] == (["corpus", "model"] if spec.per == "model" else ["corpus", names[1]])
        assert ("executor" in names) == spec.executor, spec.name
        assert {"params_path", "out"} <= set(names)


def test_resolve_writes_one_file_per_spec(params, tmp_path: Path, monkeypatch) -> None:
    from lwise_build.stages.resolve.stage import Resolve

    monkeypatch.setenv("LWISE_DATA", str(tmp_path))
    monkeypatch.setenv("LWISE_CACHE", str(tmp_path / "cache"))
    Resolve(params, "full").run()
    written = {p.name for p in (tmp_path / "full" / "resolved").iterdir()}
    assert written == {"source.json", "train-m.json", *(f"{s.name}.json" for s in SPECS[1:] if s.per == "corpus")}


def test_the_report_page_keys_are_the_specs_sections(params) -> None:
    """report.js reads ``configured.<section>`` and ``configKeys.<section>`` for these four."""
    from lwise_build.stages.report.stage import CONFIG_KEYS, configured

    assert CONFIG_KEYS == {"score": "score.models", "enhance": "enhance.model", "curricula": "curricula",
                           "metamers": "metamers.generators"}
    assert configured(params, "bare") == dict.fromkeys(CONFIG_KEYS, False)
    assert configured(params, "full") == dict.fromkeys(CONFIG_KEYS, True)


def test_check_reads_the_splits_each_enabled_stage_declares(params) -> None:
    from lwise_build.stages.check import _use_findings

    counts = {"train": Counter({"0": 5, "1": 5}), "validation": Counter(), "test": Counter({"0": 1})}
    texts = [f.text for f in _use_findings(params, "full", counts, ["0", "1"]) if f.level == "error"]
    assert texts == ["corpora.full.enhance.splits: the validation split will have 0 images; enhance needs at least 1",
                     "corpora.full.metamers.split: the test split will have 1 images; metamers needs at least 2"]
    assert BY_NAME["enhance"].splits and not _use_findings(params, "bare", counts, ["0", "1"])


def test_an_unknown_executor_kind_from_the_python_api_is_one_line(params) -> None:
    """The kinds are declared once (config/executor.py); the executor refuses others by that list."""
    from types import SimpleNamespace

    from lwise_build.config.executor import EXECUTOR_KINDS
    from lwise_build.errors import UserError
    from lwise_build.stages.executors import LocalExecutor, executor_for

    ctx = SimpleNamespace(spec=params.corpus("full"), params=params)
    assert isinstance(executor_for(SimpleNamespace(ctx=ctx, executor="local", remote=True)), LocalExecutor)
    with pytest.raises(UserError, match=f"executor: must be one of {', '.join(EXECUTOR_KINDS)}, got 'dask'"):
        executor_for(SimpleNamespace(ctx=ctx, executor="dask", remote=True))


def test_units_are_keyed_for_the_device_the_actors_compute_on(params) -> None:
    """On Ray with GPUs per actor and device auto, a CPU head keys units as CUDA (what the actors
    compute on), and an actor on another device type refuses to compute them."""
    from types import SimpleNamespace

    from lwise_build.config.load import parse_params
    from lwise_build.stages.executors import compute_device_type, device_mismatch

    def stage(device: str, gpus: float, executor: str | None = None) -> SimpleNamespace:
        p = parse_params({**DATA, "device": device, "executor": {"kind": "ray", "ray": {"gpus_per_actor": gpus}}})
        return SimpleNamespace(ctx=SimpleNamespace(spec=p.corpus("full"), params=p, device=SimpleNamespace(type="cpu")),
                               executor=executor, remote=True)

    assert compute_device_type(stage("auto", 1)) == "cuda"
    assert compute_device_type(stage("auto", 0)) == "cpu"
    assert compute_device_type(stage("cpu", 1)) == "cpu"  # device: cpu keeps the actors on CPU
    assert compute_device_type(stage("auto", 1, executor="local")) == "cpu"  # --executor local
    assert device_mismatch("cuda", "cuda") == ""
    assert "this actor computes on cpu but the run's cache keys say cuda" in device_mismatch("cpu", "cuda")
