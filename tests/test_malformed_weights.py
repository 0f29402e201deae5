"""A truncated or malformed safetensors file is one line naming it, never a traceback (issue 23, item 7)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from safetensors.torch import save_file

from lwise_build.errors import UserError
from lwise_build.models.checkpoints import read
from lwise_build.models.classifier import Classifier
from lwise_build.models.registry import create_net
from lwise_build.models.store import load_model_dir, save_model


def _weights(path: Path) -> bytes:
    net, _ = create_net("smallcnn-tiny", 3, 1)
    save_file({k: v.contiguous() for k, v in net.state_dict().items()}, str(path))
    return path.read_bytes()


def test_truncated_and_malformed_safetensors_checkpoints_are_one_line(tmp_path: Path) -> None:
    good = _weights(tmp_path / "good.safetensors")
    head = int.from_bytes(good[:8], "little")
    broken = {"truncated": good[: 8 + head + 100],  # the header promises tensors the file lacks
              "bad-header": good[:8] + b"{" + b"x" * (head - 1) + good[8 + head:]}
    for name, data in broken.items():
        (tmp_path / f"{name}.safetensors").write_bytes(data)
        with pytest.raises(UserError) as exc:
            read(str(tmp_path / f"{name}.safetensors"))
        msg = str(exc.value)
        assert msg.startswith(f"checkpoint {tmp_path / name}.safetensors: not a readable safetensors file (")
        assert "\n" not in msg and len(msg) < 400


def test_a_truncated_built_model_is_one_line_naming_the_file(tmp_path: Path) -> None:
    net, stages = create_net("smallcnn-tiny", 3, 1)
    save_model(Classifier(net, stages, [0.5], [0.25], ["a", "b", "c"], "smallcnn-tiny"), tmp_path / "m")
    weights = tmp_path / "m" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-50])
    with pytest.raises(UserError, match=r"model\.safetensors: not readable \(.*\); rebuild the model"):
        load_model_dir(tmp_path / "m")
    assert json.loads((tmp_path / "m" / "config.json").read_text())["arch"] == "smallcnn-tiny"
