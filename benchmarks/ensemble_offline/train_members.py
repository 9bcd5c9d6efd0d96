"""Step 1 of the offline ensemble comparison that led to ``training#ensemble`` (docs/accuracy.md):
train every model from seeds 0 .. N-1 on both benchmark tasks through the product's own path
(``workflow_config`` -> ``prepare_splits`` -> ``train_model``, the settings of
``benchmarks/accuracy.py``'s main runs) and keep each trained network in ``$ENSEMBLE_DIR``
(default /tmp/ens). Step 2 is ``score_ensembles.py``. Kept as run (2026-12-02); the networks are
pickled whole into the scratch folder, which only this script writes and reads.

    python benchmarks/ensemble_offline/train_members.py mamanet_compact,autoencoder,memae 10
"""
import logging
import multiprocessing as mp
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
OUT = Path(os.environ.get("ENSEMBLE_DIR", "/tmp/ens"))

def train(job):
    import torch
    torch.set_num_threads(1); logging.disable(logging.WARNING)
    from benchmarks.accuracy import _task_overrides
    from mama_monai.workflows.splits import prepare_splits
    from mama_monai.workflows.config import workflow_config
    from mama_monai.workflows.distributed import init_distributed
    from mama_monai.workflows.training import train_model
    task, net, seed = job
    path = OUT / f"{task}_{net}_{seed}.pt"
    if path.exists(): return job
    over = _task_overrides(task, 64, 300, 50); over["seed"] = seed
    ctx = init_distributed("cpu")
    with tempfile.TemporaryDirectory() as tmp:
        parser = workflow_config(net, overrides=over)
        splits = prepare_splits(parser)
        result = train_model(parser, splits["train"], splits["val"], tmp, ctx, progress=False)
    torch.save({"net": result.network, "threshold": result.threshold}, path)
    print("trained", job, round(result.seconds), flush=True)
    return job

if __name__ == "__main__":
    OUT.mkdir(parents=True, exist_ok=True)
    nets = sys.argv[1].split(",")
    seeds = range(int(sys.argv[2]))
    jobs = [(t, n, s) for n in nets for t in ("lidc", "brain") for s in seeds]
    jobs.sort(key=lambda j: j[1] != "mamanet_compact")
    with mp.get_context("spawn").Pool(2, maxtasksperchild=4) as pool:
        for _ in pool.imap_unordered(train, jobs): pass
