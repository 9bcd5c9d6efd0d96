"""benchmarks/accuracy.py: the quick mode end to end, and the report's statistics against scipy."""

import json
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy.stats import ttest_rel

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from benchmarks import accuracy, accuracy_report  # noqa: E402


def _row(network, seed, auroc, pixel=0.9):
    return {"task": "lidc", "network": network, "seed": seed, "variant": "main", "auroc_percentile": auroc, "pixel_auroc": pixel}


def test_paired_t_test_matches_scipy():
    a = [_row("mamanet_compact", s, v) for s, v in enumerate([0.70, 0.65, 0.80, 0.72])]
    b = [_row("autoencoder", s, v) for s, v in enumerate([0.60, 0.66, 0.70, 0.69])]
    expected = ttest_rel([0.70, 0.65, 0.80, 0.72], [0.60, 0.66, 0.70, 0.69])
    text = accuracy_report._paired(a, b, "auroc_percentile")
    assert text == f"{np.mean([0.10, -0.01, 0.10, 0.03]):+.3f}, p = {expected.pvalue:.3f}"


def test_paired_t_test_pairs_by_seed_not_by_position():
    a = [_row("mamanet_compact", s, v) for s, v in [(0, 0.5), (1, 0.9)]]
    b = [_row("autoencoder", s, v) for s, v in [(1, 0.8), (0, 0.4)]]  # shuffled order, constant difference +0.1
    assert accuracy_report._paired(a, b, "auroc_percentile") == "+0.100 (constant difference)"


def test_mean_and_sample_sd():
    assert accuracy_report._ms([0.5, 0.7, None]) == f"0.600 ± {np.std([0.5, 0.7], ddof=1):.3f}"
    assert accuracy_report._ms([None]) == "–"


def test_quick_run_writes_report_from_the_product_path(tmp_path):
    assert accuracy.main(["--quick", "--tasks", "lidc", "--seeds", "0", "--no-ablations", "--workers", "1", "--output", str(tmp_path)]) == 0
    results = json.loads((tmp_path / "accuracy" / "results.json").read_text())
    rows = [r for r in results["rows"] if r["variant"] == "main"]
    assert sorted(r["network"] for r in rows) == ["autoencoder", "mamanet_compact", "memae"]
    # --quick runs every model again with training#ensemble: 2, reported beside the one-run rows (restarts: on request)
    assert sorted(r["network"] for r in results["rows"] if r["variant"] == "training#ensemble: 2") == ["autoencoder", "mamanet_compact", "memae"]
    assert not [r for r in results["rows"] if r["variant"].startswith("training#restarts")]
    text = (tmp_path / "accuracy.md").read_text()
    assert "| training#ensemble: 2: image AUROC |" in text
    mama = next(r for r in results["rows"] if r["variant"] == "training#ensemble: 2" and r["network"] == "mamanet_compact")
    assert mama["num_slots"] > 0 and mama["slots_used"] > 0  # read from the first member's memory and history
    for r in rows:
        assert r["n_test_normal"] == 28 and r["n_test_anomalous"] == 11  # the fair split
        line = next(l for l in text.splitlines() if l.startswith(f"| {accuracy_report.NAMES[r['network']]} |"))
        assert f"| {r['auroc_percentile']:.3f} |" in line
        # the kept network is the validation of lowest held-out normal error (recomputed here on it), and its
        # validation AUROC, recomputed, is the one the training history logged for that validation
        kept = min(r["history"], key=lambda h: h["val_normal_mse"])
        assert r["val_normal_mse"] == pytest.approx(kept["val_normal_mse"], rel=1e-5)
        assert r["val_auroc"] == pytest.approx(kept["val_auroc"], abs=1e-9)
        assert len(r["history"]) == 2  # (--quick: 4 iterations, validated every 2)
        assert f"{r['val_auroc_max']:.3f} / {r['auroc_max']:.3f}" in text
    assert (tmp_path / "accuracy" / "roc_lidc.png").stat().st_size > 0
    assert (tmp_path / "accuracy" / "tsne_lidc.png").stat().st_size > 0


