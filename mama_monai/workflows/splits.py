"""Train / validation / test slices from a workflow config's ``data`` section: the split policy.

The manifest is ``data#manifest`` (or the embedded LIDC-IDRI-0001 demo), the split its fixed
train/test split or fold ``data#fold``; only normal training cases are trained on, every
``data#val_every``-th is held out for validation with SIMULATED-lesion copies. Loading the slices
is :func:`mama_monai.data.case_slices.load_case_slices`.
"""

from __future__ import annotations

import logging
import math
from typing import Any

from mama_monai.data.cache import check_cache_dir
from mama_monai.data.case_slices import check_num_workers, load_case_slices, simulated_anomalies
from mama_monai.data.preprocessing import check_crop_to_body
from mama_monai.data.manifest import Manifest, ManifestCase
from mama_monai.data.validation_holdout import hold_out_validation

__all__ = ["lesion_copies", "load_test_split", "prepare_splits"]

logger = logging.getLogger(__name__)

#: ``data#validation_lesion_copies: auto``: enough copies for this many SIMULATED lesions, at most
#: :data:`MAX_AUTO_COPIES` per held-out slice (a large validation set gets one copy per slice)
AUTO_LESIONS = 200
MAX_AUTO_COPIES = 8


def lesion_copies(setting: Any, normals: int) -> int:
    """Lesioned copies per held-out normal slice for ``data#validation_lesion_copies``.

    An int >= 1 is taken as it is. ``"auto"`` (the default of ``configs/train.yaml``) takes
    ``ceil(200 / normals)`` copies, at least 1 and at most 8: the demo's 38 held-out LIDC slices
    get 6 (228 lesions), the brain task's 6 get 8 (48), a validation set of 200 slices or more one
    each, so that memory and time grow with small validation sets only. Why: with one lesion per
    slice the validation AUROC of one network moved with the lesion draw by an sd of 0.026 on the
    38 LIDC normals and 0.097 on the 6 brain normals (0.012 and 0.028 with the auto copies;
    ``docs/accuracy/validation_noise.md``), as much as the differences between the settings it
    was asked to rank; the normals themselves stay as few as the data hold. ``1`` is
    the behaviour before 2026-12-07 (one copy, the same draw as copy 0 of any other setting).
    """
    if setting == "auto":
        return min(MAX_AUTO_COPIES, max(1, math.ceil(AUTO_LESIONS / max(normals, 1))))
    if isinstance(setting, bool) or not isinstance(setting, int) or setting < 1:
        raise ValueError(
            f"data#validation_lesion_copies must be 'auto' or an int >= 1 (lesioned copies per held-out slice), got {setting!r}."
        )
    return setting


def _data_split(parser: Any, check_files: bool) -> tuple[dict[str, Any], Manifest, dict[str, list[ManifestCase]], dict[str, Any]]:
    """``data`` section, manifest, its train/test cases and the loading options of a workflow config."""
    from mama_monai.data.demo import demo_manifest
    from mama_monai.data.manifest import load_manifest, split_cases

    data = parser.get_parsed_content("data")
    if data.get("manifest") is None:
        manifest = demo_manifest("lidc")
    else:
        manifest = load_manifest(data["manifest"], check_files=check_files)
    loading = {
        "num_workers": check_num_workers(data.get("num_workers"), "data#num_workers"),
        "cache_dir": check_cache_dir(data.get("cache_dir"), "data#cache_dir"),
        "crop_to_body": check_crop_to_body(data.get("crop_to_body", True)),
    }
    return data, manifest, split_cases(manifest, data.get("fold")), loading


def load_test_split(parser: Any, crop_to_body: bool | None = None) -> dict[str, Any]:
    """The test slices of the config's ``data`` section, and nothing else: what ``evaluate`` needs.

    No training file is opened or even looked for (the manifest is read without its file check):
    a missing or unreadable test file is a :class:`CaseFailure` of its cases, reported, not an error.

    Args:
        parser: a workflow config (``data#manifest``, ``data#fold``, ``data#preset``,
            ``data#spatial_size``, ``data#num_workers``, ``data#cache_dir``).
        crop_to_body: the model file's crop to the body (``ModelSpec.crop_to_body``), over the
            config's ``data#crop_to_body``; ``None`` (default): the config's.

    Returns:
        ``{"manifest", "test", "failures"}``; ``failures`` lists the test cases that could not be loaded.
    """
    data, manifest, split, loading = _data_split(parser, check_files=False)
    if crop_to_body is not None:  # the model file's, over the config's data#crop_to_body
        loading["crop_to_body"] = check_crop_to_body(crop_to_body, "crop_to_body")
    test, failures = load_case_slices(manifest, split["test"], data["preset"], data["spatial_size"], **loading)
    return {"manifest": manifest, "test": test, "failures": failures}


#: ``data#validation_lesion_<key>``, each ``simulated_anomalies``' argument ``<key>``: where the validation lesions go and what they look like
LESION_OPTIONS = ("centres", "enclosed", "target", "sign")


