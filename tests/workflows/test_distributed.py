"""``torchrun --nproc_per_node=2 ... mama_monai.cli train --device cpu``: DDP with the gloo backend, 2 processes.

torchrun runs a small launcher that is ``python -m mama_monai.cli`` plus one observer: when each
rank's trainer finishes, it saves what that rank saw (world size, iterations, the indices its
DistributedSampler gave it) and its trained parameters, so the test can check that both ranks
trained, on different shards, and ended with identical weights (gradients were all-reduced).
With ``training#ensemble`` the members are written once and the ensemble file holds them.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from mama_monai.engines import read_checkpoint

LAUNCHER = textwrap.dedent(
    """
    import os, sys
    from pathlib import Path

    import torch
    import mama_monai.workflows.training as training
    from mama_monai.cli import main

    run = training.AnomalyTrainer.run

    def observed_run(self, *args, **kwargs):
        result = run(self, *args, **kwargs)
        sampler = self.data_loader.sampler
        torch.save(
            {
                "rank": torch.distributed.get_rank(),
                "world_size": torch.distributed.get_world_size(),
                "iterations": self.state.iteration,
                "dataset_size": len(self.data_loader.dataset),
                "shard": sorted(iter(sampler)) if isinstance(sampler, torch.utils.data.DistributedSampler) else None,
                "parameters": torch.cat([p.detach().flatten() for p in self.network.parameters()]),
            },
            Path(os.environ["OBSERVE_DIR"]) / f"rank{os.environ['RANK']}.pt",
        )
        return result

    training.AnomalyTrainer.run = observed_run
    sys.exit(main())
    """
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_torchrun_two_cpu_processes_train_in_sync_and_write_one_model(tmp_path, tiny):
    launcher = tmp_path / "launch_cli.py"
    launcher.write_text(LAUNCHER)
    observe = tmp_path / "observed"
    observe.mkdir()
    out = tmp_path / "run"
    cmd = [
        sys.executable, "-m", "torch.distributed.run",
        "--nproc_per_node=2", "--master_addr", "127.0.0.1", "--master_port", str(_free_port()),
        str(launcher), "train", "--network", "autoencoder", "--output", str(out), "--device", "cpu", *tiny.args,
    ]  # fmt: skip
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK")}
    proc = subprocess.run(
        cmd, check=False, capture_output=True, text=True, timeout=180, env={**env, "OBSERVE_DIR": str(observe)}
    )
    assert proc.returncode == 0, proc.stderr[-3000:]

    assert [p.relative_to(out) for p in out.rglob("model.pt")] == [Path("model.pt")]
    payload = read_checkpoint(out / "model.pt")
    assert payload["metrics"]["iterations"] == 20
    assert [row["iteration"] for row in payload["metrics"]["history"]] == [10, 20]
    # the held-out normal error (the default checkpoint criterion), reduced over the two processes, is
    # the error one process computes here on the kept network, within 2 %: each process validates with
    # its own BatchNorm statistics (0.0754 against 0.0759 here); a sum reduced without its count is 2x
    from mama_monai.engines import load_model
    from mama_monai.workflows.config import workflow_config
    from mama_monai.workflows.splits import prepare_splits

    val = prepare_splits(workflow_config("autoencoder", overrides=dict(tiny.overrides)))["val"]
    normals = torch.stack([it["image"] for it in val if int(it["label"]) == 0])
    network = load_model(out / "model.pt", device="cpu")[0].eval()
    with torch.no_grad():
        expected = float(((network(normals) - normals) ** 2).mean())
    assert min(row["val_normal_mse"] for row in payload["metrics"]["history"]) == pytest.approx(expected, rel=0.02)
    assert "trained 20 iterations" in proc.stdout and proc.stdout.count("trained 20 iterations") == 1  # rank 0 only

    ranks = [torch.load(observe / f"rank{r}.pt", weights_only=True) for r in (0, 1)]
    assert [r["rank"] for r in ranks] == [0, 1] and all(r["world_size"] == 2 for r in ranks)
    assert all(r["iterations"] == 20 for r in ranks)
    # each rank read its own half of the training slices (DistributedSampler pads an odd count with one repeat)
    n = ranks[0]["dataset_size"]
    shards = [set(r["shard"]) for r in ranks]
    assert shards[0] | shards[1] == set(range(n)) and len(shards[0] & shards[1]) == n % 2
    assert torch.equal(ranks[0]["parameters"], ranks[1]["parameters"])  # DDP kept the replicas identical


def test_torchrun_ensemble_writes_each_member_once_and_stores_rank_zeros_networks(tmp_path, tiny):
    """``training#ensemble: 2`` under torchrun: each member is trained by both processes in step and
    written once (rank 0), the ensemble file holds exactly the members' kept networks, and its stored
    held-out normal error and threshold are what one process computes from that file."""
    import numpy as np

    from mama_monai.engines import load_model
    from mama_monai.engines.anomaly_map import AnomalyMap, anomaly_map_args
    from mama_monai.workflows.config import workflow_config
    from mama_monai.workflows.splits import prepare_splits

    out = tmp_path / "run"
    cmd = [
        sys.executable, "-m", "torch.distributed.run",
        "--nproc_per_node=2", "--master_addr", "127.0.0.1", "--master_port", str(_free_port()),
        "-m", "mama_monai.cli", "train", "--network", "autoencoder", "--output", str(out), "--device", "cpu",
        *tiny.args, "--training#ensemble", "2", "--seed", "3",
    ]  # fmt: skip
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK")}
    proc = subprocess.run(cmd, check=False, capture_output=True, text=True, timeout=240, env={**env, "OMP_NUM_THREADS": "1"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert sorted(str(p.relative_to(out)) for p in out.rglob("model.pt")) == [
        "members/seed_3/model.pt", "members/seed_4/model.pt", "model.pt"]  # fmt: skip
    assert proc.stdout.count("trained 40 iterations") == 1  # rank 0 only; 2 members x 20

    payload = read_checkpoint(out / "model.pt")
    assert [r["seed"] for r in payload["metrics"]["ensemble"]] == [3, 4]
    for k, seed in enumerate((3, 4)):  # the ensemble holds each member's kept network, as written
        member = torch.load(out / "members" / f"seed_{seed}" / "model.pt", weights_only=True)["state_dict"]
        for key, value in member.items():
            assert torch.equal(value, payload["state_dict"][f"members.{k}.{key}"]), (seed, key)

    parser = workflow_config("autoencoder", overrides=dict(tiny.overrides, seed=3))
    val = prepare_splits(parser)["val"]
    normals = torch.stack([it["image"] for it in val if int(it["label"]) == 0])
    ensemble = load_model(out / "model.pt", device="cpu")[0].eval()
    with torch.no_grad():
        recon = ensemble(normals)
        mean_of_members = torch.stack([m(normals) for m in ensemble.members]).mean(0)
    assert torch.allclose(recon, mean_of_members, atol=1e-6)
    assert payload["metrics"]["val_normal_mse"] == pytest.approx(float(((recon - normals) ** 2).mean()), rel=1e-5)
    # the stored threshold: the configured quantile of these normals' scores, with this file's network
    scoring = parser.get_parsed_content("scoring")
    with torch.no_grad():
        scores = AnomalyMap(2, **anomaly_map_args(scoring))(normals, recon).numpy()
    assert payload["threshold"]["value"] == pytest.approx(float(np.quantile(scores, float(scoring["threshold_quantile"]))), rel=1e-5)
