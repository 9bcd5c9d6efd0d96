"""Mutation testing of the core modules with mutmut (issue 16): do the tests catch real bugs?

mutmut (PyPI, ``pip install -e .[mutation]``) changes the code one small edit at a time (``<``
for ``<=``, ``+`` for ``-``, a constant changed, an argument dropped, a string changed, ...) and
runs the tests that execute the mutated function; a mutant is *killed* when a test fails. The
surviving mutants are bugs the tests would not catch, or edits that change nothing (equivalent
mutants); ``docs/testing.md`` lists the score and the survivors judged equivalent.

It never touches the working tree: the tracked and untracked (not ignored) files are copied to
``--workdir`` (default ``/tmp/mama-monai-mutation``), mutmut's ``[tool.mutmut]`` settings are
appended to the COPY's ``pyproject.toml``, and mutmut runs there (it writes ``mutants/`` beside
it). Several engineers share one tree, so mutating it in place is not an option.

Core modules (:data:`TARGETS`): anomaly maps and scores, thresholds and metrics, the hash memory,
the MemAE memory, model-file loading, the train/validation/test split and the threshold
calibration. Only the functions named there are mutated (whole modules where none is named);
error messages, log lines and warnings are not (:data:`SKIP_LINES`).
Tests (:data:`TESTS`): the fast tests that pin these behaviours; mutmut runs, for each mutant,
only those that execute its function (it records which tests call which function first).

The last line printed is ``mutation score: KILLED/TOTAL`` (killed includes timeouts, which
mutmut counts as caught; TOTAL counts every mutant, including those no selected test executes).

    python benchmarks/mutation.py                       # 15 min measured on 2 CPU cores shared with others
    python benchmarks/mutation.py --max-children 1      # leave one core to others
    python benchmarks/mutation.py --rerun               # after adding tests: rerun only the mutants not killed
    cd /tmp/mama-monai-mutation && python -m mutmut show NAME   # the diff of one mutant
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

#: Mutated code: ``file: None`` mutates the whole module; otherwise only the listed functions
#: (``Class.method`` or ``function``).
TARGETS: dict[str, list[str] | None] = {
    "mama_monai/engines/anomaly_map.py": None,
    "mama_monai/engines/post_processing.py": None,
    "mama_monai/evaluation/thresholds.py": None,
    "mama_monai/evaluation/metrics.py": None,
    "mama_monai/networks/blocks/hash_memory.py": None,
    "mama_monai/networks/blocks/memae_memory.py": None,
    "mama_monai/engines/checkpoint.py": ["read_checkpoint", "load_model", "_mismatch"],
    "mama_monai/data/manifest.py": ["split_cases"],
    "mama_monai/workflows/splits.py": ["prepare_splits"],
}

#: Lines never mutated (regular expressions; a match skips the whole statement it starts): the
#: wording of error messages, log lines and warnings. Their conditions are still mutated.
SKIP_LINES = [r"^\s*raise \w", r"^\s*logger\.\w+\(", r"^\s*warnings\.warn\("]

#: The tests mutmut runs (each mutant: only those that execute its function).
TESTS = [
    "tests/engines/test_anomaly_map.py",
    "tests/evaluation/test_metrics.py",
    "tests/evaluation/test_thresholds.py",
    "tests/networks/test_hash_memory.py",
    "tests/networks/test_baselines.py",
    "tests/security/test_crafted_model_files.py",
    "tests/data/test_manifest.py",
    "tests/workflows/test_data_hygiene.py",
    "tests/workflows/test_split_settings.py",
    "tests/workflows/test_operating_point.py",
    "tests/engines/test_post_processing.py",
    "tests/data/test_split_cases.py",
    "tests/networks/test_memory_settings.py",
]

#: Tests deselected under mutmut, with the reason (mutmut wraps every mutated function in a
#: trampoline taking ``*args, **kwargs``, which TorchScript and torch.compile cannot compile).
DESELECT = {
    "tests/networks/test_baselines.py::test_torchscript_round_trip": "TorchScript cannot script mutmut's trampolines",
}

#: Folders the tests read besides the package (copied into mutmut's ``mutants/``).
ALSO_COPY = ["configs", "data_manifests", "pipelines", "benchmarks"]


def _resolve_targets(root: Path = REPO) -> dict[str, list[str] | None]:
    """:data:`TARGETS`, with each named function looked up in the package where its file no longer
    defines it (code moves between modules in refactors)."""
    import re

    resolved: dict[str, list[str] | None] = {}
    for path, functions in TARGETS.items():
        if functions is None:
            resolved[path] = None
            continue
        for name in functions:
            top = name.split(".")[0]
            pattern = re.compile(rf"^(def|class) {re.escape(top)}\b", re.M)
            where = path
            if not ((root / path).is_file() and pattern.search((root / path).read_text(encoding="utf-8"))):
                found = [p for p in sorted((root / "mama_monai").rglob("*.py")) if pattern.search(p.read_text(encoding="utf-8"))]
                if not found:
                    raise SystemExit(f"mutation target {name!r} is defined nowhere in mama_monai (was {path})")
                where = str(found[0].relative_to(root))
            resolved.setdefault(where, []).append(name)  # type: ignore[union-attr]
    return resolved


def _mutant_patterns(targets: dict[str, list[str] | None]) -> list[str]:
    patterns = []
    for path, functions in targets.items():
        module = path[: -len(".py")].replace("/", ".")
        if functions is None:
            patterns.append(f"{module}.*")
            continue
        for name in functions:
            if "." in name:
                cls, meth = name.split(".")
                patterns.append(f"{module}.x\u01c1{cls}\u01c1{meth}__mutmut_*")
            else:
                patterns.append(f"{module}.x_{name}__mutmut_*")
    return patterns


def _copy_tree(workdir: Path) -> None:
    """The tracked and untracked-but-not-ignored files of the working tree, as they are now."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=REPO, check=True, capture_output=True
    ).stdout.decode()
    if workdir.exists():
        shutil.rmtree(workdir)
    for rel in filter(None, listed.split("\0")):
        src = REPO / rel
        if not src.is_file():
            continue  # deleted but still in the index
        dst = workdir / rel
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, dst)


