"""Benchmark the networks: parameters, forward FLOPs (attention included), images/s, peak memory.

One table row per network config in ``configs/network/`` (``paper``, ``compact``, ``autoencoder``,
``memae``), each built with ``monai.bundle.ConfigParser`` from its ``network_def``.

- **FLOPs** are counted with ``torch.utils.flop_counter.FlopCounterMode`` on the *meta* device (no
  memory, no time, same numbers on every machine) under ``sdpa_kernel(SDPBackend.MATH)``: the CPU's
  fused attention op is not counted by ``FlopCounterMode`` (it reports 0), the math backend
  decomposes attention into counted ``bmm``s. The attention share is the ``bmm`` FLOPs inside
  ``GlobalCrossAttention`` modules (QK^T and AV), cross-checked against ``4 * B * heads * N_q *
  N_kv * head_dim`` from forward hooks. ``fwd`` is one image in eval mode after a warm-up pass, so
  the hash memory's slot codes are cached as they are at test time; ``train fwd`` is the
  training-mode forward per image at ``--batch-size``, where the hash layer re-encodes all slots.
- **Speed**: median seconds per iteration over ``--iters`` after ``--warmup``; forward is eval +
  ``no_grad``; training is one Adam step on ``ReconstructionLoss`` plus the memory term
  ``net.reconstruct(x).memory.loss``. bf16 autocast on CUDA by default.
- **Peak memory**: CUDA: ``torch.cuda.max_memory_allocated`` (reset before each phase). CPU: peak
  RSS (``VmHWM``, reset through ``/proc/self/clear_refs`` after ``malloc_trim``) minus the RSS when
  the phase starts, i.e. what the phase adds on top of the built model (approximate: the allocator
  may reuse memory freed by earlier configs); falls back to ``ru_maxrss`` if the reset fails.
- On CPU the paper config is too heavy to train: its FLOPs and parameters are counted on meta,
  one forward image is timed, and training prints ``skipped (CPU)``.

Run from the repository root::

    python benchmarks/networks.py                       # CUDA if available, else CPU
    python benchmarks/networks.py --device cpu --batch-size 4 --iters 5 --json out.json
    python benchmarks/networks.py --configs compact memae --img-size 128
"""

from __future__ import annotations

import argparse
import ctypes
import gc
import json
import os
import re
import resource
import statistics
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

# benchmarks/machine.py: the script's folder is on sys.path
from machine import cpu_model

from mama_monai.losses import ReconstructionLoss
from mama_monai.networks import GlobalCrossAttention

CONFIG_DIR = ROOT / "configs" / "network"
CONFIGS = {"paper": "mamanet_paper.yaml", "compact": "mamanet_compact.yaml", "autoencoder": "autoencoder.yaml", "memae": "memae.yaml"}
MEMORY_WEIGHT = {"memae": 2e-4}  # MemAE's entropy weight; the hash memory's VQ terms take 1.0
CPU_FORWARD_ONLY = {"paper"}  # 861 M memory parameters: no training on CPU, one forward image


def build(name: str, device) -> torch.nn.Module:
    parser = ConfigParser()
    parser.read_config(str(CONFIG_DIR / CONFIGS[name]))
    with torch.device(device):  # build in place: the paper's slots are never materialised on CPU for a GPU run
        return parser.get_parsed_content("network_def")


def input_size(net, img_size: int):
    fixed = getattr(net, "img_size", None)
    return list(fixed) if fixed else [img_size] * net.spatial_dims


def for_meta(net: torch.nn.Module) -> torch.nn.Module:
    """``net`` (built on the meta device) made countable: a meta tensor has no values, so the
    checks and counters that read one (``.item()``) are switched off: the finite-output check, and
    the hash memory's start from the first batch and its dead-slot restarts (both copy slots: no
    FLOPs worth counting; ``tests/benchmarks/test_speed.py`` checks the count against real tensors)."""
    net.check_finite = False
    for module in net.modules():
        if hasattr(module, "restart_every"):
            module.init_from_data, module.restart_every = False, 0
    return net