def test_the_as_configured_ablation_reuses_the_main_runs_instead_of_training_them_again():
    import argparse

    args = argparse.Namespace(size=64, iterations=300, interval=50, tasks=["lidc", "brain"], seeds=[0, 1, 2], no_ablations=False,
                              quick=False, ablation_size=64, ablation_seeds=[0, 1])  # fmt: skip
    jobs = accuracy.plan(args)
    assert not [j for j in jobs if j["variant"] == accuracy.AS_CONFIGURED]
    # 18 main runs; 13 LIDC and 5 brain ablations beside 'as configured', two seeds each: the two
    # extra ablations (5x the iterations, 128 x 128) only with --extra-ablations
    assert len(jobs) == 18 + 2 * 13 + 2 * 5
    assert not {j["variant"] for j in jobs} & set(accuracy.EXTRA_ABLATIONS)
    extra = accuracy.plan(argparse.Namespace(**{**vars(args), "extra_ablations": True}))
    assert len(extra) == 18 + 2 * 15 + 2 * 7
    assert sorted((j["variant"], j["task"], j["seed"]) for j in extra if j["variant"] in accuracy.EXTRA_ABLATIONS) == sorted(
        (n, t, seed) for n in ("5x the iterations (1500)", "input 128 x 128 (the previous benchmark's size)") for t in ("lidc", "brain") for seed in (0, 1)
    )
    main = [dict(task=j["task"], network=j["network"], seed=j["seed"], variant="main", auroc_percentile=0.1 * j["seed"], _scores={})
            for j in jobs if j["variant"] == "main"]  # fmt: skip
    rows = accuracy._with_reused_rows(main, args)
    reused = [r for r in rows if r["variant"] == accuracy.AS_CONFIGURED]
    assert [(r["task"], r["seed"], r["auroc_percentile"]) for r in reused] == [("brain", 0, 0.0), ("brain", 1, 0.1), ("lidc", 0, 0.0), ("lidc", 1, 0.1)]
    assert all(r["network"] == "mamanet_compact" and "_scores" not in r for r in reused)  # no second ROC curve
    # another ablation size: the 'as configured' runs are trained, nothing is reused
    other = argparse.Namespace(**{**vars(args), "ablation_size": 32})
    assert len([j for j in accuracy.plan(other) if j["variant"] == accuracy.AS_CONFIGURED]) == 4
    assert accuracy._with_reused_rows(main, other) == main


def test_the_one_patient_ablation_trains_on_lidc_idri_0001_alone_and_tests_the_same_slices(tmp_path):
    from mama_monai.data.demo import demo_manifest
    from mama_monai.data.manifest import load_manifest

    demo = demo_manifest("lidc")
    one = load_manifest(accuracy._one_patient_manifest(str(tmp_path)))
    assert {c.group for c in demo.cases} == {"LIDC-IDRI-0001", accuracy.SECOND_CT_GROUP}
    assert {c.group for c in one.cases} == {"LIDC-IDRI-0001"}
    assert [c.case_id for c in one.cases if c.split == "test"] == [c.case_id for c in demo.cases if c.split == "test"]
    assert sum(c.split == "train" for c in one.cases) == 75 and sum(c.split == "train" for c in demo.cases) == 75 + 115
    assert one.root == demo.root  # the images are the demo's own files
    ablation = accuracy.ABLATIONS["one training patient (LIDC-IDRI-0001 alone, without the second CT)"]
    assert ablation == {"data#manifest": accuracy.ONE_PATIENT}


def test_seed_selection_table_known_answer():
    # held-out normal error falls exactly as the test AUROC rises; validation AUROC runs the other way
    test, mse, val = [0.6, 0.7, 0.8, 0.9], [0.4, 0.3, 0.2, 0.1], [0.9, 0.8, 0.7, 0.6]
    rows = [dict(_row("memae", s, t), val_auroc=v, val_normal_mse=m) for s, (t, m, v) in enumerate(zip(test, mse, val))]
    table = accuracy_report._seed_selection_table(accuracy_report._group(rows), "lidc")
    # rho(val, test) = -1, rho(-mse, test) = +1; validation AUROC keeps seed 0 (0.6), the lowest error seed 3 (0.9)
    assert table[2:] == ["| MemAE | -1.00 (p = 0.00) | +1.00 (p = 0.00) | 0.750 / 0.600 / 0.900 / 0.900 |"]


def test_seed_selection_table_needs_three_seeds_with_validation():
    rows = [dict(_row("memae", s, 0.5), val_auroc=0.5, val_normal_mse=0.1) for s in range(2)]
    assert accuracy_report._seed_selection_table(accuracy_report._group(rows), "lidc") == []


