"""The model registry and ``load_model``: architectures, normalisation inside, names from params."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import yaml

from lwise_build import UserError, load_model
from lwise_build.models.classifier import Classifier
from lwise_build.models.registry import architectures, create_net

ROOT = Path(__file__).resolve().parents[1]


def test_registry_names_and_did_you_mean() -> None:
    assert {"smallcnn", "smallcnn-tiny", "resnet18", "resnet50"} <= set(architectures())
    net, stages = create_net("smallcnn-tiny", 5, 1)
    assert stages[-1] == "fc" and net(torch.rand(2, 1, 16, 16)).shape == (2, 5)
    with pytest.raises(UserError, match="did you mean 'resnet50'"):
        create_net("resnet5O", 3)


def test_classifier_normalises_inside_and_matches_channels() -> None:
    torch.manual_seed(0)
    net, stages = create_net("smallcnn-tiny", 3, 3)
    model = Classifier(net, stages, [0.4, 0.5, 0.6], [0.2, 0.25, 0.3], ["a", "b", "c"])
    x = torch.rand(2, 3, 16, 16)
    mean, std = torch.tensor([0.4, 0.5, 0.6]).view(1, 3, 1, 1), torch.tensor([0.2, 0.25, 0.3]).view(1, 3, 1, 1)
    with torch.no_grad():
        torch.testing.assert_close(model(x), net((x - mean) / std))
        gray = torch.rand(2, 1, 16, 16)
        torch.testing.assert_close(model(gray), model(gray.expand(-1, 3, -1, -1)))
        assert model.forward_to(x, "block1").shape == (2, 16, 8, 8)


def test_unbuilt_checkpoint_model_loads_by_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from safetensors.torch import save_file

    torch.manual_seed(0)
    net, _ = create_net("smallcnn-tiny", 2, 1)
    save_file({k: v.contiguous() for k, v in net.state_dict().items()}, str(tmp_path / "w.safetensors"))
    params = {"models": {"imported": {"arch": "smallcnn-tiny", "corpus": "c", "in_channels": 1,
                                      "checkpoint": str(tmp_path / "w.safetensors"), "classes": ["x", "y"],
                                      "mean": [0.1], "std": [0.2]}},
              "corpora": {"c": {"ingest": {"source": "builtin:digits"}}}}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("LWISE_DATA", str(tmp_path / "data"))
    model = load_model("imported")
    assert model.classes == ["x", "y"] and not model.training
    x = torch.rand(3, 1, 16, 16)
    with torch.no_grad():
        torch.testing.assert_close(model(x), net.eval()((x - 0.1) / 0.2))
    with pytest.raises(UserError, match="not a model in params"):
        load_model("imported-typo")


@pytest.mark.slow
def test_default_robust_model_resists_pgd_far_better(data_root: Path) -> None:
    """The embedded default: through load_model, robust keeps far higher L2-PGD accuracy (eps 1)."""
    from lwise_build.config.load import load_params
    from lwise_build.io.images import to_tensor
    from lwise_build.io.paths import stage_dir
    from lwise_build.io.tables import read_table
    from lwise_build.ops.attacks import accuracy
    from lwise_build.stages.ingest.stage import Ingest
    from lwise_build.stages.train.stage import Train

    params = load_params(ROOT / "params.yaml")
    Ingest(params, "digits").run()
    table = read_table(stage_dir("digits", "images")).to_pylist()
    test = [r for r in table if r["split"] == "test"]
    x, y = to_tensor([r["image"]["bytes"] for r in test]), torch.tensor([r["label"] for r in test])
    acc, threads = {}, torch.get_num_threads()
    torch.set_num_threads(1)  # tiny convs: one thread is as fast, and far faster on a busy machine
    try:
        for name in ("digits-robust", "digits-standard"):
            Train(params, "digits", name).run()
            model = load_model(name, params=params)
            acc[name] = (accuracy(model, x, y), accuracy(model, x, y, eps=1.0, steps=10))
    finally:
        torch.set_num_threads(threads)
    (robust_clean, robust_pgd), (std_clean, std_pgd) = acc["digits-robust"], acc["digits-standard"]
    assert robust_clean > 0.7 and std_clean > 0.7
    assert robust_pgd > 0.5 and robust_pgd > std_pgd + 0.4


def test_batches_run_channels_last_one_channel_included() -> None:
    """``padded`` lays out NHWC strides even for one channel (where ``contiguous(memory_format=
    channels_last)`` changes nothing and convolutions take their slower NCHW path)."""
    import torch

    from lwise_build.models.inference import channels_last, padded

    x = torch.rand(3, 1, 8, 8)
    assert x.contiguous(memory_format=torch.channels_last).stride() == (64, 64, 8, 1)  # why padded exists
    out = padded(x, 4)
    assert out.shape == (4, 1, 8, 8) and out.stride() == (64, 1, 8, 1)
    assert torch.equal(out[:3], x) and not out[3].any()
    rgb = channels_last(torch.rand(2, 3, 4, 4))
    assert rgb.stride() == (48, 1, 12, 3)
