"""operator (setup/login/logout/whoami/list/add/remove/lock/unlock/role/passwd/events), queue
(list/show/decide/refer/approve/reject), threshold (set/show/clear), report.

Exit codes beyond the common ones: 11 = not signed in, unknown / removed / locked operator, wrong
password or a role too low (``AccessDenied``). ``report`` for an unknown case exits 3 with
"no case ... in the audit trail".
"""

from __future__ import annotations

import sys
from contextlib import contextmanager

from sigverify.cli import emit

EXIT_ACCESS = 11


def _db(p) -> None:
    p.add_argument("--db", help="library database file (default: library.sqlite3 in the user data folder)")
    p.add_argument("--json", action="store_true", help="print machine-readable JSON on stdout")


def _pw(p, what: str = "the password") -> None:
    p.add_argument(
        "--password-stdin",
        action="store_true",
        help=f"read {what} from the first line of standard input (for scripts); else it is asked for",
    )


def register(sub) -> None:
    op = sub.add_parser("operator", help="operators and sign-in: setup, login, logout, whoami, add, remove, lock")
    osub = op.add_subparsers(dest="operator_command", metavar="ACTION", parser_class=type(op))
    osub.required = True

    p = osub.add_parser("setup", help="first run: --single (personal install, no passwords) or --admin NAME")
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--single", action="store_true", help="single-user mode: one local operator, no sign-in")
    g.add_argument("--admin", metavar="USERNAME", help="multi-user mode with this first administrator")
    p.add_argument("--name", default="", help="display name")
    _pw(p)
    _db(p)
    p.set_defaults(func=cmd_setup)

    p = osub.add_parser("login", help="sign in; the session token is kept in the user data folder")
    p.add_argument("username")
    _pw(p)
    p.add_argument("--print-token", action="store_true", help="also print the token (for SIGVERIFY_TOKEN)")
    _db(p)
    p.set_defaults(func=cmd_login)

    p = osub.add_parser("logout", help="end the session and delete the token file")
    _db(p)
    p.set_defaults(func=cmd_logout)

    p = osub.add_parser("whoami", help="the signed-in operator")
    _db(p)
    p.set_defaults(func=cmd_whoami)

    p = osub.add_parser("list", help="all operators, removed ones included")
    _db(p)
    p.set_defaults(func=cmd_list)

    p = osub.add_parser("add", help="add an operator (administrator)")
    p.add_argument("username")
    p.add_argument("--role", choices=["clerk", "supervisor", "administrator"], default="clerk")
    p.add_argument("--name", default="", help="display name")
    _pw(p, "the new operator's password")
    _db(p)
    p.set_defaults(func=cmd_add)

    for name, hlp in (
        ("remove", "take an operator out of use (kept for the audit trail)"),
        ("lock", "lock an account"),
        ("unlock", "unlock an account (also after wrong passwords)"),
    ):
        p = osub.add_parser(name, help=hlp + " (administrator)")
        p.add_argument("username")
        p.add_argument("--reason", default="")
        _db(p)
        p.set_defaults(func=cmd_account, action=name)

    p = osub.add_parser("role", help="change an operator's role (administrator)")
    p.add_argument("username")
    p.add_argument("role", choices=["clerk", "supervisor", "administrator"])
    _db(p)
    p.set_defaults(func=cmd_role)

    p = osub.add_parser("passwd", help="change your password (or another operator's: administrator)")
    p.add_argument("username", nargs="?")
    _pw(p, "the new password")
    _db(p)
    p.set_defaults(func=cmd_passwd)

    p = osub.add_parser("events", help="the operator event log (sign-ins, reviews, setting changes)")
    p.add_argument("--case", type=int, help="only the events of one case")
    p.add_argument("--event", help="only one kind, e.g. signin_failed")
    p.add_argument("--limit", type=int, default=50)
    _db(p)
    p.set_defaults(func=cmd_events)

    q = sub.add_parser("queue", help="the supervisor's referral queue: list, show, decide, approve, reject")
    qsub = q.add_subparsers(dest="queue_command", metavar="ACTION", parser_class=type(q))
    qsub.required = True
    p = qsub.add_parser("list", help="cases waiting for a supervisor (--all: every case with its status)")
    p.add_argument("--all", action="store_true")
    _db(p)
    p.set_defaults(func=cmd_queue_list)
    p = qsub.add_parser("show", help="one case with its decisions and review")
    p.add_argument("case_id")
    _db(p)
    p.set_defaults(func=cmd_queue_show)
    p = qsub.add_parser("decide", help="the clerk's decision on a case (overrides and refer go to the queue)")
    p.add_argument("case_id")
    p.add_argument("decision", choices=["accept", "refer", "reject"])
    p.add_argument("--note", default="", help="the clerk's note for the supervisor")
    _db(p)
    p.set_defaults(func=cmd_queue_decide)
    for name in ("approve", "reject"):
        p = qsub.add_parser(name, help=f"{name} a queued case (supervisor; another operator than the clerk)")
        p.add_argument("case_id")
        p.add_argument("--reason", required=True)
        _db(p)
        p.set_defaults(func=cmd_queue_review, approve=name == "approve")

    t = sub.add_parser("threshold", help="per-customer threshold override (supervisor)")
    tsub = t.add_subparsers(dest="threshold_command", metavar="ACTION", parser_class=type(t))
    tsub.required = True
    p = tsub.add_parser("set", help="multiply a customer's thresholds by SCALE (0.8 .. 1.25) with a reason")
    p.add_argument("customer_id")
    p.add_argument("scale", type=float)
    p.add_argument("--reason", required=True)
    _db(p)
    p.set_defaults(func=cmd_threshold_set)
    p = tsub.add_parser("clear", help="remove a customer's override")
    p.add_argument("customer_id")
    p.add_argument("--reason", required=True)
    _db(p)
    p.set_defaults(func=cmd_threshold_set, scale=1.0)
    p = tsub.add_parser("show", help="a customer's override and its history")
    p.add_argument("customer_id")
    _db(p)
    p.set_defaults(func=cmd_threshold_show)

    p = sub.add_parser("report", help="write the decision report of a case as PDF")
    p.add_argument("case_id", help="the audit record id of the verification (or the app's case id)")
    p.add_argument("--out", required=True, help="output PDF file")
    p.add_argument("--questioned", help="the questioned file, when it was not kept with the case (SHA-256 checked)")
    _db(p)
    p.set_defaults(func=cmd_report)


