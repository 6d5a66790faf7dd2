"""Markdown tables from `sigverify-cli eval --report FILE` JSON reports (pairs and the clerk's protocol).

python benchmarks/report_tables.py runs/eval_test.json [--k 5] [--compare runs/other.json]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def pct(x) -> str:
    return "-" if x is None else f"{100 * x:.1f} %"


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("report")
    ap.add_argument("--k", default="5")
    ap.add_argument("--compare", help="a second report: its skilled/random EER shown beside (before -> after)")
    a = ap.parse_args()
    r = json.loads(Path(a.report).read_text())
    o = json.loads(Path(a.compare).read_text()) if a.compare else None
    ds = r.get("datasets", {})
    print("| collection | skilled EER | random EER | AUC | FAR / FRR at the global threshold | writers |")
    print("| --- | --- | --- | --- | --- | --- |")
    for k, v in ds.items():
        before = ""
        if o:
            b = o["datasets"][k]
            before = f" (was {pct(b['eer'])} / {pct(b['eer_random'])})"
        print(
            f"| {k} | {pct(v['eer'])} | {pct(v['eer_random'])}{before} | "
            f"{v['auc']:.3f} | {pct(v['far'])} / {pct(v['frr'])} | {v['writers']} |"
        )
    print()
    print(f"Clerk's protocol, K = {a.k} specimens ({r.get('policy')} policy), verdicts at the card's thresholds:")
    print()
    print(
        "| collection | EER skilled / random | genuine accepted / referred / rejected | skilled accepted / referred / rejected "
        "| random accepted | writers | questioned g / s / r |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for k, v in list(ds.items()) + [("all pooled", r)]:
        refs = v.get("references", {})
        c = refs.get(a.k) or refs.get("3")
        if not c:
            continue
        kk = a.k if a.k in refs else "3"
        q = c["questioned"]
        print(
            f"| {k}{'' if kk == a.k else f' (K={kk})'} | {pct(c['eer'])} / {pct(c['eer_random'])} | "
            f"{pct(c['genuine_accepted'])} / "
            f"{pct(c['genuine_referred'])} / {pct(c['genuine_rejected'])} | {pct(c['skilled_accepted'])} / "
            f"{pct(c['skilled_referred'])} / {pct(c['skilled_rejected'])} | {pct(c['random_accepted'])} | {c['writers']} | "
            f"{q['genuine']} / {q['skilled']} / {q['random']} |"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
