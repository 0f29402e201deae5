"""Checkpoint sources and formats: built in tmp_path, loaded through the public ``load_model``."""

from __future__ import annotations

import functools
import http.server
import pickle
import threading
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from lwise_build import UserError, load_model
from lwise_build.models.checkpoints import read
from lwise_build.models.registry import create_net

ARCH, N_CLASSES = "smallcnn-tiny", 4


def _net(seed: int = 0, classes: int = N_CLASSES) -> torch.nn.Module:
    torch.manual_seed(seed)
    net, _ = create_net(ARCH, classes, 3)
    return net.eval()


def _images(n: int = 4) -> torch.Tensor:
    return torch.rand(n, 3, 16, 16, generator=torch.Generator().manual_seed(1))


def _same_logits(model, net, mean=0.5, std=0.25) -> None:
    x = _images()
    mean_t, std_t = (torch.as_tensor(v, dtype=torch.float32).view(1, -1, 1, 1) for v in (mean, std))
    with torch.no_grad():
        torch.testing.assert_close(model(x), net((x - mean_t) / std_t))


def test_plain_state_dict(tmp_path: Path) -> None:
    net = _net()
    torch.save(net.state_dict(), tmp_path / "plain.pt")
    model = load_model(str(tmp_path / "plain.pt"), arch=ARCH, num_classes=N_CLASSES)
    assert not model.training and model.num_classes == N_CLASSES
    _same_logits(model, net)


def test_head_size_inferred_when_num_classes_missing(tmp_path: Path) -> None:
    torch.save(_net(classes=7).state_dict(), tmp_path / "seven.pt")
    assert load_model(str(tmp_path / "seven.pt"), arch=ARCH).num_classes == 7


def test_robustness_library_checkpoint(tmp_path: Path) -> None:
    """Keys under module.model. are used, the attacker copy skipped, the normaliser becomes mean/std."""
    net, decoy = _net(0), _net(1)
    mean, std = torch.tensor([0.485, 0.456, 0.406]), torch.tensor([0.229, 0.224, 0.225])
    state = {f"module.model.{k}": v for k, v in net.state_dict().items()}
    state |= {f"module.attacker.model.{k}": v for k, v in decoy.state_dict().items()}
    state |= {"module.normalizer.new_mean": mean.view(3, 1, 1), "module.normalizer.new_std": std.view(3, 1, 1),
              "module.attacker.normalize.new_mean": mean.view(3, 1, 1)}
    torch.save({"model": state, "epoch": 90, "optimizer": {"lr": torch.tensor(0.1)}}, tmp_path / "robust.pt")
    model = load_model(str(tmp_path / "robust.pt"), arch=ARCH, num_classes=N_CLASSES)
    torch.testing.assert_close(model.mean.flatten(), mean)
    _same_logits(model, net, mean, std)


def test_state_dict_key_and_dataparallel_prefix(tmp_path: Path) -> None:
    net = _net()
    torch.save({"state_dict": {f"module.{k}": v for k, v in net.state_dict().items()}}, tmp_path / "dp.pth")
    _same_logits(load_model(str(tmp_path / "dp.pth"), arch=ARCH, num_classes=N_CLASSES), net)


def test_safetensors(tmp_path: Path) -> None:
    net = _net()
    save_file({k: v.contiguous() for k, v in net.state_dict().items()}, str(tmp_path / "w.safetensors"))
    _same_logits(load_model(str(tmp_path / "w.safetensors"), arch=ARCH, num_classes=N_CLASSES), net)


class _Evil:
    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


@pytest.mark.parametrize("legacy", [False, True])
def test_malicious_pickle_is_refused_without_running(tmp_path: Path, legacy: bool) -> None:
    marker = tmp_path / "pwned"
    evil = {"model": {"fc.weight": torch.zeros(2, 2)}, "payload": _Evil(marker)}
    path = tmp_path / "evil.pt"
    if legacy:
        path.write_bytes(pickle.dumps(evil, protocol=2))
    else:
        torch.save(evil, path)
    with pytest.raises(UserError, match="refused") as info:
        load_model(str(path), arch=ARCH, num_classes=N_CLASSES)
    assert "\n" not in str(info.value) and str(path) in str(info.value)
    assert not marker.exists()


def test_mismatched_head_fails_clearly(tmp_path: Path) -> None:
    torch.save(_net(classes=10).state_dict(), tmp_path / "ten.pt")
    with pytest.raises(UserError, match=r"head has 10 classes but the model has 4") as info:
        load_model(str(tmp_path / "ten.pt"), arch=ARCH, num_classes=4)
    assert "\n" not in str(info.value)


def test_wrong_architecture_fails_clearly(tmp_path: Path) -> None:
    net, _ = create_net("smallcnn", N_CLASSES, 3)
    torch.save(net.state_dict(), tmp_path / "other.pt")
    with pytest.raises(UserError, match="does not fit arch"):
        load_model(str(tmp_path / "other.pt"), arch=ARCH, num_classes=N_CLASSES)


def test_not_a_checkpoint(tmp_path: Path) -> None:
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint at all")
    with pytest.raises(UserError, match="junk.pt"):
        read(str(tmp_path / "junk.pt"))
    with pytest.raises(UserError, match="file not found"):
        read(str(tmp_path / "missing.pt"))


def test_hf_source_with_revision(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import huggingface_hub

    net = _net()
    local = tmp_path / "hub.safetensors"
    save_file({k: v.contiguous() for k, v in net.state_dict().items()}, str(local))
    calls = []

    def fake_download(repo_id: str, filename: str, revision: str | None = None, **_: object) -> str:
        calls.append((repo_id, filename, revision))
        return str(local)

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", fake_download)
    model = load_model("hf://org/repo/weights/model.safetensors@v1.0", arch=ARCH, num_classes=N_CLASSES)
    assert calls == [("org/repo", "weights/model.safetensors", "v1.0")]
    _same_logits(model, net)
    with pytest.raises(UserError, match="expected hf://org/repo"):
        load_model("hf://org/repo", arch=ARCH)


def test_http_source_is_cached(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LWISE_CACHE", str(tmp_path / "cache"))
    served = tmp_path / "served"
    served.mkdir()
    net = _net()
    torch.save(net.state_dict(), served / "w.pt")
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(served))
    handler.log_message = lambda *a, **k: None  # type: ignore[attr-defined]
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/w.pt"
        _same_logits(load_model(url, arch=ARCH, num_classes=N_CLASSES), net)
        with pytest.raises(UserError, match="download failed"):
            load_model(url.replace("w.pt", "nope.pt"), arch=ARCH)
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
    cached = list((tmp_path / "cache" / "downloads").iterdir())
    assert [p.name.endswith("-w.pt") for p in cached] == [True]
    _same_logits(load_model(url, arch=ARCH, num_classes=N_CLASSES), net)  # served from the cache


def test_built_folder_and_unknown_source(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from lwise_build.models.classifier import Classifier
    from lwise_build.models.store import save_model

    net, stages = create_net(ARCH, 3, 1)
    save_model(Classifier(net, stages, [0.5], [0.25], ["a", "b", "c"], arch=ARCH), tmp_path / "m")
    model = load_model(str(tmp_path / "m"))
    assert model.classes == ["a", "b", "c"] and not any(p.requires_grad for p in model.parameters())
    # grayscale model fed RGB and RGB model fed grayscale both work (channels matched inside)
    assert model(torch.rand(2, 3, 16, 16)).shape == (2, 3)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(UserError, match="pass arch="):
        load_model("no-such-model")
