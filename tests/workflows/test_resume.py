"""Kill a training run midway (SIGKILL, as a crash or a pre-empted job) and resume it with ``--resume``."""

from __future__ import annotations

import logging
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mama_monai.cli import main
from mama_monai.engines import read_checkpoint

ITERATIONS, INTERVAL = 40, 10


def _epoch(path: Path) -> int:
    return int(re.fullmatch(r"last_checkpoint_epoch=(\d+)\.pt", path.name).group(1))


def test_killed_run_resumes_from_its_last_checkpoint_and_ends_with_all_iterations(tmp_path, tiny):
    out = tmp_path / "run"
    overrides = [*tiny.args, "--training#iterations", str(ITERATIONS), "--training#val_interval", str(INTERVAL)]
    argv = ["train", "--network", "mamanet_compact", "--output", str(out), "--device", "cpu", *overrides, *tiny.mamanet]
    log = tmp_path / "first_run.log"
    with open(log, "wb") as stderr:
        env = {**os.environ, "OMP_NUM_THREADS": "1"}
        proc = subprocess.Popen(
            [sys.executable, "-m", "mama_monai.cli", *argv], stdout=subprocess.DEVNULL, stderr=stderr, env=env
        )
        try:
            deadline = time.monotonic() + 240
            while not list((out / "checkpoints").glob("last_*.pt")):
                if proc.poll() is not None:
                    pytest.fail(
                        f"training ended (code {proc.returncode}) before its first checkpoint: {log.read_text()[-2000:]}"
                    )
                assert time.monotonic() < deadline, "no checkpoint after 240 s"
                time.sleep(0.02)
            proc.send_signal(signal.SIGKILL)
            assert proc.wait(timeout=30) == -signal.SIGKILL
        finally:
            proc.kill()
            proc.wait()

    saved = sorted(_epoch(p) for p in (out / "checkpoints").glob("last_*.pt"))
    killed_at = saved[-1]
    assert 1 <= killed_at < ITERATIONS // INTERVAL and not (out / "model.pt").exists()  # killed midway

    assert main([*argv, "--resume"]) == 0
    metrics = read_checkpoint(out / "model.pt")["metrics"]
    assert metrics["iterations"] == ITERATIONS
    # nothing lost: the validations before the kill came back from the checkpoint, and the
    # resumed run validated only after the iterations it had left (a fresh start, or a history
    # that was not restored, would not list every validation exactly once)
    expected = list(range(INTERVAL, ITERATIONS + 1, INTERVAL))
    assert [row["iteration"] for row in metrics["history"]] == expected
    assert max(_epoch(p) for p in (out / "checkpoints").glob("last_*.pt")) == ITERATIONS // INTERVAL


def test_resume_without_a_checkpoint_is_a_clear_error(tmp_path, tiny, capsys):
    out = tmp_path / "fresh"
    code = main(["train", "--network", "autoencoder", "--output", str(out), "--device", "cpu", "--resume", *tiny.args])
    assert code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("mama-monai train: error: --resume") and "\n" not in err
    assert str(out / "checkpoints") in err
    assert not (out / "model.pt").exists()


def test_resume_with_a_truncated_last_checkpoint_falls_back_to_the_previous_one(tmp_path, tiny, capsys, caplog):
    out = tmp_path / "run"
    argv = ["train", "--network", "autoencoder", "--output", str(out), "--device", "cpu", *tiny.args]
    assert main(argv) == 0
    checkpoints = sorted((out / "checkpoints").glob("last_*.pt"), key=_epoch)
    assert [_epoch(p) for p in checkpoints] == [1, 2]
    (out / "model.pt").unlink()  # as if killed before the end
    newest = checkpoints[-1]
    newest.write_bytes(newest.read_bytes()[: newest.stat().st_size // 2])  # cut short
    capsys.readouterr()

    caplog.set_level(logging.WARNING)
    assert main([*argv, "--resume"]) == 0
    said = capsys.readouterr()
    assert "Traceback" not in said.out + said.err + caplog.text
    assert f"checkpoint {newest} cannot be read" in caplog.text and f"set aside as {newest.name}.unreadable" in caplog.text
    assert "resuming from the previous checkpoint" in caplog.text and checkpoints[0].name in caplog.text
    assert newest.with_name(newest.name + ".unreadable").is_file()  # kept, not deleted
    metrics = read_checkpoint(out / "model.pt")["metrics"]
    assert metrics["iterations"] == 20 and [row["iteration"] for row in metrics["history"]] == [10, 20]


def test_resume_with_no_readable_checkpoint_names_each_file(tmp_path, tiny, capsys):
    out = tmp_path / "run"
    checkpoints = out / "checkpoints"
    checkpoints.mkdir(parents=True)
    for epoch in (1, 2):
        (checkpoints / f"last_checkpoint_epoch={epoch}.pt").write_bytes(b"PK\x03\x04 cut short")
    code = main(["train", "--network", "autoencoder", "--output", str(out), "--device", "cpu", "--resume", *tiny.args])
    assert code == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "Traceback" not in err
    assert err.startswith(f"mama-monai train: error: --resume: no readable checkpoint in {str(checkpoints)!r}")
    assert "last_checkpoint_epoch=1.pt" in err and "last_checkpoint_epoch=2.pt" in err