# ---- helpers ---------------------------------------------------------------------------------------------
def _open(args):
    from sigverify.app.operators import open_store
    from sigverify.store.library import Library

    lib = Library(args.db)
    return lib, open_store(lib)


@contextmanager
def _signed_in(args):
    """``(library, operator store, signed-in operator)`` for a command that needs one; the library is
    closed on the way out (also when the operator is refused)."""
    lib, st = _open(args)
    with lib:
        yield lib, st, _me(st)


def _me(store):
    from sigverify.app.operators import resolve_cli_operator

    return resolve_cli_operator(store)


def _read_password(args, prompt: str = "Password: ", confirm: bool = False) -> str:
    if args.password_stdin:
        line = sys.stdin.readline()
        return line.rstrip("\r\n")
    if not sys.stdin.isatty():
        from sigverify.errors import SigverifyError

        raise SigverifyError("no terminal to ask for the password: use --password-stdin")
    import getpass

    pw = getpass.getpass(prompt)
    if confirm and getpass.getpass("Again: ") != pw:
        from sigverify.errors import SigverifyError

        raise SigverifyError("the two passwords differ")
    return pw


def _op_line(o) -> str:
    return f"  #{o.id:<4d} {o.username:16s} {o.role:13s} {o.status():8s} {o.display_name}"


# ---- operator ----------------------------------------------------------------------------------------------
def cmd_setup(args) -> int:
    lib, st = _open(args)
    with lib:
        if args.single:
            op = st.setup_single_user()
            text = f"single-user mode: you are {op.username} (administrator); no sign-in needed"
        else:
            op = st.setup_multi_user(args.admin, _read_password(args, confirm=True), args.name)
            text = (
                f"multi-user mode: administrator {op.username} created; sign in with `sigverify-cli operator login {op.username}`"
            )
    emit(args, {"mode": "single" if args.single else "multi", "operator": op.to_dict()}, text)
    return 0


