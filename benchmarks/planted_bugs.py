"""Plant each bug of issue 16 in a copy of the tree, one at a time, and run the tests that must catch it.

Each entry of :data:`BUGS` is ``(file, text, replacement, tests[, (text, replacement) ...])``: the
bug is planted by replacing ``text`` (which must occur exactly once; when a refactor has moved it,
the package is searched for it) in a COPY of the working tree (default ``/tmp/mama-monai-planted``,
never the shared tree), the tests are run with ``-x`` and the copy restored. Every bug must make
at least one test fail; the first failing test is printed. ``docs/testing.md`` lists the result.

    python benchmarks/planted_bugs.py                    # all bugs, about 15 min on 2 busy cores
    python benchmarks/planted_bugs.py abs_error write_in_place
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

#: name: (file, text, replacement, tests[, further (text, replacement) pairs in the same file])
BUGS = {
 "abs_error": ("mama_monai/engines/anomaly_map.py", ".pow(2).mean(dim=1, keepdim=True)", ".abs().mean(dim=1, keepdim=True)", ["tests/engines/test_anomaly_map.py"]),
 "no_smoothing": ("mama_monai/engines/anomaly_map.py", "if sigma > 0 else nn.Identity()", "if False else nn.Identity()", ["tests/engines/test_anomaly_map.py"]),
 "threshold_from_test_normals": ("mama_monai/workflows/metrics_report.py", "    report[\"image\"] = _operating_point(scores, labels, threshold, seed)", "    threshold = float(np.quantile(scores[labels == 0], 0.95))\n    report[\"image\"] = _operating_point(scores, labels, threshold, seed)", ["tests/workflows/test_data_hygiene.py", "tests/workflows/test_operating_point.py"]),
 "resume_no_network_optimizer": ("mama_monai/engines/training_handlers.py", "    CheckpointLoader(load_path=str(last), load_dict=objects).attach(trainer)", "    objects = {k: v for k, v in objects.items() if k not in ('network', 'optimizer')}\n    CheckpointLoader(load_path=str(last), load_dict=objects).attach(trainer)", ["tests/workflows/test_resume_exact.py"]),
 "calibrate_on_all_val": ("mama_monai/engines/post_processing.py", "    scores = val[\"score\"][normal]", "    scores = val[\"score\"]", ["tests/engines/test_post_processing.py"]),
 "maps_flipped_lr": ("mama_monai/workflows/scoring.py", "        amap = np.asarray(result[\"map\"], dtype=np.float32)", "        amap = np.ascontiguousarray(np.asarray(result[\"map\"], dtype=np.float32)[::-1])", ["tests/workflows/test_map_alignment.py"]),
 "straight_through_sign": ("mama_monai/networks/blocks/hash_memory.py", "soft = torch.softmax(-relaxed / self.temperature, dim=1)", "soft = torch.softmax(relaxed / self.temperature, dim=1)", ["tests/networks/test_hash_memory.py"]),
 "train_on_anomalous": ("mama_monai/workflows/splits.py", "train_cases = [c for c in split[\"train\"] if c.label == 0]", "train_cases = list(split[\"train\"])", ["tests/workflows/test_data_hygiene.py", "tests/workflows/test_split_settings.py"]),
 "train_on_validation": ("mama_monai/workflows/splits.py", "    train = [it for i, it in enumerate(train) if i % every != every - 1]", "    train = list(train)", ["tests/workflows/test_data_hygiene.py"]),
 "recommended_beats_user": ("mama_monai/workflows/config.py", "    return load_config([config or folder / \"train.yaml\", net_path], overrides)", "    parser = load_config([config or folder / \"train.yaml\", net_path], overrides)\n    recommended = load_config([config or folder / \"train.yaml\", net_path])\n    for key in (\"loss#memory_weight\", \"loss#wasserstein_weight\"):\n        parser[key] = recommended[key]\n    return parser", ["tests/workflows/test_data_hygiene.py"]),
 "memae_zero_weights": ("mama_monai/networks/blocks/memae_memory.py", "        shrunk = torch.where(best & (shrunk == 0), w, shrunk)\n", "", ["tests/networks/test_baselines.py"], ("similarity: str = \"dot\"", "similarity: str = \"cosine\"")),
 "write_in_place": ("mama_monai/atomic.py", 'tmp = f".{name}.{secrets.token_hex(4)}.tmp"', "tmp = name", ["tests/workflows/test_interrupted_writes.py"], ("os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC", "os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC")),
}


def _copy_tree(tree: Path) -> None:
    listed = subprocess.run(["git", "ls-files", "-z", "-co", "--exclude-standard"], cwd=REPO, capture_output=True, check=True).stdout
    if tree.exists():
        shutil.rmtree(tree)
    for rel in filter(None, listed.decode().split("\0")):
        if (REPO / rel).is_file():
            (tree / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / rel, tree / rel)


def _locate(tree: Path, path: str, text: str) -> Path:
    """The file holding ``text``: ``path`` or, after a refactor, the one package module that does."""
    if (tree / path).is_file() and (tree / path).read_text(encoding="utf-8").count(text) == 1:
        return tree / path
    found = [p for p in (tree / "mama_monai").rglob("*.py") if p.read_text(encoding="utf-8").count(text) == 1]
    if len(found) != 1:
        raise SystemExit(f"cannot plant: {text!r} occurs once in {len(found)} modules (expected 1; was {path})")
    return found[0]


def plant_and_test(tree: Path, name: str) -> tuple[bool, str]:
    """Plant bug ``name`` in ``tree``, run its tests, restore. ``(caught, first failing test or last line)``."""
    path, old, new, tests, *more = BUGS[name]
    target = _locate(tree, path, old)
    original = target.read_text(encoding="utf-8")
    text = original
    for a, b in [(old, new), *more]:
        if text.count(a) != 1:
            raise SystemExit(f"cannot plant {name}: {a!r} occurs {text.count(a)} times in {target}")
        text = text.replace(a, b)
    target.write_text(text, encoding="utf-8")
    try:
        run = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-x", *tests],
            cwd=tree, capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"},
        )  # fmt: skip
    finally:
        target.write_text(original, encoding="utf-8")
    failed = [line for line in run.stdout.splitlines() if line.startswith(("FAILED ", "ERROR "))]
    return run.returncode != 0 and bool(failed), (failed[0] if failed else (run.stdout.strip().splitlines() or [""])[-1])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("bugs", nargs="*", choices=[[], *BUGS], help="bugs to plant (default: all)")
    ap.add_argument("--tree", type=Path, default=Path("/tmp/mama-monai-planted"), help="where the copy goes")
    args = ap.parse_args(argv)
    tree = args.tree.resolve()
    if tree == REPO or REPO in tree.parents:
        ap.error(f"--tree {str(tree)!r} is inside the repository; expected a folder outside it")
    _copy_tree(tree)
    missed = []
    for name in args.bugs or list(BUGS):
        start = time.monotonic()
        caught, what = plant_and_test(tree, name)
        print(f"{name}: {'caught by ' + what.removeprefix('FAILED ') if caught else 'NOT CAUGHT (' + what + ')'} [{time.monotonic() - start:.0f} s]", flush=True)
        if not caught:
            missed.append(name)
    print(f"planted bugs caught: {len(args.bugs or BUGS) - len(missed)}/{len(args.bugs or BUGS)}")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
