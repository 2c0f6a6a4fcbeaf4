"""Loading outside checkpoints (issue 4, "Loading outside checkpoints").

Every format recorded in ``../shared/checkpoint-formats/*.json`` (exact tensor names and shapes of
the public MA-Net / AMP-Net checkpoints; values are not included) is turned into a random state
dict with exactly those names and shapes, saved to a temporary file and loaded.
"""

from __future__ import annotations

import importlib
import json
import math
from pathlib import Path

import pytest
import torch
import torchvision

from ferlib.models import create_model, load_checkpoint
from ferlib.models._ma_net_keys import manet_official_key_map
from ferlib.models.checkpoints import CheckpointError, IncompleteLoadError

SHARED = Path(__file__).resolve().parents[2].parent / "shared"
FORMATS = SHARED / "checkpoint-formats"
FORMAT_FILES = sorted(FORMATS.glob("*.json")) if FORMATS.is_dir() else []

needs_shared = pytest.mark.skipif(
    not FORMATS.is_dir(), reason=f"checkpoint formats not found at {FORMATS} (../shared beside the clone)"
)

#: format-name prefix -> (load_checkpoint source, ferlib model)
FAMILIES = {"manet-official": ("manet-official", "ma-net"), "ampnet-official": ("ampnet-official", "amp-net")}


def _family(fmt: dict) -> tuple[str, str]:
    for prefix, value in FAMILIES.items():
        if fmt["format"].startswith(prefix):
            return value
    raise AssertionError(f"format {fmt['format']!r} has no loader test; add its source to FAMILIES")


def _random_state(fmt: dict, seed: int = 0) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    state = {}
    for spec in fmt["tensors"]:
        shape = tuple(spec["shape"])
        if spec["dtype"] == "int64":
            state[spec["key"]] = torch.randint(0, 1000, shape, generator=generator, dtype=torch.int64)
        else:
            state[spec["key"]] = torch.randn(shape, generator=generator, dtype=getattr(torch, spec["dtype"]))
    return state


def _write_format(name: str, tmp_path: Path, seed: int = 0) -> tuple[dict, dict[str, torch.Tensor], Path]:
    fmt = json.loads((FORMATS / f"{name}.json").read_text())
    state = _random_state(fmt, seed)
    path = tmp_path / f"{name}.pth"
    torch.save(state, path)
    return fmt, state, path


@needs_shared
def test_format_records_are_consistent():
    assert FORMAT_FILES, f"no *.json in {FORMATS}"
    for file in FORMAT_FILES:
        fmt = json.loads(file.read_text())
        assert len(fmt["tensors"]) == fmt["num_tensors"], file.name
        buffers = ("running_mean", "running_var", "num_batches_tracked")
        params = sum(math.prod(t["shape"]) for t in fmt["tensors"] if not t["key"].endswith(buffers))
        # the recorded parameter count excludes BN buffers
        assert params == fmt["num_parameters"], file.name
        _family(fmt)


@needs_shared
def test_manet_7class_covers_every_ferlib_tensor(tmp_path):
    fmt, state, path = _write_format("manet-official-7class", tmp_path)
    model = create_model("ma-net", num_classes=7)
    report = load_checkpoint(model, path, source="manet-official")
    own = model.state_dict()
    assert report.missing == [] and report.ignored == {} and report.replaced_heads == {}
    assert len(report.loaded) == len(own) == fmt["num_tensors"]
    for key, tensor in state.items():
        torch.testing.assert_close(own[manet_official_key_map(key[len("module.") :])], tensor, rtol=0, atol=0)
    assert sum(p.numel() for p in model.parameters()) == fmt["num_parameters"]


