"""``evaluate``: a model file's network scored on the test split of a manifest, and its ``report.json``.

One code path for ``mama-monai evaluate`` and the bundle's ``validate#evaluator``
(:class:`~mama_monai.workflows.bundle.BundleEvaluator`):

1. the data are preprocessed as the model was trained: the model file's ``preset``,
   ``spatial_size`` and ``modality`` become ``data#...`` config values
   (:func:`model_data_overrides`; only values checked as literals, never an expression);
2. only the test split is read (:func:`~mama_monai.workflows.splits.load_test_split`): training
   files are neither needed nor opened;
3. :func:`evaluate_test_split` scores it and writes ``report.json``, which lists every test case
   that could not be loaded (``failures``: case, file, reason) and counts it in ``n_cases``
   (``n_cases = n_scored + n_failed``), and ``index.html`` (metrics and plots,
   :func:`~mama_monai.reports.html.write_evaluate_page`).

Example:
    >>> network, spec = load_model_spec("run/model.pt")  # doctest: +SKIP
    >>> parser = load_config("configs/train.yaml", model_data_overrides(spec))  # doctest: +SKIP
    >>> report = evaluate_test_split(network, spec, parser, "eval", "cpu")  # doctest: +SKIP
    >>> report["n_cases"] == report["n_scored"] + len(report["failures"])  # doctest: +SKIP
    True
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn

from mama_monai.engines.model_spec import ModelSpec, TrainingSplit

__all__ = ["evaluate_test_split", "model_data_overrides", "training_split_overrides"]


def model_data_overrides(spec: ModelSpec) -> dict[str, Any]:
    """``{"data#preset", "data#spatial_size", "data#modality"}`` of a model file's spec.

    The values are checked again here (:func:`~mama_monai.engines.stored_config.check_preprocessing`),
    because they enter a :class:`~monai.bundle.ConfigParser`: a preset name, two ints and a
    DICOM Modality (or null) can hold no ``$`` expression, ``@`` reference or ``%`` macro.

    Raises:
        ValueError: a value that is not such a literal (cannot happen for a spec from ``load_model_spec``).
    """
    from mama_monai.engines.stored_config import check_preprocessing

    check_preprocessing({"preset": spec.preset, "spatial_size": list(spec.spatial_size), "modality": spec.modality})
    return spec.data_overrides()


def training_split_overrides(trained_on: TrainingSplit | None, model_path: str | os.PathLike = "the model file") -> dict[str, Any]:
    """``{"data#manifest", "data#fold"}`` the model was trained with (``spec.trained_on``), for
    ``evaluate`` run without ``--data#manifest``: a model is evaluated on its own test split, never
    silently on the embedded CT demo (an MR model scored on CT) nor on another fold's cases, some
    of which it trained on.

    A stored manifest of ``None`` means the model was trained on the embedded LIDC-IDRI-0001 demo.

    Raises:
        ValueError: the model file does not record its training manifest (``trained_on`` None),
            records one that is not a plain path, or one that no longer exists; the message says
            to pass ``--data#manifest``.
    """
    hint = "pass --data#manifest (and --data#fold) to say which test split to evaluate"
    if trained_on is None:
        raise ValueError(f"{model_path} does not record the manifest it was trained with; {hint}.")
    manifest, fold = trained_on.manifest, trained_on.fold
    if manifest is not None and (type(manifest) is not str or manifest[:1] in ("$", "@", "%")):
        raise ValueError(f"{model_path} records a training manifest that is not a plain path ({manifest!r}); {hint}.")
    if fold is not None and type(fold) is not int:
        raise ValueError(f"{model_path} records a training fold that is not an int ({fold!r}); {hint}.")
    if manifest is not None and not Path(manifest).is_file():
        raise ValueError(f"{model_path} was trained with manifest {manifest!r}, which does not exist here; {hint}.")
    return {"data#manifest": manifest, "data#fold": fold}


def _no_test_case(manifest: Any, failures: list) -> ValueError:
    if not failures:
        return ValueError(f"the test split of manifest {manifest.dataset!r} has no case: nothing to evaluate (check data#fold).")
    shown = "; ".join(f"{f.case_id}: {f.error}" for f in failures[:3])
    return ValueError(f"none of the {len(failures)} test case(s) of manifest {manifest.dataset!r} could be loaded ({shown}).")


def evaluate_test_split(
    network: nn.Module,
    spec: ModelSpec,
    parser: Any,
    output_dir: str | os.PathLike,
    device: str | torch.device,
) -> dict[str, Any]:
    """Score the test split of ``parser``'s ``data`` section; write ``output_dir/report.json`` and ``plots/``.

    Args:
        network: the model file's network (eval mode).
        spec: the model file's :class:`~mama_monai.engines.model_spec.ModelSpec` (scoring,
            threshold, training split; its ``path`` is recorded in the report).
        parser: the workflow config whose ``data`` section names the manifest, fold, preset and size.
        output_dir: folder for ``report.json`` and ``plots/``.
        device: where the network runs.

    Returns:
        The report of :func:`~mama_monai.workflows.metrics_report.evaluate_items` plus ``n_cases`` (scored +
        failed), ``n_scored``, ``n_failed`` and ``failures`` (``{"case", "file", "reason"}`` each).

    Raises:
        ValueError: the test split is empty, or none of its cases could be loaded (the first failures named).
    """
    from mama_monai.reports.html import write_evaluate_page
    from mama_monai.workflows.splits import load_test_split
    from mama_monai.reports.json_report import write_json
    from mama_monai.workflows.metrics_report import evaluate_items

    split = load_test_split(parser, crop_to_body=spec.crop_to_body)  # as the model was trained, whatever the config says
    test, failures = split["test"], split["failures"]
    if not test:
        raise _no_test_case(split["manifest"], failures)
    output_dir = Path(output_dir)
    device = torch.device(device)
    report = evaluate_items(network, dict(spec.scoring), dict(spec.threshold_entry), test, device, output_dir / "plots")
    report.update(
        n_cases=len(test) + len(failures), n_scored=len(test), n_failed=len(failures), failures=[f.to_json() for f in failures]
    )
    data = parser.get_parsed_content("data")
    report["test_split"] = {
        "manifest": data.get("manifest") or "embedded LIDC-IDRI-0001 demo",
        "fold": data.get("fold"),
        "trained_with": "not recorded" if spec.trained_on is None else spec.trained_on.manifest or "embedded LIDC-IDRI-0001 demo",
    }
    write_json({"model": str(spec.path), "threshold": spec.threshold_entry, **report}, output_dir / "report.json")
    write_evaluate_page(output_dir, {"model": str(spec.path), **report})
    return report
