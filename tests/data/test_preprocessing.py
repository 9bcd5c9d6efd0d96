"""One preprocessing for training and scoring: :class:`~mama_monai.data.preprocessing.Preprocessor`.

The slices the training loader hands the network and the slices ``score`` preprocesses from the
same real CT are the same tensors; a volume goes through the preset's 3D chain (in-plane resize,
the slice axis kept), checked against MONAI's own composition of the preset.
"""

from __future__ import annotations

import torch

from mama_monai.data.demo import demo_manifest
from mama_monai.data.preprocessing import Preprocessor
from mama_monai.data.presets import get_preset
from mama_monai.data.case_slices import load_case_slices

SIZE = (32, 32)


def test_a_volume_goes_through_the_presets_3d_chain():
    manifest = demo_manifest("lidc")
    path = str(manifest.root / manifest.cases[0].image)
    got = Preprocessor("ct_lung", SIZE)({"image": path})["image"]
    reference = get_preset("ct_lung", SIZE, 3, with_loader=True)({"image": path})["image"]
    assert got.shape[:3] == (1, *SIZE) and got.shape[3] > 1  # the slice axis kept
    torch.testing.assert_close(torch.as_tensor(got), torch.as_tensor(reference), rtol=0, atol=0)


def test_training_slices_are_the_scorers_slices():
    manifest = demo_manifest("lidc")
    cases = [c for c in manifest.cases if c.slice_index is not None][:3]
    items, failures = load_case_slices(manifest, cases, "ct_lung", SIZE, num_workers=0)
    assert not failures and len(items) == 3
    volume = Preprocessor("ct_lung", SIZE)({"image": str(manifest.root / cases[0].image)})["image"]
    for case, item in zip(cases, items):
        torch.testing.assert_close(torch.as_tensor(item["image"]), torch.as_tensor(volume[..., case.slice_index]), rtol=0, atol=0)
