"""benchmarks/compare_results.py: two runs paired by seed, against scipy."""

import json
import sys
from pathlib import Path

from scipy.stats import ttest_rel

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from benchmarks import compare_results  # noqa: E402


def _row(net, seed, value, task="lidc", variant="main"):
    return {"task": task, "variant": variant, "network": net, "seed": seed, "auroc_percentile": value}


def test_rows_are_paired_by_seed_and_only_on_seeds_both_runs_hold(tmp_path, capsys):
    old = [_row("mamanet_compact", s, v) for s, v in [(0, 0.70), (1, 0.60), (2, 0.80), (3, 0.99)]]
    new = [_row("mamanet_compact", s, v) for s, v in [(2, 0.85), (0, 0.72), (1, 0.69)]]  # no seed 3; shuffled
    old.append(_row("autoencoder", 0, 0.5))  # only in one run: no line
    paths = []
    for name, rows in (("old", old), ("new", new)):
        paths.append(tmp_path / f"{name}.json")
        paths[-1].write_text(json.dumps({"rows": rows}))
    assert compare_results.main([str(p) for p in paths]) == 0
    out = capsys.readouterr().out.splitlines()
    p = ttest_rel([0.72, 0.69, 0.85], [0.70, 0.60, 0.80]).pvalue
    line = f"| lidc | main | MAMA Net (compact) | 3 | {0.70:.3f} | {0.7533333:.3f} | +0.053, p = {p:.3f} |"
    assert line in out
    assert not [l for l in out if "autoencoder" in l]
    assert out[-1] == "After >= before in 1 of 1 rows."
