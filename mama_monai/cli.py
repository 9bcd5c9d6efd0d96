"""Command-line interface: ``mama-monai <command> ...``.

One small pair of functions per subcommand — ``_add_<name>_parser(subparsers)`` declares its
arguments, ``_run_<name>(args)`` runs it — registered in ``_COMMANDS``. Errors in the user's input
print one line on stderr (``mama-monai <command>: error: ...``) and exit with code 2, no traceback;
Ctrl-C prints one line and exits with 130. Every command that writes holds an exclusive lock on
its output while it runs and refuses to replace results there unless ``--overwrite``
(:mod:`mama_monai.outputs`).

Example:
    $ mama-monai demo --output demo_run
    $ mama-monai score --model demo_run/model.pt --input /data/ct_dicom_folder --output scores
    $ mama-monai convert /data/ct_dicom_folder ct.nii.gz
    $ mama-monai convert chest.dcm chest_model.nii.gz --preset cxr
"""

from __future__ import annotations

import argparse
import errno
import logging
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

__all__ = ["main", "build_parser"]

#: the help of every writing command's --overwrite (the same flag and wording everywhere)
_OVERWRITE_HELP = "replace the results already in the output (refused by default, nothing is replaced)"


def _add_overwrite(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--overwrite", action="store_true", help=_OVERWRITE_HELP)


def _add_convert_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "convert",
        help="write a DICOM folder/file, NIfTI or PNG/JPEG as NIfTI (as loaded, or as the model sees it)",
        description=(
            "Load INPUT exactly as the pipelines do and write it as NIfTI with its geometry: physical units "
            "(HU for CT) without --preset; with --preset, the preset's intensities at the model's in-plane "
            "size, same field of view (overlays the original in ITK-SNAP / 3D Slicer)."
        ),
    )
    parser.add_argument("input", help="DICOM series folder, DICOM file, .nii/.nii.gz, .png/.jpg")
    parser.add_argument("output", help="output .nii or .nii.gz")
    parser.add_argument("--preset", default=None, help="preprocessing preset, e.g. ct_lung, cxr, mri_t1")
    parser.add_argument("--series-uid", default=None, help="SeriesInstanceUID to read from a folder of several series")
    parser.add_argument(
        "--spatial-size", type=int, nargs=2, default=None, metavar=("H", "W"), help="model input size with --preset"
    )
    parser.add_argument(
        "--grid",
        choices=("model", "original"),
        default="model",
        help="with --preset: 'model' (model size, default) or 'original' (resized back to the input grid)",
    )
    _add_overwrite(parser)


def _run_convert(args: argparse.Namespace) -> int:
    from mama_monai.data.convert import convert

    image = convert(
        args.input,
        args.output,
        preset=args.preset,
        series_uid=args.series_uid,
        spatial_size=args.spatial_size,
        grid=args.grid,
    )
    spatial = "x".join(str(s) for s in image.shape[1:])
    print(f"wrote {args.output} ({spatial}, {image.shape[0]} channel(s), preset {args.preset or 'none'})")
    return 0


