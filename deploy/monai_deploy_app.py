"""A MONAI Deploy App SDK application that consumes this bundle: DICOM series in, DICOM SEG out.

Graph (Holoscan, runs on a CPU machine): the SDK's ``DICOMDataLoaderOperator`` (reads every DICOM
file under ``--input``) -> ``DICOMSeriesSelectorOperator`` (all series) -> :class:`BundleScoreOperator`,
which runs the bundle's ``configs/inference.yaml`` through MONAI's ``ConfigWorkflow`` (after
``check_properties()``) on the selected series. The workflow's evaluator is ``mama-monai score``:
for each series ``<case>/anomaly_map.nii.gz``, ``scores.csv`` / ``scores.json`` and, in
``<case>/dicom/``, a DICOM SEG of the anomalous region (map >= the model's threshold), a Parametric
Map and an SR (:mod:`mama_monai.clinical.dicom_outputs`, highdicom).

The SDK is not a dependency of mama-monai (it pulls Holoscan): install it in its own environment
with the CPU torch pinned (docs/README.md, "MONAI Deploy"), then, from the repository root::

    PYTHONPATH=. python deploy/monai_deploy_app.py --input DICOM_FOLDER --model models/model.pt --output OUT
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
from pathlib import Path

from monai.deploy.core import Application, Operator, OperatorSpec
from monai.deploy.operators import DICOMDataLoaderOperator, DICOMSeriesSelectorOperator

BUNDLE_ROOT = Path(__file__).resolve().parents[1]


class BundleScoreOperator(Operator):
    """Scores each selected DICOM series with the bundle's inference workflow; writes into ``output_folder``."""

    def __init__(self, fragment, *args, ckpt_path: Path, output_folder: Path, **kwargs):
        self.ckpt_path, self.output_folder = Path(ckpt_path), Path(output_folder)
        super().__init__(fragment, *args, **kwargs)

    def setup(self, spec: OperatorSpec):
        spec.input("study_selected_series_list")

    def compute(self, op_input, op_output, context):
        from monai.bundle import ConfigWorkflow

        selected = op_input.receive("study_selected_series_list")
        with tempfile.TemporaryDirectory() as staging:
            for k, study in enumerate(selected or []):
                for j, chosen in enumerate(study.selected_series):
                    folder = Path(staging) / f"series_{k:03d}_{j:03d}"  # one folder per series: one case
                    folder.mkdir()
                    for n, sop in enumerate(chosen.series.get_sop_instances()):
                        shutil.copy(sop.get_native_sop_instance().filename, folder / f"{n:05d}.dcm")
            configs = BUNDLE_ROOT / "configs"
            workflow = ConfigWorkflow(
                config_file=str(configs / "inference.yaml"), meta_file=str(configs / "metadata.json"),
                logging_file=str(configs / "logging.conf"), workflow_type="infer", bundle_root=str(BUNDLE_ROOT),
                dataset_dir=staging, ckpt_path=str(self.ckpt_path), output_dir=str(self.output_folder), device="cpu",
            )  # fmt: skip
            workflow.initialize()
            missing = workflow.check_properties()
            if missing:
                raise RuntimeError(f"the bundle lacks the inference properties {missing}.")
            workflow.run()
            workflow.finalize()


class MamaNetDicomApp(Application):
    """DICOM series in, anomaly maps, scores and DICOM SEG / Parametric Map / SR out."""

    def __init__(self, input_folder: Path, ckpt_path: Path, output_folder: Path, *args, **kwargs):
        self.input_folder, self.ckpt_path, self.output_folder = Path(input_folder), Path(ckpt_path), Path(output_folder)
        super().__init__(*args, **kwargs)

    def compose(self):
        from holoscan.conditions import CountCondition

        loader = DICOMDataLoaderOperator(self, CountCondition(self, 1), input_folder=self.input_folder, name="dicom_loader")
        selector = DICOMSeriesSelectorOperator(self, all_matched=True, name="series_selector")
        scorer = BundleScoreOperator(self, ckpt_path=self.ckpt_path, output_folder=self.output_folder, name="mama_bundle")
        self.add_flow(loader, selector, {("dicom_study_list", "dicom_study_list")})
        self.add_flow(selector, scorer, {("study_selected_series_list", "study_selected_series_list")})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--input", required=True, help="folder of DICOM files (one or more series)")
    parser.add_argument("--model", required=True, help="model file written by training (models/model.pt)")
    parser.add_argument("--output", required=True, help="new or empty output folder")
    args = parser.parse_args()
    MamaNetDicomApp(args.input, args.model, args.output).run()


if __name__ == "__main__":
    main()