def test_restarts_table_pairs_each_start_seed_with_its_one_run():
    single = [dict(_row("autoencoder", s, t, pixel=0.9), val_normal_mse=0.02) for s, t in enumerate([0.6, 0.7, 0.8, 0.95])]
    kept = [dict(_row("autoencoder", s, t, pixel=0.8), variant="training#restarts: 3", val_normal_mse=0.01)
            for s, t in enumerate([0.8, 0.7, 0.9])]  # fmt: skip
    table = accuracy_report._multi_run_table(single + kept, "lidc", accuracy_report.RESTARTS_PREFIX)
    # seed 3 has no restarts row: the one-run column and the test use seeds 0-2 only
    p = ttest_rel([0.8, 0.7, 0.9], [0.6, 0.7, 0.8]).pvalue
    assert table[2:] == [
        f"| autoencoder | {accuracy_report._ms([0.6, 0.7, 0.8])} | {accuracy_report._ms([0.8, 0.7, 0.9])} | "
        f"{np.mean([0.2, 0.0, 0.1]):+.3f}, p = {p:.3f} | 0.900 / 0.800 | 0.0200 / 0.0100 |"
    ]
    assert accuracy_report._multi_run_table(single, "lidc", accuracy_report.RESTARTS_PREFIX) == []
    # the ensemble rows are another table: the restarts table does not take them, nor they it
    averaged = [dict(r, variant="training#ensemble: 3") for r in kept]
    assert accuracy_report._multi_run_table(single + averaged, "lidc", accuracy_report.RESTARTS_PREFIX) == []
    assert accuracy_report._multi_run_table(single + averaged, "lidc", accuracy_report.ENSEMBLE_PREFIX)[2:] == table[2:]
    assert not accuracy_report._is_ablation(averaged[0]) and not accuracy_report._is_ablation(kept[0])


@pytest.mark.parametrize("option, key", [("restarts", "training#restarts"), ("ensemble", "training#ensemble")])
def test_the_plan_runs_every_model_again_with_several_networks(option, key):
    import argparse

    args = argparse.Namespace(size=64, iterations=300, interval=50, tasks=["lidc", "brain"], seeds=[0, 1], no_ablations=True,
                              quick=False, ablation_size=64, ablation_seeds=[0], restarts=1, ensemble=1)  # fmt: skip
    setattr(args, option, 3)
    jobs = accuracy.plan(args)
    several = [j for j in jobs if j["variant"] == f"{key}: 3"]
    assert sorted((j["task"], j["network"], j["seed"]) for j in several) == sorted(
        (j["task"], j["network"], j["seed"]) for j in jobs if j["variant"] == "main"
    )
    assert all(j["overrides"] == {key: 3} for j in several)
    assert len(jobs) == 2 * len(several)  # nothing of the other option
    assert accuracy._cost(several[0]) == 3 * accuracy._cost(dict(several[0], overrides={}))
    assert not [j for j in accuracy.plan(argparse.Namespace(**{**vars(args), option: 1})) if j["variant"] != "main"]


def test_report_only_keeps_the_notes_written_by_hand_and_the_tables_it_rewrites(tmp_path):
    # the saved rows of the shipped run, rewritten twice: the second time after notes were added
    saved = json.loads((ROOT / "docs" / "accuracy" / "results.json").read_text())
    (tmp_path / "accuracy").mkdir()
    (tmp_path / "accuracy" / "results.json").write_text(json.dumps(saved))
    assert accuracy.main(["--report-only", "--output", str(tmp_path)]) == 0
    report = (tmp_path / "accuracy.md").read_text()
    assert accuracy_report.NOTES_HEADING not in report  # none yet
    notes = f"{accuracy_report.NOTES_HEADING} (written by hand after it)\n\n- a note with a figure 0.123\n"
    (tmp_path / "accuracy.md").write_text(report.replace("| MAMA Net (compact) |", "| edited by hand |", 1) + "\n" + notes)
    assert accuracy.main(["--report-only", "--output", str(tmp_path)]) == 0
    again = (tmp_path / "accuracy.md").read_text()
    assert again == report.rstrip("\n") + "\n\n" + notes  # the tables rewritten as before, the notes kept once