def _add_score_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "score",
        help="score new cases with a saved model: anomaly maps (NIfTI), overlays (PNG), scores.csv/json",
        description=(
            "Load each PATH as training did (the model's preset and size), score its axial slices, and write "
            "DIR/<case>/anomaly_map.nii.gz on the input's own grid (overlays the original in ITK-SNAP / 3D Slicer), "
            "DIR/<case>/anomaly_mask.nii.gz (map >= threshold), DIR/<case>/overlay.png (the slice that gave the case score), "
            "for DICOM inputs DIR/<case>/dicom/ (SEG, parametric map, SR), and the report: DIR/index.html, "
            "DIR/scores.csv and DIR/scores.json. "
            "A case's score is the maximum of its slice scores over the slices with at least half the body of the "
            "model's validation slices (the others are mapped, not counted); it is labelled anomalous when score >= the "
            "threshold stored in the model. Unreadable inputs are reported and skipped."
        ),
        epilog="Exit code: 0 all inputs scored, 1 some inputs failed (see the report), 2 error (nothing scored).",
    )
    parser.add_argument("--model", required=True, metavar="MODEL.pt", help="model file written by training")
    parser.add_argument(
        "--input", required=True, nargs="+", metavar="PATH",
        help="DICOM folders or files, .nii/.nii.gz, .nrrd, .mha/.mhd, .png/.jpg/.tif (16-bit kept)",
    )
    parser.add_argument("--output", required=True, metavar="DIR", help="new or empty folder for the outputs")
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu", help="where the network runs (default cpu)")
    parser.add_argument("--series-uid", default=None, help="SeriesInstanceUID to read from folders of several series")
    parser.add_argument(
        "--force", action="store_true", help="score DICOM inputs whose Modality is not the model's (refused by default)"
    )
    _add_overwrite(parser)
    parser.add_argument(
        "--include-identifiers",
        action="store_true",
        help="name cases after their files and add the input path and DICOM PatientID columns (default: cases are "
        "case_001, case_002, ... in input order, and no path, file name or patient data is in any output or message, "
        "except the DICOM objects of --dicom-output)",
    )
    parser.add_argument(
        "--dicom-output",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="for DICOM inputs, also write DIR/<case>/dicom/seg.dcm (the region >= threshold), parametric_map.dcm and "
        "sr.dcm, for the patient's study in the PACS; they carry the source's Patient and Study modules (default: on; "
        "NIfTI and PNG inputs have no study to attach to and get NIfTI only)",
    )


def _run_score(args: argparse.Namespace) -> int:
    from mama_monai.workflows.scoring import score_cases

    report = score_cases(
        _model_file(args.model),
        args.input,
        args.output,
        device=args.device,
        series_uid=args.series_uid,
        force=args.force,
        overwrite=args.overwrite,
        include_identifiers=args.include_identifiers,
        progress=_show_progress(),
        dicom_output=args.dicom_output,
    )
    cases, failures = report["cases"], report["failures"]
    anomalous = sum(c["label"] for c in cases)
    print(
        f"scored {len(cases)} case(s) ({anomalous} anomalous), {len(failures)} failed; "
        f"report: {report['reports']['html']} ({report['reports']['csv']}, {report['reports']['json']})"
    )
    with_dicom = sum(1 for c in cases if c.get("dicom"))
    if with_dicom:
        print(f"DICOM SEG, parametric map and SR for {with_dicom} case(s) in <case>/dicom/ (they carry the patient's identifiers)")
    return 1 if failures else 0


def _add_overrides_note(parser: argparse.ArgumentParser) -> None:
    parser.epilog = (
        "Any config key can be overridden with --KEY VALUE, '#' separating levels, e.g. "
        "--training#iterations 2000 --data#spatial_size '[128, 128]' --optimizer#lr 0.0005 "
        "(see configs/train.yaml and configs/network/*.yaml)."
    )


def _add_demo_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "demo",
        help="the main job: train, evaluate and score on the embedded real demo data (CPU, minutes)",
        description=(
            "Train the compact MAMA Net, a plain autoencoder and MemAE on LIDC-IDRI-0001 (real chest CT), evaluate each on "
            "the radiologists' nodule slices against anatomically matched normal slices, score the whole CT volume, "
            "and write model.pt, report.json, plots/ and scores/ into --output."
        ),
    )
    parser.add_argument("--output", default="mama_monai_demo", help="output folder (new or empty; default ./mama_monai_demo)")
    parser.add_argument("--device", default="auto", help="auto (CUDA if available), cpu or cuda")
    _add_overwrite(parser)
    _add_overrides_note(parser)


def _run_demo(args: argparse.Namespace) -> int:
    from mama_monai.workflows.demo_run import run_demo

    # main() has refused an output holding results (unless --overwrite) under the output's lock; the lock
    # file itself is in the folder, so run_demo's own emptiness check is satisfied here
    report = run_demo(args.output, overrides=args.overrides, device=args.device, overwrite=True, progress=_show_progress())
    out = Path(args.output)
    print(f"demo finished in {report['seconds_total']:.0f} s on {report['device']}")
    for name, model in report["models"].items():
        test = model["test"]["image"]
        ci = test.get("auroc_ci95") or [float("nan")] * 2
        print(
            f"  {name:12s} image AUROC {test['auroc']:.3f} (95% CI {ci[0]:.2f}-{ci[1]:.2f}), "
            f"sensitivity {test['sensitivity']:.2f}, specificity {test['specificity']:.2f}, "
            f"pixel AUROC {model['test']['pixel_auroc'] or float('nan'):.3f}"
        )
    print(f"model: {out / 'model.pt'}\nreport: {out / 'index.html'} ({out / 'report.json'})\nplots: {out / 'plots'}\nanomaly maps: {out / 'scores'}")
    return 0