def cmd_login(args) -> int:
    from sigverify.app.operators import cli_login, token_file

    lib, st = _open(args)
    with lib:
        pw = _read_password(args)
        sess = cli_login(st, args.username, pw)
    d = {"operator": sess.operator.to_dict(), "expires_utc": sess.expires_utc, "token_file": str(token_file())}
    if args.print_token:
        d["token"] = sess.token
    emit(
        args,
        d,
        f"signed in as {sess.operator.label} ({sess.operator.role}) until {sess.expires_utc[:16]} UTC"
        + (f"\nSIGVERIFY_TOKEN={sess.token}" if args.print_token else ""),
    )
    return 0


def cmd_logout(args) -> int:
    from sigverify.app.operators import cli_logout

    lib, st = _open(args)
    with lib:
        op = cli_logout(st)
    emit(args, {"signed_out": None if op is None else op.username}, f"signed out {op.username}" if op else "no session was open")
    return 0


def cmd_whoami(args) -> int:
    with _signed_in(args) as (lib, st, me):
        op = me
        mode = st.mode or "single (not set up yet)"
    emit(args, {"operator": op.to_dict(), "mode": mode}, f"{op.label} - {op.role} ({mode}-user)")
    return 0


def cmd_list(args) -> int:
    with _signed_in(args) as (lib, st, _):
        ops = st.list()
    emit(args, {"operators": [o.to_dict() for o in ops]}, "\n".join([f"{len(ops)} operator(s)", *(_op_line(o) for o in ops)]))
    return 0


def cmd_add(args) -> int:
    with _signed_in(args) as (lib, st, me):
        op = st.add(me, args.username, _read_password(args, "New operator's password: ", True), args.role, args.name)
    emit(args, {"operator": op.to_dict()}, f"added {op.label} as {op.role}")
    return 0


def cmd_account(args) -> int:
    with _signed_in(args) as (lib, st, me):
        op = getattr(st, args.action)(me, args.username, args.reason)
    emit(args, {"operator": op.to_dict()}, f"{op.username}: {op.status()}")
    return 0


def cmd_role(args) -> int:
    with _signed_in(args) as (lib, st, me):
        op = st.set_role(me, args.username, args.role)
    emit(args, {"operator": op.to_dict()}, f"{op.username} is now a {op.role}")
    return 0


def cmd_passwd(args) -> int:
    with _signed_in(args) as (lib, st, me):
        who = args.username or me.username
        st.set_password(me, who, _read_password(args, "New password: ", True))
    emit(args, {"password_changed": who}, f"password of {who} changed")
    return 0


def cmd_events(args) -> int:
    with _signed_in(args) as (lib, st, _):
        evs = st.events(case_id=args.case, event=args.event, limit=args.limit)
    lines = [f"{len(evs)} event(s)"] + [
        f"  #{e.id:<6d} {e.time_utc[:19]}  {e.operator or '-':14s} {e.event:18s}"
        + (f" case #{e.case_id}" if e.case_id else "")
        + (f" {e.customer_id}" if e.customer_id else "")
        + (f": {e.reason}" if e.reason else "")
        for e in evs
    ]
    emit(args, {"events": [e.to_dict() for e in evs]}, "\n".join(lines))
    return 0


# ---- queue -------------------------------------------------------------------------------------------------
def _case_line(c) -> str:
    d = c.clerk_decision
    return (
        f"  #{c.id:<6d} {c.record.time_utc[:16]}  {c.record.customer_id or '-':12s} {c.record.verdict:8s} "
        f"d={c.record.distance:.3f}  clerk {d.decision if d else '-'} ({d.operator if d else '-'})  "
        f"{c.status}" + (f"  - {c.why}" if c.why else "") + (f'  note: "{d.reason}"' if d and d.reason else "")
    )


