"""export: write the model in a portable inference format (ONNX) for the lean, torch-free runtime."""

from __future__ import annotations

from sigverify.cli import add_common, emit


def register(sub) -> None:
    p = sub.add_parser(
        "export", help="export the model to ONNX (the lean runtime and the app use it when onnxruntime is installed)"
    )
    add_common(p)
    p.add_argument("--format", choices=["onnx"], default="onnx", help="export format (default onnx)")
    p.add_argument(
        "--out",
        default=None,
        help="output .onnx file (default: <user data>/onnx/<name>-<weights hash>.onnx, where the "
        "app looks for it; NAME.onnx beside NAME.safetensors is found too)",
    )
    p.add_argument("--opset", type=int, default=None, help="ONNX opset (default 18)")
    p.set_defaults(func=cmd_export)


def cmd_export(args) -> int:
    from sigverify.model.embedder import open_model
    from sigverify.model.onnx_backend import DEFAULT_OPSET, export_onnx

    model = open_model(args.model, "cpu")
    d = export_onnx(model, args.out, opset=args.opset or DEFAULT_OPSET)
    d.pop("card", None)
    diff = d.get("parity_max_abs_diff")
    text = f"exported {d['model_id']} to {d['path']} ({d['bytes'] / 1e6:.1f} MB, opset {d['opset']}); " + (
        f"parity vs torch: max abs difference of embeddings {diff:.2e}" if diff is not None else d.get("parity_note", "")
    )
    emit(args, d, text)
    return 0
