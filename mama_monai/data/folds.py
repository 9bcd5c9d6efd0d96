"""Deterministic, stratified k-fold assignment for manifests.

The paper evaluates with stratified k-fold cross-validation (Chen et al., TMI 2021, Sec. IV).
:func:`assign_folds` gives every case a fold number with scikit-learn's ``StratifiedKFold``
(or ``StratifiedGroupKFold`` when patient ids are given, so that all slices of one patient land
in the same fold) and a fixed seed, so the same inputs always give the same folds.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import numpy as np
from sklearn.model_selection import KFold, StratifiedGroupKFold, StratifiedKFold

__all__ = ["assign_folds"]


def assign_folds(
    labels: Sequence[int], num_folds: int = 5, seed: int = 0, groups: Sequence[str] | None = None
) -> list[int]:
    """Assign each case to one of ``num_folds`` folds, stratified by label.

    Args:
        labels: one label per case (0 normal, 1 anomalous). A single class is allowed (then the
            folds are a seeded shuffle split, e.g. the normals of the COVID X-ray protocol).
        num_folds: number of folds k (>= 2). Default 5.
        seed: seed of the shuffle; the same inputs and seed always give the same folds. Default 0.
        groups: optional patient id per case; all cases of one group get the same fold
            (``StratifiedGroupKFold``), so no patient is in both train and test.

    Returns:
        the fold index (0 .. k-1) of every case, in input order.

    Raises:
        ValueError: when ``num_folds`` < 2, when there are fewer cases (or groups) of a class than
            folds, or when ``groups`` has a different length from ``labels``.

    Example:
        >>> assign_folds([0, 0, 0, 1, 1, 1], num_folds=3, seed=0)  # doctest: +SKIP
        [2, 0, 1, 1, 0, 2]
    """
    labels_arr = np.asarray(labels, dtype=int)
    if int(num_folds) != num_folds or num_folds < 2:
        raise ValueError(f"num_folds must be an integer >= 2, got {num_folds!r}.")
    num_folds = int(num_folds)
    if labels_arr.size == 0:
        return []
    if groups is not None and len(groups) != len(labels_arr):
        raise ValueError(f"groups has {len(groups)} entries but labels has {len(labels_arr)}; expected one group per case.")
    if groups is None:
        counts = Counter(labels_arr.tolist())
        smallest = min(counts.values())
        if smallest < num_folds:
            raise ValueError(
                f"num_folds={num_folds} but the smallest class has only {smallest} cases "
                f"(class counts {dict(sorted(counts.items()))}); expected at least one case of each class per fold."
            )
    else:
        group_counts = {lab: len({g for g, l in zip(groups, labels_arr) if l == lab}) for lab in set(labels_arr.tolist())}
        if min(group_counts.values()) < num_folds:
            raise ValueError(
                f"num_folds={num_folds} but a class occurs in only {min(group_counts.values())} groups "
                f"(groups per class {dict(sorted(group_counts.items()))}); expected at least num_folds groups per class."
            )
    x = np.zeros((labels_arr.size, 1))
    single_class = len(set(labels_arr.tolist())) == 1
    if groups is not None:
        splitter = StratifiedGroupKFold(n_splits=num_folds, shuffle=True, random_state=seed)
        splits = splitter.split(x, labels_arr, groups=np.asarray(groups, dtype=str))
    elif single_class:
        splits = KFold(n_splits=num_folds, shuffle=True, random_state=seed).split(x)
    else:
        splits = StratifiedKFold(n_splits=num_folds, shuffle=True, random_state=seed).split(x, labels_arr)
    folds = np.full(labels_arr.size, -1, dtype=int)
    for k, (_, test_idx) in enumerate(splits):
        folds[test_idx] = k
    return folds.tolist()