def cmd_queue_list(args) -> int:
    from sigverify.app.referrals import ReferralQueue

    with _signed_in(args) as (lib, st, me):
        if not args.all:
            from sigverify.store.operators import require_role

            require_role(me, "supervisor", "the referral queue")
        q = ReferralQueue(lib, st)
        cases = q.cases() if args.all else q.queue()
    head = f"{len(cases)} case(s)" + ("" if args.all else " waiting for a supervisor")
    emit(args, {"cases": [c.to_dict() for c in cases]}, "\n".join([head, *(_case_line(c) for c in cases)]))
    return 0


def cmd_queue_show(args) -> int:
    from sigverify.app.referrals import ReferralQueue

    with _signed_in(args) as (lib, st, _):
        c = ReferralQueue(lib, st).case(args.case_id)
    lines = [_case_line(c)] + [
        f"    decision #{d.id} {d.time_utc[:19]} {d.source:10s} {d.operator:14s} {d.decision}"
        + (f": {d.reason}" if d.reason else "")
        for d in c.record.decisions
    ]
    lines += [
        f"    event #{e.id} {e.time_utc[:19]} {e.operator:14s} {e.event}" + (f": {e.reason}" if e.reason else "")
        for e in c.events
    ]
    emit(args, {"case": c.to_dict(), "decisions": [d.__dict__ for d in c.record.decisions]}, "\n".join(lines))
    return 0


def _queue_action(args, act, text) -> int:
    """A queue command: ``act(queue, me)`` -> the case, printed with ``text(case)``."""
    from sigverify.app.referrals import ReferralQueue

    with _signed_in(args) as (lib, st, me):
        c = act(ReferralQueue(lib, st), me)
    emit(args, {"case": c.to_dict()}, text(c))
    return 0


def cmd_queue_decide(args) -> int:
    return _queue_action(
        args,
        lambda q, me: q.decide(me, args.case_id, args.decision, args.note),
        lambda c: (
            f"case #{c.id}: {args.decision} recorded; {c.status.replace('_', ' ')}"
            + (f" ({c.why})" if c.status == "awaiting_review" else "")
        ),
    )


def cmd_queue_review(args) -> int:
    return _queue_action(
        args,
        lambda q, me: q.review(me, args.case_id, args.approve, args.reason),
        lambda c: (
            f"case #{c.id} {'approved' if args.approve else 'rejected'}: final decision "
            f"{c.final.decision} (audit decision #{c.final.id}, event #{c.review.id})"
        ),
    )


# ---- threshold ---------------------------------------------------------------------------------------------
def cmd_threshold_set(args) -> int:
    with _signed_in(args) as (lib, st, me):
        lib.require_customer(args.customer_id)
        ov = st.set_threshold_override(me, args.customer_id, args.scale, args.reason)
    emit(
        args,
        {"override": ov.to_dict()},
        f"{args.customer_id}: thresholds x{ov.scale:.2f} ({ov.reason})"
        if abs(ov.scale - 1) > 1e-12
        else f"{args.customer_id}: override cleared",
    )
    return 0


def cmd_threshold_show(args) -> int:
    with _signed_in(args) as (lib, st, _):
        ov = st.threshold_override(args.customer_id)
        hist = st.threshold_history(args.customer_id)
    lines = [f"{args.customer_id}: " + (f"thresholds x{ov.scale:.2f} by {ov.operator} ({ov.reason})" if ov else "no override")]
    lines += [f"  #{h.id} {h.time_utc[:19]} {h.operator:14s} x{h.scale:.2f}  {h.reason}" for h in hist]
    emit(
        args,
        {"customer": args.customer_id, "override": None if ov is None else ov.to_dict(), "history": [h.to_dict() for h in hist]},
        "\n".join(lines),
    )
    return 0


# ---- report ------------------------------------------------------------------------------------------------
def cmd_report(args) -> int:
    from sigverify.app.report import write_case_report

    with _signed_in(args) as (lib, st, me):
        info = write_case_report(lib, args.case_id, args.out, st, questioned=args.questioned, generated_by=me.username)
    emit(
        args,
        info.to_dict(),
        f"wrote the report of case #{info.case_id} to {info.path} ({info.pages} page(s)"
        + ("" if info.questioned_image else "; questioned image not kept: pass --questioned FILE")
        + ")",
    )
    return 0
