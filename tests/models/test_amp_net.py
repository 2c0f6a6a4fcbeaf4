"""AMP-Net (ferlib/models/amp_net.py): shapes for every variant at 224 px, no dead modules,
parameter/MAC fidelity to the public code, the Eq. 7 loss, training, and the public checkpoint names."""

from __future__ import annotations

import json
import math

import pytest
import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

from ferlib.models import create_model, get_card
from ferlib.models._amp_net_keys import (
    AMPNET_OFFICIAL_UNUSED_PREFIXES,
    ampnet_official_key_map,
    map_ampnet_official_key,
)
from ferlib.models.output import ModelOutput

# Frontal-face 5 points (224 px, RetinaFace order) and a second, left-shifted face.
FACE_A = [(80, 96), (144, 96), (112, 128), (88, 168), (136, 168)]
FACE_B = [(32, 64), (96, 64), (64, 88), (40, 160), (88, 160)]


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def batch_224(n: int = 2, size: int = 224):
    torch.manual_seed(0)
    images = torch.randn(n, 3, size, size)
    faces = [FACE_A, FACE_B] * ((n + 1) // 2)
    landmarks = torch.tensor(faces[:n], dtype=torch.float32) * (size / 224)
    labels = torch.arange(n) % 7
    return images, landmarks, labels


VARIANTS = {
    "default": ("amp-net", {}),
    "r18": ("amp-net-r18", {}),
    "gp-plain-osa": ("amp-net", {"branches": ("gp",), "gp_block": "osa"}),
    "gp-channel-gate-residual": ("amp-net", {"branches": ("gp",), "gate_width": "channel", "gp_residual": True}),
    "lp-scheme1-roi-align": ("amp-net", {"branches": ("lp",), "lp_scheme": 1}),
    "lp-scheme2-equal-split": ("amp-net", {"branches": ("lp",), "lp_scheme": 2}),
    "lp-scheme3-modified-pbd": ("amp-net", {"branches": ("lp",), "lp_scheme": 3}),
    "ap-L6": ("amp-net", {"branches": ("ap",), "region_size": 6}),
    "ap-L8": ("amp-net", {"branches": ("ap",), "region_size": 8}),
    "ap-L12": ("amp-net", {"branches": ("ap",), "region_size": 12}),
    "ap-L14": ("amp-net", {"branches": ("ap",), "region_size": 14}),
    "only-gp": ("amp-net", {"branches": ("gp",)}),
    "only-lp": ("amp-net", {"branches": ("lp",)}),
    "only-ap": ("amp-net", {"branches": ("ap",)}),
    "gp+lp": ("amp-net", {"branches": ("gp", "lp")}),
    "gp+ap": ("amp-net", {"branches": ("gp", "ap")}),
    "lp+ap": ("amp-net", {"branches": ("lp", "ap"), "lam": 0.3}),
}


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_shapes_and_every_parameter_gets_a_gradient(variant):
    name, kwargs = VARIANTS[variant]
    torch.manual_seed(0)
    model = create_model(name, num_classes=7, **kwargs).train()
    images, landmarks, labels = batch_224()
    out = model(images, landmarks5=landmarks)
    assert isinstance(out, ModelOutput)
    assert out.logits.shape == (2, 7)
    branches = kwargs.get("branches", ("gp", "lp", "ap"))
    expected_heads = ({"gp"} if "gp" in branches else set()) | ({"lap"} if {"lp", "ap"} & set(branches) else set())
    assert set(out.branch_logits) == expected_heads
    for logits in out.branch_logits.values():
        assert logits.shape == (2, 7)
    if "lp" in branches:
        assert out.aux["lp_boxes"].shape == (2, 4, 4)
        assert out.aux["lp_attention"].shape == (2, 4, 7, 7)
    if "ap" in branches:
        size = kwargs.get("region_size", 10)
        assert out.aux["ap_boxes"].shape == (2, 5, 4)
        assert torch.all(out.aux["ap_boxes"][..., 2] - out.aux["ap_boxes"][..., 0] == size)
        assert out.aux["ap_attention"].shape == (2, 5, (size + 1) // 2, (size + 1) // 2)
    loss = model.loss(out, {"label": labels})
    assert loss.ndim == 0 and torch.isfinite(loss)
    loss.backward()
    dead = [n for n, p in model.named_parameters() if p.grad is None or not torch.isfinite(p.grad).all()]
    assert not dead, f"parameters without a gradient: {dead[:8]}"
    # parts() cover every parameter exactly once.
    part_params = sum(p.numel() for part in model.parts().values() for p in part.parameters())
    assert part_params == sum(p.numel() for p in model.parameters())


def test_parameters_match_the_public_forward():
    model = create_model("amp-net", num_classes=7)
    total = sum(p.numel() for p in model.parameters())
    assert abs(total - 59.4e6) / 59.4e6 < 0.03, total
    parts = {k: sum(p.numel() for p in v.parameters()) / 1e6 for k, v in model.parts().items()}
    facts = {"pre_extractor": 1.35, "lp": 42.31, "ap": 10.58, "gp": 3.48}
    for part, fact in facts.items():
        assert parts[part] == pytest.approx(fact, abs=0.01), (part, parts[part])
    # The card records both the paper's figure and the public forward's.
    claims = get_card("amp-net").claims
    assert claims.params["total"] == 105.67e6 and claims.reference_params["total"] == 59.4e6


def test_gmacs_per_part_under_flop_counter():
    model = create_model("amp-net", num_classes=7).eval()
    images, landmarks, _ = batch_224(1)
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(images, landmarks5=landmarks)
    counts = counter.get_flop_counts()
    gmacs = {k.split(".", 1)[1]: sum(v.values()) / 2e9 for k, v in counts.items() if k.count(".") == 1}
    facts = get_card("amp-net").claims.reference_gmacs
    for part, fact in facts.items():
        assert gmacs[part] == pytest.approx(fact, rel=0.02), (part, gmacs[part])
    assert counter.get_total_flops() / 2e9 == pytest.approx(4.72, abs=0.02)


def test_loss_is_eq7_on_a_hand_checked_batch():
    model = create_model("amp-net", num_classes=2, branches=("gp", "lp"), lp_scheme=2, lam=0.3)
    # z_G = (0, ln 3) → softmax (1/4, 3/4); z_LA = (0, 0) → (1/2, 1/2). Label 1 for the first sample;
    # second sample label 0 with z_G = (ln 3, 0) → p = 3/4 and z_LA = (ln 4, 0) → p = 4/5.
    gp = torch.tensor([[0.0, math.log(3)], [math.log(3), 0.0]])
    lap = torch.tensor([[0.0, 0.0], [math.log(4), 0.0]])
    out = ModelOutput(logits=0.3 * gp + 0.7 * lap, branch_logits={"gp": gp, "lap": lap})
    loss = model.loss(out, {"label": torch.tensor([1, 0])})
    ce_gp = (-math.log(3 / 4) - math.log(3 / 4)) / 2
    ce_lap = (math.log(2) - math.log(4 / 5)) / 2
    assert loss.item() == pytest.approx(0.3 * ce_gp + 0.7 * ce_lap, rel=1e-6)
    # Test-time logits of a real forward: λ·z_G + (1 − λ)·z_LA.
    images, _, _ = batch_224(2, size=112)
    out = model.eval()(images)
    torch.testing.assert_close(out.logits, 0.3 * out.branch_logits["gp"] + 0.7 * out.branch_logits["lap"])
    assert model.loss(out, {"label": torch.tensor([0, 1])}).item() == pytest.approx(
        (
            0.3 * F.cross_entropy(out.branch_logits["gp"], torch.tensor([0, 1]))
            + 0.7 * F.cross_entropy(out.branch_logits["lap"], torch.tensor([0, 1]))
        ).item(),
        rel=1e-6,
    )


def test_training_steps_lower_the_loss():
    torch.manual_seed(0)
    model = create_model("amp-net", num_classes=7).train()
    images, landmarks, labels = batch_224(4, size=112)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    losses = []
    for _ in range(6):
        out = model(images, landmarks5=landmarks)
        loss = model.loss(out, {"label": labels})
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.8 * losses[0], losses


def test_landmark_requirements_and_missing_points():
    model = create_model("amp-net", num_classes=7).eval()
    images, landmarks, _ = batch_224(2, size=112)
    with pytest.raises(ValueError, match="landmarks5"):
        model(images)
    # Unknown points (NaN) follow PBD case 2 / zero AP patches: outputs stay finite.
    landmarks[0, 3] = math.nan
    landmarks[1] = math.nan
    with torch.no_grad():
        out = model(images, landmarks5=landmarks)
    assert torch.isfinite(out.logits).all()
    assert torch.isnan(out.aux["ap_boxes"][1]).all() and torch.isfinite(out.aux["lp_boxes"]).all()
    # GP alone and the equal split need no landmarks.
    assert create_model("amp-net", branches=("gp",))(images).logits.shape == (2, 7)
    assert create_model("amp-net", branches=("lp",), lp_scheme="equal-split")(images).logits.shape == (2, 7)
    with pytest.raises(TypeError):
        create_model("amp-net", not_a_variant=1)
    with pytest.raises(ValueError, match="branches"):
        create_model("amp-net", branches=("gp", "xx"))


def test_cam_targets_receive_activations_and_gradients():
    model = create_model("amp-net", num_classes=7).eval()
    images, landmarks, _ = batch_224(1, size=112)
    targets = model.cam_targets()
    assert {"gp", "lp", "ap_eye1", "ap_mouth2"} <= set(targets)
    seen = {}
    hooks = [m.register_forward_hook(lambda mod, inp, out, n=n: seen.__setitem__(n, out)) for n, m in targets.items()]
    out = model(images, landmarks5=landmarks)
    for h in hooks:
        h.remove()
    acts = {n: a for n, a in seen.items()}
    for a in acts.values():
        a.retain_grad()
    out.logits[0, 3].backward()
    for name, a in acts.items():
        assert a.dim() == 4, name
        assert a.grad is not None and a.grad.abs().sum() > 0, name
    assert acts["lp"].shape[-2:] == (8, 8)  # 2×2 canvas of the four 4×4 region maps at 112 px


def _random_state_dict(record_path):
    record = json.loads(record_path.read_text())
    state = {}
    for t in record["tensors"]:
        dtype = torch.int64 if t["dtype"] == "int64" else torch.float32
        state[t["key"]] = torch.randint(0, 5, t["shape"]) if dtype == torch.int64 else torch.randn(t["shape"])
    return state


@pytest.mark.parametrize(
    "fmt,num_classes", [("ampnet-official-7class", 7), ("ampnet-official-vggface2-pretrain", 8631)]
)
def test_public_checkpoint_names_load_strictly(shared_dir, fmt, num_classes):
    state = _random_state_dict(shared_dir / "checkpoint-formats" / f"{fmt}.json")
    model = create_model("amp-net", num_classes=num_classes)
    mapped, unused = {}, []
    for key, value in state.items():
        target = map_ampnet_official_key(key)
        if target is None:
            unused.append(key)
        else:
            mapped[target] = value
    # Unused public modules are exactly the ones the public forward never calls.
    assert unused and all(k[len("module.") :].startswith(AMPNET_OFFICIAL_UNUSED_PREFIXES) for k in unused)
    assert {k.split(".")[1] for k in unused} == {
        *(f"layer4_2_{i}" for i in range(1, 6)),
        "Occlusionlayer",
        "Occlusionlayer1",
        "fc_1_1",
        "fc_2_1",
        "fc_4",
        "fc_4_1",
    }
    # Strict load: every ferlib tensor comes from the checkpoint with its exact shape, nothing left over.
    result = model.load_state_dict(mapped, strict=True)
    assert not result.missing_keys and not result.unexpected_keys
    for name, tensor in model.state_dict().items():
        assert torch.equal(tensor, mapped[name])
    # The model-side map is the inverse of the rule-based one.
    key_map = ampnet_official_key_map(model)
    assert set(key_map) == {k for k in state if map_ampnet_official_key(k) is not None}
    assert all(map_ampnet_official_key(pub) == ours for pub, ours in key_map.items())


def test_key_map_of_variants():
    gp_only = create_model("amp-net", branches=("gp",), gp_residual=True)
    key_map = ampnet_official_key_map(gp_only)
    ours = set(gp_only.state_dict())
    # The projected shortcut has no public counterpart; everything else does.
    assert {k for k in ours if ".shortcut." in k} == ours - set(key_map.values())
    assert "module.stage4.OSA4_1.ese.fc.weight" in key_map
    with pytest.raises(KeyError, match="checkpoint-formats"):
        map_ampnet_official_key("module.not_a_layer.weight")


def test_forward_compiles_as_one_graph():
    # fullgraph=True fails on any graph break: the region geometry has no data-dependent Python branching.
    model = create_model("amp-net", num_classes=7, branches=("lp", "ap"), lp_scheme=4).eval()
    images, landmarks, _ = batch_224(2, size=112)
    compiled = torch.compile(model, backend="eager", fullgraph=True)
    with torch.no_grad():
        torch.testing.assert_close(
            compiled(images, landmarks5=landmarks).logits, model(images, landmarks5=landmarks).logits
        )
