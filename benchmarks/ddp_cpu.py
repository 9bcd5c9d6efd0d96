"""The project's DDP training path on CPU processes (gloo): N = 1 and N = 2, weak scaling.

Each case is the real command, ``torchrun --nproc_per_node=N ... mama_monai.cli train --device cpu``
(the embedded demo data, ``--network mamanet_compact`` at ``--size`` x ``--size``), launched through
this file so that one observer can be attached to each rank's trainer before it runs (as
``tests/workflows/test_distributed.py`` does): ignite event timers per iteration and, for the
variants other than ``ddp``, a timed DDP communication hook. Nothing else in the run changes.

- **Weak scaling**: every process trains on ``--batch`` images per step (the paper's 8), so the
  global batch is N x batch. images/s = global batch / median step; scaling efficiency =
  images/s(N) / (N x images/s(1)). ``OMP_NUM_THREADS=1`` and ``torch.set_num_threads(1)`` in every
  process, so N processes use N cores.
- **step** = wall time between consecutive ``ITERATION_COMPLETED`` events (data fetch, forward,
  loss, backward with DDP's gradient all-reduce, Adam, the trainer's handlers); the first
  ``--warmup`` iterations are dropped; the per-iteration figure is the slowest rank's. Validation
  runs once, after the timed iterations (``training#val_interval`` = iterations).
- **Variants** (N >= 2): ``ddp`` = the shipped path (DDP's built-in float32 all-reduce);
  ``timed`` = the same all-reduce through PyTorch's ``allreduce_hook``, timed per bucket;
  ``bf16`` = ``training#ddp_comm_hook: bf16`` (``bf16_compress_hook``), timed; ``nocomm`` = a
  no-op hook (no gradient exchange, the replicas drift: what the step costs without communication,
  with N processes sharing the machine). For a timed hook, **all-reduce busy** is the wall time
  during which at least one bucket was between "ready" (hook called) and "reduced" (its future
  done), **exposed** is the time from the last bucket becoming ready (the end of the backward
  computation) to ``backward()`` returning, i.e. the communication not hidden behind backward.
- **isolated all-reduce** (in the ``ddp`` case, after training, same process group):
  ``dist.all_reduce`` of 1 element, of a flat float32 tensor of the model's gradient size, the same
  in bfloat16, and 64 MiB; median of 7 after 2 warm-ups. busbw = algbw x 2(N-1)/N (NCCL's convention).

Run from the repository root (about 3 minutes on 2 cores; the machine is shared, so repeat under
the shared lock and combine)::

    flock /tmp/mama_bench.lock python benchmarks/ddp_cpu.py --json ddp_cpu_1.json
    python benchmarks/ddp_cpu.py --combine ddp_cpu_1.json ddp_cpu_2.json ddp_cpu_3.json
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # measure this checkout's code, installed or not

# benchmarks/machine.py: the script's folder is on sys.path
from machine import cpu_model

WORKER = "--_ddp-bench-worker"
VARIANTS = ("ddp", "timed", "bf16", "nocomm")
VARIANT_NAMES = {
    "single": "none (1 process, no DDP)",
    "ddp": "DDP built-in fp32 all-reduce",
    "timed": "fp32 allreduce_hook, timed",
    "bf16": "bf16_compress_hook, timed",
    "nocomm": "no-op hook (no exchange)",
}
PROBE_REPEATS, PROBE_WARMUP = 7, 2


# --------------------------------------------------------------------------- inside each rank
class _Recorder:
    """Iteration timers and (optionally) a timed comm hook on one rank's trainer."""

    def __init__(self, engine, variant: str) -> None:
        import threading

        import torch
        from ignite.engine import Events
        from monai.engines.utils import IterationEvents

        self.engine, self.variant = engine, variant
        self.ddp = engine.network if isinstance(engine.network, torch.nn.parallel.DistributedDataParallel) else None
        self.rows: list[dict] = []
        self.marks: dict[str, float] = {}
        self.comm: list[tuple[float, float, int]] = []
        self.lock = threading.Lock()
        if self.ddp is not None and variant != "ddp":
            self.ddp.register_comm_hook(None, self._timed_hook(variant))
        engine.add_event_handler(Events.ITERATION_STARTED, self._start)
        for event, name in (
            (IterationEvents.FORWARD_COMPLETED, "forward"),
            (IterationEvents.LOSS_COMPLETED, "loss"),
            (IterationEvents.BACKWARD_COMPLETED, "backward"),
            (IterationEvents.MODEL_COMPLETED, "optimizer"),
        ):
            engine.add_event_handler(event, self._mark, name)
        engine.add_event_handler(Events.ITERATION_COMPLETED, self._end)  # attached last: after the run's own handlers

    def _timed_hook(self, variant: str):
        import torch
        from torch.distributed.algorithms.ddp_comm_hooks import default_hooks

        from mama_monai.workflows.distributed import comm_hook

        def no_exchange(state, bucket):
            fut = torch.futures.Future()
            fut.set_result(bucket.buffer())
            return fut

        inner = {"timed": default_hooks.allreduce_hook, "bf16": comm_hook("bf16"), "nocomm": no_exchange}[variant]

        def timed(state, bucket):  # no annotations: DDP checks them
            ready = time.perf_counter()
            buf = bucket.buffer()
            nbytes = buf.numel() * (2 if variant == "bf16" else buf.element_size())  # bytes all-reduced

            def done(fut):
                with self.lock:
                    self.comm.append((ready, time.perf_counter(), nbytes))
                return fut.value()

            return inner(state, bucket).then(done)

        return timed

    def _start(self, engine) -> None:
        self.marks = {"start": time.perf_counter()}
        with self.lock:
            self.comm = []

    def _mark(self, engine, name: str) -> None:
        self.marks[name] = time.perf_counter()

    def _end(self, engine) -> None:
        now, m = time.perf_counter(), self.marks
        row = {
            "end": now,
            "forward": m["forward"] - m["start"],
            "loss": m["loss"] - m["forward"],
            "backward": m["backward"] - m["loss"],
            "optimizer": m["optimizer"] - m["backward"],
            "handlers": now - m["optimizer"],
        }
        with self.lock:
            comm = sorted(self.comm)
        if comm:
            busy, cur_start, cur_end = 0.0, comm[0][0], comm[0][1]
            for ready, done, _ in comm[1:]:
                if ready > cur_end:
                    busy, cur_start, cur_end = busy + cur_end - cur_start, ready, done
                else:
                    cur_end = max(cur_end, done)
            row.update(
                comm_busy=busy + cur_end - cur_start,
                comm_exposed=m["backward"] - max(r for r, _, _ in comm),
                buckets=len(comm),
                comm_bytes=sum(b for _, _, b in comm),
            )
        self.rows.append(row)

    def finish(self, out: Path) -> None:
        import torch
        import torch.distributed as dist

        params = [p for p in self.engine.network.parameters() if p.requires_grad]
        flat = torch.cat([p.detach().flatten() for p in params])
        record = {
            "rank": dist.get_rank() if dist.is_initialized() else 0,
            "world_size": dist.get_world_size() if dist.is_initialized() else 1,
            "variant": self.variant,
            "batch_per_process": self.engine.data_loader.batch_size,
            "train_slices": len(self.engine.data_loader.dataset),
            "grad_elements": int(flat.numel()),
            "param_sha1": hashlib.sha1(flat.numpy().tobytes()).hexdigest(),
            "threads": torch.get_num_threads(),
            "rows": self.rows,
        }
        if self.ddp is not None:
            info = self.ddp._get_ddp_logging_data()
            record["ddp_bucket_sizes"] = [int(s) for s in str(info.get("bucket_sizes", "")).split(",") if s.strip()]
            if self.variant == "ddp":
                record["probes"] = _allreduce_probes(flat.numel())
        (out / f"rank{record['rank']}.json").write_text(json.dumps(record))


