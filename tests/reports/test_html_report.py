"""``index.html`` of ``score``, ``evaluate`` and ``demo``, rendered by a real browser (headless Chromium).

The pages come from real runs: ``score`` on the real LIDC series (DICOM) and a NIfTI crop of the
demo CT, ``evaluate`` on the demo's real test split. Chromium loads each page from disk (no
network), its DOM is read back after the page's own script has marked every image
``data-loaded="yes"`` (decoded) or ``"no"``, and a screenshot must show a page, not a blank.
"""

from __future__ import annotations

import contextlib
import io
import json
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from matplotlib.image import imread

from mama_monai.cli import main
from mama_monai.data import load_demo_ct
from mama_monai.reports.html import write_demo_page
from tests.model_files import tiny_model_file

SERIES = Path(__file__).parents[1] / "clinical" / "lidc_series"
DEMO_MANIFEST = Path(__file__).parents[2] / "mama_monai" / "demo_data" / "lidc_idri_0001" / "manifest.json"


def _browser() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if shutil.which(name):
            return shutil.which(name)
    pytest.skip("no headless browser installed (Debian package chromium; .ci/run installs it)")


def _chromium(page: Path, tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    command = [
        _browser(), "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--no-first-run",
        f"--user-data-dir={tmp_path / 'profile'}", *args, page.resolve().as_uri(),
    ]  # fmt: skip
    return subprocess.run(command, capture_output=True, text=True, timeout=120)


class _Page(HTMLParser):
    """The images, links and table cells of a DOM dump."""

    def __init__(self) -> None:
        super().__init__()
        self.images, self.links, self.cells, self._cell = [], [], [], None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "img":
            self.images.append(attrs)
        elif tag == "a":
            self.links.append(attrs.get("href"))
        elif tag == "td":
            self._cell = ""

    def handle_data(self, data):
        if self._cell is not None:
            self._cell += data

    def handle_endtag(self, tag):
        if tag == "td" and self._cell is not None:
            self.cells.append(self._cell.strip())
            self._cell = None


def _rendered(page: Path, tmp_path: Path) -> _Page:
    result = _chromium(page, tmp_path, "--virtual-time-budget=10000", "--dump-dom")
    assert result.returncode == 0, result.stderr[-2000:]
    parsed = _Page()
    parsed.feed(result.stdout)
    return parsed


def _assert_images_loaded(parsed: _Page, folder: Path, expected: int) -> None:
    assert len(parsed.images) == expected
    for image in parsed.images:
        assert (folder / image["src"]).is_file(), image["src"]
        assert image.get("data-loaded") == "yes", image  # the browser decoded it


def _assert_not_blank(page: Path, tmp_path: Path) -> np.ndarray:
    shot = tmp_path / "shot.png"
    result = _chromium(page, tmp_path, f"--screenshot={shot}", "--window-size=1280,1600", "--virtual-time-budget=10000")
    assert result.returncode == 0 and shot.is_file(), result.stderr[-2000:]
    pixels = imread(shot)[..., :3]
    not_white = (pixels < 0.95).any(axis=-1).mean()
    coloured = (np.ptp(pixels, axis=-1) > 0.3).mean()  # saturated colour: overlays, badges, plots
    assert not_white > 0.02 and coloured > 0.002, (not_white, coloured)  # a blank page: 0 and 0
    return pixels


@pytest.fixture(scope="module")
def scored(tmp_path_factory):
    root = tmp_path_factory.mktemp("html")
    model = tiny_model_file(root / "model.pt", 0.3, spatial_size=(64, 64), scoring={"sigma": 1.0, "reduction": "max"}, zero=True)
    nifti = root / "ct.nii.gz"
    nib.save(nib.load(load_demo_ct()["image"]).slicer[:, :, 40:43], nifti)  # another body level: another score
    out = root / "scores"
    with contextlib.redirect_stdout(io.StringIO()):
        assert main(["score", "--model", str(model), "--input", str(nifti), str(SERIES), "--output", str(out)]) == 0
    return {"out": out, "model": model, "root": root}


def test_score_page_ranks_the_cases_and_loads_every_image(scored, tmp_path):
    out = scored["out"]
    report = json.loads((out / "scores.json").read_text())
    parsed = _rendered(out / "index.html", tmp_path)
    ranked = [c["case"] for c in sorted(report["cases"], key=lambda c: -c["score"])]
    shown = [cell for cell in parsed.cells if cell in ("case_001", "case_002")]
    assert shown == ranked and len(set(ranked)) == 2
    _assert_images_loaded(parsed, out, expected=3 * 2)  # slice strip, score curve, overlay per case
    links = [link for link in parsed.links if link and not link.startswith("#")]
    for name in ("case_002/anomaly_map.nii.gz", "case_002/anomaly_mask.nii.gz", "case_002/dicom/seg.dcm", "case_002/dicom/sr.dcm"):
        assert name in links  # the DICOM series is input 2
    assert "case_001/dicom/seg.dcm" not in links  # a NIfTI input has no DICOM outputs
    for link in links:
        assert (out / link).is_file(), link


def test_score_page_screenshot_shows_the_report(scored, tmp_path):
    _assert_not_blank(scored["out"] / "index.html", tmp_path)


def test_evaluate_and_demo_pages_show_metrics_and_plots(scored, tmp_path):
    out = scored["root"] / "eval"
    with contextlib.redirect_stdout(io.StringIO()):
        main(["evaluate", "--model", str(scored["model"]), "--output", str(out), "--device", "cpu", "--data#manifest", str(DEMO_MANIFEST)])
    report = json.loads((out / "report.json").read_text())
    parsed = _rendered(out / "index.html", tmp_path)
    _assert_images_loaded(parsed, out, expected=len(report["plots"]))
    assert f"{report['image']['auroc']:.3g}" in parsed.cells
    _assert_not_blank(out / "index.html", tmp_path)
    # the demo page: the same evaluation as one model's block, plots under the demo folder's plots/
    demo = {"seconds_total": 1.0, "device": "cpu", "data": {"dataset": "LIDC-IDRI-0001"},
            "models": {"mamanet": {"network": "mamanet_compact", "parameters": 1, "test": report}}}  # fmt: skip
    page = write_demo_page(out, demo)
    parsed = _rendered(page, tmp_path)
    _assert_images_loaded(parsed, out, expected=len(report["plots"]))
    assert "scores/index.html" in parsed.links
    assert parsed.cells[:2] == ["mamanet", f"{report['image']['auroc']:.3g}"]  # the models' summary table first
