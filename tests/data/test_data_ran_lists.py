"""RAN occlusion/pose list parsing (formats as published) and the ran_* loaders."""

from __future__ import annotations

import pytest

import fakes
from ferlib.data.datasets import build_dataset
from ferlib.data.ran_lists import parse_affectnet_list, parse_ferplus_list, parse_rafdb_list


def test_rafdb_occlusion_list_crlf_duplicate_and_native_minus_one(tmp_path):
    rows = [
        "test_0003_aligned 3 4",
        "test_0006_aligned 4 3",
        "test_2464_aligned 6 2",
        "test_2464_aligned 6 2",
        "test_0008_aligned 0 4",
    ]
    path = fakes.write_lines(tmp_path / "rafdb_occlusion_list.txt", rows, crlf=True)
    ran = parse_rafdb_list(path)
    assert ran.crlf and len(ran) == 5
    assert ran.duplicates == {"test_2464": 2}
    assert [e.key for e in ran.unique()] == ["test_0003", "test_0006", "test_2464", "test_0008"]
    # list label = RAF-DB native - 1: 3 -> native 4 happiness; 4 -> sadness; 6 -> neutral; 0 -> surprise
    assert [e.label for e in ran.entries] == [1, 2, 0, 0, 3]
    assert [e.occlusion for e in ran.entries] == [4, 3, 2, 2, 4]
    assert ran.entries[0].line_no == 1 and ran.entries[4].line_no == 5


def test_rafdb_pose_list(tmp_path):
    path = fakes.write_lines(
        tmp_path / "val_raf_db_list_45.txt", ["0/test_0004_aligned.jpg", "5/test_0216_aligned.jpg"], crlf=False
    )
    ran = parse_rafdb_list(path)
    assert [(e.key, e.label, e.occlusion) for e in ran.entries] == [("test_0004", 3, None), ("test_0216", 6, None)]
    assert not ran.crlf


def test_rafdb_list_bad_row_names_line(tmp_path):
    path = fakes.write_lines(tmp_path / "l.txt", ["test_0003_aligned 3 4", "test_0004_aligned 9 1"])
    with pytest.raises(ValueError, match=r"l.txt:2.*label 0-6"):
        parse_rafdb_list(path)


def test_affectnet_list_directory_style_names(tmp_path):
    path = fakes.write_lines(
        tmp_path / "occlusion_affectnet_list.txt",
        [
            "val/0/bc9ad400db82eca1882b11c9603348fb3e92f5b0d67391ac22a1bc79/",
            "val/7/D0CD4774/",
            "val/6/0e8ccb4ff48495c328b08528c98d24349d53cefc864e76afebbe5729",
        ],
        crlf=False,
    )
    ran = parse_affectnet_list(path)
    assert [e.label for e in ran.entries] == [0, 7, 6]
    assert ran.entries[0].key == "bc9ad400db82eca1882b11c9603348fb3e92f5b0d67391ac22a1bc79"
    assert ran.entries[1].key == "d0cd4774"


def test_ferplus_lists_prefix_is_label(tmp_path):
    pose = parse_ferplus_list(
        fakes.write_lines(tmp_path / "pose.txt", ["0/fer0032226.jpg", "4/fer0032228.jpg", "7/fer0032934.jpg"])
    )
    # FERPlus vote-column order: 0 neutral, 4 anger, 7 contempt
    assert [(e.key, e.label) for e in pose.entries] == [("fer0032226", 0), ("fer0032228", 6), ("fer0032934", 7)]
    occ = parse_ferplus_list(fakes.write_lines(tmp_path / "occ.txt", ["1_fer0034656.png 8 0", "3_fer0034778.png 8 2"]))
    assert [(e.key, e.label, e.occlusion) for e in occ.entries] == [("fer0034656", 1, 0), ("fer0034778", 2, 2)]
    with pytest.raises(ValueError, match="occ2.txt:1"):
        parse_ferplus_list(fakes.write_lines(tmp_path / "occ2.txt", ["fer0034656.png 8 0"]))


def test_ran_affectnet_loader_maps_hash_to_users_copy(tmp_path):
    tree = fakes.make_affectnet(tmp_path)
    first = tree.extra["test_first"]["rel"]  # "100/test000abcdef00.jpg", expression 0
    stem = first.split("/")[1][:-4]
    fakes.write_lines(tmp_path / "RAN" / "occlusion_affectnet_list.txt", [f"val/0/{stem}/"], crlf=False)
    ds = build_dataset("ran_affectnet", "occlusion", tmp_path, num_classes=8, image_size=16)
    assert len(ds) == 1 and ds.labels.tolist() == [0]
    assert ds.records[0].path.endswith(first)


def test_ran_ferplus_loader(tmp_path):
    fakes.make_ferplus(tmp_path)
    # fer0000005 has an "unknown" majority in fer2013new.csv, but the RAN list's own label wins
    fakes.write_lines(
        tmp_path / "RAN" / "pose_30_ferplus_list.txt", ["1/fer0000001.jpg", "3/fer0000005.jpg"], crlf=False
    )
    ds = build_dataset("ran_ferplus", "pose30", tmp_path, num_classes=8, image_size=16)
    assert ds.labels.tolist() == [1, 2]
    assert ds[1]["image"].shape == (3, 16, 16)
