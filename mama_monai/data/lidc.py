"""Read LIDC-IDRI radiologist annotations (the ``LidcReadMessage`` XML) and turn them into masks.

Each ``readingSession`` is one radiologist. It holds ``unblindedReadNodule`` entries (a nodule
>= 3 mm has one ``roi`` per slice with an ``edgeMap`` outline of pixel coordinates; a nodule
< 3 mm has a single-point roi) and ``nonNodule`` entries (a lesion judged not to be a nodule,
one ``locus`` point). ``imageZposition`` is the slice's z in mm; ``xCoord``/``yCoord`` are the
column/row of the 512 x 512 DICOM pixel grid. Reference: Armato et al., Med. Phys. 38(2), 2011;
LIDC XML schema ``LidcReadMessage.xsd``.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from matplotlib.path import Path as PolygonPath

__all__ = ["LidcRoi", "LidcNodule", "LidcReading", "parse_lidc_xml", "rasterize_reading", "match_slices"]

_NS = {"n": "http://www.nih.gov"}


@dataclass
class LidcRoi:
    """One outline on one slice: ``z_mm``, ``xy`` (N, 2) column/row pixels, ``inclusion`` (False: a hole)."""

    z_mm: float
    xy: np.ndarray
    inclusion: bool = True
    sop_uid: str = ""


@dataclass
class LidcNodule:
    """A nodule marked by one reader: its rois; ``is_point`` when it is a < 3 mm single-point mark."""

    nodule_id: str
    rois: list[LidcRoi]

    @property
    def is_point(self) -> bool:
        return all(len(r.xy) == 1 for r in self.rois)


@dataclass
class LidcReading:
    """One radiologist's reading: nodules and non-nodule points (``(z_mm, xy)``)."""

    nodules: list[LidcNodule] = field(default_factory=list)
    non_nodules: list[LidcRoi] = field(default_factory=list)


def _xy(elements: list[ET.Element]) -> np.ndarray:
    return np.array([[int(e.find("n:xCoord", _NS).text), int(e.find("n:yCoord", _NS).text)] for e in elements], dtype=int).reshape(-1, 2)


def parse_lidc_xml(path: str | Path) -> list[LidcReading]:
    """Parse a LIDC ``LidcReadMessage`` XML file into one :class:`LidcReading` per radiologist.

    Reader ids in the file are not kept; readings are numbered by their order in the file.

    Example:
        >>> readings = parse_lidc_xml("069.xml")  # doctest: +SKIP
        >>> len(readings)  # doctest: +SKIP
        4
    """
    root = ET.parse(path).getroot()
    readings = []
    for session in root.findall("n:readingSession", _NS):
        reading = LidcReading()
        for nod in session.findall("n:unblindedReadNodule", _NS):
            rois = [
                LidcRoi(
                    z_mm=float(roi.find("n:imageZposition", _NS).text),
                    xy=_xy(roi.findall("n:edgeMap", _NS)),
                    inclusion=(roi.findtext("n:inclusion", "TRUE", _NS).strip().upper() == "TRUE"),
                    sop_uid=roi.findtext("n:imageSOP_UID", "", _NS).strip(),
                )
                for roi in nod.findall("n:roi", _NS)
            ]
            reading.nodules.append(LidcNodule(nod.findtext("n:noduleID", "", _NS).strip(), rois))
        for non in session.findall("n:nonNodule", _NS):
            reading.non_nodules.append(
                LidcRoi(float(non.find("n:imageZposition", _NS).text), _xy(non.findall("n:locus", _NS)), True, non.findtext("n:imageSOP_UID", "", _NS).strip())
            )
        readings.append(reading)
    if not readings:
        raise ValueError(f"{path}: no readingSession elements; expected a LIDC LidcReadMessage XML file.")
    return readings


def match_slices(z_annotation: float, z_slices: np.ndarray, tol_mm: float = 0.1) -> int:
    """Index of the slice whose z equals ``z_annotation`` within ``tol_mm``; ValueError when none does."""
    k = int(np.argmin(np.abs(z_slices - z_annotation)))
    if abs(z_slices[k] - z_annotation) > tol_mm:
        raise ValueError(f"annotation at z={z_annotation} mm matches no slice (nearest {z_slices[k]} mm, tolerance {tol_mm} mm).")
    return k


def _fill(xy: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Filled polygon (interior by pixel centre, plus the outline pixels themselves) as (rows, cols) bool."""
    mask = np.zeros(shape, dtype=bool)
    if len(xy) >= 3:
        c0, r0 = np.maximum(xy.min(0), 0)
        c1, r1 = np.minimum(xy.max(0) + 1, (shape[1], shape[0]))
        cols, rows = np.meshgrid(np.arange(c0, c1), np.arange(r0, r1))
        inside = PolygonPath(xy).contains_points(np.stack([cols.ravel(), rows.ravel()], 1)).reshape(rows.shape)
        mask[r0:r1, c0:c1] = inside
    closed = np.vstack([xy, xy[:1]])
    for (ca, ra), (cb, rb) in zip(closed[:-1], closed[1:]):  # outline pixels, also between sparse vertices
        n = int(max(abs(cb - ca), abs(rb - ra))) + 1
        cs, rs = np.rint(np.linspace(ca, cb, n)).astype(int), np.rint(np.linspace(ra, rb, n)).astype(int)
        keep = (cs >= 0) & (cs < shape[1]) & (rs >= 0) & (rs < shape[0])
        mask[rs[keep], cs[keep]] = True
    return mask


def rasterize_reading(
    reading: LidcReading, z_slices: np.ndarray, shape: tuple[int, int], spacing_mm: float, point_diameter_mm: float = 3.0
) -> np.ndarray:
    """Nodule mask of one reading on the DICOM grid, shape (n_slices, rows, cols), bool.

    Outlines are filled (outline pixels included); ``inclusion=False`` rois are cut out. A point
    nodule (< 3 mm, no outline in LIDC) becomes a disk of ``point_diameter_mm`` (default 3 mm,
    the LIDC size limit) so that its slice carries a non-empty mask. Non-nodules are not drawn.

    Args:
        reading: one radiologist's reading.
        z_slices: z (mm) of every slice, in volume order.
        shape: (rows, cols) of a slice.
        spacing_mm: in-plane pixel spacing (mm), for the point disks.
        point_diameter_mm: diameter of the disk drawn for a point nodule. Default 3.0.
    """
    out = np.zeros((len(z_slices),) + tuple(shape), dtype=bool)
    rows, cols = np.ogrid[: shape[0], : shape[1]]
    radius_px = 0.5 * point_diameter_mm / spacing_mm
    for nodule in reading.nodules:
        for roi in sorted(nodule.rois, key=lambda r: not r.inclusion):
            k = match_slices(roi.z_mm, z_slices)
            if len(roi.xy) == 1:
                c, r = roi.xy[0]
                out[k] |= (rows - r) ** 2 + (cols - c) ** 2 <= radius_px**2
            elif roi.inclusion:
                out[k] |= _fill(roi.xy, shape)
            else:
                out[k] &= ~_fill(roi.xy, shape)
    return out