def validation_lesion_options(data: dict[str, Any]) -> dict[str, Any]:
    """The ``data#validation_lesion_{centres,enclosed,target,sign}`` keys set in ``data`` (null or
    absent: the default's), as :func:`~mama_monai.data.case_slices.simulated_anomalies` takes them;
    a bad value is refused naming its key before any file is read."""
    options = {key: data[f"validation_lesion_{key}"] for key in LESION_OPTIONS if data.get(f"validation_lesion_{key}") is not None}
    if not isinstance(options.get("enclosed", False), bool):
        raise ValueError(f"data#validation_lesion_enclosed must be true or false, got {options['enclosed']!r}.")
    mode = data.get("validation_lesion_mode", "tissue")
    for key, value in options.items():
        try:
            simulated_anomalies([], seed=0, mode=mode, **{key: value})  # checks the value, draws nothing
        except (TypeError, ValueError) as err:
            raise ValueError(f"data#validation_lesion_{key}={value!r}: {err}") from None
    return options


def prepare_splits(parser: Any) -> dict[str, Any]:
    """Train / validation / test slices from the config's ``data`` section.

    The manifest is ``data#manifest`` (or the embedded LIDC-IDRI-0001 demo when null); the split
    is its fixed train/test split or fold ``data#fold``. Only normal training cases are trained
    on. About one in ``data#val_every`` of them is held out for validation and threshold
    calibration (``data#validation_split``: ``"auto"``, whole subjects where there are at least
    ``data#val_every`` of them and every ``data#val_every``-th slice otherwise; ``"blocks"``,
    whole subjects or slabs of ``data#validation_block`` slices with ``data#validation_gap``
    dropped beside them; or ``"interleaved"``; :func:`hold_out_validation`), with
    SIMULATED-lesion copies when ``data#simulated_validation_anomalies`` (so no real anomaly is
    looked at before the test), ``data#validation_lesion_copies`` of them per slice
    (:func:`lesion_copies`).
    Files are loaded with ``data#num_workers`` processes and the cache ``data#cache_dir``
    (:func:`load_case_slices`; both optional).

    Returns:
        ``{"manifest", "train", "val", "test", "failures"}`` (``failures``: :class:`CaseFailure` s).

    Raises:
        ValueError: no normal training case could be loaded, or none was held out for validation
            (fewer than ``data#val_every`` normals), naming the keys and the counts.
    """
    data, manifest, split, loading = _data_split(parser, check_files=True)
    lesion_copies(data.get("validation_lesion_copies", "auto"), 1)  # a bad value is refused before any file is read
    lesion_options = validation_lesion_options(data)
    normals = [c for c in split["train"] if c.label == 0]
    train_cases, val_cases = hold_out_validation(
        normals, every=data.get("val_every", 5), mode=data.get("validation_split", "auto"),
        block=data.get("validation_block", 8), gap=data.get("validation_gap", 2),
    )  # fmt: skip
    loaded, f1 = load_case_slices(manifest, train_cases + val_cases, data["preset"], data["spatial_size"], **loading)
    held = {c.case_id for c in val_cases}  # one load: a volume's slices are decoded once
    train = [it for it in loaded if it["case_id"] not in held]
    val = [it for it in loaded if it["case_id"] in held]
    test, f2 = load_case_slices(manifest, split["test"], data["preset"], data["spatial_size"], **loading)
    if not train:
        raise ValueError(f"no normal training case could be loaded from manifest {manifest.dataset!r} (failures: {f1[:3]}).")
    if not val:
        raise ValueError(
            f"no validation normal: manifest {manifest.dataset!r} has {len(normals)} normal training case(s), and "
            f"data#val_every={data.get('val_every', 5)} with data#validation_split={data.get('validation_split', 'auto')!r} "
            f"held out {len(val_cases)} that could be loaded ({len(f1)} failure(s)); the checkpoint and the threshold "
            "need held-out normals: add normal training cases or lower data#val_every (>= 2)."
        )
    lesioned, lesions = _validation_lesions(val, data, int(parser["seed"]), lesion_options) if data.get("simulated_validation_anomalies", True) else ([], "")
    logger.info("training on %d normal slices; validation: %d held-out normal slices%s", len(train), len(val), lesions)
    return {"manifest": manifest, "train": train, "val": val + lesioned, "test": test, "failures": f1 + f2}


def _validation_lesions(val: list[dict[str, Any]], data: dict[str, Any], seed: int, options: dict[str, Any]) -> tuple[list[dict[str, Any]], str]:
    """The SIMULATED-lesion copies of the held-out normals ``val`` as ``data`` configures them
    (``options``: :func:`validation_lesion_options`' of it), and the log's words for them."""
    copies = lesion_copies(data.get("validation_lesion_copies", "auto"), len(val))
    lesioned = simulated_anomalies(
        val, seed=seed, radius_fraction=data.get("validation_lesion_radius", (0.02, 0.06)),
        mode=data.get("validation_lesion_mode", "tissue"), copies=copies, **options,
    )  # fmt: skip
    skipped = len(val) - len(lesioned) // copies
    where = f"; {skipped} held-out slice(s) have no allowed lesion centre (data#validation_lesion_centres) and get none" if skipped else ""
    return lesioned, f" + {len(lesioned)} SIMULATED-lesion copies of them ({copies} per slice{where})"
