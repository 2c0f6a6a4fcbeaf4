"""Reliability (issue 12): bad input to ``ferlib train``, ``ferlib evaluate`` and ``ferlib study``.

Every case builds its bad input on the fly and calls ``ferlib.cli.main`` in-process: a refusal is one line
``ferlib <command>: …`` on stderr with exit code 2 and no traceback; a handled case does the right thing.
Training uses the tiny test CNN on a few SynthFER faces; the study uses throwaway notebooks without torch.
"""

from __future__ import annotations

import argparse
import errno
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
import torch

import ferlib.fileio
from ferlib.cli import main
from test_train_helpers import TINY

pytestmark = pytest.mark.usefixtures("tiny_models")

TINY_RUN = [
    "train",
    "--model",
    TINY,
    "--recipe",
    "ffra-net",
    "--profile",
    "smoke",
    "--n-train",
    "21",
    "--n-test",
    "14",
    "--batch-size",
    "4",
    "--device",
    "cpu",
    "--no-progress",
]


def _refused(capsys, argv: list[str], *expected: str) -> str:
    """Run ``ferlib argv``; assert exit code 2 and one line naming the command and each ``expected`` text."""
    capsys.readouterr()
    rc = main(argv)
    err = capsys.readouterr().err
    assert rc == 2, err
    lines = [ln for ln in err.splitlines() if ln.strip() and not ln.startswith("note:")]
    assert len(lines) == 1 and "Traceback" not in err, err
    assert lines[0].startswith(f"ferlib {argv[0]}: "), err
    for text in expected:
        assert text in lines[0], f"{text!r} not in {lines[0]!r}"
    return lines[0]


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory) -> Path:
    """A finished one-epoch tiny run (module scope: trained once for the resume and evaluate cases)."""
    run = tmp_path_factory.mktemp("finished") / "run"
    assert main([*TINY_RUN, "--epochs", "1", "--run-dir", str(run)]) == 0
    return run


# --------------------------------------------------------------------------------------------
# train: values that cannot train, refused before any folder exists
# --------------------------------------------------------------------------------------------


@pytest.mark.reliability("refused")
@pytest.mark.parametrize(
    ("option", "value", "expected"),
    [
        ("--epochs", "0", "--epochs must be a positive integer, got 0"),
        ("--lr", "nan", "--lr must be a finite number above 0"),
        ("--lr", "-0.1", "--lr must be a finite number above 0"),
        ("--n-train", "-5", "--n-train must be a positive integer, got -5"),
        ("--batch-size", "0", "--batch-size must be a positive integer"),
        ("--val-fraction", "1.5", "--val-fraction must lie strictly between 0 and 1"),
    ],
)
def test_train_refuses_impossible_values_without_a_folder(tmp_path, capsys, option, value, expected):
    run = tmp_path / "run"
    _refused(capsys, [*TINY_RUN, option, value, "--run-dir", str(run)], expected)
    assert not run.exists()


