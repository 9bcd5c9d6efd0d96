"""Does MAMA Net's decoder use what the memory reads? (``docs/accuracy/memory_use.md``; predicted
before the run in ``docs/accuracy/memory_use_prediction.txt``)

MAMA Net (compact) decodes from the concatenation of the memory's answer ``m`` and the encoder's
code ``z`` (the semantic basis). The reports count the slots read (211-231 of 256), which says the
memory is addressed, not that the decoder depends on what it returns. Each trained network is
therefore decoded again at test time, nothing retrained, with one path replaced:

- ``product``: ``decode(m, z)``, the network as trained;
- ``another slice's m``: ``m`` of the slice half the set away in the order of the slices' ids
  (:func:`half_away`: another level of the volume or another patient, never a SIMULATED copy of
  the slice itself), so the memory's answer is real but for other anatomy; ``z`` unchanged;
- ``m = 0``: the memory's answer removed;
- ``z = 0``: the code removed from the semantic basis, the memory's answer alone.

For each: the held-out normal validation error (mean squared error), the validation AUROC
(held-out normals and their SIMULATED-lesion copies) and the test image and pixel AUROC, all with
the product's map and score (pixel AUROC over the anomalous slices' body pixels, as the product
reports it). A large rise of the normal error when ``m`` is replaced means the
decoder relies on the memory; none means the memory's answer is ignored and MAMA Net reconstructs
from ``z`` like an autoencoder. Every (task, seed) is trained once by ``benchmarks/accuracy.py``'s
``run_one`` (the product's path).

    python benchmarks/memory_use.py --output docs/accuracy/memory_use.json   # ~8 min on 2 CPU cores
    python benchmarks/memory_use.py --output docs/accuracy/memory_use.json --report-only

``--semantic-dropout P`` trains the networks with ``network_def#semantic_dropout: P`` (the decoder
sees ``[m, 0]`` for a share P of the training samples, so that it learns to reconstruct from the
memory) and ``--against RUN.json`` adds, paired by seed, each variant minus that run's networks as
trained (``docs/accuracy/memory_dropout.md`` against ``memory_use.json``).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks import rows_file, settings_sweep  # noqa: E402
from benchmarks.accuracy import lesion_pixel_auroc  # noqa: E402

MODELS = ("mamanet_compact",)
TASK_NAME = {"lidc": "LIDC (REAL nodules)", "brain": "brain T1 (SIMULATED lesions)"}
#: variant -> what the page calls it
VARIANTS = {"product": "decode(m, z): as trained", "other_m": "another slice's m", "zero_m": "m = 0", "zero_z": "z = 0 (m alone)"}


def half_away(case_ids: Sequence[str]) -> list[int]:
    """For each item, the index of the item half the set away when the items are sorted by id:
    a slice and its SIMULATED copies (``<id>_simulated...``) sort side by side, so the partner is
    another slice, far from it in the volume or of another patient.

    Example::

        >>> half_away(["p_s010", "p_s020", "p_s010_simulated", "p_s020_simulated"])
        [1, 0, 3, 2]
    """
    order = sorted(range(len(case_ids)), key=lambda i: case_ids[i])
    rank = {item: r for r, item in enumerate(order)}
    return [order[(rank[i] + len(order) // 2) % len(order)] for i in range(len(case_ids))]


def reconstructions(network, x, variant: str, partners: Sequence[int] | None = None):
    """``network``'s reconstruction of ``x`` with one decoder path replaced (module docstring);
    ``partners[i]``: whose memory answer item ``i`` gets in ``other_m`` (:func:`half_away` of the
    items' ids; required there)."""
    import torch

    if variant == "other_m" and partners is None:
        raise ValueError("variant 'other_m' needs partners (half_away of the items' ids), got None.")
    with torch.no_grad():
        z, sizes = network.encode(x)
        m = network.address(z).output.to(z.dtype)
        if variant == "other_m":
            m = m[torch.as_tensor(partners)]
        elif variant == "zero_m":
            m = torch.zeros_like(m)
        elif variant == "zero_z":
            z = torch.zeros_like(z)
        elif variant != "product":
            raise ValueError(f"variant must be one of {sorted(VARIANTS)}, got {variant!r}.")
        return network.decode(m, z, sizes)


def _evaluate(network, amap, items: Sequence[dict], variant: str) -> dict[str, np.ndarray]:
    """Scores, maps, labels, body and squared error of ``items`` decoded as ``variant`` (one batch:
    ``other_m``'s partners come from the whole set)."""
    import torch

    x = torch.stack([torch.as_tensor(it["image"]) for it in items]).float()
    r = reconstructions(network, x, variant, half_away([str(it["case_id"]) for it in items]))
    return {"score": amap(x, r).numpy(), "map": amap.map(x, r).numpy()[:, 0], "body": amap.foreground(x).numpy()[:, 0] > 0,
            "label": np.array([int(it["label"]) for it in items]), "mse": ((x - r) ** 2).flatten(1).mean(1).numpy()}


def network_values(network, val_items: Sequence[dict], scoring: dict[str, Any], device, job: dict[str, Any], test: Sequence[dict] = ()) -> dict[str, Any]:
    """``accuracy.run_one``'s ``network_scores`` hook: per variant, the held-out normal error
    (``use_mse_<v>``), the validation and test image AUROC (``use_val_<v>``, ``use_test_<v>``) and
    the test pixel AUROC in the body (``use_pixel_<v>``)."""
    from sklearn.metrics import roc_auc_score

    from mama_monai.engines import AnomalyMap, anomaly_map_args

    network.eval()
    amap = AnomalyMap(2, **anomaly_map_args(scoring))
    row: dict[str, Any] = {}
    for v in VARIANTS:
        val, tst = _evaluate(network, amap, val_items, v), _evaluate(network, amap, test, v)
        row[f"use_mse_{v}"] = float(val["mse"][val["label"] == 0].mean())
        row[f"use_val_{v}"] = float(roc_auc_score(val["label"], val["score"]))
        row[f"use_test_{v}"] = float(roc_auc_score(tst["label"], tst["score"]))
        row[f"use_pixel_{v}"] = lesion_pixel_auroc(tst["map"], tst["body"], list(test))  # the product's pixels
    return row


def _jobs(args: argparse.Namespace, tmp: Path) -> list[dict[str, Any]]:
    over = {"network_def#semantic_dropout": args.semantic_dropout} if args.semantic_dropout else {}
    return [dict(j, network_scores=["memory_use"], overrides=over) for j in rows_file.scored_jobs(args)]


def _arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--semantic-dropout", type=float, default=0.0, help="train with network_def#semantic_dropout = this (default 0)")
    parser.add_argument("--against", default=None, help="a memory_use JSON of networks trained without it: differences paired by seed")


# ----------------------------------------------------------------------------- the page
def summary(rows: list[dict], settings: dict) -> str:
    lines = [
        "# Does MAMA Net's decoder use what the memory reads?",
        "",
        f"Written by `python benchmarks/memory_use.py` on {settings['date']}, {settings['cpu']}, in "
        f"{settings['seconds'] / 60:.0f} min: {settings['size']} x {settings['size']}, {settings['iterations']} iterations, "
        f"seeds {settings['seeds']}; one MAMA Net (compact) per seed, trained as `benchmarks/accuracy.py` does (the "
        "product's path), then decoded again at test time with one path replaced (nothing retrained): the memory's "
        "answer m taken from the slice half the set away in id order (another level or patient), m = 0, or the code z = 0 in the semantic basis. Held-out "
        "NORMAL validation error (mean squared error), validation AUROC (held-out normals and SIMULATED-lesion copies), "
        "test image and pixel AUROC, all with the product's map and score; mean ± sd over seeds, differences from the "
        "network as trained paired over seeds. Predictions, written before the run: `memory_use_prediction.txt`. "
        "Rows: `" + Path(settings["output"]).name + "`.",
    ]
    if settings.get("semantic_dropout"):
        lines += ["", f"**Trained with `network_def#semantic_dropout: {settings['semantic_dropout']}`**: the decoder saw "
                  f"[m, 0] for {settings['semantic_dropout']:.0%} of the training samples."]  # fmt: skip
    against = _against(settings)
    for task in [t for t in TASK_NAME if any(r["task"] == t for r in rows)]:
        group = sorted((r for r in rows if r["task"] == task), key=lambda r: r["seed"])
        lines += ["", f"## {TASK_NAME[task]}", "",
                  "| decoder input | held-out normal MSE | x the trained | validation AUROC | minus trained (paired) | "
                  "test image AUROC | minus trained (paired) | test pixel AUROC |",
                  "| --- | --- | --- | --- | --- | --- | --- | --- |"]  # fmt: skip
        for v, label in VARIANTS.items():
            ratio = np.mean([r[f"use_mse_{v}"] / r["use_mse_product"] for r in group])
            cells = [rows_file.mean_sd([r[f"use_mse_{v}"] for r in group], 4), f"{ratio:.2f}"]
            for kind in ("val", "test"):
                key = f"use_{kind}_{v}"
                cells += [rows_file.mean_sd([r[key] for r in group]),
                          "–" if v == "product" else rows_file.paired_difference(group, key, f"use_{kind}_product")]  # fmt: skip
            cells.append(rows_file.mean_sd([r[f"use_pixel_{v}"] for r in group]))
            lines.append(f"| {label} | " + " | ".join(cells) + " |")
        if against:
            lines += _against_lines(group, [r for r in against if r["task"] == task], settings["against"])
    return "\n".join(lines) + "\n"


def _against(settings: dict) -> list[dict]:
    """The rows of ``--against`` (a path relative to the repository root or absolute), or none."""
    if not settings.get("against"):
        return []
    path = Path(settings["against"])
    return json.loads((path if path.is_absolute() else ROOT / path).read_text())["rows"]


def _against_lines(group: list[dict], base: list[dict], name: str) -> list[str]:
    """Each variant minus the ``--against`` run's networks as trained, paired by seed."""
    lines = ["", f"Minus the networks trained without it (`{Path(name).name}`, decoded as trained), paired by seed:", "",
             "| decoder input | held-out normal MSE: this / that | validation AUROC | test image AUROC | test pixel AUROC |",
             "| --- | --- | --- | --- | --- |"]  # fmt: skip
    for v, label in VARIANTS.items():
        cells = [f"{np.mean([r[f'use_mse_{v}'] for r in group]):.4f} / {np.mean([r['use_mse_product'] for r in base]):.4f}"]
        for kind in ("val", "test", "pixel"):
            key = f"use_{kind}_{v}"
            trained = [{"seed": r["seed"], key: r[f"use_{kind}_product"]} for r in base]  # that run, decoded as trained
            cells.append(settings_sweep.paired(group, trained, lambda r, k=key: r[k]))
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return lines


def main(argv: list[str] | None = None) -> int:
    return rows_file.main(argv, __doc__, summary, _jobs, list(MODELS), _arguments)


if __name__ == "__main__":
    raise SystemExit(main())