def count_flops(name: str, img_size: int, batch: int) -> dict:
    """Eval forward FLOPs for one image, its attention part, and training-mode forward FLOPs per image."""
    net = for_meta(build(name, "meta"))
    attn = {f"{type(net).__name__}.{n}": m for n, m in net.named_modules() if isinstance(m, GlobalCrossAttention)}
    formula = [0]

    def hook(m, args, _out):
        q, ctx = args[0], m._pool_context(args[1])
        formula[0] += 4 * q.shape[0] * m.num_heads * m.head_dim * q[0, 0].numel() * ctx[0, 0].numel()

    def run(train: bool, b: int):
        net.train(train)
        x = torch.empty([b, net.in_channels] + input_size(net, img_size), device="meta")
        with sdpa_kernel(SDPBackend.MATH), torch.no_grad():
            if not train:
                net(x)  # warm-up: the hash memory caches its slot codes, as at test time
            handles = [m.register_forward_hook(hook) for m in attn.values()]
            formula[0] = 0
            with FlopCounterMode(display=False) as fc:
                net(x)
            for h in handles:
                h.remove()
        counts = fc.get_flop_counts()
        core = sum(counts.get(k, {}).get(torch.ops.aten.bmm, 0) for k in attn)
        if core != formula[0]:
            print(f"  warning: {name}: attention bmm FLOPs {core} != formula {formula[0]}")
        return fc.get_total_flops() / b, core / b

    fwd, fwd_attn = run(False, 1)
    train_fwd, _ = run(True, batch)
    return {"gflop_fwd": fwd / 1e9, "gflop_attention": fwd_attn / 1e9, "gflop_train_fwd": train_fwd / 1e9}


def count_params(net) -> dict:
    memory = getattr(net, "memory", None)
    return {
        "params_m": sum(p.numel() for p in net.parameters()) / 1e6,
        "memory_params_m": sum(p.numel() for p in memory.parameters()) / 1e6 if memory is not None else 0.0,
    }


