"""Which normal training cases are held out for validation: whole subjects, slabs, or every n-th slice.

Validation normals decide the checkpoint and the threshold, so they must be as new to the model
as the scans it will score. Neighbouring slices of one volume (2-3 mm apart) are near copies of
each other: held out one slice in five (``"interleaved"``, the first release's rule), every
validation slice has a training slice on each side, and validation measures how well the model
*remembers* its training anatomy. On the demo's fair LIDC split the models' error on the
held-out validation normals was a third (at 5x the iterations a ninth) of their error on the test
normals, which lie 15-60 mm from any training slice; validation AUROC rose with training while the
real nodules were found no better, and the threshold from those normals let 80 % of the test
normals through as anomalous (``docs/accuracy.md``). This is the leakage that blocked
cross-validation avoids for any autocorrelated data.

``"blocks"`` holds out what the test will be like:

- **whole subjects** where there are enough of them: the normal training cases are grouped by
  ``group`` (the manifest's patient / subject id; the image file where it has none), and when
  there are at least ``every`` groups, every ``every``-th group (sorted by name) is held out;
- otherwise **slabs**: each group's slices, sorted by ``slice_index``, are cut into runs of
  ``block`` consecutive training slices, every ``every``-th run is held out, and ``gap`` slices
  on either side of a held-out run are used for neither training nor validation, so that every
  validation slice is at least ``gap + 1`` slices from the nearest training slice.

``"auto"`` (the default; our decision) holds out whole subjects where there are at least
``every`` of them, and every ``every``-th slice otherwise. Slabs are not the default because on
one volume they cost the model the anatomy it needs. On the demo's LIDC split the held-out slabs
take the training slices nearest the test's (45-52 of 133); over 5 seeds, image AUROC on the
real nodules fell from 0.69 to 0.54 for MAMA Net (the last network both ways) and from 0.57 to
0.44 for the autoencoder, while the threshold from the slab normals did transfer (MAMA Net's
specificity on the matched normals 0.19 -> 0.77, its sensitivity 1.00 -> 0.33). Their
validation AUROC, 0.46-0.57 in every run, is the honest answer for one patient: simulated
lesions on anatomy the model has not seen are found at chance. With the demo's second
training patient (added since) the benchmark's ablation says the same (MAMA Net, seeds 0 and 1,
best checkpoint by validation): slabs 0.63 against 0.85 on the real nodules, specificity 0.77
against 0.54 (``docs/accuracy.md`` has the ablation).

All modes keep about one case in ``every`` for validation; ``block`` shrinks to
``len(cases) // every`` where it would leave fewer than ``every`` slabs (31 brain slices: slabs
of 6). Cases without a ``slice_index`` (2D images) are each their own slab.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import groupby

from mama_monai.data.manifest import ManifestCase

__all__ = ["VALIDATION_SPLITS", "hold_out_validation"]

#: ``"auto"``: whole subjects where there are enough, else every n-th slice (default);
#: ``"blocks"``: whole subjects or slabs of slices; ``"interleaved"``: every n-th slice.
VALIDATION_SPLITS = ("auto", "blocks", "interleaved")


def _group_key(case: ManifestCase) -> str:
    return case.group if case.group is not None else case.image


def _partition(cases: list[ManifestCase], held: set[int]) -> tuple[list[ManifestCase], list[ManifestCase]]:
    """``(cases not held, cases held)`` by ``id``, each in the order of ``cases``."""
    return [c for c in cases if id(c) not in held], [c for c in cases if id(c) in held]


def _slabs(cases: list[ManifestCase], every: int, block: int, gap: int, start: int) -> tuple[list, list, int]:
    """Cut one group's cases (sorted) into runs of ``block``; hold out every ``every``-th run
    (counting on from ``start``, so that groups share one count); drop ``gap`` around each."""
    runs = [cases[i : i + block] for i in range(0, len(cases), block)]
    held = {k for k in range(len(runs)) if (start + k) % every == every - 1}
    train, val = [], []
    for k, run in enumerate(runs):
        if k in held:
            val += run
            continue
        keep = list(run)
        if k - 1 in held:
            keep = keep[gap:]
        if k + 1 in held:
            keep = keep[: max(len(keep) - gap, 0)]
        train += keep
    return train, val, start + len(runs)


def hold_out_validation(
    cases: Sequence[ManifestCase], every: int = 5, mode: str = "auto", block: int = 8, gap: int = 2
) -> tuple[list[ManifestCase], list[ManifestCase]]:
    """Split normal training cases into ``(train, validation)`` (module docstring).

    Args:
        cases: the normal training cases, in manifest order.
        every: about one case in ``every`` is held out (>= 2). Default 5.
        mode: ``"auto"`` (default), ``"blocks"`` or ``"interleaved"`` (every ``every``-th case in
            manifest order); module docstring.
        block: ``"blocks"``: slices per slab (>= 1). Default 8 (20 mm at 2.5 mm slices).
        gap: ``"blocks"``: slices dropped on either side of a held-out slab (>= 0). Default 2.

    Returns:
        ``(train, validation)``, each in manifest order.

    Raises:
        ValueError: a bad ``every``, ``mode``, ``block`` or ``gap``, naming the config key.
    """
    if isinstance(every, bool) or not isinstance(every, int) or every < 2:
        raise ValueError(f"data#val_every must be an integer >= 2 (about one in val_every training slices is held out), got {every!r}.")
    if mode not in VALIDATION_SPLITS:
        raise ValueError(f"data#validation_split must be one of {list(VALIDATION_SPLITS)}, got {mode!r}.")
    if isinstance(block, bool) or not isinstance(block, int) or block < 1:
        raise ValueError(f"data#validation_block must be an integer >= 1 (slices per held-out slab), got {block!r}.")
    if isinstance(gap, bool) or not isinstance(gap, int) or gap < 0:
        raise ValueError(f"data#validation_gap must be an integer >= 0 (slices dropped beside a held-out slab), got {gap!r}.")
    cases = list(cases)
    by_group = sorted(cases, key=_group_key)
    groups = [list(g) for _, g in groupby(by_group, key=_group_key)]
    if mode != "interleaved" and len(groups) >= every:
        return _partition(cases, {id(c) for k, g in enumerate(groups) if k % every == every - 1 for c in g})
    if mode != "blocks":
        return _partition(cases, {id(c) for i, c in enumerate(cases) if i % every == every - 1})
    block = min(block, max(1, len(cases) // every))  # at least `every` slabs in all, so one is held out
    kept, held, start = set(), set(), 0
    for group in groups:
        ordered = sorted(group, key=lambda c: (c.slice_index is None, c.slice_index or 0))
        train, val, start = _slabs(ordered, every, block, gap, start)
        kept.update(map(id, train))
        held.update(map(id, val))
    train, val = _partition([c for c in cases if id(c) in kept | held], held)  # the gap slices are in neither
    return train, val