def _add_train_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "train",
        help="train a model on the normal cases of a manifest (torchrun-ready)",
        description=(
            "Train --network on the normal training cases of data#manifest (default: the embedded demo), validate, "
            "calibrate the threshold on held-out normals and write OUTPUT/model.pt. Under "
            "'torchrun --nproc_per_node=N -m mama_monai.cli train ...' it trains with DistributedDataParallel."
        ),
    )
    parser.add_argument("--network", default="mamanet_compact", help="configs/network/<NAME>.yaml or a YAML path (default mamanet_compact)")
    parser.add_argument("--config", default=None, help="workflow config (default configs/train.yaml)")
    parser.add_argument("--output", required=True, help="run folder: model.pt, checkpoints/, tensorboard/")
    parser.add_argument(
        "--resume",
        action="store_true",
        help="continue from the last checkpoint in OUTPUT/checkpoints (an unreadable one is set aside, named, "
        "and the previous one used)",
    )
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda")
    _add_overwrite(parser)
    _add_overrides_note(parser)


def _run_train(args: argparse.Namespace) -> int:
    from mama_monai.workflows.splits import prepare_splits
    from mama_monai.workflows.config import workflow_config
    from mama_monai.workflows.distributed import init_distributed
    from mama_monai.workflows.training import train_model

    ctx = init_distributed(args.device)
    parser = workflow_config(args.network, args.config, args.overrides)
    splits = prepare_splits(parser)
    result = train_model(parser, splits["train"], splits["val"], args.output, ctx, resume=args.resume, progress=ctx.is_main and _show_progress())
    if ctx.is_main:
        print(f"trained {result.iterations} iterations in {result.seconds:.0f} s; threshold {result.threshold['value']:.4g} "
              f"({result.threshold['method']}); model: {result.model_path}")
        print(_kept_validation_line(parser, result))
    return 0


def _kept_validation_line(parser, result) -> str:
    """What validation said of the network kept: its held-out normal error and, where the
    validation had lesions, its validation AUROC (how to compare settings, e.g. ``scoring#border``,
    on one's own data without a test set). An ensemble's validation AUROC is not measured."""
    from mama_monai.workflows.training import checkpoint_choice, kept_validation

    training = parser.get_parsed_content("training")
    if int(training.get("ensemble", 1) or 1) > 1:
        error = "not measured" if result.val_normal_mse is None else f"{result.val_normal_mse:.4g}"
        return f"validation: the ensemble's held-out normal error {error}"
    row = kept_validation(result.history, checkpoint_choice(training))
    if row is None:
        return "validation: none ran"
    text = f"validation of the network kept (iteration {row['iteration']}): held-out normal error {row.get('val_normal_mse', float('nan')):.4g}"
    if "val_auroc" in row:
        simulated = parser.get_parsed_content("data").get("simulated_validation_anomalies", True)
        text += f", AUROC {row['val_auroc']:.3f} on {'SIMULATED' if simulated else 'the validation'} lesions"
    return text


def _add_evaluate_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "evaluate",
        help="evaluate a model file on the test cases of a manifest: metrics and plots",
        description=(
            "Score a test split with MODEL; write report.json and plots/. By default the test split of the manifest "
            "and fold the model was trained with (recorded in the model file; refused when that manifest is not found); "
            "--data#manifest / --data#fold choose another."
        ),
    )
    parser.add_argument("--model", required=True, help="a model.pt written by train or demo")
    parser.add_argument("--config", default=None, help="workflow config for the data section (default configs/train.yaml)")
    parser.add_argument("--output", required=True, help="folder for report.json and plots/")
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda")
    _add_overwrite(parser)
    _add_overrides_note(parser)
    parser.epilog += (
        " Only the test split is read. Exit code: 0 every test case scored, 1 some could not be loaded "
        "(listed with the reason in report.json), 2 error."
    )