class PeakMemory:
    """Peak memory of a phase in MiB: CUDA allocator peak, or CPU peak RSS above the phase's start."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.method = "torch.cuda.max_memory_allocated" if device.type == "cuda" else "VmHWM after /proc/self/clear_refs, minus start RSS"

    @staticmethod
    def _status_kb(field: str) -> int:
        return int(re.search(rf"{field}:\s+(\d+)", Path("/proc/self/status").read_text()).group(1))

    def __enter__(self):
        if self.device.type == "cuda":
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            return self
        try:
            gc.collect()
            ctypes.CDLL("libc.so.6").malloc_trim(0)  # hand freed heap back, so reused memory shows as new RSS
            Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM to the current RSS
            self.start_kb = self._status_kb("VmRSS")
        except (OSError, AttributeError):  # no reset possible: process-wide peak, only meaningful if this phase sets it
            self.method = "ru_maxrss delta (process peak)"
            self.start_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return self

    def __exit__(self, *exc) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize()
            self.mib = torch.cuda.max_memory_allocated() / 2**20
        elif self.method.startswith("VmHWM"):
            self.mib = (self._status_kb("VmHWM") - self.start_kb) / 1024
        else:
            self.mib = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - self.start_kb) / 1024


def median_seconds(fn, iters: int, warmup: int, device: torch.device) -> float:
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    for _ in range(warmup):
        fn()
    sync()
    times = []
    for _ in range(iters):
        t0 = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def benchmark(name: str, args, device: torch.device) -> dict:
    row = {"config": name, **count_flops(name, args.img_size, args.batch_size)}
    forward_only = device.type == "cpu" and name in CPU_FORWARD_ONLY
    net = build(name, device)
    row.update(count_params(net))
    batch, iters, warmup = (1, 1, 0) if forward_only else (args.batch_size, args.iters, args.warmup)
    x = torch.rand([batch, net.in_channels] + input_size(net, args.img_size), device=device)
    amp = torch.autocast(device.type, dtype=torch.bfloat16) if args.amp == "bf16" else nullcontext()
    row["batch"] = batch

    net.eval()
    memory = getattr(net, "memory", None)
    if hasattr(memory, "refresh_codes"):
        memory.refresh_codes()  # test-time slot codes, computed once outside the timed pass

    def forward():
        with torch.no_grad(), amp:
            net(x)

    with PeakMemory(device) as peak:
        row["fwd_img_s"] = batch / median_seconds(forward, iters, warmup, device)
    row["peak_fwd_mib"] = peak.mib

    if forward_only:
        row["train_img_s"] = row["peak_train_mib"] = "skipped (CPU)"
        return row
    net.train()
    opt = torch.optim.Adam(net.parameters(), lr=1e-4)
    loss_fn = ReconstructionLoss(memory_weight=MEMORY_WEIGHT.get(name, 1.0))

    def train_step():
        opt.zero_grad(set_to_none=True)
        with amp:
            out = net.reconstruct(x)
            loss = loss_fn(out.reconstruction, x, out.memory.loss if out.memory is not None else None)
        loss.backward()
        opt.step()

    with PeakMemory(device) as peak:
        row["train_img_s"] = batch / median_seconds(train_step, iters, warmup, device)
    row["peak_train_mib"] = peak.mib
    return row


COLUMNS = [
    ("config", "config", "{}"), ("params_m", "params M", "{:.2f}"), ("memory_params_m", "memory M", "{:.2f}"),
    ("gflop_fwd", "fwd GFLOP/img", "{:.2f}"), ("gflop_attention", "attn GFLOP", "{:.2f}"),
    ("attention_share", "attn %", "{:.0%}"), ("gflop_train_fwd", "train fwd GFLOP/img", "{:.2f}"),
    ("batch", "batch", "{}"), ("fwd_img_s", "fwd img/s", "{:.2f}"), ("train_img_s", "train img/s", "{:.2f}"),
    ("peak_fwd_mib", "peak fwd MiB", "{:.0f}"), ("peak_train_mib", "peak train MiB", "{:.0f}"),
]


def fmt(row: dict, key: str, spec: str) -> str:
    value = row.get(key, "")
    return spec.format(value) if isinstance(value, (int, float)) else str(value)


def print_table(rows: list, columns: list) -> None:
    """A markdown table of ``rows`` with ``columns`` = ``[(key, header, format spec), ...]``."""
    print("| " + " | ".join(h for _, h, _ in columns) + " |")
    print("|" + "---|" * len(columns))
    for row in rows:
        print("| " + " | ".join(fmt(row, k, s) for k, _, s in columns) + " |")


def cpu_name() -> str:
    return f"{cpu_model()}, {os.cpu_count()} cores"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--device", choices=["cpu", "cuda"], default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--configs", nargs="+", choices=list(CONFIGS), default=list(CONFIGS))
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--img-size", type=int, default=228, help="input side for configs without a fixed img_size")
    p.add_argument("--iters", type=int, default=10)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--amp", choices=["bf16", "none"], default=None, help="default: bf16 on CUDA, none on CPU")
    p.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = p.parse_args()
    args.amp = args.amp or ("bf16" if args.device == "cuda" else "none")
    device = torch.device(args.device)
    machine = torch.cuda.get_device_name(device) if device.type == "cuda" else cpu_name()
    meta = {
        "device": machine, "torch": torch.__version__, "amp": args.amp, "img_size": args.img_size,
        "iters": args.iters, "warmup": args.warmup, "threads": torch.get_num_threads(),
        "peak_memory": PeakMemory(device).method, "timing": "median seconds per iteration",
        "mama_monai": str(Path(sys.modules["mama_monai"].__file__).parent),
    }
    print(" ".join(f"{k}={v}" for k, v in meta.items()))
    rows = []
    for name in args.configs:
        t0 = time.perf_counter()
        try:
            row = benchmark(name, args, device)
            row["attention_share"] = row["gflop_attention"] / row["gflop_fwd"] if row["gflop_fwd"] else 0.0
        except Exception as err:  # noqa: BLE001 -- one failing config (e.g. out of memory) must not lose the others
            traceback.print_exc()
            row = {"config": name, "error": f"{type(err).__name__}: {err}"[:300]}
        row["seconds"] = round(time.perf_counter() - t0, 1)
        rows.append(row)
        print(f"{name}: done in {row['seconds']} s" + (f" ({row['error']})" if "error" in row else ""), flush=True)
        if device.type == "cuda":
            torch.cuda.empty_cache()
        if args.json:  # written after every config, so a run cut short keeps what it measured
            args.json.write_text(json.dumps({"meta": meta, "rows": rows}, indent=2))
    print_table(rows, COLUMNS)


if __name__ == "__main__":
    main()
