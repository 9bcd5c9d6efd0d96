"""The one way in: a path on disk to a channel-first ``MetaTensor``, alone, in a ``Compose`` or in bulk.

All three entry points load through MONAI's ``LoadImage`` with :class:`SimpleITKReader` passed
*at call time*, which pins it: ``LoadImage(reader=...)`` alone would fall back to MONAI's other
readers when this one rejects an input (a series with a missing slice would then be read by
``PydicomReader`` with a wrong geometry), and would wrap the clear error in a long one.

- :func:`load_image` — one path → ``MetaTensor`` of shape ``(C, W, H[, D])``, float32.
- :class:`LoadMedicalImaged` — the dictionary transform for ``Compose`` / datasets.
- :func:`load_many` — a batch: every path is tried, failures are reported and skipped.

Example:
    >>> image = load_image("ct_folder", series_uid=None)  # doctest: +SKIP
    >>> image.shape, image.meta["filename_or_obj"]  # doctest: +SKIP
    (torch.Size([1, 512, 512, 133]), 'ct_folder')
    >>> loaded, failures = load_many(["a.nii.gz", "broken.dcm"])  # doctest: +SKIP
    >>> [f.path for f in failures]  # doctest: +SKIP
    ['broken.dcm']
"""

from __future__ import annotations

import functools
import logging
import warnings
from collections.abc import Hashable, Iterable, Mapping
from dataclasses import dataclass
from os import PathLike
from typing import Any

from monai.config import KeysCollection
from monai.data import MetaTensor
from monai.transforms import LoadImage, MapTransform

from mama_monai.data.orientation import to_canonical
from mama_monai.data.readers import SimpleITKReader

__all__ = ["load_image", "LoadMedicalImaged", "load_many", "LoadFailure"]

logger = logging.getLogger(__name__)


def load_image(path: str | PathLike, series_uid: str | None = None, **reader_args: Any) -> MetaTensor:
    """Load one DICOM folder/file, NIfTI or PNG/JPEG as a channel-first float32 ``MetaTensor``.

    Args:
        path: the input.
        series_uid: SeriesInstanceUID to choose in a folder of several series (default ``None``).
        reader_args: other :class:`SimpleITKReader` arguments (``apply_voi_lut``, ``nan_policy``,
            ``to_grayscale``, ``spacing_tolerance``).

    Returns:
        ``MetaTensor`` of shape ``(C, W, H)`` or ``(C, W, H, D)`` with RAS ``affine`` and the
        metadata listed in :mod:`mama_monai.data.readers`.

    Raises:
        ImageLoadError: the input is missing, unsupported or invalid; the message names it.
    """
    reader = SimpleITKReader(series_uid=series_uid, **reader_args)
    return _loader()(path, reader=reader)


@functools.lru_cache(maxsize=1)
def _loader() -> LoadImage:
    """One shared ``LoadImage``; the reader is always passed at call time, so the default readers it
    registers (and their warnings about optional GPU decoders) are never used: silenced here."""
    quiet = logging.getLogger("monai.data.nvimgcodec_pydicom_plugin")
    level = quiet.level
    quiet.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return LoadImage(image_only=True, ensure_channel_first=True)
    finally:
        quiet.setLevel(level)


class LoadMedicalImaged(MapTransform):
    """Dictionary version of :func:`load_image`: replaces each path under ``keys`` by its image.

    Args:
        keys: keys of the paths to load, e.g. ``"image"``.
        series_uid_key: key whose value (if present and not empty) chooses the series of a
            multi-series folder for this item, e.g. a manifest column; default ``None``.
        allow_missing_keys: do not raise when a key is absent (default ``False``).
        canonical: reorient volumes to LPS voxel order (axial slices along the last axis,
            :func:`~mama_monai.data.orientation.to_canonical`); default ``True``.
        reader_args: :class:`SimpleITKReader` arguments shared by every item.

    Example:
        >>> from monai.transforms import Compose
        >>> chain = Compose([LoadMedicalImaged("image", series_uid_key="series_uid")])
        >>> chain({"image": "ct_folder", "series_uid": "1.2.3"})["image"].shape  # doctest: +SKIP
    """

    def __init__(
        self,
        keys: KeysCollection,
        series_uid_key: str | None = None,
        allow_missing_keys: bool = False,
        canonical: bool = True,
        **reader_args: Any,
    ) -> None:
        super().__init__(keys, allow_missing_keys)
        SimpleITKReader(**reader_args)  # validate the arguments now
        self.series_uid_key = series_uid_key
        self.canonical = canonical
        self.reader_args = reader_args

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        args = dict(self.reader_args)
        if self.series_uid_key is not None and d.get(self.series_uid_key):
            args["series_uid"] = str(d[self.series_uid_key])
        for key in self.key_iterator(d):
            image = load_image(d[key], **args)
            d[key] = to_canonical(image) if self.canonical else image
        return d


@dataclass(frozen=True)
class LoadFailure:
    """An input that could not be loaded.

    Attributes:
        path: the input as given.
        error: ``"<ExceptionType>: <message>"`` (one line).
    """

    path: str
    error: str


def load_many(
    paths: Iterable[str | PathLike], **load_args: Any
) -> tuple[list[tuple[str, MetaTensor]], list[LoadFailure]]:
    """Load every path; a bad one is logged, recorded and skipped, and never stops the others.

    Args:
        paths: inputs, each as :func:`load_image` takes them.
        load_args: :func:`load_image` arguments shared by every path (e.g. ``nan_policy``).

    Returns:
        ``(loaded, failures)``: ``(path, image)`` pairs in input order, and one
        :class:`LoadFailure` per input that failed (any ``Exception``; ``KeyboardInterrupt`` stops).
    """
    loaded: list[tuple[str, MetaTensor]] = []
    failures: list[LoadFailure] = []
    for path in paths:
        try:
            loaded.append((str(path), load_image(path, **load_args)))
        except Exception as err:  # a batch must survive any single bad input
            message = " ".join(str(err).split())
            failures.append(LoadFailure(str(path), f"{type(err).__name__}: {message}"))
            logger.warning("skipped %s: %s", path, message)
    return loaded, failures