def _run_evaluate(args: argparse.Namespace) -> int:
    from mama_monai.engines.model_spec import load_model_spec
    from mama_monai.workflows.config import configs_dir, load_config
    from mama_monai.workflows.distributed import init_distributed
    from mama_monai.workflows.model_evaluation import evaluate_test_split, model_data_overrides, training_split_overrides

    ctx = init_distributed(args.device)
    network, spec = load_model_spec(_model_file(args.model), ctx.device)
    split = {} if "data#manifest" in args.overrides else training_split_overrides(spec.trained_on, args.model)  # its own test split
    parser = load_config(args.config or configs_dir() / "train.yaml", {**model_data_overrides(spec), **split, **args.overrides})
    out = Path(args.output)
    report = evaluate_test_split(network, spec, parser, out, ctx.device)
    image = report["image"]
    print(f"{report['n_scored']} of {report['n_cases']} test cases scored ({report['n_failed']} could not be loaded, "
          f"listed in the report): image AUROC {image['auroc']:.3f}, sensitivity {image['sensitivity']:.2f}, "
          f"specificity {image['specificity']:.2f}; report: {out / 'index.html'} ({out / 'report.json'})")
    return 1 if report["n_failed"] else 0


def _add_cv_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "cv",
        help="stratified k-fold cross-validation of one or more networks, with a paired t-test",
        description=(
            "For each fold of data#manifest's fold assignment: train on the other folds' normals, test on the fold. "
            "Writes per-fold metrics, mean +- std and the paired two-sided t-test of each network against the first."
        ),
    )
    parser.add_argument("--network", nargs="+", default=["mamanet_compact"], help="one or more network configs")
    parser.add_argument("--folds", type=int, default=5, help="number of folds in the manifest (default 5)")
    parser.add_argument("--config", default=None, help="workflow config (default configs/train.yaml)")
    parser.add_argument("--output", required=True, help="folder for per-fold runs and cv_report.json")
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda")
    _add_overwrite(parser)
    _add_overrides_note(parser)


def _run_cv(args: argparse.Namespace) -> int:
    from mama_monai.workflows.cross_validation import cross_validate
    from mama_monai.reports.json_report import write_json
    from mama_monai.workflows.distributed import init_distributed

    ctx = init_distributed(args.device)
    overrides = dict(args.overrides)
    report = cross_validate(args.network, args.folds, args.output, ctx, overrides, progress=ctx.is_main and _show_progress())
    path = write_json(report, Path(args.output) / "cv_report.json")
    for name, res in report["networks"].items():
        mean, std = res["mean_std"]["auroc"]
        print(f"{name}: AUROC {mean:.3f} +- {std:.3f} over {args.folds} folds")
    print(f"report: {path}")
    return 0


