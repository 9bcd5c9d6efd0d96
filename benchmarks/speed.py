"""Before / after for the speed levers, same model, same card, same run (issue 6).

For one network config (default: the paper's, 228 x 228, N = 2000 global memory) and each
*variant* of the ``runtime`` settings (:class:`mama_monai.engines.Acceleration`, the code path the
trainer and evaluator use), it prints and writes:

- **inference**: images/s at ``--infer-batch`` (eval, ``no_grad``, bf16 autocast on CUDA),
  achieved TFLOP/s (counted FLOPs x images/s), peak memory;
- **training**: images/s of full Adam steps at ``--batch-size`` (the paper's 8), achieved
  TFLOP/s (forward + backward FLOPs counted on the meta device), peak memory;
- **first call** seconds (compilation for compiled variants);
- **agreement with the eager reference**: every variant starts from the same weights; its
  reconstructions of the first ``--batch-size`` images are compared with the eager channels-first
  pass (max and mean absolute difference, fraction of memory reads that picked the same slot),
  and its first training loss with the eager one.

FLOPs are counted once per config with ``torch.utils.flop_counter.FlopCounterMode`` on the meta
device under the math attention backend (multiply-add = 2); element-wise work is not counted.

Variants (``--variants``; names are the keys of :data:`VARIANTS`):

- ``eager``: before: channels-first, eager, PyTorch's default (foreach) Adam;
- ``fused_adam``, ``channels_last``, ``compile``, ``compile_cl`` (compile + channels-last +
  fused Adam), ``cudagraphs`` (the same with ``mode="reduce-overhead"``);
- ``compile_cl_cudnn``: ``compile_cl`` with cuDNN's fused attention put first
  (``sdpa_kernel([CUDNN_ATTENTION, FLASH_ATTENTION, EFFICIENT_ATTENTION], set_priority=True)``;
  a benchmark-only trial, not a runtime setting).

Results go to ``--json`` after every variant, so a run cut short keeps what it measured.

    python benchmarks/speed.py                                    # CUDA, paper config, all variants
    python benchmarks/speed.py --device cpu --config configs/network/mamanet_compact.yaml \\
        --img-size 64 --variants eager channels_last --iters 3   # a CPU dry run
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
import time
import traceback
from contextlib import nullcontext
from pathlib import Path

import torch
from monai.bundle import ConfigParser
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # measure this checkout's code, installed or not
sys.path.insert(0, str(ROOT / "benchmarks"))

from networks import PeakMemory, cpu_name, for_meta, median_seconds, print_table

from mama_monai.engines import Acceleration, DetailedForward
from mama_monai.losses import ReconstructionLoss

_FUSED_FIRST = [SDPBackend.CUDNN_ATTENTION, SDPBackend.FLASH_ATTENTION, SDPBackend.EFFICIENT_ATTENTION]
#: name -> (runtime settings, SDPA backends in priority order or None for PyTorch's choice)
VARIANTS = {
    "eager": (Acceleration(), None),
    "fused_adam": (Acceleration(fused_adam=True), None),
    "channels_last": (Acceleration(channels_last=True, fused_adam=True), None),
    "compile": (Acceleration(compile=True, fused_adam=True), None),
    "compile_cl": (Acceleration(channels_last=True, compile=True, fused_adam=True), None),
    "cudagraphs": (Acceleration(channels_last=True, compile=True, compile_mode="reduce-overhead", fused_adam=True), None),
    "compile_cl_cudnn": (Acceleration(channels_last=True, compile=True, fused_adam=True), _FUSED_FIRST),
}


def build(config: str, device: torch.device) -> torch.nn.Module:
    parser = ConfigParser()
    parser.read_config(config)
    with torch.device(device):
        return parser.get_parsed_content("network_def")


def input_shape(net, img_size: int, batch: int) -> list[int]:
    size = list(net.img_size) if getattr(net, "img_size", None) else [img_size] * net.spatial_dims
    return [batch, net.in_channels] + size


def count_flops(config: str, img_size: int, batch: int) -> dict[str, float]:
    """Per image: eval forward FLOPs (slot codes cached) and training forward + backward FLOPs."""
    net = for_meta(build(config, torch.device("meta")))
    loss_fn = ReconstructionLoss()
    with sdpa_kernel(SDPBackend.MATH):
        net.eval()
        x = torch.empty(input_shape(net, img_size, 1), device="meta")
        with torch.no_grad():
            net(x)  # warm-up: slot codes cached, as at test time
            with FlopCounterMode(display=False) as fc:
                net(x)
        fwd = fc.get_total_flops()
        net.train()
        x = torch.empty(input_shape(net, img_size, batch), device="meta")
        with FlopCounterMode(display=False) as fc:
            out = net.reconstruct(x)
            loss_fn(out.reconstruction, x, out.memory.loss if out.memory is not None else None).backward()
        train = fc.get_total_flops() / batch
    return {"gflop_fwd": fwd / 1e9, "gflop_train_step": train / 1e9}


def timed(fn, iters: int, warmup: int, device: torch.device) -> tuple[float, float]:
    """(first call seconds: compilation for compiled variants, median seconds of the timed calls)."""
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    sync()
    t0 = time.perf_counter()
    fn()
    sync()
    return time.perf_counter() - t0, median_seconds(fn, iters, warmup, device)


def run_variant(name, accel, net, initial, x_infer, x_train, reference, args, device, flops) -> dict:
    amp = torch.autocast(device.type, dtype=torch.bfloat16) if args.amp == "bf16" else nullcontext()
    backends = VARIANTS[name][1]
    with sdpa_kernel(backends, set_priority=True) if backends else nullcontext():
        return _run_variant(name, accel, net, initial, x_infer, x_train, reference, args, device, flops, amp)


def _run_variant(name, accel, net, initial, x_infer, x_train, reference, args, device, flops, amp) -> dict:
    net.to(memory_format=torch.contiguous_format)
    net.load_state_dict(initial)  # same weights for every variant; resets the slot-code cache
    accel.prepare_network(net)
    fmt = accel.memory_format(net.spatial_dims)
    x_infer = x_infer if fmt is None else x_infer.contiguous(memory_format=fmt)
    x_train = x_train if fmt is None else x_train.contiguous(memory_format=fmt)
    torch._dynamo.reset()
    model = accel.compiled(DetailedForward(net))
    row = {"variant": name, "settings": {k: getattr(accel, k) for k in ("channels_last", "compile", "compile_mode", "fused_adam")}}

    net.eval()

    def forward(inp=x_infer):
        with torch.no_grad(), amp:
            return model(inp)

    with PeakMemory(device) as peak:
        first, seconds = timed(forward, args.iters, args.warmup, device)
    row.update(infer_first_call_s=first, infer_img_s=x_infer.shape[0] / seconds, peak_infer_mib=peak.mib)
    row["infer_tflop_s"] = row["infer_img_s"] * flops["gflop_fwd"] / 1e3
    recon, _, indices = forward(x_train)
    diff = (recon.float() - reference["recon"]).abs()
    row.update(
        max_abs_diff=float(diff.max()), mean_abs_diff=float(diff.mean()),
        same_slot=float((indices == reference["indices"]).float().mean()) if indices.numel() else None,
    )  # fmt: skip

    net.train()
    opt = accel.adam(net.parameters(), lr=1e-4)
    loss_fn = ReconstructionLoss()
    losses = []

    def train_step():
        opt.zero_grad(set_to_none=True)
        with amp:
            recon, memory_loss, _ = model(x_train)
            loss = loss_fn(recon, x_train, memory_loss)
        loss.backward()
        opt.step()
        if not losses:
            losses.append(float(loss.detach()))

    with PeakMemory(device) as peak:
        first, seconds = timed(train_step, args.iters, args.warmup, device)
    row.update(train_first_call_s=first, train_img_s=x_train.shape[0] / seconds, peak_train_mib=peak.mib)
    row["train_tflop_s"] = row["train_img_s"] * flops["gflop_train_step"] / 1e3
    row["first_loss_diff"] = abs(losses[0] - reference["loss"])
    return row


COLUMNS = [
    ("variant", "variant", "{}"), ("infer_img_s", "infer img/s", "{:.1f}"), ("infer_tflop_s", "infer TFLOP/s", "{:.3g}"),
    ("peak_infer_mib", "peak infer MiB", "{:.0f}"), ("train_img_s", "train img/s", "{:.1f}"),
    ("train_tflop_s", "train TFLOP/s", "{:.3g}"), ("peak_train_mib", "peak train MiB", "{:.0f}"),
    ("infer_first_call_s", "first infer call s", "{:.1f}"), ("train_first_call_s", "first train call s", "{:.1f}"),
    ("max_abs_diff", "max |d| vs eager", "{:.2e}"), ("mean_abs_diff", "mean |d|", "{:.2e}"),
    ("same_slot", "same slot", "{:.2f}"), ("first_loss_diff", "|d loss|", "{:.2e}"),
]  # fmt: skip


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--device", choices=["cpu", "cuda"], default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--config", default=str(ROOT / "configs" / "network" / "mamanet_paper.yaml"))
    p.add_argument("--variants", nargs="+", choices=list(VARIANTS), default=list(VARIANTS))
    p.add_argument("--batch-size", type=int, default=8, help="training batch (the paper's 8)")
    p.add_argument("--infer-batch", type=int, default=32, help="inference batch")
    p.add_argument("--img-size", type=int, default=228, help="input side for configs without a fixed img_size")
    p.add_argument("--iters", type=int, default=10)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--amp", choices=["bf16", "none"], default=None, help="default: bf16 on CUDA, none on CPU")
    p.add_argument("--budget", type=float, default=None, help="seconds; variants that would start after it are skipped")
    p.add_argument("--json", type=Path, default=None)
    args = p.parse_args()
    args.amp = args.amp or ("bf16" if args.device == "cuda" else "none")
    device = torch.device(args.device)
    start = time.perf_counter()
    meta = {
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else cpu_name(),
        "torch": torch.__version__, "config": Path(args.config).name, "amp": args.amp, "batch_size": args.batch_size,
        "infer_batch": args.infer_batch, "iters": args.iters, "warmup": args.warmup, "timing": "median seconds per call",
    }  # fmt: skip
    flops = count_flops(args.config, args.img_size, args.batch_size)
    meta.update(flops)
    print(" ".join(f"{k}={v}" for k, v in meta.items()), flush=True)

    torch.manual_seed(0)
    net = build(args.config, device)
    net.check_finite = False  # the NaN check is a host sync per call, the same for every variant
    initial = copy.deepcopy(net.state_dict())
    gen = torch.Generator(device).manual_seed(0)
    x_infer = torch.rand(input_shape(net, args.img_size, args.infer_batch), device=device, generator=gen)
    x_train = x_infer[: args.batch_size].clone()
    amp = torch.autocast(device.type, dtype=torch.bfloat16) if args.amp == "bf16" else nullcontext()
    net.eval()
    with torch.no_grad(), amp:
        recon, _, indices = DetailedForward(net)(x_train)
    net.train()
    with torch.no_grad(), amp:
        out = net.reconstruct(x_train)
        loss = ReconstructionLoss()(out.reconstruction, x_train, out.memory.loss if out.memory is not None else None)
    reference = {"recon": recon.float(), "indices": indices, "loss": float(loss)}

    rows = []
    for name in args.variants:
        if args.budget is not None and time.perf_counter() - start > args.budget:
            rows.append({"variant": name, "error": "skipped: time budget spent"})
            continue
        t0 = time.perf_counter()
        try:
            row = run_variant(name, VARIANTS[name][0], net, initial, x_infer, x_train, reference, args, device, flops)
        except Exception as err:  # noqa: BLE001 -- one failing variant must not lose the others
            traceback.print_exc()
            row = {"variant": name, "error": f"{type(err).__name__}: {err}"[:400]}
        row["seconds"] = round(time.perf_counter() - t0, 1)
        rows.append(row)
        print(f"{name}: {row.get('infer_img_s', '-')} infer img/s, {row.get('train_img_s', '-')} train img/s, "
              f"{row['seconds']} s" + (f" ({row['error']})" if "error" in row else ""), flush=True)  # fmt: skip
        if device.type == "cuda":
            torch.cuda.empty_cache()
        if args.json:
            args.json.write_text(json.dumps({"meta": meta, "rows": rows}, indent=2))
    print_table(rows, COLUMNS)


if __name__ == "__main__":
    main()
