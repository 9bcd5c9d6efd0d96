"""Every failure of ``mama-monai`` is one clear line on stderr, never a Python traceback.

Ctrl-C (exit 130, complete files only), a full disk (the file named), ``--model`` given a folder,
an override that is not an integer where one is needed, ``evaluate`` with no test case. The
readers' own failures (huge NIfTI header, DICOM without pixel data, ITK chatter) are tested in
``tests/data/test_readers.py``.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from mama_monai.cli import main
from mama_monai.data import load_demo_ct

REPO = Path(__file__).resolve().parents[2]
INTERRUPTED = "interrupted (Ctrl-C); the files already written are complete, no partial file was left."


def _one_line(text: str, command: str) -> str:
    """The error line: the last line of stderr; no traceback anywhere."""
    assert "Traceback" not in text, text[-3000:]
    last = text.replace("\r", "\n").strip().splitlines()[-1]
    assert last.startswith(f"mama-monai {command}: "), last
    return last


def _left_behind(folder: Path) -> list[str]:
    """Temporaries and lock files under ``folder``."""
    return [p.name for p in folder.rglob("*") if p.name.endswith((".tmp", ".lock")) or p.name.startswith("tmp")]


def test_ctrl_c_during_training_exits_130_with_one_line(tmp_path, tiny):
    out = tmp_path / "run"
    argv = ["train", "--network", "autoencoder", "--output", str(out), "--device", "cpu", *tiny.args, "--training#iterations", "20000"]  # long enough never to finish first
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONFAULTHANDLER": "1"}  # SIGABRT dumps every thread's stack
    # Ctrl-C as in a terminal: a test run started in the background (`cmd &`, nohup) hands its
    # children SIGINT *ignored*, and the run then neither stopped nor exited (the hang and the
    # 'exit 0 instead of 130' seen in full background runs)
    proc = subprocess.Popen([sys.executable, "-m", "mama_monai.cli", *argv], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd=REPO,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))  # fmt: skip
    try:
        deadline = time.monotonic() + 240
        while not list((out / "checkpoints").glob("last_*.pt")):
            assert proc.poll() is None, proc.communicate()[1].decode()[-2000:]
            assert time.monotonic() < deadline, "no checkpoint after 240 s"
            time.sleep(0.02)
        proc.send_signal(signal.SIGINT)  # what Ctrl-C in the terminal sends
        try:
            stdout, stderr = proc.communicate(timeout=120)
        except subprocess.TimeoutExpired:  # a hang: say where it is
            proc.send_signal(signal.SIGABRT)
            pytest.fail("no exit 120 s after Ctrl-C; stacks:\n" + proc.communicate(timeout=60)[1].decode()[-6000:])
    finally:
        proc.kill()
    assert proc.returncode == 130
    assert "Traceback" not in stdout.decode()
    assert _one_line(stderr.decode(), "train") == f"mama-monai train: {INTERRUPTED}"
    assert _left_behind(out) == [] and not (out / "model.pt").exists()
    for checkpoint in (out / "checkpoints").glob("*.pt"):  # complete files only
        torch.load(checkpoint, map_location="cpu", weights_only=True)


def test_ctrl_c_during_scoring_exits_130_and_leaves_no_report(files, tmp_path, capsys, monkeypatch):
    from mama_monai.workflows import scoring

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(scoring._Scorer, "__call__", interrupted)
    out = tmp_path / "out"
    code = main(["score", "--model", str(files["model"]), "--input", str(files["crop"]), "--output", str(out)])
    assert code == 130
    assert _one_line(capsys.readouterr().err, "score") == f"mama-monai score: {INTERRUPTED}"
    assert not out.exists()  # nothing was written, and the empty folder the run made is gone


@pytest.mark.skipif(shutil.which("unshare") is None, reason="needs unshare to mount a small file system")
@pytest.mark.parametrize("command", ["convert", "train"])
def test_a_full_disk_is_one_line_naming_the_file(command, files, tmp_path, tiny):
    # a real full disk: a 48 KiB tmpfs mounted in a private mount namespace
    disk = tmp_path / "disk"
    disk.mkdir()
    out = disk / ("ct.nii.gz" if command == "convert" else "run")
    argv = {
        "convert": ["convert", str(load_demo_ct()["image"]), str(out)],
        "train": ["train", "--network", "autoencoder", "--output", str(out), "--device", "cpu", *tiny.args],
    }[command]
    cli = " ".join(f"'{a}'" for a in [sys.executable, "-m", "mama_monai.cli", *argv])
    script = f"mount -t tmpfs -o size=48k tmpfs '{disk}' || exit 77; {cli}; code=$?; find '{disk}' >&2; exit $code"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(["unshare", "-rm", "sh", "-c", script], capture_output=True, env=env, cwd=REPO, timeout=300)
    if proc.returncode == 77:
        pytest.skip("cannot mount a tmpfs here")
    stderr = proc.stderr.decode()
    assert proc.returncode == 2, stderr[-2000:]
    assert "Traceback" not in proc.stdout.decode() + stderr
    line = next(ln for ln in stderr.splitlines() if ln.startswith(f"mama-monai {command}: error: "))
    assert f"cannot write '{disk}/" in line and "the disk is full (no space left on device)" in line
    listed = stderr[stderr.index(line) + len(line):]  # what was left on the full disk
    assert ".tmp" not in listed and ".lock" not in listed


@pytest.mark.parametrize("command", ["score", "evaluate"])
def test_model_given_a_folder_is_named_as_a_folder(command, files, tmp_path, capsys):
    folder = files["model"].parent
    argv = {
        "score": ["score", "--model", str(folder), "--input", str(files["crop"]), "--output", str(tmp_path / "out")],
        "evaluate": ["evaluate", "--model", str(folder), "--output", str(tmp_path / "out"), "--device", "cpu"],
    }[command]
    assert main(argv) == 2
    line = _one_line(capsys.readouterr().err, command)
    assert f"--model {str(folder)!r} is a folder; expected a model file written by train or demo (e.g. {str(files['model'])!r})" in line
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    "key, value, expected",
    [("training#iterations", "abc", "an integer"), ("training#batch_size", "2.5", "an integer"), ("optimizer#lr", "fast", "a number")],
)
def test_an_override_of_the_wrong_type_names_the_key(key, value, expected, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["train", "--network", "autoencoder", "--output", str(out), "--device", "cpu", f"--{key}", value]) == 2
    line = _one_line(capsys.readouterr().err, "train")
    assert f"override --{key}: expected {expected} (the config has" in line and repr(value if value != "2.5" else 2.5) in line
    assert not out.exists()


def test_evaluate_with_no_test_case_says_so(files, tmp_path, capsys):
    demo = load_demo_ct()["manifest"]
    manifest = json.loads(demo.read_text())
    manifest["root"] = str(demo.parent)
    manifest["cases"] = [c for c in manifest["cases"] if c["split"] == "train"]
    path = tmp_path / "train_only.json"
    path.write_text(json.dumps(manifest))
    out = tmp_path / "eval"
    argv = ["evaluate", "--model", str(files["model"]), "--output", str(out), "--device", "cpu", "--data#manifest", str(path)]
    assert main(argv) == 2
    line = _one_line(capsys.readouterr().err, "evaluate")
    assert "test split" in line and "has no case" in line
    assert not out.exists()
