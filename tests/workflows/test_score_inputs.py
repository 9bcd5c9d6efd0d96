"""score_inputs: case names by position, and what ScoreInput.redact removes from a message (and leaves)."""

from __future__ import annotations

import numpy as np

from mama_monai.workflows.score_inputs import ScoreInput, inspect_inputs
from tests.data.conftest import write_series


def test_names_by_position_unless_identifiers_are_asked_for(tmp_path):
    for name in ("Doe_Jane", "Doe Jane.nii.gz"):
        (tmp_path / name).write_bytes(b"")
    paths = [tmp_path / "Doe_Jane", tmp_path / "Doe Jane.nii.gz"]
    assert [i.name for i in inspect_inputs(paths, None)] == ["case_001", "case_002"]
    assert [i.name for i in inspect_inputs(paths, None, include_identifiers=True)] == ["Doe_Jane", "Doe_Jane_2"]


def test_redact_removes_the_path_the_names_inside_and_the_header_values(tmp_path):
    folder = tmp_path / "Doe_Jane"
    rows, cols = np.meshgrid(np.arange(8), np.arange(6), indexing="ij")
    files = write_series(folder / "CT_Doe", np.stack([(rows + cols + k).astype(np.int16) for k in range(2)]), PatientName="Roe^Richard")
    (item,) = inspect_inputs([folder], None)
    message = f"{files[0]}: bad file; {folder}/: empty; see {files[1].name} in CT_Doe, 2.500 mm apart. Richard Roe"
    assert item.redact(message) == "case_001/[file]/[file]: bad file; case_001/: empty; see [file] in [file], 2.500 mm apart. [redacted] [redacted]"


def test_redact_leaves_words_that_only_contain_a_short_input_name(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "ct").mkdir()
    item = ScoreInput("ct", 1, name="case_001")
    assert item.redact("ct: expected a DICOM folder, got an empty one") == "ct: expected a DICOM folder, got an empty one"
    assert item.redact(f"{tmp_path / 'ct'}: folder is empty") == "case_001: folder is empty"
    assert ScoreInput("ct", 1, name="ct", keep_identifiers=True).redact(str(tmp_path)) == str(tmp_path)
