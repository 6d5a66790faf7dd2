"""compare, verify, embed, info."""

from __future__ import annotations

import json
import sys

import numpy as np

from sigverify.cli import VERDICT_EXIT, add_common, emit
from sigverify.cli.locate import add_crop_option, region_entry


def register(sub) -> None:
    p = sub.add_parser("compare", help="compare two signature images")
    p.add_argument("a")
    p.add_argument("b")
    add_common(p)
    p.add_argument("--metric", choices=["euclidean", "cosine"], help="distance (default: the model card's)")
    add_crop_option(p, "image A")
    p.set_defaults(func=cmd_compare)

    p = sub.add_parser("verify", help="verify a questioned signature against 1..N references of one person")
    p.add_argument("questioned")
    p.add_argument("references", nargs="+", help="reference images or folders of them")
    add_common(p)
    p.add_argument("--metric", choices=["euclidean", "cosine"])
    p.add_argument(
        "--aggregate",
        "--policy",
        dest="aggregate",
        choices=["mean", "min", "writer"],
        default=None,
        help="decision policy (default: the model card's; the shipped model: writer = the customer's "
        "specimens against the model's cohort)",
    )
    p.add_argument("--no-adapt", action="store_true", help="do not adapt thresholds to the person's own spread")
    add_crop_option(p, "the questioned image")
    p.set_defaults(func=cmd_verify)

    p = sub.add_parser("embed", help="print the embedding vector of each image")
    p.add_argument("images", nargs="+")
    add_common(p)
    p.add_argument("--out", help="also save the embeddings as .npy (N x D)")
    p.set_defaults(func=cmd_embed)

    p = sub.add_parser("info", help="show the model card of the active (or given) model")
    add_common(p)
    p.set_defaults(func=cmd_info)


def expand_images(items: list[str]) -> list[str]:
    """Files stay as given; folders expand to the images inside (sorted)."""
    from sigverify.imaging.files import expand_images as _expand

    return _expand(items)


def open_cli_session(args, **kw):
    """The model session every model-using command opens (the GUI opens the same one): an unavailable
    GPU or an uncalibrated metric falls back with a notice, printed on stderr and listed under
    "notices" in --json output."""
    from sigverify.app.session import open_session

    session = open_session(args.model, args.device, getattr(args, "metric", None), **kw)
    for n in session.notices:
        print(f"sigverify-cli: note: {n.message}", file=sys.stderr)
    return session


def _verifier(args, **kw):
    return open_cli_session(args, **kw).verifier


def _with_notices(d: dict, session) -> dict:
    if session.notices:
        d["notices"] = session.notices_dict()
    return d


def _fmt_verdict(d: dict) -> str:
    icon = {"genuine": "[OK]", "refer": "[??]", "forgery": "[XX]"}[d["verdict"]]
    s = (
        f"{icon} {d['verdict_text']}\n    distance {d['distance']:.4f} ({d.get('metric', '')})  score {d['score']:.1f}/100  "
        f"thresholds: genuine <= {d['threshold_accept']:.4f} < refer <= {d['threshold_reject']:.4f} < forgery"
    )
    if d.get("warning"):
        s += f"\n    WARNING: {d['warning']}"
    return s


def cmd_compare(args) -> int:
    session = open_cli_session(args)
    r = session.verifier.compare(args.a, args.b, crop_a=args.crop)
    emit(args, _with_notices(r, session), _fmt_verdict(r))
    return VERDICT_EXIT[r["verdict"]]


def cmd_verify(args) -> int:
    from sigverify.app.case import verify_case

    session = open_cli_session(args, aggregate=args.aggregate, adapt_to_person=not args.no_adapt)
    q = args.questioned if args.crop is None else session.verifier.load(args.questioned, False, crop=args.crop)
    case = verify_case(session.verifier, q, args.references, record=False)
    d = _with_notices(case.to_dict(), session)
    d["regions"] = {
        "questioned": region_entry(case.questioned.source, case.questioned.preprocessed),
        "references": [region_entry(r.source, r.preprocessed) for r in case.references],
    }
    lines = [
        _fmt_verdict(d),
        f"    {case.decision.aggregate} policy, {len(case.references)} reference distance(s): "
        + ", ".join(f"{x:.3f}" for x in case.decision.distances),
    ]
    for p, e in case.skipped:
        lines.append(f"    skipped reference {p}: {e}")
    for w in case.decision.warnings:
        lines.append(f"    note: {w}")
    emit(args, d, "\n".join(lines))
    return VERDICT_EXIT[d["verdict"]]


def cmd_embed(args) -> int:
    from sigverify.errors import SigverifyError

    v = _verifier(args)
    paths = expand_images(args.images)
    res = v.embedder.embed_files(paths)
    out = [
        {
            "path": r.path,
            "embedding": None if r.embedding is None else [round(float(x), 6) for x in r.embedding],
            "error": r.error,
        }
        for r in res
    ]
    if args.out:
        from sigverify.atomic import atomic_path

        good = (
            np.stack([r.embedding for r in res if r.embedding is not None])
            if any(r.embedding is not None for r in res)
            else np.zeros((0, v.card.embedding_dim), np.float32)
        )
        with atomic_path(args.out) as tmp:
            with open(tmp, "wb") as fh:
                np.save(fh, good)
    text = "\n".join(f"{o['path']}: " + (o["error"] or " ".join(f"{x:.4f}" for x in o["embedding"][:8]) + " …") for o in out)
    emit(args, {"model": v.model.model_id, "dim": v.card.embedding_dim, "results": out}, text)
    if all(r.error for r in res):
        raise SigverifyError("no image could be embedded")
    return 0


def cmd_info(args) -> int:
    from sigverify.verify.service import describe_model

    session = open_cli_session(args)
    m = session.model
    d = _with_notices(describe_model(m), session)
    d["device"] = session.device_text
    c = m.card
    lines = [
        f"model     {c.name}  ({m.model_id})",
        f"file      {d['path'] or '(in memory)'}",
        f"arch      {c.architecture}, {c.embedding_dim}-d embedding, input {c.input_hw[0]}x{c.input_hw[1]}",
        f"distance  {c.distance}",
        f"device    {d['device']}",
    ]
    if c.random_init:
        lines.append("WARNING   UNTRAINED random weights: verdicts are meaningless")
    for k, cal in c.calibration.items():
        lines.append(
            f"{k:9s} accept <= {cal['accept']:.4f}, reject > {cal['reject']:.4f}, EER threshold {cal['eer_threshold']:.4f}"
        )
    if c.metrics:
        lines.append("metrics   " + json.dumps(c.metrics)[:2000])
    emit(args, d, "\n".join(lines))
    return 0


__all__ = ["register", "expand_images"]
