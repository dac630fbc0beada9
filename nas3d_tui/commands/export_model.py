"""``nas3d-tui export-model BUNDLE --format onnx -o FILE``: a found model as a portable ONNX graph.

The graph takes the preprocessed float input ``N x C x D x H x W`` (uint8
volumes divided by 255, as in training; dynamic batch axis) and outputs
softmax probabilities ``N x K``; opset 18. It is checked against torch with
onnxruntime before it is written. Needs the extra ``nas3d-tui[onnx]``; without
it the command says so in one line and exits 2.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

NAME = "export-model"
HELP = "export a found model (a bundle folder) to ONNX, with softmax probabilities as output"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("bundle", help="the model bundle folder (final/<id>-seed<k>/ of a run)")
    parser.add_argument("--format", choices=("onnx",), default="onnx", help="onnx (the only format so far)")
    parser.add_argument("-o", "--output", required=True, metavar="FILE.onnx", help="the file to write")
    parser.add_argument("--opset", type=int, default=18, help="ONNX opset (default 18)")
    parser.add_argument("--no-check", action="store_true",
                        help="skip comparing onnxruntime with torch before writing")


def main(args: argparse.Namespace) -> int:
    from engine.bundle import read_bundle
    from engine.errors import UserError
    from engine.onnx_export import INPUT_NAME, OUTPUT_NAME, export_onnx

    out = Path(args.output)
    if not out.parent.is_dir():
        raise UserError(f"{out}: folder {out.parent} does not exist")
    from engine.rundir import refuse_run_file

    refuse_run_file(out)
    if args.opset < 18:
        raise UserError(f"--opset {args.opset}: use 18 or later (Mish is an ONNX operator from opset 18)")
    bundle = read_bundle(args.bundle)
    result = export_onnx(bundle, out, opset=args.opset, check=not args.no_check)
    shape = " x ".join(str(s) for s in result.input_shape)
    print(f"wrote {result.path}: opset {result.opset}, input {INPUT_NAME!r} {shape} float32 (preprocessed), "
          f"output {OUTPUT_NAME!r} N x {result.num_classes} softmax probabilities")
    if result.max_abs_diff is None:
        print("not checked: onnxruntime is not installed", file=sys.stderr)
    else:
        print(f"checked with onnxruntime: max |difference| from torch {result.max_abs_diff:.1e}", file=sys.stderr)
    return 0