def _allreduce_probes(grad_elements: int) -> list[dict]:
    import torch
    import torch.distributed as dist

    cases = [(1, torch.float32), (grad_elements, torch.float32), (grad_elements, torch.bfloat16), (16 * 2**20, torch.float32)]
    found = []
    for n, dtype in cases:
        t = torch.ones(n, dtype=dtype)
        times = []
        for i in range(PROBE_WARMUP + PROBE_REPEATS):
            dist.barrier()
            start = time.perf_counter()
            dist.all_reduce(t)
            if i >= PROBE_WARMUP:
                times.append(time.perf_counter() - start)
            t.fill_(1)
        found.append({"elements": n, "dtype": str(dtype).replace("torch.", ""), "bytes": n * t.element_size(), "seconds": times})
    return found


def worker(argv: list[str]) -> int:
    """One torchrun rank: ``mama_monai.cli train`` with the recorder attached to its trainer."""
    import torch

    torch.set_num_threads(1)
    from mama_monai.cli import main
    from mama_monai.workflows import training

    out, variant = Path(os.environ["DDP_BENCH_DIR"]), os.environ["DDP_BENCH_VARIANT"]
    run = training.AnomalyTrainer.run

    def observed_run(self, *args, **kwargs):
        recorder = _Recorder(self, variant)
        result = run(self, *args, **kwargs)
        recorder.finish(out)
        return result

    training.AnomalyTrainer.run = observed_run
    return main(argv)


