"""benchmarks/settings_sweep.py: the jobs of a sweep and the numbers its page decides on (known answers)."""

import argparse
import sys
from pathlib import Path

import numpy as np
from scipy.stats import ttest_rel

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from benchmarks import settings_sweep  # noqa: E402
from benchmarks.input_noise import SWEEP as NOISE  # noqa: E402

SWEEP = settings_sweep.Sweep(key="training#x", settings={"base": 1, "alt": 2}, title="t", script="s.py", prediction="p.txt")
SETTINGS = {"date": "d", "cpu": "c", "seconds": 60, "size": 64, "iterations": 300, "seeds": [0, 1], "output": "/x/r.json"}


def _row(task, network, seed, variant, val, test=0.7):
    return {"task": task, "network": network, "seed": seed, "variant": variant, "val_auroc": val, "auroc_percentile": test,
            "pixel_auroc": 0.9, "val_normal_mse": 0.01, "bright_auroc_percentile": test, "dark_auroc_percentile": test}


def test_every_setting_of_the_sweep_is_one_job_per_task_network_and_seed_with_its_override():
    args = argparse.Namespace(size=64, iterations=300, tasks=["lidc", "brain"], models=["autoencoder", "mamanet_compact"], seeds=[0, 1])
    jobs = settings_sweep.plan(args, NOISE)
    assert len(jobs) == 2 * 2 * 2 * len(NOISE.settings)
    for name, setting in NOISE.settings.items():
        mine = [j for j in jobs if j["variant"] == name]
        assert {(j["task"], j["network"], j["seed"]) for j in mine} == {(t, n, s) for t in args.tasks for n in args.models for s in args.seeds}
        assert all(j["overrides"] == {"training#input_noise": setting} for j in mine)
    assert NOISE.baseline == "default" and NOISE.settings["default"] == {"std": 0.2, "resolution": 16}
    assert [j["network"] for j in jobs[:8]] == ["mamanet_compact"] * 8  # the longest first


def test_validation_table_known_answer():
    rows = [
        _row("lidc", "mamanet_compact", 0, "base", 0.60), _row("lidc", "mamanet_compact", 1, "base", 0.70),
        _row("lidc", "mamanet_compact", 0, "alt", 0.66), _row("lidc", "mamanet_compact", 1, "alt", 0.74),
        _row("lidc", "autoencoder", 0, "base", 0.50), _row("lidc", "autoencoder", 1, "base", 0.50),
        _row("lidc", "autoencoder", 0, "alt", 0.40), _row("lidc", "autoencoder", 1, "alt", 0.44),
    ]  # fmt: skip
    page = settings_sweep.summary(rows, SETTINGS, SWEEP)
    # MAMA Net: 0.65 -> 0.70 (+0.05); mean of the networks: (0.65 + 0.50) / 2 = 0.575 -> (0.70 + 0.42) / 2 = 0.56 (-0.015)
    assert "| base | 0.650 | 0.575 |" in page
    assert "| alt | 0.700 (+0.050) | 0.560 (-0.015) |" in page


def test_test_auroc_difference_is_paired_by_seed():
    base = [0.70, 0.60, 0.90]
    alt = [0.80, 0.62, 0.97]
    rows = [_row("brain", "memae", s, "base", 0.5, v) for s, v in reversed(list(enumerate(base)))]  # seeds 2, 1, 0
    rows += [_row("brain", "memae", s, "alt", 0.5, v) for s, v in enumerate(alt)]
    expected = ttest_rel(alt, base)
    page = settings_sweep.summary(rows, dict(SETTINGS, seeds=[0, 1, 2]), SWEEP)
    line = next(line for line in page.splitlines() if line.startswith("| MemAE | alt |"))
    assert line.endswith(f"| {np.mean(np.subtract(alt, base)):+.3f}, p = {expected.pvalue:.2g} |")


def test_learning_rate_jobs_scale_each_networks_own_rate():
    """Known answers from the configs: the compact MAMA Net trains at 0.003
    (configs/network/mamanet_compact.yaml), the baselines at 0.002 (configs/network/autoencoder.yaml,
    memae.yaml; docs/accuracy/baseline_rates_prediction.txt)."""
    from benchmarks import learning_rate

    args = argparse.Namespace(size=64, iterations=300, tasks=["lidc", "brain"], models=["mamanet_compact", "autoencoder", "memae"], seeds=[0, 1])
    jobs = learning_rate.plan(args)
    rates = {(j["network"], j["variant"]): j["overrides"]["optimizer#lr"] for j in jobs}
    assert rates == {
        ("mamanet_compact", "default"): 0.003, ("mamanet_compact", "half"): 0.0015, ("mamanet_compact", "double"): 0.006,
        ("autoencoder", "default"): 0.002, ("autoencoder", "half"): 0.001, ("autoencoder", "double"): 0.004,
        ("memae", "default"): 0.002, ("memae", "half"): 0.001, ("memae", "double"): 0.004,
    }  # fmt: skip
    assert len(jobs) == 2 * 3 * 2 * 3 and len({(j["task"], j["network"], j["seed"], j["variant"]) for j in jobs}) == len(jobs)
