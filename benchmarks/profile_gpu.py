"""Where the paper configuration's GPU time goes: a kernel profile and a torch.compile trial.

For the speed work (issue 6). Prints the top CUDA kernels of one bf16 forward at batch 8 and of one
training step, then forward images/s eager vs ``torch.compile`` (default mode), same card, same run.

    python benchmarks/profile_gpu.py --config configs/network/mamanet_paper.yaml
"""

from __future__ import annotations

import argparse
import time

import torch
from monai.bundle import ConfigParser
from torch.profiler import ProfilerActivity, profile

from mama_monai.losses import ReconstructionLoss


def _rate(fn, x, iters=10, warmup=3) -> float:
    for _ in range(warmup):
        fn(x)
    torch.cuda.synchronize()
    t = time.perf_counter()
    for _ in range(iters):
        fn(x)
    torch.cuda.synchronize()
    return iters * x.shape[0] / (time.perf_counter() - t)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default="configs/network/mamanet_paper.yaml")
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--compile", action="store_true", help="also time torch.compile")
    args = ap.parse_args()
    parser = ConfigParser()
    parser.read_config(args.config)
    net = parser.get_parsed_content("network_def").cuda()
    net.check_finite = False
    size = net.img_size or [228, 228]
    x = torch.rand(args.batch_size, net.in_channels, *size, device="cuda")
    loss_fn = ReconstructionLoss()
    opt = torch.optim.Adam(net.parameters(), lr=1e-4)

    def forward(inp):
        with torch.no_grad(), torch.autocast("cuda", dtype=torch.bfloat16):
            return net(inp)

    def train_step(inp):
        with torch.autocast("cuda", dtype=torch.bfloat16):
            out = net.reconstruct(inp)
            loss = loss_fn(out.reconstruction, inp, out.memory.loss)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    net.eval()
    forward(x)
    for name, fn, mode in (("forward (eval)", forward, net.eval), ("training step", train_step, net.train)):
        mode()
        fn(x)
        torch.cuda.synchronize()
        with profile(activities=[ProfilerActivity.CUDA]) as prof:
            fn(x)
            torch.cuda.synchronize()
        print(f"== {name}, batch {args.batch_size}, bf16: top CUDA kernels")
        print(prof.key_averages().table(sort_by="cuda_time_total", row_limit=15, max_name_column_width=70))
    net.eval()
    print(f"eager forward: {_rate(forward, x):.1f} img/s")
    if args.compile:
        compiled = torch.compile(net)

        def cforward(inp):
            with torch.no_grad(), torch.autocast("cuda", dtype=torch.bfloat16):
                return compiled(inp)

        t = time.perf_counter()
        cforward(x)
        torch.cuda.synchronize()
        print(f"torch.compile: first call {time.perf_counter() - t:.1f} s")
        print(f"compiled forward: {_rate(cforward, x):.1f} img/s")


if __name__ == "__main__":
    main()
