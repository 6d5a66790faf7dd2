"""Leave one collection out: do the decision's thresholds hold on a collection they were not fitted on?

For each collection C of the data folder, the decision stage (cohort + per-K thresholds, exactly as
``sigverify-cli calibrate`` fits it) is fitted on the *other* collections only (cohort from their
training writers, thresholds on their validation writers), and the clerk's protocol is run with the
app's own decision path on C's test writers. Printed beside it: the figures the same thresholds give
on the validation writers they were fitted on (what the card promises). A threshold that transfers has
the two within a few points.

The trunk is the given model: collections it was trained on are not fully "new" (their *writers* in
the test split are unseen, the collection is not); a collection outside the model's card
``training.datasets`` is new in every respect. Say which in any report (the script prints it).

    python benchmarks/loco.py --model runs/basecal/sigverify-base.safetensors --split runs/split5.json --cache-dir cache
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sigverify.app.case import decide  # noqa: E402
from sigverify.model.embedder import open_model  # noqa: E402
from sigverify.train import decision as dec  # noqa: E402
from sigverify.train.clerk import clerk_protocol  # noqa: E402
from sigverify.train.datasets import WriterSplit, scan_root  # noqa: E402
from sigverify.train.evaluate import evaluate_embeddings  # noqa: E402
from sigverify.train.identities import name_identities  # noqa: E402
from sigverify.train.pipeline import cached_set  # noqa: E402
from sigverify.verify.service import Verifier  # noqa: E402
from sigverify.verify.writer import Cohort  # noqa: E402

KEYS = ("eer", "genuine_accepted", "genuine_rejected", "skilled_accepted")


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default="../shared/data")
    ap.add_argument("--model")
    ap.add_argument("--split", default="runs/split5.json")
    ap.add_argument("--cache-dir", default="cache")
    ap.add_argument("--policy", default="writer", choices=["mean", "min", "writer"])
    ap.add_argument("--k", type=int, default=5)
    ap.add_argument(
        "--adapt",
        type=int,
        default=0,
        metavar="N",
        help="also adapt the decision stage to N training writers of the left-out collection itself "
        "(cohort from their genuine signatures, thresholds fitted on them) and report beside it",
    )
    ap.add_argument("--only", nargs="*", help="only these collections")
    ap.add_argument(
        "--trunk",
        action="append",
        default=[],
        metavar="COLLECTION=MODEL",
        help="use this model (trained without COLLECTION, e.g. by benchmarks/loco_train.sh) when COLLECTION is left out",
    )
    ap.add_argument("--out")
    a = ap.parse_args()
    trunks = dict(s.split("=", 1) for s in a.trunk)
    split = WriterSplit.load(a.split)
    data = scan_root(a.data)
    loaded: dict = {}

    def part(cs, emb_all, writers, relabel=True):
        sub = cs.of_writers(writers)
        if relabel:
            sub = name_identities(sub, 8, 1)
        return sub, emb_all[cs.rows_of(sub.paths)]

    def embedded(path):
        """(model, cached set, embeddings of every image, train / val / test parts) for one trunk, computed once."""
        if path not in loaded:
            model = open_model(path, "cpu")
            cs = cached_set(data, model.card.preprocess_config, a.cache_dir)
            emb_all = Verifier(model, "cpu", aggregate="mean").embedder.embed_arrays(list(cs.images))
            parts = (
                part(cs, emb_all, split.train, relabel=False),
                part(cs, emb_all, split.val),
                part(cs, emb_all, split.test),
            )
            loaded[path] = (model, cs, emb_all, parts)
        return loaded[path]

    out = {}
    f = lambda x: "  -  " if x is None else f"{100 * x:5.1f}"  # noqa: E731
    print(f"policy {a.policy}; K={a.k}; figures: validation (fitted on) -> left-out test writers")
    for c in sorted(set(data.datasets)):
        if a.only and c not in a.only:
            continue
        model, cs, emb_all, ((trn, trn_emb), (val, val_emb), (tst, tst_emb)) = embedded(trunks.get(c, a.model))
        trained_on = set(model.card.training.get("datasets") or [])
        sp = model.card.training.get("split") or {}
        seen = any(w.startswith(c + "/") for w in sp.get("train", []) + sp.get("val", [])) if sp else c in trained_on

        def run(cohort_set, cohort_emb_in, fit_set, fit_emb, model=model, tst=tst, tst_emb=tst_emb, c=c):
            cohort_emb, _ = dec.pick_cohort(cohort_emb_in, cohort_set)
            cohort = Cohort.from_embeddings(cohort_emb, dec.COHORT_REG)
            fitted = dec.fit_decisions(fit_emb, fit_set, model.card.calibration, cohort, policies=(a.policy,), ks=(a.k,))
            card = copy.deepcopy(model.card)
            card.decision = {**fitted, "default": a.policy, "cohort": {"mix": dec.COHORT_MIX}}
            v = Verifier(type(model)(model.network, card, None), "cpu", aggregate="mean")
            v.cohort, v.aggregate = cohort, a.policy

            def decide_fn(q, refs, v=v):
                d = decide(v, q, refs)
                return d.verdict.zone, float(d.decision_score)

            m = tst.datasets == c
            got = clerk_protocol(tst_emb[m], tst.writers[m], tst.genuine[m], decide_fn, (a.k,), tst.digests[m]).get(str(a.k))
            exp = fitted[model.card.distance][a.policy].get(str(a.k), {}).get("expected", {})
            return exp, got

        tm, vm = trn.datasets != c, val.datasets != c
        exp, got = run(trn.select(tm), trn_emb[tm], val.select(vm), val_emb[vm])
        m = tst.datasets == c
        thr = model.card.metric_calibration().eer_threshold
        pr = evaluate_embeddings(tst_emb[m], tst.writers[m], tst.genuine[m], tst.digests[m], model.card.distance, thr)
        pairs = {"eer": pr.eer, "eer_random": pr.eer_random, "far": pr.far, "frr": pr.frr, "writers": pr.writers}
        out[c] = {"validation": exp, "left_out": got, "pairs": pairs, "trunk": model.model_id, "trunk_saw_collection": seen}
        if not got:
            print(f"  {c:18s} (no writer with {a.k + 1} genuine images)")
            continue
        print(
            f"  {c:18s} {'trunk saw it' if seen else 'NEW to trunk'} ({model.model_id[:24]})  "
            + "  ".join(f"{k} {f(exp.get(k))} -> {f(got.get(k))}" for k in KEYS)
            + f"  ({got['writers']} writers)  pairs skilled/random EER {f(pr.eer)} / {f(pr.eer_random)}"
            + f"  FRR at threshold {f(pr.frr)}"
        )
        if a.adapt:
            own = sorted({w for w in split.train if w.startswith(c + "/")})[: a.adapt]
            o_raw, o_raw_emb = part(cs, emb_all, own, relabel=False)
            o_rel, o_rel_emb = part(cs, emb_all, own)
            exp2, got2 = run(o_raw, o_raw_emb, o_rel, o_rel_emb)
            out[c]["adapted"] = {"writers": len(own), "fitted_on": exp2, "test": got2}
            print(
                f"  {'':18s} adapted to {len(own)} of its own writers: "
                + "  ".join(f"{k} {f(exp2.get(k))} -> {f((got2 or {}).get(k))}" for k in KEYS)
            )
    if a.out:
        Path(a.out).write_text(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
