"""Outside weights per family (issue 11, finding 1): torchvision ResNet-18/34, torchvision VGG16 and
VGG-Face (``vgg_face_dag``) files of random values, written to temporary files, must arrive in every
tensor each family takes — compared by value against a placement written out by hand here (not read
from the models' own maps) — and a load that leaves part of that backbone at its init is refused.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
import torchvision

from ferlib.data.transforms import IMAGENET_MEAN, IMAGENET_STD, normalize_images
from ferlib.models import create_model, load_checkpoint
from ferlib.models.checkpoints import CheckpointError, IncompleteLoadError

VGG_CONVS = (0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28)
VGG_FACE_CONVS = ("1_1", "1_2", "2_1", "2_2", "3_1", "3_2", "3_3", "4_1", "4_2", "4_3", "5_1", "5_2", "5_3")


def _random_like(state: dict[str, torch.Tensor], seed: int) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    out = {}
    for k, v in state.items():
        if v.dtype == torch.int64:
            out[k] = torch.randint(0, 100, v.shape, generator=g)
        else:
            out[k] = torch.randn(v.shape, generator=g) * 0.1 + (1.0 if k.endswith("running_var") else 0.0)
    return out


def _resnet_file(tmp: Path, depth: int, prefix: str = "", head: int = 1000, seed: int = 0) -> tuple[Path, dict]:
    tv = {18: torchvision.models.resnet18, 34: torchvision.models.resnet34}[depth](weights=None, num_classes=head)
    state = _random_like(tv.state_dict(), seed)
    path = tmp / f"resnet{depth}-{head}.pth"
    torch.save({prefix + k: v for k, v in state.items()}, path)
    return path, state


# -- where each family puts torchvision ResNet names (written out by hand) ---------------------------


def _lan(k: str) -> str | None:
    return None if k.startswith("fc.") else "backbone." + ("stem." + k if k.startswith(("conv1.", "bn1.")) else k)


def _ffra(split: str):
    pre = ("layer1", "layer2", "layer3") if split == "layer3" else ("layer1", "layer2")

    def place(k: str) -> str | None:
        top = k.split(".")[0]
        if top == "fc":
            return None
        if top in ("conv1", "bn1"):
            return "pre_extractor.stem." + k
        return ("pre_extractor." if top in pre else "last_stage.") + k

    return place


def _pre_two_stages(stem: str):
    def place(k: str) -> str | None:
        top = k.split(".")[0]
        if top in ("conv1", "bn1"):
            return stem + k
        return "pre_extractor." + k if top in ("layer1", "layer2") else None

    return place


RESNET_CASES = {
    # model, variant, file depth, placement, the ferlib parts that must be filled completely
    "resnet18": ("resnet18", {}, 18, lambda k: None if k.startswith("fc.") else k, ("conv1.", "bn1.", "layer")),
    "resnet34": ("resnet34", {}, 34, lambda k: None if k.startswith("fc.") else k, ("conv1.", "bn1.", "layer")),
    "lan": ("lan", {}, 18, _lan, ("backbone.",)),
    "ffra-net": ("ffra-net", {}, 18, _ffra("layer3"), ("pre_extractor.", "last_stage.")),
    "ffra-net-split2": ("ffra-net", {"split": "layer2"}, 18, _ffra("layer2"), ("pre_extractor.", "last_stage.")),
    "ma-net": ("ma-net", {}, 18, _pre_two_stages("pre_extractor."), ("pre_extractor.",)),
    "amp-net": ("amp-net", {}, 34, _pre_two_stages("pre_extractor.stem."), ("pre_extractor.",)),
    "amp-net-r18": ("amp-net-r18", {}, 18, _pre_two_stages("pre_extractor.stem."), ("pre_extractor.",)),
}


#: Every family with a DataParallel-wrapped MS-Celeb-1M file; plain ImageNet and VGGFace2 files for a few.
WRAPPINGS = [(case, "module.backbone.", 12666) for case in sorted(RESNET_CASES)] + [
    ("resnet18", "", 1000),
    ("ffra-net", "", 1000),
    ("amp-net-r18", "backbone.", 8631),
    ("ma-net", "backbone.", 8631),
]


@pytest.mark.parametrize("case,prefix,head", WRAPPINGS, ids=[f"{c}-{h}" for c, _, h in WRAPPINGS])
def test_resnet_layouts_fill_each_family(case, prefix, head, tmp_path):
    name, variant, depth, place, parts = RESNET_CASES[case]
    path, state = _resnet_file(tmp_path, depth, prefix, head, seed=depth + head)
    model = create_model(name, **variant)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    report = load_checkpoint(model, path, source="torchvision")
    own = model.state_dict()
    expected = {place(k): k for k in state if place(k) is not None}
    # every tensor of the parts the family takes arrives, by value, from the right file tensor
    assert set(expected) == {k for k in own if k.startswith(parts)}, case
    for target, key in expected.items():
        assert torch.equal(own[target], state[key].to(own[target].dtype)), (case, target)
    assert sorted(report.loaded) == sorted(expected) and report.unset == []
    assert report.layout == f"ResNet-{depth}"
    # the identity head never lands anywhere; everything outside the parts keeps its init
    assert prefix + "fc.weight" in report.ignored
    for k, v in own.items():
        if k not in expected and not (name.startswith("resnet") and k.startswith("fc.")):
            assert torch.equal(v, before[k]), (case, k)
    if name.startswith("resnet"):
        assert set(report.replaced_heads) == {"fc.weight", "fc.bias"}
        assert str(head) in report.replaced_heads["fc.weight"]


def test_a_head_of_the_model_s_class_count_is_loaded(tmp_path):
    path, state = _resnet_file(tmp_path, 18, head=7)
    model = create_model("resnet18")
    report = load_checkpoint(model, path, source="torchvision")
    assert torch.equal(model.fc.weight, state["fc.weight"]) and report.replaced_heads == {}


@pytest.mark.parametrize(
    "name,depth,missing",
    [
        ("amp-net", 18, "pre_extractor.layer1.2.conv1.weight"),  # a ResNet-18 into AMP-Net's ResNet-34
        ("resnet34", 18, "layer3.5.bn2.running_var"),
    ],
)
def test_a_partial_load_is_refused_naming_the_tensors(name, depth, missing, tmp_path):
    path, state = _resnet_file(tmp_path, depth)
    model = create_model(name)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(IncompleteLoadError) as info:
        load_checkpoint(model, path, source="torchvision")
    message = str(info.value)
    assert missing.rsplit(".", 1)[0] in message and "--init-partial" in message
    assert missing in info.value.report.unset
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items()), "a refused load changed the model"
    report = load_checkpoint(model, path, source="torchvision", partial=True)
    assert report.partial and missing in report.unset
    assert torch.equal(model.state_dict()[missing], before[missing])


def test_a_partial_file_is_refused(tmp_path):
    path, state = _resnet_file(tmp_path, 18)
    del state["conv1.weight"], state["bn1.running_mean"]
    torch.save(state, path)
    with pytest.raises(IncompleteLoadError, match=r"backbone\.stem\.conv1\.weight.*backbone\.stem\.bn1\.running_mean"):
        load_checkpoint(create_model("lan"), path, source="torchvision")


def test_wrong_depth_or_layout_is_refused(tmp_path):
    r34, _ = _resnet_file(tmp_path, 34)
    with pytest.raises(CheckpointError, match=r"ResNet-34.*layer1\.2"):
        load_checkpoint(create_model("lan"), r34, source="torchvision")
    vgg = tmp_path / "vgg_convs.pth"
    torch.save({"features.0.weight": torch.zeros(64, 3, 3, 3), "features.0.bias": torch.zeros(64)}, vgg)
    with pytest.raises(CheckpointError, match="takes torchvision ResNet weights.*VGG16"):
        load_checkpoint(create_model("ffra-net"), vgg, source="torchvision")
    face = tmp_path / "vgg_face_conv.pth"
    torch.save({"conv1_1.weight": torch.zeros(64, 3, 3, 3), "conv1_1.bias": torch.zeros(64)}, face)
    with pytest.raises(CheckpointError, match="vgg-face"):
        load_checkpoint(create_model("resnet18"), face, source="torchvision")
    r18, _ = _resnet_file(tmp_path, 18)
    with pytest.raises(CheckpointError, match="not VGG-Face"):
        load_checkpoint(create_model("resnet18"), r18, source="vgg-face")


def test_amp_net_mismatched_linear_is_refused_not_skipped(tmp_path):
    """AMP-Net has no ``num_classes`` attribute: only its two classifier heads may differ in class count."""
    model = create_model("amp-net-r18")
    state = {k: v.clone() for k, v in model.state_dict().items()}
    state["fusion.lp_fc.weight"] = torch.zeros(256, 2048)  # not a head: a 256-wide LP embedding
    path = tmp_path / "amp.pth"
    torch.save(state, path)
    with pytest.raises(CheckpointError, match=r"fusion\.lp_fc\.weight.*\(256, 2048\)"):
        load_checkpoint(create_model("amp-net-r18"), path, source="ferlib")
    eight = create_model("amp-net-r18", num_classes=8).state_dict()
    torch.save(eight, path)
    report = load_checkpoint(create_model("amp-net-r18"), path, source="ferlib")
    assert set(report.replaced_heads) == {
        f"fusion.{h}.{p}" for h in ("gp_head", "lap_head") for p in ("weight", "bias")
    }


# -- VGG16 and VGG-Face ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def vgg_files(tmp_path_factory):
    """One torchvision VGG16 file and one vgg_face_dag file of random values (the same values)."""
    tmp = tmp_path_factory.mktemp("vgg")
    shapes = {k: v.shape for k, v in torchvision.models.vgg16(weights=None).state_dict().items()}
    g = torch.Generator().manual_seed(5)
    tv = {k: torch.randn(s, generator=g) * 0.01 for k, s in shapes.items()}
    face = {}
    for name, index in zip(VGG_FACE_CONVS, VGG_CONVS, strict=True):
        face[f"conv{name}.weight"], face[f"conv{name}.bias"] = (
            tv[f"features.{index}.weight"],
            tv[f"features.{index}.bias"],
        )
    face["fc6.weight"] = tv["classifier.0.weight"].reshape(4096, 512, 7, 7)  # some copies keep fc6 as a conv
    face["fc6.bias"], face["fc7.weight"], face["fc7.bias"] = (
        tv["classifier.0.bias"],
        tv["classifier.3.weight"],
        tv["classifier.3.bias"],
    )
    face["fc8.weight"], face["fc8.bias"] = torch.randn(2622, 4096, generator=g), torch.zeros(2622)
    paths = {"torchvision": tmp / "vgg16.pth", "vgg-face": tmp / "vgg_face_dag.pth"}
    torch.save({"module." + k: v for k, v in tv.items()}, paths["torchvision"])
    torch.save(face, paths["vgg-face"])
    return paths, tv


def _vgg_place(k: str, with_fc: bool) -> str | None:
    part, index, leaf = k.split(".")
    i = int(index)
    if part == "features":
        return f"blocks1_4.{i}.{leaf}" if i < 24 else f"block5.{i - 24}.{leaf}"
    return f"classifier.{i}.{leaf}" if with_fc and i in (0, 3) else None


def _folded(w: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The fold as written in the brief: W' = W·255·σ per input channel, b' = b + Σ W·(255·μ − m_vgg)."""
    mean, std = torch.tensor(IMAGENET_MEAN), torch.tensor(IMAGENET_STD)
    m_vgg = torch.tensor([129.186279296875, 104.76238250732422, 93.59396362304688])
    w2 = w * (255 * std)[None, :, None, None]
    b2 = b + (w * (255 * mean - m_vgg)[None, :, None, None]).sum(dim=(1, 2, 3))
    return w2, b2