def test_other_residual_maps_known_answers():
    import torch

    from mama_monai.engines import AnomalyMap

    amap = AnomalyMap(2, sigma=2.0, foreground_threshold=0.02, border=2)
    rng = np.random.default_rng(0)
    x = torch.from_numpy(rng.uniform(0.2, 0.8, (2, 1, 32, 32))).float()
    same = accuracy._residual_maps(x, x.clone(), amap)
    assert float(same["absolute"].abs().max()) == 0.0 and float(same["ssim"].abs().max()) < 1e-5
    # the absolute map of a reconstruction off by 0.1 everywhere: 0.1 wherever smoothing sees only
    # that offset (the interior), 0 outside the foreground
    off = accuracy._residual_maps(x, x + 0.1, amap)["absolute"]
    np.testing.assert_allclose(off[..., 8:-8, 8:-8].numpy(), 0.1, rtol=1e-4)
    # the SSIM map against the formula (Wang et al. 2004) with scipy's Gaussian filter, sigma 1.5
    # over 7 px, on the interior
    from scipy.ndimage import gaussian_filter

    r = (x + torch.from_numpy(rng.normal(0, 0.1, x.shape)).float()).clamp(0, 1)
    a, b = r[0, 0].double().numpy(), x[0, 0].double().numpy()
    g = lambda v: gaussian_filter(v, 1.5, truncate=2.0)  # noqa: E731
    ma, mb = g(a), g(b)
    va, vb, cov = g(a * a) - ma**2, g(b * b) - mb**2, g(a * b) - ma * mb
    c1, c2 = 0.01**2, 0.03**2
    ssim = (2 * ma * mb + c1) * (2 * cov + c2) / ((ma**2 + mb**2 + c1) * (va + vb + c2))
    ours = accuracy._residual_maps(x, r, amap)["ssim"][0, 0].numpy()
    np.testing.assert_allclose(ours[5:-5, 5:-5], ((1 - ssim) / 2)[5:-5, 5:-5], atol=1e-3)


def _plan_args(**extra):
    import argparse

    return argparse.Namespace(**{**dict(size=64, iterations=300, interval=50, tasks=["lidc", "brain"], seeds=[0, 1], no_ablations=True,
                                        quick=False, ablation_size=64, ablation_seeds=[0], restarts=1, ensemble=1), **extra})  # fmt: skip


def test_the_seed_order_runs_task_by_task_seed_by_seed_the_papers_model_last():
    args = _plan_args(models=["autoencoder", "mamanet_compact", accuracy.PAPER], ensemble=2)
    order = [(j["variant"], j["task"], j["seed"], j["network"]) for j in accuracy.plan(_plan_args(**vars(args), order="seed"))]
    compact = [("main", t, s, n) for t in ("lidc", "brain") for s in (0, 1) for n in ("mamanet_compact", "autoencoder")]
    paper = [("main", t, s, accuracy.PAPER) for t in ("lidc", "brain") for s in (0, 1)]
    assert order[:12] == compact + paper  # every one-network run before any ensemble: a budget cut leaves paired seeds
    assert [o[0] for o in order[12:]] == ["training#ensemble: 2"] * 12
    # the default: the costliest first (the paper's model, then the ensembles of MAMA Net, ...)
    costs = [accuracy._cost(j) for j in accuracy.plan(args)]
    assert costs == sorted(costs, reverse=True)
    assert accuracy._cost(dict(task="lidc", network=accuracy.PAPER, size=64, iterations=300)) == 10 * accuracy._cost(
        dict(task="lidc", network="mamanet_compact", size=64, iterations=300))  # fmt: skip


def test_a_run_taken_up_after_its_deadline_trains_nothing_and_says_so():
    import time

    job = dict(task="lidc", network="mamanet_compact", seed=3, variant="main", size=64, iterations=300, interval=50, deadline=time.time() - 1)
    assert accuracy.run_one(job) == {"task": "lidc", "network": "mamanet_compact", "seed": 3, "variant": "main", "skipped": True}


def test_the_papers_network_is_sized_by_the_input_and_the_others_keep_their_config():
    job = dict(task="lidc", size=32, iterations=4, interval=2, seed=1, overrides={"training#ensemble": 2})
    paper = accuracy.job_overrides(dict(job, network=accuracy.PAPER))
    assert paper["network_def#img_size"] == [32, 32] and paper["data#spatial_size"] == [32, 32]
    assert paper["training#ensemble"] == 2 and paper["seed"] == 1
    compact = accuracy.job_overrides(dict(job, network="mamanet_compact"))
    assert "network_def#img_size" not in compact and {k: v for k, v in paper.items() if k != "network_def#img_size"} == compact