def _failing_before_mutation(workdir: Path, tests: list[str]) -> list[str]:
    """Node ids of the selected tests that fail on the unmutated copy (mutmut needs a green start)."""
    deselect = [arg for node in DESELECT for arg in ("--deselect", node)]
    out = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rfE", *deselect, *tests],
        cwd=workdir, capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"},
    ).stdout  # fmt: skip
    return [line.split()[1] for line in out.splitlines() if line.startswith(("FAILED ", "ERROR "))]


def _toml_list(values: list[str]) -> str:
    return "[" + ", ".join(json.dumps(v) for v in values) + "]"


def _configure(workdir: Path) -> None:
    existing = [t for t in TESTS if (workdir / t).is_file()]
    missing = sorted(set(TESTS) - set(existing))
    if missing:
        print(f"note: tests not in this tree, skipped: {missing}", flush=True)
    failing = _failing_before_mutation(workdir, existing)
    if failing:
        print(f"note: failing before any mutation (work in progress elsewhere?), deselected: {failing}", flush=True)
    deselect = [arg for node in [*DESELECT, *failing] for arg in ("--deselect", node)]
    block = "\n".join(
        [
            "",
            "[tool.mutmut]",
            'source_paths = ["mama_monai"]',
            f"only_mutate = {_toml_list(list(_resolve_targets(workdir)))}",
            f"also_copy = {_toml_list([d for d in ALSO_COPY if (workdir / d).exists()])}",
            f"pytest_add_cli_args = {_toml_list(['-p', 'no:cacheprovider', '-q', *deselect])}",
            f"pytest_add_cli_args_test_selection = {_toml_list(existing)}",
            f"do_not_mutate_patterns = {_toml_list(SKIP_LINES)}",
            "use_git_change_detection = false",
            "",
        ]
    )
    with open(workdir / "pyproject.toml", "a", encoding="utf-8") as f:
        f.write(block)