# --------------------------------------------------------------------------- the driver
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _median_range(values: list[float]) -> dict:
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def run_case(nproc: int, variant: str, args: argparse.Namespace, tmp: Path) -> dict:
    """Launch one torchrun case and reduce what its ranks recorded."""
    folder = tmp / f"n{nproc}_{variant}"
    (folder / "observed").mkdir(parents=True)
    iterations = args.warmup + args.iters
    cmd = [
        sys.executable, "-m", "torch.distributed.run", f"--nproc_per_node={nproc}",
        "--master_addr", "127.0.0.1", "--master_port", str(_free_port()),
        str(Path(__file__).resolve()), WORKER, "train", "--network", args.network,
        "--output", str(folder / "run"), "--device", "cpu",
        "--data#spatial_size", f"[{args.size}, {args.size}]",
        "--training#iterations", str(iterations), "--training#val_interval", str(iterations),
        "--training#batch_size", str(args.batch),
    ]  # fmt: skip
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")}
    env.update(
        OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", DDP_BENCH_DIR=str(folder / "observed"), DDP_BENCH_VARIANT=variant,
        PYTHONPATH=os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep),
    )  # fmt: skip
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=str(ROOT), check=False)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stderr[-4000:]}")
    ranks = [json.loads((folder / "observed" / f"rank{r}.json").read_text()) for r in range(nproc)]
    skip = args.warmup
    # step i = time from iteration i-1's end to iteration i's end, on each rank; the slowest rank's
    steps = [max(r["rows"][i]["end"] - r["rows"][i - 1]["end"] for r in ranks) for i in range(max(skip, 1), iterations)]
    phases = {
        k: statistics.mean(statistics.median(row[k] for row in r["rows"][skip:]) for r in ranks)
        for k in ("forward", "loss", "backward", "optimizer", "handlers")
    }
    case = {
        "nproc": nproc,
        "variant": variant,
        "batch_per_process": ranks[0]["batch_per_process"],
        "global_batch": ranks[0]["batch_per_process"] * nproc,
        "train_slices": ranks[0]["train_slices"],
        "grad_elements": ranks[0]["grad_elements"],
        "threads_per_process": ranks[0]["threads"],
        "step": _median_range(steps),
        "steps": steps,
        "phases": phases,
        "images_per_s": ranks[0]["batch_per_process"] * nproc / statistics.median(steps),
        "replicas_identical": len({r["param_sha1"] for r in ranks}) == 1 if nproc > 1 else None,
        "wall_s": wall,
    }
    if "ddp_bucket_sizes" in ranks[0]:
        case["ddp_bucket_bytes"] = ranks[0]["ddp_bucket_sizes"]
    comm_rows = [row for r in ranks for row in r["rows"][skip:] if "comm_busy" in row]
    if comm_rows:
        case["comm_busy"] = statistics.median(row["comm_busy"] for row in comm_rows)
        case["comm_exposed"] = statistics.median(row["comm_exposed"] for row in comm_rows)
        case["comm_buckets"] = comm_rows[0]["buckets"]
        case["comm_bytes"] = comm_rows[0]["comm_bytes"]
    if "probes" in ranks[0]:
        probes = []
        for i, p in enumerate(ranks[0]["probes"]):
            t = statistics.median(max(r["probes"][i]["seconds"][k] for r in ranks) for k in range(PROBE_REPEATS))
            alg = p["bytes"] / t
            probes.append({**{k: p[k] for k in ("elements", "dtype", "bytes")}, "seconds": t, "algbw": alg, "busbw": alg * 2 * (nproc - 1) / nproc})
        case["probes"] = probes
    return case


def measure(args: argparse.Namespace) -> dict:
    import torch

    result = {
        "machine": {
            "cpu": cpu_model(),
            "cores": os.cpu_count(),
            "python": platform.python_version(),
            "torch": torch.__version__,
            "loadavg_start": os.getloadavg(),
        },
        "settings": {k: getattr(args, k) for k in ("network", "size", "batch", "iters", "warmup", "nprocs", "variants")},
        "cases": [],
    }
    with tempfile.TemporaryDirectory(prefix="ddp_cpu_") as tmp:
        for nproc in args.nprocs:
            for variant in ["single"] if nproc == 1 else args.variants:
                print(f"N={nproc} {variant} ...", file=sys.stderr, flush=True)
                result["cases"].append(run_case(nproc, variant, args, Path(tmp)))
    result["machine"]["loadavg_end"] = os.getloadavg()
    return result


# --------------------------------------------------------------------------- tables
def _fmt(values: list[float], scale: float = 1.0, digits: int = 0) -> str:
    """``median`` or ``median [min–max]`` of several runs."""
    vals = [v * scale for v in values]
    med = f"{statistics.median(vals):.{digits}f}"
    return med if len(vals) == 1 else f"{med} [{min(vals):.{digits}f}–{max(vals):.{digits}f}]"


