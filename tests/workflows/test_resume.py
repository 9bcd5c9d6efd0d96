"""Kill a training run midway (SIGKILL, as a crash or a pre-empted job) and resume it with ``--resume``."""

from __future__ import annotations

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
