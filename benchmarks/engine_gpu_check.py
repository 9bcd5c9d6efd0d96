"""One short CUDA check of the MONAI engines with bf16 autocast (AMP), no data files needed.

Runs :class:`~mama_monai.engines.AnomalyTrainer` (AMP on) for ``--iters`` iterations on random
228 x 228 batches with a network config, then :class:`~mama_monai.engines.AnomalyEvaluator`, and
prints the loss trend, images/s through the engine (ignite + MONAI overhead included), the slots
read and peak memory. Needs only torch, monai, pytorch-ignite and this project.

    python benchmarks/engine_gpu_check.py --config configs/network/mamanet_paper.yaml --iters 40
"""

from __future__ import annotations

import argparse
import time

import torch
from ignite.engine import Events
from monai.bundle import ConfigParser
from monai.data import DataLoader, Dataset

from mama_monai.engines import AnomalyEvaluator, AnomalyMap, AnomalyTrainer, DetailedForward
from mama_monai.losses import ReconstructionLoss


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default="configs/network/mamanet_paper.yaml")
    ap.add_argument("--iters", type=int, default=40)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--size", type=int, default=228)
    ap.add_argument("--device", default="cuda", help="cuda (default); cpu for a dry run")
    args = ap.parse_args()
    device = torch.device(args.device)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    peak = (lambda: torch.cuda.max_memory_allocated() / 2**20) if device.type == "cuda" else (lambda: float("nan"))
    parser = ConfigParser()
    parser.read_config(args.config)
    net = parser.get_parsed_content("network_def").to(device)
    torch.manual_seed(0)
    # smooth random images: low-frequency noise upsampled, in [0, 1]
    base = torch.rand(64, 1, args.size // 8, args.size // 8)
    images = torch.nn.functional.interpolate(base, size=(args.size, args.size), mode="bilinear", align_corners=False)
    data = Dataset([{"image": im, "label": 0} for im in images])
    loader = DataLoader(data, batch_size=args.batch_size, shuffle=True, drop_last=True)
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-3)
    trainer = AnomalyTrainer(
        device=device, max_epochs=1, epoch_length=args.iters, train_data_loader=loader, network=DetailedForward(net),
        optimizer=optimizer, loss_function=ReconstructionLoss(), amp=True, decollate=False,
    )
    losses, slots, stamps = [], set(), []

    @trainer.on(Events.ITERATION_COMPLETED)
    def _log(engine):
        losses.append(float(engine.state.output["loss"]))
        slots.update(engine.state.output["memory_indices"].unique().tolist())
        sync()
        stamps.append(time.perf_counter())

    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    trainer.run()
    warm = max(1, len(stamps) // 4)
    rate = args.batch_size * (len(stamps) - warm) / (stamps[-1] - stamps[warm - 1])
    print(f"train (AnomalyTrainer, bf16 AMP): {len(losses)} iterations, loss {losses[0]:.4f} -> {losses[-1]:.4f}, "
          f"{rate:.1f} images/s after warm-up, slots read {len(slots)}, peak {peak():.0f} MiB")
    evaluator = AnomalyEvaluator(anomaly_map=AnomalyMap(2), device=device, val_data_loader=DataLoader(data, batch_size=args.batch_size), network=net, amp=True)
    scores = []
    evaluator.add_event_handler(Events.ITERATION_COMPLETED, lambda e: scores.append(e.state.output["score"]))
    sync()
    t = time.perf_counter()
    evaluator.run()
    sync()
    s = torch.cat(scores)
    print(f"evaluate (AnomalyEvaluator, bf16 AMP): {s.numel()} images in {time.perf_counter() - t:.2f} s, "
          f"scores finite: {bool(torch.isfinite(s).all())}, mean {s.mean():.4f}")


if __name__ == "__main__":
    main()
