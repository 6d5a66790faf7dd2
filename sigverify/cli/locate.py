"""locate: where the signature is on each image (cheques, forms, signature-field scans, clean crops).

Also the shared ``--crop x,y,w,h`` option of compare / verify and the per-image ``region`` they report.
"""

from __future__ import annotations

import argparse

from sigverify.cli import add_common, emit


def crop_arg(text: str) -> tuple[int, int, int, int]:
    from sigverify.imaging.locate import parse_crop

    try:
        return parse_crop(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def add_crop_option(p: argparse.ArgumentParser, what: str) -> None:
    p.add_argument(
        "--crop",
        type=crop_arg,
        metavar="X,Y,W,H",
        help=f"use only this rectangle of {what} (pixels of the original image), cleaned as a document; "
        "default: the signature is located automatically",
    )


def region_of(pre) -> list[int] | None:
    r = getattr(pre, "region", None)
    return [int(v) for v in r] if r else None


def region_entry(path, pre) -> dict:
    """The per-image record compare / verify / locate print: path, region, how it was chosen."""
    return {
        "path": str(path),
        "region": region_of(pre),
        "signature_found": pre is not None,
        "region_source": getattr(pre, "region_source", None),
    }


def register(sub) -> None:
    p = sub.add_parser(
        "locate",
        help="find the signature on cheques / forms / scans: its region in pixels",
        description="Print, per image, the rectangle the signature is taken from (x, y, w, h in the "
        "original image's pixels) - the same rectangle compare and verify use. A page "
        "with printed fields but no signature has region null. Exit code 0 when every "
        "image has a signature, 5 when one has none, 4 when one cannot be read.",
    )
    p.add_argument("images", nargs="+", help="image files or folders of them")
    add_common(p, model=False)
    p.set_defaults(func=cmd_locate)


def cmd_locate(args) -> int:
    from sigverify.errors import BlankImageError, SigverifyError
    from sigverify.imaging.files import expand_images
    from sigverify.imaging.preprocess import preprocess_file

    paths = expand_images(args.images)
    out, lines, codes = [], [], []
    for p in paths:
        try:
            pre = preprocess_file(p)
            e = region_entry(p, pre)
            e["document"] = bool(pre.document)
            e["cues"] = list(pre.cues)
            lines.append(f"{p}: region {e['region']} ({'document: ' + ', '.join(pre.cues) if pre.document else 'clean crop'})")
        except BlankImageError as exc:
            e = {"path": str(p), "region": None, "signature_found": False, "error": str(exc)}
            lines.append(f"{p}: no signature - {exc}")
            codes.append(exc.exit_code)
        except SigverifyError as exc:
            e = {"path": str(p), "region": None, "signature_found": False, "error": str(exc)}
            lines.append(f"{p}: error - {exc}")
            codes.append(exc.exit_code)
        out.append(e)
    emit(args, out, "\n".join(lines))
    # an unreadable file outranks a page without signature, which outranks success
    for c in (4, 5):
        if c in codes:
            return c
    return codes[0] if codes else 0


__all__ = ["register", "add_crop_option", "region_entry", "region_of", "crop_arg"]
