"""An interrupted write (Ctrl-C halfway through a file) never leaves a half-written model file or
score file: the previous complete file stays, and no temporary is left behind.

The interruption is real in the sense that matters: the product's writer has already put half
of the file's bytes on disk when ``KeyboardInterrupt`` arrives (raised from inside the file's
``write``); only the temporary-file-then-rename of :func:`mama_monai.atomic.atomic_write`
keeps the target whole. A writer that wrote in place fails these tests.
"""

from __future__ import annotations

import pytest
import torch

from mama_monai.atomic import atomic_write
from mama_monai.cli import main
from mama_monai.engines import load_model, read_checkpoint, save_model
from tests.model_files import tiny_model_file


class _CutShort:
    """A file whose first ``write`` writes half of its bytes, then is interrupted (Ctrl-C)."""

    def __init__(self, f) -> None:
        self._f = f

    def write(self, data) -> int:
        data = bytes(data)
        self._f.write(data[: len(data) // 2])
        self._f.flush()
        raise KeyboardInterrupt

    def __getattr__(self, name):
        return getattr(self._f, name)


def _interrupting(name: str):
    """``atomic_write`` whose writer is interrupted halfway through the file called ``name``."""

    def wrapper(path, write, root=None):
        if path.name == name:
            return atomic_write(path, lambda f: write(_CutShort(f)), root)
        return atomic_write(path, write, root)

    return wrapper


def _temporaries(folder):
    return [p for p in folder.rglob(".*.tmp")]


def test_an_interrupted_model_file_write_keeps_the_previous_model(tmp_path, monkeypatch):
    path = tiny_model_file(tmp_path / "run" / "model.pt", 0.05)
    before = path.read_bytes()
    network, payload = load_model(path)
    monkeypatch.setattr("mama_monai.engines.checkpoint.atomic_write", _interrupting("model.pt"))
    with torch.no_grad():
        for p in network.parameters():
            p.add_(1.0)  # a different model, whose file would differ
    with pytest.raises(KeyboardInterrupt):
        save_model(path, network, payload["config"], {"value": 0.5, "method": "fixed"})
    assert path.read_bytes() == before  # the previous file, whole
    assert read_checkpoint(path)["threshold"]["value"] == 0.05
    assert _temporaries(tmp_path) == []


@pytest.mark.parametrize("name", ["scores.csv", "scores.json", "anomaly_map.nii.gz"])
def test_an_interrupted_score_run_keeps_the_previous_complete_files(name, files, tmp_path, monkeypatch, capsys):
    out = tmp_path / "out"
    argv = ["score", "--model", str(files["model"]), "--input", str(files["crop"]), "--output", str(out)]
    assert main(argv) == 0
    before = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    target = next(p for p in before if p.name == name)
    for writer in ("mama_monai.workflows.scoring", "mama_monai.data.nifti"):  # reports, and the one NIfTI writer
        monkeypatch.setattr(f"{writer}.atomic_write", _interrupting(name))
    assert main([*argv, "--overwrite"]) == 130  # Ctrl-C: exit 130, one line
    assert "Traceback" not in capsys.readouterr().err
    # the interrupted file is the previous run's, whole (an in-place write leaves half of it)
    assert (out / target).read_bytes() == before[target]
    assert _temporaries(out) == []


def test_the_cut_short_writer_does_corrupt_an_in_place_write(tmp_path):
    # the interruption these tests use does leave a half file behind a plain open-and-write
    path = tmp_path / "scores.csv"
    path.write_bytes(b"case,score\ncase_001,0.5\n")
    with pytest.raises(KeyboardInterrupt), open(path, "wb") as f:
        _CutShort(f).write(b"case,score\ncase_001,0.7\n")
    assert path.read_bytes() == b"case,score\nc"  # the first 12 of 24 bytes

