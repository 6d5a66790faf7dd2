"""library (enrol/list/search/show/verify/remove-ref/expire-ref/remove), audit (history/export/decide), batch."""

from __future__ import annotations

import signal
import sys
from pathlib import Path

from sigverify.cli import EXIT_AUDIT, EXIT_CANCELLED, VERDICT_EXIT, add_common, emit, positive_int


def _add_db(p) -> None:
    p.add_argument(
        "--db", help="library database file (default: library.sqlite3 in the user data folder; SIGVERIFY_HOME moves that folder)"
    )
    p.add_argument(
        "--operator",
        help="must be the signed-in operator (`sigverify-cli operator login`); the audit trail names signed-in operators only",
    )


def register(sub) -> None:
    lib = sub.add_parser("library", help="customer reference library: enrol, list, show, verify, manage specimens")
    lsub = lib.add_subparsers(dest="library_command", metavar="ACTION", parser_class=type(lib))
    lsub.required = True

    p = lsub.add_parser("enrol", help="enrol reference signature images (files or folders) for a customer")
    p.add_argument("customer_id")
    p.add_argument("images", nargs="+", help="image files or folders of them")
    p.add_argument("--name", help="customer name (sets / updates it)")
    p.add_argument("--notes", help="free-text notes (sets / updates them)")
    p.add_argument("--expires", help="expiry date of these specimens (YYYY-MM-DD)")
    _add_db(p)
    add_common(p)
    p.set_defaults(func=cmd_enrol)

    p = lsub.add_parser("list", help="list customers with their number of active references")
    _add_db(p)
    add_common(p, model=False)
    p.set_defaults(func=cmd_list)

    p = lsub.add_parser("search", help="find customers by account id or name")
    p.add_argument("text")
    p.add_argument("--limit", type=positive_int, default=20)
    _add_db(p)
    add_common(p, model=False)
    p.set_defaults(func=cmd_search)

    p = lsub.add_parser("show", help="a customer's references and per-customer thresholds")
    p.add_argument("customer_id")
    _add_db(p)
    add_common(p)
    p.set_defaults(func=cmd_show)

    p = lsub.add_parser("verify", help="verify a questioned signature against a customer's references (audited)")
    p.add_argument("customer_id")
    p.add_argument("questioned")
    p.add_argument("--decision", choices=["accept", "refer", "reject"], help="also record the clerk's decision")
    p.add_argument("--reason", default="", help="reason, when the decision overrides the verdict")
    _add_db(p)
    add_common(p)
    p.set_defaults(func=cmd_verify)

    p = lsub.add_parser("remove-ref", help="take a reference specimen out of use (kept for the audit trail)")
    p.add_argument("ref_id", type=int)
    p.add_argument("--purge", action="store_true", help="delete the image and its embeddings for good")
    _add_db(p)
    add_common(p, model=False)
    p.set_defaults(func=cmd_remove_ref)

    p = lsub.add_parser("expire-ref", help="mark a reference specimen expired (now, or on --on DATE)")
    p.add_argument("ref_id", type=int)
    p.add_argument("--on", help="expiry date (YYYY-MM-DD or ISO date-time; default: now)")
    _add_db(p)
    add_common(p, model=False)
    p.set_defaults(func=cmd_expire_ref)

    p = lsub.add_parser("remove", help="delete a customer and their specimens (the audit trail is kept)")
    p.add_argument("customer_id")
    _add_db(p)
    add_common(p, model=False)
    p.set_defaults(func=cmd_remove_customer)

    p = lsub.add_parser("refresh", help="compute the reference embeddings missing for the (given) model")
    _add_db(p)
    add_common(p)
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=cmd_refresh)

    aud = sub.add_parser("audit", help="append-only audit trail: history, export, record a decision")
    asub = aud.add_subparsers(dest="audit_command", metavar="ACTION", parser_class=type(aud))
    asub.required = True
    p = asub.add_parser("history", help="a customer's verifications, newest first")
    p.add_argument("customer_id")
    p.add_argument("--limit", type=positive_int)
    _add_db(p)
    add_common(p, model=False)
    p.set_defaults(func=cmd_history)

    p = asub.add_parser("export", help="export the audit log (or one customer's part) as CSV")
    p.add_argument("--out", required=True, help="CSV file to write (atomically)")
    p.add_argument("--customer", help="only this customer")
    _add_db(p)
    add_common(p, model=False)
    p.set_defaults(func=cmd_export)

    p = asub.add_parser("verify", help="check the audit trail's hash chain and anchor (exit 0 intact, 9 broken)")
    p.add_argument(
        "--reanchor",
        action="store_true",
        help="administrator: write a new anchor at the chain head (only when the chain itself is intact)",
    )
    _add_db(p)
    add_common(p, model=False)
    p.set_defaults(func=cmd_audit_verify)

    p = asub.add_parser("decide", help="append the clerk's final decision for a verification")
    p.add_argument("verification_id", type=int)
    p.add_argument("decision", choices=["accept", "refer", "reject"])
    p.add_argument("--reason", default="")
    _add_db(p)
    add_common(p, model=False)
    p.set_defaults(func=cmd_decide)

    p = sub.add_parser("batch", help="verify many questioned images against the library (CSV or folder)")
    p.add_argument("input", help="CSV of 'customer_id,questioned_path' rows, or a folder of <customer id>/ sub-folders")
    p.add_argument("--out", required=True, help="results CSV (customer, file, verdict, score, distance, error)")
    p.add_argument("--no-audit", action="store_true", help="do not append the results to the audit log")
    p.add_argument("--strict", action="store_true", help="exit with code 3 when any row had an error")
    p.add_argument("--batch-size", type=positive_int, default=64)
    p.add_argument("--workers", type=positive_int, default=None, help="threads for reading/preprocessing (default: cores, max 4)")
    p.add_argument(
        "--new-run",
        action="store_true",
        help="verify every item again as a new run (default: a rerun of the same input resumes it: "
        "items already done are not verified or audited twice)",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    from sigverify.cli.cluster import add_arguments as add_ray_arguments  # --engine ray (issue 17)

    add_ray_arguments(p)
    _add_db(p)
    add_common(p)
    p.set_defaults(func=cmd_batch)


# ---- helpers -------------------------------------------------------------------------------------------
def _library(args):
    """The store (SQL) with the signed-in operator bound; wrap it in ``LibraryService`` for embeddings,
    thresholds and cases."""
    from sigverify.app.operators import bind_cli_operator
    from sigverify.store.library import Library

    lib = Library(args.db)
    try:  # the audit trail names the signed-in operator; --operator may only repeat that name
        bind_cli_operator(lib, getattr(args, "operator", None))
    except BaseException:
        lib.close()
        raise
    return lib


def _keep_questioned(lib, audit_id, path) -> None:
    """Keep the questioned file with its case (for the supervisor's queue and the case report)."""
    from sigverify.app.referrals import ReferralQueue
    from sigverify.errors import SigverifyError

    try:
        ReferralQueue(lib).attach_questioned(audit_id, path)
    except (SigverifyError, OSError):
        pass  # the report then says the image was not kept


def _verifier(args):
    from sigverify.cli.core import open_cli_session  # the same model session as every command and the GUI

    return open_cli_session(args).verifier


def _fmt_status(st) -> str:
    s = (
        f"    thresholds for this customer: genuine <= {st.threshold_accept:.4f} < refer <= "
        f"{st.threshold_reject:.4f} < forgery  (scale {st.person_scale:.3f} from {st.n_active} reference(s)"
        + (f", spread {st.reference_spread:.4f})" if st.reference_spread is not None else ")")
    )
    for w in st.warnings:
        s += f"\n    ADD MORE SPECIMENS: {w}" if st.needs_more_specimens else f"\n    note: {w}"
    return s


# ---- library -------------------------------------------------------------------------------------------
def cmd_enrol(args) -> int:
    from sigverify.app.library_service import LibraryService
    from sigverify.errors import ImageLoadError

    v = _verifier(args)
    with _library(args) as lib:
        svc = LibraryService(lib, v)
        rep = svc.enrol(args.customer_id, args.images, name=args.name, notes=args.notes, expires=args.expires)
        if not rep.added and lib.get_customer(args.customer_id) is None:
            raise ImageLoadError(
                f"no reference enrolled for {args.customer_id}: "
                + "; ".join(f"{Path(p).name}: {e}" if Path(p).name not in e else e for p, e in rep.errors)
            )
        c = lib.require_customer(args.customer_id)
        st = svc.status(args.customer_id)
    d = rep.to_dict()
    d["customer"] = c.to_dict()
    d["status"] = st.to_dict()
    lines = [f"enrolled {len(rep.added)} reference(s) for {c.label}: now {c.n_active} active"]
    lines += [f"  skipped {p}: {e}" for p, e in rep.errors]
    if st.needs_more_specimens:
        lines.append(f"  ADD MORE SPECIMENS: {c.n_active} active reference(s); at least 3 give a per-customer threshold")
    if not rep.added:
        if not args.json:
            print("\n".join(lines))
        raise ImageLoadError(
            f"no new reference enrolled for {args.customer_id}: " + "; ".join(e for _, e in rep.errors)
            if rep.errors
            else "no image files given"
        )
    emit(args, d, "\n".join(lines))
    if rep.errors:
        print(f"sigverify-cli: {len(rep.errors)} file(s) were not enrolled", file=sys.stderr)
        return ImageLoadError.exit_code
    return 0


def _customer_lines(cs) -> str:
    if not cs:
        return "(no customers)"
    return "\n".join(
        f"{c.account_id:20s} {c.name[:40]:40s} {c.n_active:3d} active"
        + ("  [add more specimens]" if c.needs_more_specimens else "")
        for c in cs
    )


def cmd_list(args) -> int:
    with _library(args) as lib:
        cs = lib.customers()
        stats = lib.stats()
    emit(
        args,
        {"library": stats, "customers": [c.to_dict() for c in cs]},
        f"{stats['path']}: {len(cs)} customer(s)\n" + _customer_lines(cs),
    )
    return 0


def cmd_search(args) -> int:
    with _library(args) as lib:
        cs = lib.search(args.text, args.limit)
    emit(args, {"query": args.text, "customers": [c.to_dict() for c in cs]}, _customer_lines(cs))
    return 0


def cmd_show(args) -> int:
    from sigverify.app.library_service import LibraryService

    v = _verifier(args)
    with _library(args) as lib:
        c = lib.require_customer(args.customer_id)
        refs = lib.references(args.customer_id, include_removed=True)
        st = LibraryService(lib, v).status(args.customer_id)
    d = c.to_dict()
    d["references"] = [r.to_dict() for r in refs]
    d["status"] = st.to_dict()
    lines = [
        f"{c.label}",
        f"  notes: {c.notes}" if c.notes else "  notes: -",
        f"  {c.n_active} active of {len(refs)} reference(s) (model {st.model_id})",
    ]
    for r in refs:
        lines.append(
            f"  #{r.id:<5d} {r.status():8s} {r.file_name:30s} enrolled {r.enrolled_utc[:10]}"
            + (f"  expires {r.expires_utc[:10]}" if r.expires_utc else "")
        )
    lines.append(_fmt_status(st))
    emit(args, d, "\n".join(lines))
    return 0


def cmd_verify(args) -> int:
    from sigverify.app.library_service import LibraryService
    from sigverify.cli.core import _fmt_verdict

    v = _verifier(args)
    with _library(args) as lib:
        res = LibraryService(lib, v).verify(args.customer_id, args.questioned, record=True, source="cli")
        _keep_questioned(lib, res.audit_id, args.questioned)
        if args.decision:
            lib.audit.append_decision(res.audit_id, args.decision, args.reason, source="clerk")
    d = res.to_dict()
    d["metric"] = v.metric
    d["model"] = v.model.model_id
    d["random_weights"] = v.card.random_init
    if v.card.random_init:
        d["warning"] = "UNTRAINED random weights: results are meaningless"
    if args.decision:
        d["decision"] = args.decision
    lines = [
        _fmt_verdict(d),
        f"    customer {args.customer_id}: {len(res.reference_ids)} reference(s); distances "
        + ", ".join(f"{x:.3f}" for x in res.decision.distances),
        f"    audit record #{res.audit_id}" + (" (re-run of the same case: no new record)" if res.rerun else ""),
    ]
    for w in res.decision.warnings:
        lines.append(f"    note: {w}")
    emit(args, d, "\n".join(lines))
    return VERDICT_EXIT[d["verdict"]]


def cmd_remove_ref(args) -> int:
    with _library(args) as lib:
        ref = lib.remove_reference(args.ref_id, purge=args.purge)
        c = lib.require_customer(ref.account_id)
    d = {"removed": ref.to_dict(), "purged": args.purge, "customer": c.to_dict()}
    emit(
        args,
        d,
        f"reference #{ref.id} ({ref.file_name}) of {c.label} {'deleted' if args.purge else 'removed'}; "
        f"{c.n_active} active left" + ("  [add more specimens]" if c.needs_more_specimens else ""),
    )
    return 0


def cmd_expire_ref(args) -> int:
    with _library(args) as lib:
        ref = lib.expire_reference(args.ref_id, args.on)
        c = lib.require_customer(ref.account_id)
    emit(
        args,
        {"reference": ref.to_dict(), "customer": c.to_dict()},
        f"reference #{ref.id} ({ref.file_name}) of {c.label} expires {ref.expires_utc} ({ref.status()}); "
        f"{c.n_active} active left" + ("  [add more specimens]" if c.needs_more_specimens else ""),
    )
    return 0


def cmd_remove_customer(args) -> int:
    with _library(args) as lib:
        lib.remove_customer(args.customer_id)
    emit(args, {"removed_customer": args.customer_id}, f"customer {args.customer_id} removed (audit trail kept)")
    return 0


def cmd_refresh(args) -> int:
    from sigverify.app.library_service import LibraryService
    from sigverify.cli.training import CliProgress

    v = _verifier(args)
    bar = CliProgress("embeddings", quiet=args.quiet or args.json)
    try:
        with _library(args) as lib:
            rep = LibraryService(lib, v).refresh(bar)
    finally:
        bar.close()
    emit(
        args,
        rep.to_dict(),
        f"model {rep.model_id}: {rep.computed} embedding(s) computed, "
        f"{rep.already_cached} already cached, {len(rep.errors)} error(s)"
        + "".join(f"\n  reference #{i}: {e}" for i, e in rep.errors),
    )
    return 0


# ---- audit ---------------------------------------------------------------------------------------------
def cmd_history(args) -> int:
    with _library(args) as lib:
        recs = lib.audit.history(args.customer_id, args.limit)
        if not recs:
            lib.require_customer(args.customer_id)  # unknown customer with no history: a clear error
    lines = [f"{len(recs)} verification(s) for {args.customer_id}"]
    for r in recs:
        fd = r.final_decision
        dec = (
            f"{fd.decision} ({fd.source}, {fd.operator})"
            + (" OVERRIDE" if fd.overrides_verdict else "")
            + (f": {fd.reason}" if fd.reason else "")
            if fd
            else "no decision"
        )
        lines.append(
            f"  #{r.id:<6d} {r.time_utc}  {r.operator:12s} {r.source:5s} {r.questioned_name:28s} "
            f"{r.verdict:8s} score {r.score:5.1f}  -> {dec}"
        )
    emit(args, {"customer": args.customer_id, "records": [r.to_dict() for r in recs]}, "\n".join(lines))
    return 0


def cmd_export(args) -> int:
    with _library(args) as lib:
        n = lib.audit.export_csv(args.out, args.customer)
        seq, head = lib.audit.head()
    emit(
        args,
        {"out": args.out, "records": n, "customer": args.customer, "chain_head_seq": seq, "chain_head_hash": head},
        f"wrote {n} audit record(s) to {args.out} (chain head #{seq} {head[:16]}...)",
    )
    return 0


def cmd_audit_verify(args) -> int:
    """Exit 0 when the trail is intact, 9 (EXIT_AUDIT) naming the first bad record otherwise."""
    from sigverify.store.library import Library

    with Library(args.db) as lib:  # no operator binding: checking the trail must work for anyone
        chk = lib.audit.reanchor() if args.reanchor else lib.audit.verify_chain()
    d = chk.to_dict()
    d["database"] = str(lib.path)
    lines = [chk.message()]
    lines += [f"  problem: {p['message']}" for p in chk.problems[1:20]]
    lines += [f"  note: {w}" for w in chk.warnings]
    if chk.ok:
        emit(args, d, "\n".join(lines))
        return 0
    d["exit_code"] = EXIT_AUDIT
    emit(args, d, "\n".join(lines))
    return EXIT_AUDIT


def cmd_decide(args) -> int:
    with _library(args) as lib:
        from sigverify.app.referrals import ReferralQueue

        rq = ReferralQueue(lib)  # a reviewed case is closed; a decision needing review goes to the queue
        did = rq.decide(rq.store.require(lib.audit.operator), args.verification_id, args.decision, args.reason).clerk_decision.id
        rec = lib.audit.get(args.verification_id)
    fd = rec.final_decision
    emit(
        args,
        {"decision_id": did, "verification": rec.to_dict()},
        f"decision #{did}: {fd.decision} for verification #{rec.id} (verdict {rec.verdict})"
        + (" - overrides the verdict" if fd.overrides_verdict else ""),
    )
    return 0


# ---- batch ---------------------------------------------------------------------------------------------
def cmd_batch(args) -> int:
    from sigverify.batch import load_items, run_batch
    from sigverify.cli.training import CliProgress

    if getattr(args, "engine", "local") == "ray":  # manifest on Ray Data: sigverify/cluster/ray_batch.py
        from sigverify.cli.cluster import cli_batch

        return cli_batch(args, _library(args), _verifier(args))
    from sigverify.atomic import check_output_path

    check_output_path(args.out, "results CSV")  # a folder / device / FIFO is refused before any work
    items = load_items(args.input)
    v = _verifier(args)
    v.embedder.batch_size = max(1, args.batch_size)
    stop = {"flag": False}

    def on_sigint(signum, frame):
        if stop["flag"]:  # second Ctrl+C: give up at once
            raise KeyboardInterrupt
        stop["flag"] = True
        print("\nstopping after the current batch (Ctrl+C again to abort)...", file=sys.stderr)

    old = signal.signal(signal.SIGINT, on_sigint)
    bar = CliProgress("batch", quiet=args.quiet or args.json)
    try:
        with _library(args) as lib:
            if not args.no_audit:  # a long audited job starts only on an intact trail
                chk = lib.audit.verify_chain()
                if not chk.ok:
                    from sigverify.errors import AuditIntegrityError

                    raise AuditIntegrityError(
                        chk.message() + "; no batch is recorded on a broken audit trail (run 'sigverify-cli audit verify')",
                        chk.first_bad,
                    )
            rep = run_batch(
                items,
                lib,
                v,
                bar,
                lambda: stop["flag"],
                audit=not args.no_audit,
                batch_size=args.batch_size,
                workers=args.workers,
                new_run=getattr(args, "new_run", False),
                input_name=str(args.input),
            )
    finally:
        bar.close()
        signal.signal(signal.SIGINT, old)
    rep.write_csv(args.out)
    d = rep.to_dict() if args.json else rep.summary_dict()
    d["out"] = args.out
    emit(args, d, rep.summary_text() + f"\nresults written to {args.out}")
    if rep.cancelled:
        return EXIT_CANCELLED
    if args.strict and rep.errors:
        return 3
    return 0