def test_a_stopped_run_is_rebuilt_from_its_rows_with_a_note(tmp_path):
    folder = tmp_path / "accuracy"
    folder.mkdir()
    settings = {"size": 228, "seeds": [0, 1]}
    rows = [{"task": "lidc", "network": "autoencoder", "seed": s, "variant": "main", "auroc_percentile": 0.5 + s} for s in (0, 1)]
    (folder / "run_settings.json").write_text(json.dumps(settings))
    (folder / "runs.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows) + "\n")
    accuracy._rows_from_runs(folder)
    saved = json.loads((folder / "results.json").read_text())
    assert saved["rows"] == rows
    assert saved["settings"]["size"] == 228 and saved["settings"]["note"].startswith("rebuilt from runs.jsonl")


def test_the_page_names_the_gpu_where_the_runs_trained_on_one(monkeypatch):
    cpu = {"cpu": "Some CPU", "cores": 16, "workers": 3}
    assert accuracy_report._machine_text(cpu) == "Some CPU (16 cores, no GPU)"
    assert accuracy_report._machine_text(dict(cpu, gpu="NVIDIA H100 80GB HBM3")) == (
        "one NVIDIA H100 80GB HBM3 GPU (3 runs at a time, bf16 autocast) with Some CPU (16 cores)")
    # settings saved before the cores were recorded: this machine's count (the runs of docs/ ran here)
    monkeypatch.setattr(accuracy_report.os, "cpu_count", lambda: 7)
    assert accuracy_report._machine_text({"cpu": "Some CPU"}) == "Some CPU (7 cores, no GPU)"


def test_the_papers_mama_net_is_compared_with_every_other_model_by_seed():
    rows = [_row(n, s, a) for n, values in (("mamanet_compact", [0.6, 0.7, 0.9]), ("memae", [0.7, 0.7, 0.7]),
                                            (accuracy.PAPER, [0.8, 0.75, 0.9])) for s, a in enumerate(values)]  # fmt: skip
    table = accuracy_report._tests_table(accuracy_report._group(rows), "lidc")
    paper_minus_compact = ttest_rel([0.8, 0.75, 0.9], [0.6, 0.7, 0.9])
    assert table[2:] == [
        f"| MemAE | {np.mean([-0.1, 0.0, 0.2]):+.3f}, p = {ttest_rel([0.6, 0.7, 0.9], [0.7, 0.7, 0.7]).pvalue:.3f} | +0.000 (constant difference) |",
        f"| MAMA Net (compact), by MAMA Net (paper) | {np.mean([0.2, 0.05, 0.0]):+.3f}, p = {paper_minus_compact.pvalue:.3f} | +0.000 (constant difference) |",
        f"| MemAE, by MAMA Net (paper) | {np.mean([0.1, 0.05, 0.2]):+.3f}, p = {ttest_rel([0.8, 0.75, 0.9], [0.7, 0.7, 0.7]).pvalue:.3f} | +0.000 (constant difference) |",
    ]


def test_a_fresh_run_without_figures_still_saves_its_rows_and_drops_the_old_notes(tmp_path):
    # a run cut by --budget before its first seed's figures: its rows carry no _scores, yet they are
    # this run's, so results.json is written and the previous page's hand notes are not carried over
    saved = json.loads((ROOT / "docs" / "accuracy" / "results.json").read_text())
    rows = [r for r in saved["rows"] if r["variant"] == "main" and r["task"] == "lidc"][:4]
    (tmp_path / "accuracy").mkdir()
    (tmp_path / "accuracy.md").write_text(f"old page\n\n{accuracy_report.NOTES_HEADING}\n\n- a note about other rows\n")
    accuracy_report.write_report(rows, dict(saved["settings"], budget=300.0, skipped=["lidc memae seed 4 main"]), tmp_path, 60.0)
    assert json.loads((tmp_path / "accuracy" / "results.json").read_text())["rows"] == rows
    page = (tmp_path / "accuracy.md").read_text()
    assert accuracy_report.NOTES_HEADING not in page and "in 1 min" in page
    assert "Not started within `--budget 300` s (1 runs): lidc memae seed 4 main." in page


def test_run_all_hands_back_rows_and_skipped_runs_apart_and_train_rows_takes_its_rows(tmp_path):
    import time

    from benchmarks import rows_file

    job = dict(task="lidc", network="autoencoder", seed=0, variant="main", size=32, iterations=4, interval=2, deadline=time.time() - 1)
    rows, skipped = accuracy.run_all([job], 1, tmp_path / "runs.jsonl")
    assert rows == [] and skipped == [{"task": "lidc", "network": "autoencoder", "seed": 0, "variant": "main", "skipped": True}]
    assert (tmp_path / "runs.jsonl").read_text() == ""  # a skipped run is no row
    # the benchmarks built on run_all (rows_file.train_rows) unpack the pair; they set no deadline, so
    # a skipped run there is an error, not a silently shorter table
    with pytest.raises(RuntimeError, match="1 run\\(s\\) skipped"):
        rows_file.train_rows([job], 1, tmp_path / "sweep.json")