def table(results: list[dict]) -> str:
    """Markdown tables: median over the runs given (with [min–max] when there are several)."""
    first = results[0]
    s = first["settings"]
    cases = {(c["nproc"], c["variant"]): [] for c in first["cases"]}
    for res in results:
        for c in res["cases"]:
            cases.setdefault((c["nproc"], c["variant"]), []).append(c)
    base = cases.get((1, "single"))
    c0 = first["cases"][0]
    loads = ", ".join(f"{r['machine']['loadavg_start'][0]:.1f}" for r in results)
    lines = [
        (
            f"machine: {first['machine']['cpu']}, {first['machine']['cores']} cores, torch {first['machine']['torch']}, gloo; "
            f"{len(results)} run(s), load average at start {loads}"
        ),
        (
            f"network: {s['network']} at {s['size']}x{s['size']}, {c0['grad_elements']:,} parameters "
            f"({c0['grad_elements'] * 4 / 1e6:.2f} MB of fp32 gradients); {c0['train_slices']} training slices (demo); "
            f"{s['warmup']} warm-up + {s['iters']} timed iterations per case; 1 thread per process"
        ),
        "",
        "| processes | gradient exchange | batch / process | global batch | step ms | images/s | forward ms | backward ms (+ all-reduce wait) | Adam ms | all-reduce busy ms | exposed ms | efficiency | replicas identical |",
        "| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for (n, v), runs in cases.items():
        ips = [c["images_per_s"] for c in runs]
        eff = "1 (baseline)" if (n, v) == (1, "single") else "–"
        if base and (n, v) != (1, "single"):
            # per run: against that run's own N=1 baseline
            effs = [c["images_per_s"] / (n * b["images_per_s"]) for c, b in zip(runs, base)]
            eff = _fmt(effs, 100, 0) + " %"
        comm = [c for c in runs if "comm_busy" in c]
        ident = {c["replicas_identical"] for c in runs}
        lines.append(
            "| "
            + " | ".join(
                [
                    str(n),
                    VARIANT_NAMES[v],
                    str(runs[0]["batch_per_process"]),
                    str(runs[0]["global_batch"]),
                    _fmt([c["step"]["median"] for c in runs], 1e3),
                    _fmt(ips, 1, 1),
                    _fmt([c["phases"]["forward"] for c in runs], 1e3),
                    _fmt([c["phases"]["backward"] for c in runs], 1e3),
                    _fmt([c["phases"]["optimizer"] for c in runs], 1e3),
                    _fmt([c["comm_busy"] for c in comm], 1e3, 1) if comm else "–",
                    _fmt([c["comm_exposed"] for c in comm], 1e3, 1) if comm else "–",
                    eff,
                    "–" if None in ident else ("yes" if ident == {True} else "no" if ident == {False} else "mixed"),
                ]
            )
            + " |"
        )
    probes = [c["probes"] for res in results for c in res["cases"] if "probes" in c]
    if probes:
        n = next(c["nproc"] for c in first["cases"] if "probes" in c)
        lines += [
            "",
            f"isolated `dist.all_reduce`, {n} gloo processes on this machine (median of {PROBE_REPEATS}; busbw = algbw x 2(N-1)/N):",
            "",
            "| tensor | bytes | ms | algbw GB/s | busbw GB/s |",
            "| --- | ---: | ---: | ---: | ---: |",
        ]
        for i, p in enumerate(probes[0]):
            runs = [pr[i] for pr in probes]
            lines.append(
                f"| {p['elements']:,} x {p['dtype']} | {p['bytes']:,} | {_fmt([r['seconds'] for r in runs], 1e3, 2)} | "
                f"{_fmt([r['algbw'] for r in runs], 1e-9, 2)} | {_fmt([r['busbw'] for r in runs], 1e-9, 2)} |"
            )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--network", default="mamanet_compact", help="configs/network/<NAME>.yaml (default mamanet_compact)")
    parser.add_argument("--size", type=int, default=64, help="input side, pixels (default 64)")
    parser.add_argument("--batch", type=int, default=8, help="images per process per step (default 8, the paper's)")
    parser.add_argument("--iters", type=int, default=12, help="timed iterations per case (default 12)")
    parser.add_argument("--warmup", type=int, default=3, help="iterations dropped first (default 3)")
    parser.add_argument("--nprocs", type=int, nargs="+", default=[1, 2], help="process counts (default 1 2)")
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=VARIANTS, help="N >= 2 cases (default all)")
    parser.add_argument("--json", default=None, help="also write the results here")
    parser.add_argument("--combine", nargs="+", default=None, metavar="JSON", help="print the median [range] of earlier --json runs")
    args = parser.parse_args(argv)
    if args.combine:
        print(table([json.loads(Path(p).read_text()) for p in args.combine]))
        return 0
    result = measure(args)
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1))
    print(table([result]))
    return 0


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == WORKER:
        sys.exit(worker(sys.argv[2:]))
    sys.exit(main())
