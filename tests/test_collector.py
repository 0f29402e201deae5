"""The collector (`lwise-build serve`) without a browser: balanced assignment, idempotent fsynced
appends, restarts, concurrency, its HTTP API and one-line failures."""

from __future__ import annotations

import json
import threading
from collections import Counter
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from lwise_build.cli import main
from lwise_build.collector import bind, open_collector
from lwise_build.errors import UserError
from lwise_build.io.collector_store import CollectorStore, StoreError

MANIFEST = {"build": "b" * 16, "corpus": "toy", "order": ["control", "lwise"],
            "conditions": {"control": {"weight": 2, "sequences": [{}] * 4}, "lwise": {"weight": 1, "sequences": [{}] * 2}}}


def rows(n: int, start: int = 0, role: str = "response") -> list[dict]:
    return [{"lwise_key": f"t{k}:{role}", "lwise_role": role, "position": k, "kind": "main", "phase": "train",
             "correct": k % 2 == 0} for k in range(start, start + n)]


def test_assignment_is_the_blocked_design_and_never_shares_a_sequence(tmp_path: Path):
    store = CollectorStore(tmp_path / "s", MANIFEST)
    got = []
    threads = [threading.Thread(target=lambda i=i: got.append(store.assign(f"p{i}")), name=str(i)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    pairs = [(a["condition"], a["sequence"]) for a in got]
    assert Counter(c for c, _ in pairs) == {"control": 4, "lwise": 2} and len(set(pairs)) == 6  # exactly by weight
    assert sorted(a["index"] for a in got) == list(range(6))
    by_index = {a["index"]: (a["condition"], a["sequence"]) for a in got}
    assert [by_index[i] for i in range(6)] == [("control", 0), ("control", 1), ("lwise", 0), ("control", 2),
                                              ("control", 3), ("lwise", 1)]  # condition = index mod slots
    again = store.assign("p3")
    assert (again["condition"], again["sequence"], again["index"]) == next(
        (a["condition"], a["sequence"], a["index"]) for a in got if a["participant"] == "p3")  # a returning id
    with pytest.raises(StoreError, match="the study is full"):
        store.assign("p-late")
    store.close()


def test_fixed_and_url_assignments_take_free_sequences_only(tmp_path: Path):
    store = CollectorStore(tmp_path / "s", MANIFEST)
    assert store.assign("a", fixed="lwise")["sequence"] == 0
    assert (store.assign("b", condition="lwise", sequence="1")["how"]) == "url"
    with pytest.raises(StoreError, match="every sequence of condition lwise"):
        store.assign("c", fixed="lwise")
    with pytest.raises(StoreError, match="does not exist or is taken"):
        store.assign("d", condition="control", sequence="9")
    nxt = store.assign("e")  # index 0 is control 0; lwise's sequences are taken, so index 2 is skipped later
    assert (nxt["condition"], nxt["sequence"], nxt["index"]) == ("control", 0, 0)
    assert [store.assign(f"f{i}")["index"] for i in range(3)] == [1, 3, 4]


def test_appends_are_idempotent_fsynced_and_survive_a_restart(tmp_path: Path, monkeypatch):
    synced = []
    real = __import__("os").fsync
    monkeypatch.setattr("lwise_build.io.collector_store.os.fsync", lambda fd: (synced.append(fd), real(fd)))
    store = CollectorStore(tmp_path / "s", MANIFEST)
    a = store.assign("p1", source="prolific")
    assert store.append("p1", rows(3)) == {"stored": 3, "added": 3} and synced
    assert store.append("p1", rows(3) + rows(2, start=3)) == {"stored": 5, "added": 2}  # a resent batch adds nothing
    store.close()
    session = next((tmp_path / "s" / "sessions").iterdir())
    assert session.name.startswith(f"{a['condition']}-{a['sequence']:03d}-")
    session.write_bytes(session.read_bytes() + b'{"lwise_key": "t9:resp')  # a crash mid-write
    again = CollectorStore(tmp_path / "s", MANIFEST)
    back = again.assign("p1")
    assert back["index"] == 0 and [t["position"] for t in back["trials"]] == [0, 1, 2, 3, 4] and not back["completed"]
    assert session.read_bytes().endswith(b"\n") and len(session.read_text().splitlines()) == 5  # the torn line is cut
    assert again.assign("p2")["index"] == 1  # the counter continues after the restart
    assert again.append("p1", rows(1, start=5, role="end") + rows(5)) == {"stored": 6, "added": 1}
    assert again.assign("p1")["completed"]
    keys = [json.loads(line)["lwise_key"] for line in session.read_text().splitlines()]
    assert len(keys) == len(set(keys)) == 6


def test_concurrent_appends_keep_every_row_once(tmp_path: Path):
    store = CollectorStore(tmp_path / "s", MANIFEST)
    for i in range(4):
        store.assign(f"p{i}")

    def send(i: int) -> None:
        for k in range(0, 40, 4):  # each batch twice, as a reload would
            store.append(f"p{i}", rows(4, start=k))
            store.append(f"p{i}", rows(6, start=max(0, k - 2)))

    threads = [threading.Thread(target=send, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for f in (tmp_path / "s" / "sessions").iterdir():
        positions = [json.loads(line)["position"] for line in f.read_text().splitlines()]
        assert sorted(positions) == list(range(40))


def test_one_collector_per_store_and_per_build(tmp_path: Path):
    first = CollectorStore(tmp_path / "s", MANIFEST)
    with pytest.raises(UserError, match="another collector is using this store"):
        CollectorStore(tmp_path / "s", MANIFEST)
    first.close()
    with pytest.raises(UserError, match=f"holds sessions of experiment build {'b' * 16}, but the experiment is now build"):
        CollectorStore(tmp_path / "s", {**MANIFEST, "build": "c" * 16})
    (tmp_path / "s" / "assignments.jsonl").write_text('{"participant": "x"\n{}\n')
    with pytest.raises(UserError, match=r"assignments.jsonl:1: not a JSON line"):
        CollectorStore(tmp_path / "s", MANIFEST)


def test_http_api(tmp_path: Path):
    folder = tmp_path / "exp"
    folder.mkdir()
    (folder / "index.html").write_text("<html>hi</html>")
    (folder / "manifest.json").write_text(json.dumps(MANIFEST))
    lib = tmp_path / "node_modules" / "jspsych"
    lib.mkdir(parents=True)
    (lib / "x.js").write_text("// js")
    app, store = open_collector(folder, tmp_path / "s", tmp_path / "node_modules")
    with TestClient(app) as http:
        assert http.get("/api/hello").json() == {"collector": "lwise-build", "build": "b" * 16, "corpus": "toy"}
        assert http.get("/").text == "<html>hi</html>" and http.get("/node_modules/jspsych/x.js").text == "// js"
        a = http.post("/api/assign", json={"participant": "p1", "source": "prolific"}).json()
        assert (a["condition"], a["sequence"], a["how"], a["trials"]) == ("control", 0, "collector", [])
        assert http.post("/api/trials", json={"participant": "p1", "rows": rows(2)}).json() == {"stored": 2, "added": 2}
        for body, status, text in (
                ({"participant": "nobody", "rows": rows(1)}, 404, "has no assignment"),
                ({"participant": "p1", "rows": [{"position": 1}]}, 400, "lwise_key"),
                ({"participant": "p1", "rows": [{"lwise_key": "k", "participant": "p2"}]}, 400, "another participant"),
                ({"participant": "p1", "rows": "x"}, 400, "a list of objects")):
            r = http.post("/api/trials", json=body)
            assert r.status_code == status and text in r.json()["error"]
        r = http.post("/api/trials", content=b"[" * 1000, headers={"Content-Type": "application/json"})
        assert r.status_code == 400 and r.json() == {"error": "the body is not JSON"}
        r = http.post("/api/trials", content=b"x" * 4_000_001, headers={"Content-Type": "application/json"})
        assert r.status_code == 413
        assert http.post("/api/assign", json={"participant": ""}).status_code == 400
    store.close()
    with pytest.raises(UserError, match="no built experiment to serve"):
        open_collector(tmp_path / "nothing", tmp_path / "s2")
    with pytest.raises(UserError, match="no jspsych package there"):
        open_collector(folder, tmp_path / "s3", tmp_path)


def test_serve_in_use_port_is_one_line(tmp_path: Path, capsys, monkeypatch, data_root: Path):
    (data_root / "toy" / "experiment").mkdir(parents=True)
    (data_root / "toy" / "experiment" / "manifest.json").write_text(json.dumps(MANIFEST))
    monkeypatch.chdir(tmp_path)
    (tmp_path / "params.yaml").write_text("corpora:\n  toy:\n    ingest: {source: 'builtin:digits'}\n")
    taken = bind("127.0.0.1", 0)
    port = taken.getsockname()[1]
    with pytest.raises(SystemExit):
        main(["serve", "toy", "--port", str(port), "--store", str(tmp_path / "s")])
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"error: --host 127.0.0.1 --port {port}: cannot listen there (Address already in use); choose another port"]
    taken.close()