@pytest.mark.slow
@pytest.mark.parametrize("name", ["vgg16", "vgg16-se", "man"])
@pytest.mark.parametrize("source", ["torchvision", "vgg-face"])
def test_vgg_layouts_fill_each_family(name, source, vgg_files):
    paths, tv = vgg_files
    model = create_model(name)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    report = load_checkpoint(model, paths[source], source=source)
    own = model.state_dict()
    with_fc = name != "man"  # man.txt §IV-B: VGG-Face initialises the five conv blocks only, Xavier the rest
    expected = {_vgg_place(k, with_fc): k for k in tv if _vgg_place(k, with_fc) is not None}
    parts = ("blocks1_4.", "block5.") + (("classifier.0.", "classifier.3.") if with_fc else ())
    assert set(expected) == {k for k in own if k.startswith(parts)}
    for target, key in expected.items():
        value = tv[key]
        if source == "vgg-face" and key.startswith("features.0."):
            value = _folded(tv["features.0.weight"], tv["features.0.bias"])[key.endswith("bias")]
            torch.testing.assert_close(own[target], value, rtol=1e-5, atol=1e-5)
        else:
            assert torch.equal(own[target], value), (name, source, target)
    assert sorted(report.loaded) == sorted(expected) and report.unset == []
    for k, v in own.items():  # RASnet, the MA block, SE, fc8 and (MAN) fc6/fc7 keep their init
        if k not in expected:
            assert torch.equal(v, before[k]), (name, k)
    fc8 = "fc8.weight" if source == "vgg-face" else "module.classifier.6.weight"
    assert fc8 in report.ignored
    if name == "man":
        assert "on purpose" in report.ignored["fc6.weight" if source == "vgg-face" else "module.classifier.0.weight"]
    else:
        assert "2622" in report.replaced_heads["classifier.6.weight"] or source == "torchvision"
    if source == "vgg-face":
        assert any("conv1_1" in note for note in report.notes)