def _add_manifest_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "manifest",
        help="write a validated manifest: from a public download (COVID-CT, COVID X-ray, RIDER) or from your own folders",
        description=(
            "'manifest DATASET download_dir output' scans download_dir laid out as the public download of DATASET "
            "(covid_ct, covid_xray, rider) and writes output (JSON) with the paper's split protocol. "
            "'manifest folder output --normal DIR [--abnormal DIR] [--masks DIR]' builds one from a plain folder tree "
            "(docs: README, 'Your own data'). Each takes --overwrite to replace an existing output; "
            "'mama-monai manifest DATASET --help' lists its options."
        ),
    )
    kinds = parser.add_subparsers(dest="dataset", metavar="DATASET", required=True)
    helps = {
        "covid_ct": "COVID-CT (UCSD-AI4H): the fixed train/test split",
        "covid_xray": "COVID-19 chest X-ray: k folds of the normals, all COVID in test",
        "rider": "RIDER Neuro MRI: k folds by patient",
    }
    for name, text in helps.items():
        sub = kinds.add_parser(
            name, help=text, description=f"{text}. Missing files are an error naming them; extra files a warning."
        )
        sub.add_argument("download_dir", help="folder holding the public download")
        sub.add_argument("output", help=f"manifest JSON to write, e.g. data_manifests/{name}.json")
        sub.add_argument("--folds", type=int, default=5, help="cross-validation folds (X-ray, RIDER; default 5)")
        sub.add_argument("--seed", type=int, default=0, help="seed of the fold assignment (default 0)")
        if name == "covid_xray":
            sub.add_argument("--normals-dir", default=None, help="folder of normal radiographs")
        if name == "rider":
            sub.add_argument("--labels-csv", default=None, help="CSV of slice labels (data_manifests/README.md)")
        _add_overwrite(sub)
    folder = kinds.add_parser(
        "folder",
        help="your own data: a folder of normal scans (and abnormal ones with masks)",
        description=(
            "Scan --normal (and --abnormal, --masks) for DICOM series (one case per series folder) and image files "
            "(NIfTI, NRRD, MHA/MHD, PNG/JPEG/TIFF); a volume gives one case per axial slice. Masks pair with abnormal "
            "inputs by name (NAME, NAME_mask, NAME_seg, NAME_label); abnormal cases are test cases; normal groups "
            "(a patient's cases stay together) go to --folds K folds or a --test-fraction. Ambiguous pairings are "
            "refused naming the files; the counts are written to the manifest's description."
        ),
    )
    folder.add_argument("output", help="manifest JSON to write")
    folder.add_argument("--normal", required=True, metavar="DIR", help="folder of normal scans")
    folder.add_argument("--abnormal", default=None, metavar="DIR", help="folder of abnormal scans (test cases)")
    folder.add_argument("--masks", default=None, metavar="DIR", help="folder of the abnormal scans' masks, paired by name")
    folder.add_argument("--extensions", nargs="+", default=None, metavar="EXT", help="file endings read as images (default: all supported)")
    split = folder.add_mutually_exclusive_group()
    split.add_argument("--folds", type=int, default=None, metavar="K", help="spread the normal groups over K folds")
    split.add_argument("--test-fraction", type=float, default=None, metavar="F", help="hold out this fraction of the normal groups for test (default 0.2)")
    folder.add_argument("--group-by", choices=("patient", "series", "file"), default="patient", help="what must stay in one fold: patient (DICOM PatientID or top folder; default), series or file")
    folder.add_argument("--seed", type=int, default=0, help="seed of the split (default 0)")
    _add_overwrite(folder)


def _run_manifest(args: argparse.Namespace) -> int:
    if args.dataset == "folder":
        from mama_monai.data.folder_manifest import build_folder_manifest

        manifest = build_folder_manifest(
            args.output, args.normal, args.abnormal, args.masks, extensions=args.extensions, folds=args.folds,
            test_fraction=args.test_fraction, group_by=args.group_by, seed=args.seed,
        )  # fmt: skip
        print(f"wrote {args.output}: {manifest.description}")
        return 0
    from mama_monai.data.builders import build_manifest

    extra = {k: v for k in ("normals_dir", "labels_csv") if (v := getattr(args, k, None)) is not None}
    manifest = build_manifest(args.dataset, args.download_dir, args.output, folds=args.folds, seed=args.seed, **extra)
    labels = [c.label for c in manifest.cases]
    print(f"wrote {args.output}: {len(labels)} cases ({sum(labels)} anomalous, {len(labels) - sum(labels)} normal)")
    return 0


def _add_export_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "export",
        help="write a model file's network as ONNX, checked against PyTorch in onnxruntime",
        description=(
            "Export the network of MODEL (a model.pt written by train) to ONNX at the model's input size, run the "
            "ONNX file in onnxruntime on a check input and compare it with PyTorch; the file is renamed into place only "
            "when the difference is within --atol. TorchScript: python -m monai.bundle ckpt_export (docs/README.md)."
        ),
    )
    parser.add_argument("--model", required=True, help="model file written by train (model.pt)")
    parser.add_argument("--output", required=True, help="the .onnx file to write")
    parser.add_argument("--opset", type=int, default=18, help="ONNX opset, >= 17 (default 18)")
    parser.add_argument("--batch-size", type=int, default=1, help="batch size of the fixed input shape (default 1)")
    parser.add_argument("--atol", type=float, default=None, help="largest accepted |ONNX - PyTorch| (default 1e-4)")
    parser.add_argument("--no-check", action="store_true", help="skip the onnxruntime comparison")
    _add_overwrite(parser)