@needs_shared
def test_manet_msceleb_pretrain_skips_identity_heads(tmp_path):
    fmt, state, path = _write_format("manet-official-msceleb-pretrain", tmp_path)
    torch.manual_seed(0)
    model = create_model("ma-net", num_classes=7)
    heads_before = {k: v.clone() for k, v in model.state_dict().items() if k.endswith((".head.weight", ".head.bias"))}
    report = load_checkpoint(model, path, source="manet-official")
    assert (
        set(report.replaced_heads)
        == set(heads_before)
        == {
            "local_branch.head.weight",
            "local_branch.head.bias",
            "global_branch.head.weight",
            "global_branch.head.bias",
        }
    )
    assert all("12666" in note for note in report.replaced_heads.values())
    assert set(report.ignored) == {"module.fc_1.weight", "module.fc_1.bias", "module.fc_2.weight", "module.fc_2.bias"}
    assert sorted(report.missing) == sorted(heads_before)
    own = model.state_dict()
    for key, value in heads_before.items():
        assert torch.equal(own[key], value), f"{key} should keep its initialisation"
    for key, tensor in state.items():
        target = manet_official_key_map(key[len("module.") :])
        if target not in heads_before:
            assert torch.equal(own[target], tensor), key
    assert "heads replaced" in report.summary()


@needs_shared
@pytest.mark.parametrize("name", ["ampnet-official-7class", "ampnet-official-vggface2-pretrain"])
def test_ampnet_formats_load(name, tmp_path):
    fmt, state, path = _write_format(name, tmp_path)
    model = create_model("amp-net", num_classes=7)
    report = load_checkpoint(model, path, source="ampnet-official")
    amp_net = importlib.import_module("ferlib.models._amp_net_keys")
    own = model.state_dict()
    if "vggface2" in name:
        # the 8,631-way VGGFace2 heads are skipped; everything else the forward uses is loaded
        assert len(report.replaced_heads) == 4
        assert all("8631" in note for note in report.replaced_heads.values())
        assert sorted(report.missing) == sorted(report.replaced_heads)
    else:
        assert report.missing == [] and report.replaced_heads == {}
    assert len(report.loaded) == len(own) - len(report.missing)
    for key in state:
        target = amp_net.map_ampnet_official_key(key)
        if target is not None and target in report.loaded:
            assert torch.equal(own[target], state[key]), key
    # what is left over are the modules the public forward never uses (or the skipped heads)
    for key, reason in report.ignored.items():
        assert amp_net.map_ampnet_official_key(key) is None or "class count" in reason, key


@needs_shared
@pytest.mark.parametrize("file", FORMAT_FILES, ids=[f.stem for f in FORMAT_FILES])
def test_every_recorded_format_has_a_loader(file, tmp_path):
    """Each recorded format, written as a file of random tensors (wrapped as trainers save them), loads through
    its source: every tensor the model received is, by value, a tensor of the file; every tensor of the file
    that is not reported ignored arrived; only replaced identity heads stay missing."""
    import hashlib
    from collections import Counter

    fmt, state, _ = _write_format(file.stem, tmp_path, seed=11)
    source, model_name = _family(fmt)
    path = tmp_path / f"{file.stem}-wrapped.pth"
    torch.save({"state_dict": state, "epoch": 7}, path)
    model = create_model(model_name, num_classes=7)
    report = load_checkpoint(model, path, source=source)
    own = model.state_dict()

    def fingerprint(tensor: torch.Tensor) -> tuple:
        return tuple(tensor.shape), hashlib.sha1(tensor.detach().float().contiguous().numpy().tobytes()).hexdigest()

    arrived = Counter(fingerprint(own[name]) for name in report.loaded)
    sent = Counter(fingerprint(tensor) for key, tensor in state.items() if key not in report.ignored)
    assert report.loaded and arrived == sent
    assert sorted(report.missing) == sorted(report.replaced_heads)
    assert set(report.ignored) < set(state)