def test_vgg_face_fold_gives_the_same_activations():
    """conv1_1 of VGG-Face on its own input (RGB 0–255 minus its mean) equals the folded conv1_1 on
    ferlib's ImageNet-normalised input, exactly inside the image (the padding differs on the border)."""
    from ferlib.models._weight_layouts import fold_vgg_face_input

    g = torch.Generator().manual_seed(3)
    w, b = torch.randn(64, 3, 3, 3, generator=g, dtype=torch.float64), torch.randn(64, generator=g, dtype=torch.float64)
    images = torch.randint(0, 256, (2, 3, 32, 32), generator=g, dtype=torch.uint8)
    m_vgg = torch.tensor([129.186279296875, 104.76238250732422, 93.59396362304688], dtype=torch.float64)
    x_vgg = images.double() - m_vgg.view(1, 3, 1, 1)
    reference = F.conv2d(x_vgg, w, b, padding=1)
    w2, b2 = fold_vgg_face_input(w, b)
    ours = F.conv2d(normalize_images(images).double(), w2, b2, padding=1)
    inner = (slice(None), slice(None), slice(1, -1), slice(1, -1))
    torch.testing.assert_close(ours[inner], reference[inner], rtol=1e-5, atol=1e-4)
    # on the border only the padded taps differ: bounded by |W|·|255·μ − m_vgg|
    bound = (w.abs() * (255 * torch.tensor(IMAGENET_MEAN, dtype=torch.float64) - m_vgg).abs().view(1, 3, 1, 1)).sum()
    assert (ours - reference).abs().max() <= bound
    assert (ours - reference).abs().max() > 1e-3  # the border difference is real, and documented
