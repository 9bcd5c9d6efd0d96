"""Command-line interface: ``mama-monai <command> ...``.

One small pair of functions per subcommand — ``_add_<name>_parser(subparsers)`` declares its
arguments, ``_run_<name>(args)`` runs it — registered in ``_COMMANDS``. Errors in the user's input
print one line on stderr (``mama-monai <command>: error: ...``) and exit with code 2, no traceback.

Example:
    $ mama-monai convert /data/ct_dicom_folder ct.nii.gz
    $ mama-monai convert chest.dcm chest_model.nii.gz --preset cxr
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

__all__ = ["main", "build_parser"]


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
            "DIR/<case>/overlay.png (the highest-scoring slice) and one report, DIR/scores.csv and DIR/scores.json. "
            "A case's score is the maximum of its slice scores; it is labelled anomalous when score >= the "
            "threshold stored in the model. Unreadable inputs are reported and skipped."
        ),
        epilog="Exit code: 0 all inputs scored, 1 some inputs failed (see the report), 2 error (nothing scored).",
    )
    parser.add_argument("--model", required=True, metavar="MODEL.pt", help="model file written by training")
    parser.add_argument(
        "--input", required=True, nargs="+", metavar="PATH", help="DICOM folders or files, .nii/.nii.gz, .png/.jpg"
    )
    parser.add_argument("--output", required=True, metavar="DIR", help="new or empty folder for the outputs")
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu", help="where the network runs (default cpu)")
    parser.add_argument("--series-uid", default=None, help="SeriesInstanceUID to read from folders of several series")
    parser.add_argument(
        "--force", action="store_true", help="score DICOM inputs whose Modality is not the model's (refused by default)"
    )
    parser.add_argument(
        "--overwrite", action="store_true", help="write into an existing non-empty DIR, replacing same-named files"
    )
    parser.add_argument(
        "--include-identifiers",
        action="store_true",
        help="add the DICOM PatientID column to the report (default: no patient data in any output)",
    )


def _run_score(args: argparse.Namespace) -> int:
    from mama_monai.workflows.scoring import score_cases

    report = score_cases(
        args.model,
        args.input,
        args.output,
        device=args.device,
        series_uid=args.series_uid,
        force=args.force,
        overwrite=args.overwrite,
        include_identifiers=args.include_identifiers,
        progress=True,
    )
    cases, failures = report["cases"], report["failures"]
    anomalous = sum(c["label"] for c in cases)
    print(
        f"scored {len(cases)} case(s) ({anomalous} anomalous), {len(failures)} failed; "
        f"report: {report['reports']['csv']} and {report['reports']['json']}"
    )
    return 1 if failures else 0


_COMMANDS: dict[str, tuple[Callable[[argparse._SubParsersAction], None], Callable[[argparse.Namespace], int]]] = {
    "convert": (_add_convert_parser, _run_convert),
    "score": (_add_score_parser, _run_score),
}


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
        0 on success, 2 on a usage or input error (one line on stderr).
    """
    args = build_parser().parse_args(argv)
    _, run = _COMMANDS[args.command]
    try:
        return run(args)
    except Exception as err:  # user-facing: one line, no traceback
        message = " ".join(str(err).split()) or type(err).__name__
        print(f"mama-monai {args.command}: error: {message}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