def _run_export(args: argparse.Namespace) -> int:
    from mama_monai.workflows.export import ONNX_ATOL, export_onnx

    info = export_onnx(
        args.model, args.output, opset=args.opset, batch_size=args.batch_size, check=not args.no_check,
        atol=ONNX_ATOL if args.atol is None else args.atol,
    )  # fmt: skip
    checked = "not checked" if info["max_abs_diff"] is None else f"max |ONNX - PyTorch| {info['max_abs_diff']:.2g}"
    print(f"wrote {info['path']} (input {'x'.join(str(s) for s in info['input_shape'])}, opset {info['opset']}, {checked})")
    return 0


_COMMANDS: dict[str, tuple[Callable[[argparse._SubParsersAction], None], Callable[[argparse.Namespace], int]]] = {
    "demo": (_add_demo_parser, _run_demo),
    "train": (_add_train_parser, _run_train),
    "evaluate": (_add_evaluate_parser, _run_evaluate),
    "cv": (_add_cv_parser, _run_cv),
    "score": (_add_score_parser, _run_score),
    "convert": (_add_convert_parser, _run_convert),
    "manifest": (_add_manifest_parser, _run_manifest),
    "export": (_add_export_parser, _run_export),
}


def _show_progress() -> bool:
    """Progress bars only on a terminal: piped into a log file or CI they are noise, and an error
    line printed after a half-drawn bar would share its line."""
    return sys.stderr.isatty()


def _model_file(path: str) -> str:
    """``--model`` must name a file: a folder is refused here with what was expected."""
    if Path(path).is_dir():
        hint = f" (e.g. {str(Path(path) / 'model.pt')!r})" if (Path(path) / "model.pt").is_file() else ""
        raise ValueError(f"--model {path!r} is a folder; expected a model file written by train or demo{hint}.")
    return path


#: what each command writes into args.output: (kind, results) with results None = anything in the
#: folder, () = checked by the command itself (score_cases, under the same re-entrant lock), or names
_OUTPUTS: dict[str, tuple[str, tuple[str, ...] | None]] = {
    "demo": ("folder", None),
    "train": ("folder", ("model.pt", "checkpoints")),
    "evaluate": ("folder", ("report.json", "plots")),
    "cv": ("folder", None),
    "score": ("folder", ()),
    "convert": ("file", None),
    "manifest": ("file", None),
    "export": ("file", None),
}


def _existing(args: argparse.Namespace) -> tuple[list[str], str]:
    """The results already in the command's output, and a further choice for the refusal message."""
    from mama_monai.outputs import existing_results

    kind, results = _OUTPUTS[args.command]
    if kind == "file":
        return ([Path(args.output).name] if os.path.lexists(args.output) else []), ""
    existing = existing_results(args.output, results) if results != () else []
    if args.command != "train":
        return existing, ""
    if args.resume:  # checkpoints are what --resume continues; a finished run's model.pt is a result
        return [n for n in existing if n == "model.pt"], ""
    return existing, "--resume to continue its training" if "checkpoints" in existing else ""


def _prepare_train_output(args: argparse.Namespace) -> None:
    """``--resume``: set unreadable checkpoints aside; ``--overwrite``: drop the old run's checkpoints,
    so that a later ``--resume`` cannot continue the replaced run."""
    from mama_monai.workflows.resume import set_aside_unreadable
    from mama_monai.workflows.training import LAST_CHECKPOINT_PREFIX

    checkpoints = Path(args.output) / "checkpoints"
    if args.resume:
        set_aside_unreadable(checkpoints, LAST_CHECKPOINT_PREFIX)
    elif args.overwrite and checkpoints.is_dir():
        for old in [*checkpoints.glob(f"{LAST_CHECKPOINT_PREFIX}_*.pt"), checkpoints / "best_network.pt"]:
            old.unlink(missing_ok=True)