@needs_shared
def test_shape_mismatch_is_refused_with_a_clear_message(tmp_path):
    fmt = json.loads((FORMATS / "manet-official-7class.json").read_text())
    state = _random_state(fmt)
    state["module.layer3_1_p2.0.conv1.weight"] = torch.randn(256, 64, 3, 3)
    path = tmp_path / "wrong.pth"
    torch.save({"state_dict": state, "epoch": 3}, path)
    model = create_model("ma-net")
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(model, path, source="manet-official")
    message = str(info.value)
    for needle in (
        str(path),
        "module.layer3_1_p2.0.conv1.weight",
        "(256, 64, 3, 3)",
        "(256, 128, 3, 3)",
        "local_branch.features.regions.1.layer3.0.conv1.weight",
        "strict_shapes=False",
    ):
        assert needle in message
    # skipping the mismatched tensor leaves it at its init: refused unless the partial start is asked for
    with pytest.raises(IncompleteLoadError, match=r"local_branch\.features\.regions\.1\.layer3\.0\.conv1\.weight"):
        load_checkpoint(model, path, source="manet-official", strict_shapes=False)
    report = load_checkpoint(model, path, source="manet-official", strict_shapes=False, partial=True)
    assert "module.layer3_1_p2.0.conv1.weight" in report.ignored
    assert report.missing == ["local_branch.features.regions.1.layer3.0.conv1.weight"]


def test_garbage_and_non_state_dict_files_are_named(tmp_path):
    model = create_model("ma-net", global_branch="lts", local_branch=None)
    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(b"this is not a checkpoint")
    with pytest.raises(CheckpointError, match="garbage.pth"):
        load_checkpoint(model, garbage, source="ferlib")
    listing = tmp_path / "list.pth"
    torch.save([1, 2, 3], listing)
    with pytest.raises(CheckpointError, match="list.pth.*does not hold a state dict"):
        load_checkpoint(model, listing, source="ferlib")
    with pytest.raises(CheckpointError, match="not found"):
        load_checkpoint(model, tmp_path / "absent.pth", source="ferlib")
    with pytest.raises(ValueError, match="unknown checkpoint source"):
        load_checkpoint(model, garbage, source="timm")


def test_torchvision_resnet18_loads_into_ma_net_pre_extractor(tmp_path):
    tv = torchvision.models.resnet18(weights=None)
    path = tmp_path / "face_resnet18.pth"
    torch.save(tv.state_dict(), path)
    model = create_model("ma-net")
    local_before = {k: v.clone() for k, v in model.local_branch.state_dict().items()}
    report = load_checkpoint(model, path, source="torchvision")
    own = model.state_dict()
    tv_state = tv.state_dict()
    pre_keys = [k for k in own if k.startswith("pre_extractor.")]
    assert sorted(report.loaded) == sorted(pre_keys)
    for key in pre_keys:
        assert torch.equal(own[key], tv_state[key[len("pre_extractor.") :]]), key
    # MA-Net re-defines the deeper stages: torchvision's layer3/layer4/fc are not forced into them
    assert {k.split(".")[0] for k in report.ignored} == {"layer3", "layer4", "fc"}
    for key, value in model.local_branch.state_dict().items():
        assert torch.equal(value, local_before[key])


def test_torchvision_resnet18_fills_the_lts_branch(tmp_path):
    tv = torchvision.models.resnet18(weights=None)
    path = tmp_path / "resnet18.pth"
    torch.save(tv.state_dict(), path)
    model = create_model("ma-net", global_branch="lts", local_branch="attention")
    report = load_checkpoint(model, path, source="torchvision")
    own = model.state_dict()
    assert torch.equal(own["global_branch.features.layer4.1.conv2.weight"], tv.state_dict()["layer4.1.conv2.weight"])
    assert set(report.ignored) == {"fc.weight", "fc.bias"}


def test_ferlib_round_trip_replaces_head_of_other_class_count(tmp_path):
    source = create_model("ma-net", global_branch="symmetric", local_branch=None, num_classes=8)
    path = tmp_path / "ferlib.pth"
    torch.save({"model": source.state_dict()}, path)
    target = create_model("ma-net", global_branch="symmetric", local_branch=None, num_classes=7)
    report = load_checkpoint(target, path, source="ferlib")
    assert set(report.replaced_heads) == {"global_branch.head.weight", "global_branch.head.bias"}
    own, src = target.state_dict(), source.state_dict()
    for key in report.loaded:
        assert torch.equal(own[key], src[key])
    assert len(report.loaded) == len(own) - 2