@pytest.mark.reliability("refused")
def test_train_too_few_images_names_the_empty_split_and_leaves_no_folder(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("FERLIB_RUNS", str(tmp_path / "runs"))
    argv = [*TINY_RUN, "--n-train", "3", "--epochs", "1"]
    _refused(capsys, argv, "the validation split is empty: 3 training images", "pass a larger --n-train")
    assert not any((tmp_path / "runs").iterdir())  # the stamped folder it had made is gone again
    # a folder the user already had stays, with only what was in it before
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me")
    _refused(capsys, [*argv, "--run-dir", str(mine)], "the validation split is empty")
    assert sorted(p.name for p in mine.iterdir()) == ["notes.txt"]
    # several seeds: no empty parent folder either
    parent = tmp_path / "seeds"
    _refused(capsys, [*argv, "--seeds", "0,1", "--run-dir", str(parent)], "the validation split is empty")
    assert not parent.exists()


@pytest.mark.reliability("refused")
def test_train_cuda_without_a_gpu_is_one_line(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    run = tmp_path / "run"
    _refused(capsys, [*TINY_RUN, "--device", "cuda", "--run-dir", str(run)], "use --device cpu or --device auto")
    assert not run.exists()
    _refused(capsys, [*TINY_RUN, "--device", "gpu0"], "--device 'gpu0' is not a device")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    _refused(capsys, [*TINY_RUN, "--device", "cuda:3"], "this machine has 1 CUDA device(s)")


@pytest.mark.reliability("refused")
def test_train_run_dir_below_a_regular_file(tmp_path, capsys):
    (tmp_path / "afile").write_text("not a folder")
    _refused(
        capsys,
        [*TINY_RUN, "--epochs", "1", "--run-dir", str(tmp_path / "afile" / "run")],
        "afile is a file, not a folder; choose another --run-dir",
    )


@pytest.mark.reliability("refused")
def test_train_options_without_effect_are_refused(tmp_path, capsys):
    _refused(
        capsys,
        ["train", "--model", TINY, "--dataset", "rafdb", "--root", str(tmp_path), "--n-train", "30"],
        "--n-train set the size of generated SynthFER data and have no effect on rafdb",
    )
    lm = tmp_path / "landmarks.csv"
    lm.write_text("garbage\n")
    _refused(capsys, [*TINY_RUN, "--landmarks-file", str(lm)], "has no effect on generated SynthFER data")
    _refused(
        capsys, [*TINY_RUN, "--init-format", "torchvision"], "--init-format torchvision has no effect without --init"
    )
    _refused(
        capsys,
        [*TINY_RUN, "--iterations", "5", "--run-dir", str(tmp_path / "it")],
        "--iterations has no effect: recipe 'ffra-net' counts its budget in epochs; pass --epochs instead",
    )
    assert not (tmp_path / "it").exists()


@pytest.mark.reliability("handled")
def test_debug_shows_the_traceback(tmp_path):
    with pytest.raises(ValueError, match="--epochs must be a positive integer"):
        main(["--debug", *TINY_RUN, "--epochs", "0", "--run-dir", str(tmp_path / "r")])


@pytest.mark.reliability("handled")
def test_full_disk_during_checkpointing_keeps_the_earlier_checkpoint(tmp_path, capsys, monkeypatch):
    run = tmp_path / "run"
    ckpt = run / "checkpoints"
    real_write = Path.write_bytes
    writes = {"last": 0}

    def write_bytes(self, data):  # the disk fills up while the second epoch's last.pt is written
        if self.name.startswith(".last.pt."):
            writes["last"] += 1
            if writes["last"] == 2:
                real_write(self, bytes(data)[:1000])
                raise OSError(errno.ENOSPC, "No space left on device")
        return real_write(self, data)

    monkeypatch.setattr(Path, "write_bytes", write_bytes)
    line = _refused(
        capsys,
        [*TINY_RUN, "--epochs", "2", "--run-dir", str(run)],
        f"no space left on device while writing {ckpt / 'last.pt'}",
        "checkpoints/last.pt (epoch 1) and the earlier checkpoints are intact",
        "--resume",
    )
    assert "inline_container" not in line
    monkeypatch.undo()
    state = torch.load(ckpt / "last.pt", weights_only=True)
    assert state["epoch"] == 1
    assert not [p.name for p in ckpt.iterdir() if p.name.endswith(".tmp")]  # no half-written file left
    assert main([*TINY_RUN, "--epochs", "2", "--run-dir", str(run), "--resume"]) == 0  # space freed: resumes
    assert torch.load(ckpt / "last.pt", weights_only=True)["epoch"] == 2


@pytest.mark.reliability("handled")
def test_atomic_write_on_a_full_disk_names_the_file_and_keeps_the_old_one(tmp_path, monkeypatch):
    target = tmp_path / "metrics.json"
    target.write_text("old")

    def no_space(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(ferlib.fileio.os, "fsync", no_space)
    with pytest.raises(OSError, match=f"no space left on device while writing {target}") as info:
        ferlib.fileio.atomic_write_json(target, {"a": 1})
    assert info.value.errno == errno.ENOSPC
    assert target.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["metrics.json"]


@pytest.mark.reliability("handled")
def test_stale_temp_file_of_a_killed_writer_is_removed_at_the_next_start(finished_run, tmp_path, capsys):
    run = tmp_path / "run"
    shutil.copytree(finished_run, run)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()  # its pid is now free: a writer that no longer exists
    stale = run / "checkpoints" / f".last.pt.{dead.pid}.k1ll3d_x.tmp"
    stale.write_bytes(b"\0" * 1000)
    live = run / "checkpoints" / f".best.pt.{os.getpid()}.abcdefgh.tmp"  # a writer still alive: kept
    live.write_bytes(b"\0")
    capsys.readouterr()
    assert main([*TINY_RUN, "--epochs", "1", "--run-dir", str(run), "--resume"]) == 0
    err = capsys.readouterr().err
    assert not stale.exists() and live.exists()
    assert "removed 1 unfinished temporary file(s)" in err and stale.name in err


@pytest.mark.reliability("handled")
@pytest.mark.parametrize("how", ["relative", "symlink", "moved"])
def test_resume_accepts_the_run_folder_however_it_is_reached(finished_run, tmp_path, capsys, monkeypatch, how):
    moved = tmp_path / "elsewhere" / "run"
    shutil.copytree(finished_run, moved)
    if how == "relative":
        monkeypatch.chdir(moved.parent)
        given = "run"
    elif how == "symlink":
        (tmp_path / "link").symlink_to(moved, target_is_directory=True)
        given = str(tmp_path / "link")
    else:
        given = str(moved)  # the run was trained in another folder
    before = (moved / "checkpoints" / "last.pt").read_bytes()
    assert main([*TINY_RUN, "--epochs", "1", "--run-dir", given, "--resume"]) == 0, capsys.readouterr().err
    assert (moved / "checkpoints" / "last.pt").read_bytes() == before  # finished: nothing retrained


@pytest.mark.reliability("refused")
def test_resume_still_refuses_a_changed_configuration(finished_run, tmp_path, capsys):
    run = tmp_path / "run"
    shutil.copytree(finished_run, run)
    _refused(
        capsys,
        [*TINY_RUN, "--epochs", "1", "--lr", "0.5", "--run-dir", str(run), "--resume"],
        "cannot resume",
        "lr",
    )


# --------------------------------------------------------------------------------------------
# evaluate
# --------------------------------------------------------------------------------------------


@pytest.mark.reliability("refused")
def test_evaluate_mismatched_weights_point_only_at_its_own_options(finished_run, tmp_path, capsys):
    state = torch.load(finished_run / "checkpoints" / "best.pt", weights_only=True)
    state["model"].pop("fc.bias")
    edited = tmp_path / "edited.pt"
    torch.save(state, edited)
    line = _refused(capsys, ["evaluate", "--checkpoint", str(edited), "--dataset", "synthfer", "--n", "7"], "fc.bias")
    assert "--model" not in line and "--num-classes" not in line


@pytest.mark.reliability("refused")
def test_evaluate_never_suggests_weights_only_false(tmp_path, capsys):
    evil = tmp_path / "evil.pt"
    torch.save({"format": "ferlib-train-checkpoint", "obj": argparse.Namespace(x=1)}, evil)
    line = _refused(capsys, ["evaluate", "--checkpoint", str(evil), "--dataset", "synthfer"], "evil.pt")
    assert "weights_only=False" not in line and "will likely succeed" not in line.lower()
    assert "pickled Python objects" in line


@pytest.mark.reliability("refused")
def test_evaluate_options_that_cannot_take_effect(finished_run, tmp_path, capsys):
    ckpt = str(finished_run / "checkpoints" / "best.pt")
    _refused(
        capsys,
        ["evaluate", "--checkpoint", ckpt, "--dataset", "synthfer", "--n", "-3"],
        "--n must be a positive number",
    )
    _refused(
        capsys,
        ["evaluate", "--checkpoint", ckpt, "--dataset", "rafdb", "--root", str(tmp_path), "--n", "5"],
        "--n sets how many SynthFER images are generated and has no effect on rafdb",
    )
    _refused(
        capsys,
        ["evaluate", "--checkpoint", ckpt, "--dataset", "synthfer", "--subset", "occlusion", "--split", "train"],
        "--split train has no effect with --subset occlusion",
    )
    _refused(
        capsys,
        ["evaluate", "--checkpoint", ckpt, "--dataset", "kdef", "--root", str(tmp_path), "--subset", "occlusion"],
        "occlusion/pose lists exist for",
    )


# --------------------------------------------------------------------------------------------
# study and sweeps (throwaway notebooks: papermill runs in seconds)
# --------------------------------------------------------------------------------------------

PARAMS = 'profile = None\ndataset = "synthfer"\nrun_dir = None\nfactor = 2\n'
RECORD = (
    "from ferlib.profiles import get_profile\n"
    "from ferlib.runs import RunFolder\n"
    "from ferlib.study import NotebookContext\n"
    "ctx = NotebookContext({name!r}, get_profile(profile), RunFolder.at(run_dir), dataset=dataset)\n"
    "ctx.record(headline=['value'], value=21 * factor)\n"
)


def _notebook(path: Path, cells: list[str]) -> None:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    for i, src in enumerate(cells):
        cell = nbformat.v4.new_code_cell(src)
        if i == 0:
            cell.metadata["tags"] = ["parameters"]
        nb.cells.append(cell)
    nbformat.write(nb, str(path))


@pytest.fixture
def nbs(tmp_path: Path) -> Path:
    folder = tmp_path / "nbs"
    folder.mkdir()
    _notebook(folder / "01_landmarks.ipynb", [PARAMS, RECORD.format(name="01_landmarks.ipynb")])
    _notebook(folder / "02_subregions.ipynb", [PARAMS, "raise ValueError('boom')"])
    _notebook(folder / "03_training.ipynb", [PARAMS, RECORD.format(name="03_training.ipynb")])
    return folder


def _study(nbs: Path, *extra: str) -> list[str]:
    return ["study", "--profile", "smoke", "--notebook-dir", str(nbs), *extra]


@pytest.mark.reliability("refused")
def test_study_refuses_a_used_run_dir_and_overwrite_leaves_no_stale_section(nbs, tmp_path, capsys):
    run = tmp_path / "study"
    assert main(_study(nbs, "--notebooks", "03", "--run-dir", str(run))) == 0
    first = (run / "metrics.json").read_text()
    _refused(
        capsys,
        _study(nbs, "--notebooks", "01", "-p", "factor=5", "--run-dir", str(run)),
        f"run folder {run} already holds a study",
        "--overwrite",
    )
    assert (run / "metrics.json").read_text() == first  # untouched
    assert main(_study(nbs, "--notebooks", "01", "-p", "factor=5", "--run-dir", str(run), "--overwrite")) == 0
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["01_landmarks"]["value"] == 105 and "03_training" not in metrics  # no stale section
    assert main(["study", "--check-run", str(run), "--baseline", str(_baseline(tmp_path, "03_training.value"))]) == 1


def _baseline(tmp_path: Path, key: str) -> Path:
    path = tmp_path / "baseline.json"
    path.write_text(json.dumps({"metrics": {key: {"value": 42, "abs_tol": 1}}}))
    return path


@pytest.mark.reliability("refused")
def test_study_refused_before_running_leaves_no_folder(nbs, tmp_path, capsys):
    run = tmp_path / "new"
    _refused(capsys, _study(nbs, "--notebooks", "01", "-p", "fcator=3", "--run-dir", str(run)), "fcator")
    assert not run.exists()


@pytest.mark.reliability("refused")
def test_study_option_combinations_that_would_be_ignored(nbs, tmp_path, capsys):
    sweep = tmp_path / "s.yaml"
    sweep.write_text("- {factor: 1}\n")
    _refused(capsys, _study(nbs, "--sweep", str(sweep), "--check"), "--check apply to a single study, not to --sweep")
    _refused(capsys, _study(nbs, "--baseline", str(tmp_path / "b.json")), "--baseline is used only with --check")
    _refused(capsys, ["study", "--check-run", str(tmp_path), "--models", "lan"], "--models would have no effect")
    _refused(capsys, ["study", "--check-run", str(tmp_path), "--seed", "0"], "--seed would have no effect")
    _refused(capsys, ["study", "--check-run", str(tmp_path), "--dataset", "rafdb"], "--dataset would have no effect")
    _refused(capsys, _study(nbs, "--overwrite"), "--overwrite applies to --run-dir")


@pytest.mark.reliability("refused")
def test_sweep_yaml_syntax_error_names_file_and_line(nbs, tmp_path, capsys):
    sweep = tmp_path / "broken.yaml"
    sweep.write_text("- {name: a, factor: 2}\n- {name: b, factor: [3\n")
    line = _refused(capsys, _study(nbs, "--sweep", str(sweep)), f"sweep file {sweep} line 3", "YAML syntax error")
    assert "yaml." not in line


@pytest.mark.reliability("handled")
def test_sweep_notebooks_given_as_numbers(nbs, tmp_path, capsys):
    sweep = tmp_path / "ints.yaml"
    sweep.write_text("- {name: one, notebooks: [01], factor: 2}\n")
    assert main(_study(nbs, "--sweep", str(sweep), "--run-dir", str(tmp_path / "sw"))) == 0
    metrics = json.loads((tmp_path / "sw" / "01-one" / "metrics.json").read_text())
    assert metrics == {"01_landmarks": {"headline": ["value"], "value": 42}}
    sweep.write_text("- {name: seven, notebooks: [7]}\n")
    _refused(capsys, _study(nbs, "--sweep", str(sweep)), "set 1 (seven): 7 names no study notebook")


@pytest.mark.reliability("refused")
def test_sweep_checks_every_set_before_running_any(nbs, tmp_path, capsys):
    sweep = tmp_path / "sets.yaml"
    sweep.write_text("- {name: good, notebooks: [01], factor: 2}\n- {name: bad, notebooks: [01], fcator: 3}\n")
    root = tmp_path / "sw"
    _refused(capsys, _study(nbs, "--sweep", str(sweep), "--run-dir", str(root)), "set 2 (bad)", "fcator")
    assert not root.exists()  # set 1 did not run


@pytest.mark.reliability("handled")
def test_sweep_reports_a_failing_set_and_goes_on(nbs, tmp_path, capsys):
    sweep = tmp_path / "sets.yaml"
    sweep.write_text("- {name: fails, notebooks: [02]}\n- {name: works, notebooks: [01], factor: 3}\n")
    root = tmp_path / "sw"
    assert main(_study(nbs, "--sweep", str(sweep), "--run-dir", str(root))) == 1
    table = (root / "sweep.md").read_text()
    assert "| fails |" in table and "FAILED" in table and "value = 63" in table
    _refused(capsys, _study(nbs, "--sweep", str(sweep), "--run-dir", str(root)), "already holds a study (sweep.json)")


@pytest.mark.reliability("handled")
def test_cli_turns_user_errors_into_one_line_and_leaves_bugs_a_traceback():
    from ferlib.cli import user_error_message
    from ferlib.fileio import FileInUseError
    from ferlib.runs import DeviceUnavailableError

    busy = FileInUseError("another `ferlib landmarks` run is writing out.jsonl; wait for it or choose another --out")
    assert user_error_message(busy) == str(busy)
    assert user_error_message(DeviceUnavailableError("no cuda")) == "no cuda"
    assert user_error_message(KeyError("unknown model 'x'")) == "unknown model 'x'"  # no stray quotes
    assert user_error_message(ValueError("two\n  lines")) == "two lines"
    full = OSError(errno.ENOSPC, "No space left on device", "/tmp/x.pt")
    assert user_error_message(full).startswith("no space left on device while writing /tmp/x.pt")
    assert user_error_message(RuntimeError("a bug in ferlib")) is None  # not a user error: keeps its traceback
    assert user_error_message(ZeroDivisionError()) is None


@pytest.mark.reliability("refused")
def test_models_unknown_name_and_bad_class_count(capsys):
    _refused(capsys, ["models", "nope"], "unknown model(s): nope; available:")
    _refused(capsys, ["models", "resnet18", "--num-classes", "0"], "--num-classes must be a positive integer")