@contextmanager
def _guarded_output(args: argparse.Namespace) -> Iterator[None]:
    """Hold the output's lock while the command runs, after refusing to replace results without
    --overwrite (:mod:`mama_monai.outputs`). Under torchrun only rank 0 writes, so only it locks."""
    from mama_monai.outputs import lock_output, refuse_to_replace

    if args.command not in _OUTPUTS or int(os.environ.get("RANK", "0") or 0) > 0:
        yield
        return
    with lock_output(args.output, _OUTPUTS[args.command][0]):
        existing, hint = _existing(args)
        refuse_to_replace(args.output, existing, args.overwrite, hint)
        if args.command == "train":
            _prepare_train_output(args)
        yield


def _output_disk_full(output: str | None) -> bool:
    """Whether the file system of ``output`` (or of its nearest existing parent) has under 1 MiB left."""
    if not output:
        return False
    path = Path(output).absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    try:
        stats = os.statvfs(path)
    except OSError:
        return False
    return stats.f_bavail * stats.f_frsize < 1 << 20


def _one_line(err: Exception, args: argparse.Namespace) -> str:
    """The error as one line. A full disk says so and names the file (or the output) being written,
    also when a writer hid the ``ENOSPC`` in its own error (ignite's checkpoints, TensorBoard)."""
    output = getattr(args, "output", None)
    if "disk is full" not in str(err) and (
        (isinstance(err, OSError) and err.errno in (errno.ENOSPC, errno.EDQUOT)) or _output_disk_full(output)
    ):
        where = getattr(err, "filename", None) or output
        return f"cannot write {str(where)!r}: the disk is full (no space left on device); free some space or choose another output."
    return " ".join(str(err).split()) or type(err).__name__


class _FailureLoggedOnce(logging.Filter):
    """A failure is printed once, as one line, by :func:`main`: the engines' own reports of it
    (MONAI StatsHandler's "Exception: ..." with its traceback, ignite's "Engine run is terminating
    due to exception") are dropped, and no other log line carries a traceback."""

    _ENGINE_REPORTS = ("Exception: ", "Engine run is terminating due to exception")

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno >= logging.ERROR and record.getMessage().startswith(self._ENGINE_REPORTS):
            return False
        record.exc_info, record.exc_text = None, None
        return True


def _configure_logging() -> None:
    """Progress and validation lines from mama-monai; ignite's per-engine chatter only on warnings;
    no traceback from the engines (:class:`_FailureLoggedOnce`)."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    logging.getLogger("ignite").setLevel(logging.WARNING)
    once = _FailureLoggedOnce()
    for handler in logging.getLogger().handlers:
        handler.addFilter(once)
    # MONAI's StatsHandler logs on its own logger (training's name for it), with its own handler
    logging.getLogger("mama_monai.train").addFilter(once)


#: commands that take config overrides as trailing --KEY VALUE pairs
_ACCEPTS_OVERRIDES = ("demo", "train", "evaluate", "cv")


def build_parser() -> argparse.ArgumentParser:
    """The ``mama-monai`` argument parser with every registered subcommand."""
    parser = argparse.ArgumentParser(prog="mama-monai", description="MAMA Net anomaly detection on MONAI.")
    subparsers = parser.add_subparsers(dest="command", required=True)
    for add_parser, _ in _COMMANDS.values():
        add_parser(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``mama-monai`` with ``argv`` (default ``sys.argv[1:]``); returns the exit code.

    Args:
        argv: command-line arguments without the program name.

    Returns:
        0 on success, 2 on a usage or input error (one line on stderr), 130 when interrupted (Ctrl-C).
    """
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    _configure_logging()
    _, run = _COMMANDS[args.command]
    if args.command in _ACCEPTS_OVERRIDES:
        try:
            from mama_monai.workflows.config import parse_overrides

            args.overrides = parse_overrides(extra)
        except ValueError as err:
            parser.error(str(err))
    elif extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    try:
        with _guarded_output(args):
            return run(args)
    except KeyboardInterrupt:
        print(
            f"mama-monai {args.command}: interrupted (Ctrl-C); the files already written are complete, "
            "no partial file was left.",
            file=sys.stderr,
        )
        return 130
    except Exception as err:  # user-facing: one line, no traceback
        print(f"mama-monai {args.command}: error: {_one_line(err, args)}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
