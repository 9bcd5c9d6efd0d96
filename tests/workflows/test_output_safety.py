"""Nothing lost: one writer per output, nothing replaced without ``--overwrite``, no stale temporaries.

Every writing command (``score``, ``train``, ``evaluate``, ``demo``, ``cv``, ``convert``,
``manifest``) is run through the real command line: while another run holds its output, it is
refused at once, naming the output; an output holding results is refused with the same wording
unless ``--overwrite``. Both refusals come before any work and leave the results as they were.
"""

from __future__ import annotations

import errno
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import nibabel as nib
import pytest

from mama_monai.atomic import DiskFullError, atomic_write
from mama_monai.cli import main
from mama_monai.outputs import LOCK_NAME

REPO = Path(__file__).resolve().parents[2]


def _argv(command: str, out: Path, files: dict[str, Path], tiny) -> list[str]:
    """A valid command line of ``command`` writing to ``out`` (short runs: tiny settings)."""
    return {
        "score": ["score", "--model", str(files["model"]), "--input", str(files["crop"]), "--output", str(out)],
        "train": ["train", "--network", "autoencoder", "--output", str(out), "--device", "cpu", *tiny.args],
        "evaluate": ["evaluate", "--model", str(files["model"]), "--output", str(out), "--device", "cpu", "--data#spatial_size", "[32, 32]"],
        "demo": ["demo", "--output", str(out), "--device", "cpu", *tiny.args],
        "cv": ["cv", "--network", "autoencoder", "--output", str(out), "--device", "cpu", *tiny.args],
        "convert": ["convert", str(files["crop"]), str(out)],
        "manifest": ["manifest", "covid_ct", str(files["root"]), str(out)],
    }[command]


#: (command, output: a folder or a file name, a result it finds there)
WRITERS = [
    ("score", "out", "scores.csv"),
    ("train", "out", "model.pt"),
    ("evaluate", "out", "report.json"),
    ("demo", "out", "report.json"),
    ("cv", "out", "cv_report.json"),
    ("convert", "out.nii.gz", None),
    ("manifest", "out.json", None),
]


def _one_error_line(capsys, command: str) -> str:
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith(f"mama-monai {command}: error: "), err
    return err


def _hold_lock(path: Path, kind: str) -> subprocess.Popen:
    """Another process holding the output's lock, as a running mama-monai command does."""
    code = textwrap.dedent(
        f"""
        import sys
        from mama_monai.outputs import lock_output
        with lock_output({str(path)!r}, {kind!r}):
            print("locked", flush=True)
            sys.stdin.read()
        """
    )
    proc = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, cwd=REPO)
    assert proc.stdout.readline().strip() == b"locked"
    return proc


@pytest.mark.parametrize("command, name, _", WRITERS, ids=[w[0] for w in WRITERS])
def test_a_second_run_into_a_locked_output_is_refused_naming_it(command, name, _, files, tmp_path, tiny, capsys):
    out = tmp_path / name
    holder = _hold_lock(out, "file" if "." in name else "folder")
    try:
        assert main(_argv(command, out, files, tiny)) == 2
        err = _one_error_line(capsys, command)
        assert f"output {str(out)!r} is in use by another mama-monai run" in err
    finally:
        holder.communicate(b"", timeout=60)
    assert not out.exists()  # nothing written; the holder's empty folder went with it


def test_two_score_runs_into_one_new_folder_never_both_write(files, tmp_path, tiny):
    out = tmp_path / "shared"
    argv = [sys.executable, "-m", "mama_monai.cli", *_argv("score", out, files, tiny)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    runs = [subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=REPO, env=env) for _ in range(2)]
    results = [(p.wait(timeout=300), p.stderr.read().decode()) for p in runs]
    codes = sorted(code for code, _ in results)
    assert codes == [0, 2], results  # the second is refused: in use, or (if the first had finished) not empty
    refused = next(err for code, err in results if code == 2)
    assert "is in use by another mama-monai run" in refused or "already holds results" in refused
    assert sorted(p.name for p in out.iterdir()) == ["case_001", "index.html", "scores.csv", "scores.json"]


@pytest.mark.parametrize("command, name, result", WRITERS, ids=[w[0] for w in WRITERS])
def test_existing_results_are_never_replaced_without_overwrite(command, name, result, files, tmp_path, tiny, capsys):
    out = tmp_path / name
    target = out / result if result else out
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(b"results of an earlier run")
    assert main(_argv(command, out, files, tiny)) == 2
    err = _one_error_line(capsys, command)
    shown = target.name
    assert f"output {str(out)!r} already holds results ({shown}); pass --overwrite to replace them" in err
    assert target.read_bytes() == b"results of an earlier run"
    assert sorted(p.name for p in target.parent.iterdir()) == [target.name]  # not even a lock file left


def test_train_on_a_run_folder_suggests_resume(files, tmp_path, tiny, capsys):
    out = tmp_path / "run"
    (out / "checkpoints").mkdir(parents=True)
    (out / "checkpoints" / "last_checkpoint_epoch=1.pt").write_bytes(b"a checkpoint")
    assert main(_argv("train", out, files, tiny)) == 2
    err = _one_error_line(capsys, "train")
    assert "already holds results (checkpoints); pass --overwrite to replace them, --resume to continue its training" in err


def test_overwrite_replaces(files, tmp_path, capsys):
    out = tmp_path / "ct.nii.gz"
    out.write_bytes(b"an earlier file")
    assert main(["convert", str(files["crop"]), str(out), "--overwrite"]) == 0
    assert nib.load(out).shape == nib.load(files["crop"]).shape
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ct.nii.gz"]


def test_temporaries_of_a_killed_run_are_removed_by_the_next_run(files, tmp_path, tiny, capsys):
    out = tmp_path / "out"
    stale = [out / ".scores.csv.ab12cd34.tmp", out / "case_001" / ".anomaly_map.nii.gz.x1y2z3w4.tmp", out / "checkpoints" / "tmpq9w8e7r6"]
    kept = [out / "notes.tmp", out / "checkpoints" / "tmp_notes.txt"]  # not ours: left alone
    for path in stale + kept:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"left behind")
    assert main([*_argv("score", out, files, tiny), "--overwrite"]) == 0
    assert [p for p in stale if p.exists()] == []
    assert all(p.read_bytes() == b"left behind" for p in kept)
    assert not (out / LOCK_NAME).exists()


def test_a_full_disk_names_the_file_and_leaves_no_temporary(tmp_path):
    def write(f):
        f.write(b"x" * 100)
        raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(DiskFullError, match=r"cannot write '.*report.json': the disk is full"):
        atomic_write(tmp_path / "report.json", write)
    assert list(tmp_path.iterdir()) == []