def _refresh_tests(workdir: Path) -> None:
    """The working tree's current tests, into the copy and into mutmut's ``mutants/`` folder."""
    for dest in (workdir / "tests", workdir / "mutants" / "tests"):
        shutil.rmtree(dest, ignore_errors=True)
        shutil.copytree(REPO / "tests", dest, ignore=shutil.ignore_patterns("__pycache__"))


def _forget_survivors(workdir: Path, patterns: list[str]) -> list[str]:
    """Clear mutmut's result of every selected mutant that was not killed; their names."""
    import fnmatch

    forgotten = []
    for meta in (workdir / "mutants").rglob("*.py.meta"):
        data = json.loads(meta.read_text())
        codes = data["exit_code_by_key"]
        for name, code in codes.items():
            if code in (0, 2, 5, 33, 34, None) and any(fnmatch.fnmatchcase(name, p) for p in patterns):
                codes[name] = None  # 0 survived, 2 interrupted, 5/33 no tests, 34 skipped
                forgotten.append(name)
        meta.write_text(json.dumps(data))
    return forgotten


def _counts(workdir: Path, patterns: list[str]) -> dict[str, list[str]]:
    """Mutant names by status, for the mutants matching ``patterns``."""
    import fnmatch

    out = subprocess.run(
        [sys.executable, "-m", "mutmut", "results", "--all", "true"], cwd=workdir, check=True, capture_output=True, text=True
    ).stdout
    by_status: dict[str, list[str]] = {}
    for line in out.splitlines():
        name, sep, status = line.strip().rpartition(": ")
        if not sep or not any(fnmatch.fnmatchcase(name, p) for p in patterns):
            continue
        by_status.setdefault(status, []).append(name)
    return by_status


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/mama-monai-mutation"), help="where the copy of the tree goes")
    ap.add_argument("--max-children", type=int, default=2, help="parallel test processes (default 2)")
    ap.add_argument(
        "--rerun", action="store_true",
        help="keep --workdir's results; copy the current tests there and rerun only the mutants not killed (after adding tests)",
    )  # fmt: skip
    ap.add_argument("--list", action="store_true", help="print the survivors' names after the run")
    args = ap.parse_args(argv)

    workdir = args.workdir.resolve()
    if REPO == workdir or REPO in workdir.parents:
        ap.error(f"--workdir {str(workdir)!r} is inside the repository {str(REPO)!r}; expected a folder outside it")
    start = time.monotonic()
    if not (args.rerun and (workdir / "mutants").is_dir()):
        _copy_tree(workdir)
    patterns = _mutant_patterns(_resolve_targets(workdir))
    to_run = patterns  # mutmut reruns every mutant named on its command line
    if args.rerun and (workdir / "mutants").is_dir():
        _refresh_tests(workdir)
        to_run = _forget_survivors(workdir, patterns)
        print(f"rerunning the {len(to_run)} mutants that were not killed", flush=True)
    else:
        _configure(workdir)
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1"), "PYTHONDONTWRITEBYTECODE": "1"}
    cmd = [sys.executable, "-m", "mutmut", "run", "--max-children", str(args.max_children), *to_run]
    print(f"$ (cd {workdir} && {' '.join(cmd[1:6])} ... {len(to_run)} names or patterns)", flush=True)
    code = subprocess.run(cmd, cwd=workdir, env=env).returncode
    if code != 0:
        print(f"mutmut run exited with {code}", file=sys.stderr)
        return code
    by_status = _counts(workdir, patterns)
    total = sum(len(v) for v in by_status.values())
    killed = len(by_status.get("killed", [])) + len(by_status.get("timeout", []))
    minutes = (time.monotonic() - start) / 60
    print(f"{minutes:.1f} min; by status: " + ", ".join(f"{k} {len(v)}" for k, v in sorted(by_status.items())))
    if args.list:
        for status in sorted(by_status):
            if status not in ("killed", "timeout"):
                for name in sorted(by_status[status]):
                    print(f"  {status}: {name}")
    print(f"mutation score: {killed}/{total}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
