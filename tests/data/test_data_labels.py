"""Native label maps → canonical order, and their agreement with the manifests."""

from __future__ import annotations

import pytest

from ferlib.data import native_labels as nl
from ferlib.data.labels import CANONICAL_CLASSES
from ferlib.data.manifests import list_manifests, load_manifest


def names(mapping):
    return {k: CANONICAL_CLASSES[v] for k, v in mapping.items()}


def test_rafdb_map():
    assert names(nl.RAFDB) == {1: "surprise", 2: "fear", 3: "disgust", 4: "happy", 5: "sad", 6: "anger", 7: "neutral"}
    assert names(nl.RAFDB_RAN) == {
        0: "surprise",
        1: "fear",
        2: "disgust",
        3: "happy",
        4: "sad",
        5: "anger",
        6: "neutral",
    }


def test_affectnet_fer2013_ckplus_kdef_maps():
    assert names(nl.AFFECTNET) == dict(enumerate(CANONICAL_CLASSES))
    assert set(nl.AFFECTNET_DROPPED) == {8, 9, 10}
    assert names(nl.FER2013) == {0: "anger", 1: "disgust", 2: "fear", 3: "happy", 4: "sad", 5: "surprise", 6: "neutral"}
    assert names(nl.CKPLUS) == {
        0: "neutral",
        1: "anger",
        2: "contempt",
        3: "disgust",
        4: "fear",
        5: "happy",
        6: "sad",
        7: "surprise",
    }
    assert names(nl.KDEF) == {
        "AF": "fear",
        "AN": "anger",
        "DI": "disgust",
        "HA": "happy",
        "NE": "neutral",
        "SA": "sad",
        "SU": "surprise",
    }
    assert nl.KDEF_ANGLES == {"FL": -90.0, "HL": -45.0, "S": 0.0, "HR": 45.0, "FR": 90.0}
    assert names(nl.MANET_FOLDERS) == dict(enumerate(CANONICAL_CLASSES[:7]))


def test_folder_names():
    assert nl.folder_label("Angry") == nl.folder_label("anger") == 6
    assert nl.folder_label("Happiness") == 1 and nl.folder_label("3") == 3
    with pytest.raises(KeyError, match="not an expression"):
        nl.folder_label("misc")


@pytest.mark.parametrize(
    "votes,expected",
    [
        ([8, 1, 0, 0, 0, 0, 0, 1, 0, 0], "neutral"),
        ([0, 0, 0, 0, 1, 0, 0, 9, 0, 0], "contempt"),
        ([0, 0, 2, 0, 0, 0, 8, 0, 0, 0], "fear"),
        ([0, 0, 0, 0, 0, 0, 0, 0, 6, 4], None),  # unknown majority
        ([1, 0, 0, 0, 0, 0, 0, 0, 0, 9], None),  # not a face
        ([4, 4, 2, 0, 0, 0, 0, 0, 0, 0], None),  # tie
        ([0] * 10, None),
    ],
)
def test_ferplus_majority(votes, expected):
    got = nl.ferplus_majority(votes)
    assert (None if got is None else CANONICAL_CLASSES[got]) == expected


def test_manifest_label_maps_agree_with_code():
    code = {
        "rafdb": nl.RAFDB,
        "affectnet7": nl.AFFECTNET,
        "affectnet8": nl.AFFECTNET,
        "fer2013": nl.FER2013,
        "ckplus": nl.CKPLUS,
        "kdef": nl.KDEF,
        "ran_rafdb": nl.RAFDB_RAN,
        "ran_affectnet": nl.AFFECTNET,
        "ran_ferplus": nl.FERPLUS_INDEX,
        "ferplus": nl.FERPLUS,
        "synthfer": dict(enumerate(range(8))),
    }
    for name, mapping in code.items():
        manifest = load_manifest(name)
        for native, canonical in mapping.items():
            assert manifest.label_map[str(native)] == CANONICAL_CLASSES[canonical], (name, native)
    for name in ("sfew2", "caers", "fedro"):
        for folder, canonical in load_manifest(name).label_map.items():
            assert CANONICAL_CLASSES[nl.folder_label(folder)] == canonical


def test_every_manifest_is_complete():
    names_ = list_manifests()
    assert {
        "rafdb",
        "affectnet7",
        "affectnet8",
        "ferplus",
        "fer2013",
        "sfew2",
        "caers",
        "kdef",
        "ckplus",
        "fedro",
        "ran_rafdb",
        "ran_affectnet",
        "ran_ferplus",
        "synthfer",
    } <= set(names_)
    for name in names_:
        m = load_manifest(name)
        assert m.citation and m.licence and m.request and m.landmarks and m.layout
    assert load_manifest("rafdb").splits == {"train": 12271, "test": 3068}
    assert load_manifest("ran_rafdb").splits == {"occlusion": 735, "pose30": 1247, "pose45": 558}
    with pytest.raises(KeyError, match="known datasets: ") as info:
        load_manifest("nope")
    assert str(info.value).startswith("unknown dataset nope (")  # no quotes around the message
