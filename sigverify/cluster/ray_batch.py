"""Distributed batch clearing on Ray Data: ``sigverify-cli batch MANIFEST --engine ray [--address ADDR]``.

The same verification as the single-process ``sigverify.batch.run_batch`` (same preprocessing, same
model and backend, the same decision through ``sigverify.app.case.decide``, the same audit entries),
spread over a Ray cluster:

1. **Manifest** (``read_manifest``): CSV with a header or Parquet, columns ``item_id``, ``customer_id``,
   ``path`` (aliases: ``id``; ``customer``/``account_id``; ``image``/``image_path``/``uri``). Relative
   paths are relative to the manifest's folder. Bad rows become error results, as in ``batch``.
2. **Specimens** (``export_specimens``, on the driver, once): every manifest customer's active
   reference ids and embeddings under the model, from the library (missing embeddings computed and
   cached there), written to ``<out>.specimens.parquet`` and put in the object store once, so every
   worker decides against the same table without touching the database.
3. **Preprocess** in parallel Ray tasks (``map_batches`` of a function): read + decode + preprocess +
   SHA-256 of the file bytes. **Embed + decide** in an actor pool (``map_batches`` of a class,
   ``concurrency=workers``): each actor loads the model once from the model files shipped through the
   object store (weights + card, and the ONNX export when the driver runs on onnxruntime).
4. **Results** stream back in manifest order (``preserve_order``); the driver writes
   ``<out>.parquet`` (one row per item, with the item id) and ``<out>`` (the same CSV as ``batch``),
   both atomically, and a JSON summary.
5. **Audit merge** into the library database, idempotent: each record carries ``batch_item_key`` =
   SHA-256 of (item id, customer, questioned file SHA-256, reference ids, model id); keys already in
   the audit log are not appended again, so a re-run after a crash (of a worker, the driver or the
   merge itself; every chunk is one transaction) appends exactly the missing records.

Without ``address`` a local Ray is started with ``num_cpus`` CPUs (default 2). The module imports ray
only inside functions: ``sigverify`` works without the ``cluster`` extra.
"""

from __future__ import annotations

import csv
import io
import json
import os
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from sigverify.errors import DataError, ModelError, SigverifyError
from sigverify.progress import Progress

ID_ALIASES = ("item_id", "id", "item")
CUSTOMER_ALIASES = ("customer_id", "customer", "account_id", "account")
PATH_ALIASES = ("path", "image", "image_path", "questioned_path", "uri", "file")
MERGE_CHUNK = 500
PREPROCESS_BLOCK = 16  # items per preprocessing task
ACTOR_CPUS = 0.25  # logical CPUs an embed+decide actor claims


def require_ray():
    try:
        import ray  # noqa: F401
        import ray.data  # noqa: F401
    except ImportError as exc:
        raise SigverifyError("the Ray engine needs the 'cluster' extra: pip install 'sigverify[cluster]'") from exc
    return ray


# ---------------------------------------------------------------------------------------- manifest
@dataclass
class ManifestItem:
    item_id: str
    customer_id: str
    path: str  # resolved
    label: str  # as written in the manifest
    error: str | None = None


def _pick(columns: Sequence[str], aliases: Sequence[str], what: str, source: str) -> str:
    low = {c.strip().lower(): c for c in columns}
    for a in aliases:
        if a in low:
            return low[a]
    raise DataError(
        f"{source}: the manifest has no {what} column (expected one of: {', '.join(aliases)}; "
        f"found: {', '.join(map(str, columns)) or 'none'})"
    )


def read_manifest(path: str | os.PathLike) -> list[ManifestItem]:
    """Items of a CSV (with a header row) or Parquet manifest; see the module doc."""
    p = Path(path)
    if not p.is_file():
        raise DataError(f"{p}: no such manifest file")
    if p.suffix.lower() in (".parquet", ".pq"):
        try:
            import pyarrow.parquet as pq

            table = pq.read_table(p)
        except ImportError as exc:
            raise SigverifyError("Parquet manifests need pyarrow: pip install 'sigverify[cluster]'") from exc
        except Exception as exc:  # pyarrow raises its own types for damaged files
            raise DataError(f"{p.name}: cannot read the Parquet manifest ({exc})") from exc
        cols = table.column_names
        rows = [{c: ("" if v is None else str(v)) for c, v in r.items()} for r in table.to_pylist()]
    else:
        try:
            text = p.read_text(encoding="utf-8-sig")
        except (OSError, UnicodeDecodeError) as exc:
            raise DataError(f"{p}: cannot read the manifest ({exc})") from exc
        lines = [ln for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
        reader = csv.DictReader(io.StringIO("\n".join(lines)))
        cols = reader.fieldnames or []
        rows = [{k: (v or "").strip() for k, v in r.items() if k is not None} for r in reader]
    c_id = _pick(cols, ID_ALIASES, "item id", p.name)
    c_cust = _pick(cols, CUSTOMER_ALIASES, "customer id", p.name)
    c_path = _pick(cols, PATH_ALIASES, "image path", p.name)
    items: list[ManifestItem] = []
    seen: set[str] = set()
    for n, r in enumerate(rows, 1):
        iid, cid, raw = r.get(c_id, ""), r.get(c_cust, ""), r.get(c_path, "")
        err = None
        if not iid or not cid or not raw:
            err = f"manifest row {n}: item id, customer id and image path are all required"
        elif iid in seen:
            err = f"manifest row {n}: duplicate item id {iid!r}"
        seen.add(iid)
        q = Path(raw.removeprefix("file://")).expanduser() if raw else Path()
        resolved = str(q if q.is_absolute() else p.parent / q) if raw else ""
        items.append(ManifestItem(iid or f"row{n}", cid, resolved, raw or f"row {n}", err))
    if not items:
        raise DataError(f"{p}: the manifest has no items")
    return items


# ---------------------------------------------------------------------------------------- specimens
def customer_references(library, verifier, customer_id: str) -> tuple[list[int], np.ndarray] | str:
    """A customer's active reference ids and embeddings, or the error text the batch shows."""
    from sigverify.app.library_service import LibraryService  # the one embedding cache

    return LibraryService(library, verifier).customer_references(customer_id)


def export_specimens(library, verifier, customer_ids: Sequence[str], out: str | os.PathLike | None = None):
    """``{customer: (ids, (N, D) embeddings) | error text}`` for ``customer_ids``, and (with ``out``) the
    same as a Parquet table (customer_id, reference_ids, embeddings, error), written atomically."""
    specs = {cid: customer_references(library, verifier, cid) for cid in dict.fromkeys(customer_ids)}
    if out is not None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        from sigverify.atomic import atomic_path

        rows = {"customer_id": [], "reference_ids": [], "embeddings": [], "error": []}
        for cid, s in specs.items():
            rows["customer_id"].append(cid)
            if isinstance(s, str):
                rows["reference_ids"].append([])
                rows["embeddings"].append([])
                rows["error"].append(s)
            else:
                rows["reference_ids"].append([int(i) for i in s[0]])
                rows["embeddings"].append(np.asarray(s[1], np.float32).tolist())
                rows["error"].append("")
        table = pa.table(
            {
                "customer_id": pa.array(rows["customer_id"], pa.string()),
                "reference_ids": pa.array(rows["reference_ids"], pa.list_(pa.int64())),
                "embeddings": pa.array(rows["embeddings"], pa.list_(pa.list_(pa.float32()))),
                "error": pa.array(rows["error"], pa.string()),
            }
        )
        with atomic_path(out) as tmp:
            pq.write_table(table, tmp)
    return specs


def read_specimens(path: str | os.PathLike) -> dict:
    import pyarrow.parquet as pq

    out = {}
    for r in pq.read_table(path).to_pylist():
        out[r["customer_id"]] = r["error"] if r["error"] else (list(r["reference_ids"]), np.asarray(r["embeddings"], np.float32))
    return out


def item_key(item_id: str, customer_id: str, questioned_sha256: str, reference_ids: Sequence[int], model_id: str) -> str:
    """The idempotency key of one manifest item's verification."""
    from sigverify.hashing import sha256_bytes

    payload = json.dumps(
        {
            "item": item_id,
            "customer": customer_id,
            "q": questioned_sha256,
            "refs": sorted(int(i) for i in reference_ids),
            "model": model_id,
        },
        sort_keys=True,
    )
    return sha256_bytes(payload.encode("utf-8"))


# ---------------------------------------------------------------------------------------- Ray stages
def _preprocess_batch(batch: dict, cfg: dict) -> dict:
    """Ray task: read + decode + preprocess + SHA-256 for a batch of manifest rows (numpy batch)."""
    from sigverify.batch import BatchItem, _read_and_preprocess
    from sigverify.imaging.preprocess import PreprocessConfig

    config = PreprocessConfig.from_dict(cfg)
    h, w = config.input_height, config.input_width
    paths = batch["path"]
    n = len(paths)
    inputs = np.zeros((n, h, w), np.uint8)
    shas, errors = [""] * n, [""] * n
    for k in range(n):
        path = str(paths[k])
        try:
            inp, sha = _read_and_preprocess(BatchItem(str(batch["customer_id"][k]), path), config)
            inputs[k], shas[k] = inp, sha
        except SigverifyError as exc:
            errors[k] = str(exc)
        except Exception as exc:  # a decoder crash on a hostile file must not stop the batch
            errors[k] = f"{os.path.basename(path)}: cannot be processed ({exc})"
    return {
        "idx": batch["idx"],
        "customer_id": batch["customer_id"],
        "path": paths,
        "label": batch["label"],
        "input": inputs,
        "sha256": np.array(shas, dtype=object),
        "error": np.array(errors, dtype=object),
    }


class _EmbedDecide:
    """Ray actor: loads the model once (from files shipped via the object store), then embeds and
    decides every batch against the shared specimen table."""

    def __init__(self, model_files, specimens, settings: dict):
        import ray

        from sigverify.verify.service import Verifier

        files = ray.get(model_files) if isinstance(model_files, ray.ObjectRef) else model_files
        self._dir = tempfile.mkdtemp(prefix="sigverify-actor-")
        for name, data in files.items():
            Path(self._dir, name).write_bytes(data)
        device = settings.get("device") or "cpu"
        onnx = [n for n in files if n.endswith(".onnx")]
        # with the ONNX export shipped, a CPU actor never imports torch (starts in ~1 s, not ~3-5 s)
        model = onnx[0] if onnx and device == "cpu" else next(n for n in files if n.endswith(".safetensors"))
        self.verifier = Verifier(
            Path(self._dir, model),
            device=device,
            metric=settings["metric"],
            aggregate=settings["aggregate"],
            adapt_to_person=settings["adapt_to_person"],
        )
        self.verifier.embedder.batch_size = int(settings.get("batch_size", 64))
        table = ray.get(specimens) if isinstance(specimens, ray.ObjectRef) else specimens
        self.specimens = {
            r["customer_id"]: (list(r["reference_ids"]), np.asarray(r["embeddings"], np.float32))
            for r in table.to_pylist()
            if not r["error"]
        }
        self.backend = getattr(self.verifier.embedder, "backend", "torch")

    def __call__(self, batch: dict) -> dict:
        from sigverify.app.case import decide
        from sigverify.store.audit import entry_from_decision

        v = self.verifier
        n = len(batch["idx"])
        errors = [str(e) for e in batch["error"]]
        good = [k for k in range(n) if not errors[k]]
        embs = v.embedder.embed_arrays([batch["input"][k] for k in good]) if good else []
        verdict, score, dist, entries = [""] * n, [np.nan] * n, [np.nan] * n, [""] * n
        for k, e in zip(good, embs):
            cid = str(batch["customer_id"][k])
            ids, ref_embs = self.specimens[cid]
            dec = decide(v, e, ref_embs)
            verdict[k], score[k], dist[k] = dec.verdict.zone, float(dec.verdict.score), float(dec.verdict.distance)
            entry = entry_from_decision(
                dec,
                os.path.basename(str(batch["path"][k])),
                str(batch["sha256"][k]),
                v,
                cid,
                ids,
                {"batch_file": str(batch["label"][k])},
            )
            d = asdict(entry)
            d["warnings"] = list(dec.warnings)
            entries[k] = json.dumps(d, default=float)
        return {
            "idx": batch["idx"],
            "verdict": np.array(verdict, dtype=object),
            "score": np.array(score, np.float64),
            "distance": np.array(dist, np.float64),
            "error": np.array(errors, dtype=object),
            "entry": np.array(entries, dtype=object),
        }


# ---------------------------------------------------------------------------------------- driver
def model_files(verifier) -> dict[str, bytes]:
    """What ships to every worker: the weights and card (and the verified ONNX export when the
    driver's embedder runs on onnxruntime)."""
    from sigverify.model.card import card_path_for

    path = getattr(verifier.model, "path", None)
    if not path or not Path(path).suffix == ".safetensors":
        raise ModelError("the Ray engine needs a model file (.safetensors + card); random weights cannot be shipped")
    path = Path(path)
    files = {path.name: path.read_bytes(), card_path_for(path).name: card_path_for(path).read_bytes()}
    cohort = ((verifier.card.decision or {}).get("cohort") or {}).get("file") if hasattr(verifier.card, "decision") else None
    if cohort:  # the decision stage's cohort embeddings, referenced by the card
        files[Path(cohort).name] = path.with_name(Path(cohort).name).read_bytes()
    if getattr(verifier.embedder, "backend", "torch") == "onnxruntime":
        from sigverify.model.onnx_backend import find_export, sidecar_for

        onnx = find_export(verifier.card, path)
        if onnx is not None:  # shipped under the name the backend looks for beside the weights
            files[path.with_suffix(".onnx").name] = onnx.read_bytes()
            files[path.with_suffix(".onnx").name + ".json"] = sidecar_for(onnx).read_bytes()
    return files


def _existing_keys(library, keys: Sequence[str]) -> dict[str, int]:
    """Audit ids of the batch records that already carry one of ``keys``."""
    out: dict[str, int] = {}
    keys = list(keys)
    for k in range(0, len(keys), 500):
        part = keys[k : k + 500]
        rows = library._q(
            "SELECT id, json_extract(details, '$.batch_item_key') FROM audit_verifications "
            "WHERE source = 'batch' AND json_extract(details, '$.batch_item_key') IN "
            f"({','.join('?' * len(part))})",
            part,
        )
        for r in rows:
            out.setdefault(str(r[1]), int(r[0]))
    return out


def start_ray(address: str | None = None, num_cpus: int = 2):
    ray = require_ray()
    if ray.is_initialized():
        return ray
    kw = dict(include_dashboard=False, log_to_driver=False, configure_logging=True, logging_level="ERROR")
    if address:
        ray.init(address=address, **kw)
    else:
        os.environ.setdefault("RAY_DATA_DISABLE_PROGRESS_BARS", "1")
        ray.init(num_cpus=num_cpus, **kw)
    return ray


def run_ray_batch(
    manifest: str | os.PathLike | Sequence[ManifestItem],
    library,
    verifier,
    out: str | os.PathLike,
    *,
    address: str | None = None,
    workers: int = 1,
    num_cpus: int = 2,
    batch_size: int = 64,
    audit: bool = True,
    operator: str | None = None,
    progress: Progress | None = None,
    gpus_per_worker: float = 0.0,
):
    """Run the manifest on Ray; returns a ``sigverify.batch.BatchReport`` (results in manifest order)
    with ``extra`` timings. Writes ``out`` (CSV), ``out``'s ``.parquet`` and ``.specimens.parquet``
    siblings and a ``.summary.json``. ``gpus_per_worker`` > 0 puts the embed actors on GPUs (torch
    on CUDA there; the ONNX export is CPU-only). See the module doc."""
    from sigverify.atomic import atomic_path, write_text_atomic
    from sigverify.batch import BatchReport, BatchResult
    from sigverify.store.audit import VerificationEntry

    t_start = time.perf_counter()
    items = read_manifest(manifest) if isinstance(manifest, (str, os.PathLike)) else list(manifest)
    out = Path(out)
    stem = out.with_suffix("")
    parquet_out, specimens_out, summary_out = (
        Path(f"{stem}.parquet"),
        Path(f"{stem}.specimens.parquet"),
        Path(f"{stem}.summary.json"),
    )
    ray = start_ray(address, num_cpus)
    import pyarrow as pa
    import pyarrow.parquet as pq

    t0 = time.perf_counter()
    specs = export_specimens(library, verifier, [it.customer_id for it in items if not it.error], specimens_out)
    spec_s = time.perf_counter() - t0
    results = [BatchResult(it.customer_id, it.label) for it in items]
    rows = []
    for i, it in enumerate(items):
        if it.error:
            results[i].error = it.error
        elif isinstance(specs[it.customer_id], str):
            results[i].error = specs[it.customer_id]
        else:
            rows.append({"idx": i, "customer_id": it.customer_id, "path": it.path, "label": it.label})
    rep = BatchReport(
        [], len(items), verifier.model.model_id, f"ray ({workers} {'GPU' if gpus_per_worker > 0 else 'CPU'} worker(s))"
    )
    settings = {
        "metric": verifier.metric,
        "aggregate": verifier.aggregate,
        "adapt_to_person": verifier.adapt_to_person,
        "batch_size": batch_size,
        "device": "cuda" if gpus_per_worker > 0 else "cpu",
    }
    ctx = ray.data.DataContext.get_current()
    ctx.execution_options.preserve_order = True
    ctx.enable_progress_bars = False
    ctx.print_on_execution_start = False
    ctx.execution_options.verbose_progress = False
    import logging

    for name in ("ray.data", "ray"):
        logging.getLogger(name).setLevel(logging.WARNING)
    t0 = time.perf_counter()
    done = 0
    entries: dict[int, dict] = {}
    if rows:
        files_ref = ray.put(model_files(verifier))
        spec_ref = ray.put(pq.read_table(specimens_out))
        # small preprocessing tasks (PREPROCESS_BLOCK items) keep every CPU busy to the end; the actors
        # get batch_size items per call and claim little CPU (embedding is ~10 % of an item's work)
        pre = max(1, min(batch_size, PREPROCESS_BLOCK))
        ds = ray.data.from_items(rows, override_num_blocks=max(1, (len(rows) + pre - 1) // pre))
        ds = ds.map_batches(
            _preprocess_batch,
            fn_kwargs={"cfg": verifier.embedder.preprocess_config.to_dict()},
            batch_size=pre,
            batch_format="numpy",
            num_cpus=1,
        )
        ds = ds.map_batches(
            _EmbedDecide,
            fn_constructor_kwargs={"model_files": files_ref, "specimens": spec_ref, "settings": settings},
            batch_size=batch_size,
            batch_format="numpy",
            compute=ray.data.ActorPoolStrategy(size=max(1, int(workers))),
            num_cpus=ACTOR_CPUS,
            **({"num_gpus": gpus_per_worker} if gpus_per_worker > 0 else {}),
        )
        for b in ds.iter_batches(batch_size=None, batch_format="numpy"):
            for k in range(len(b["idx"])):
                i = int(b["idx"][k])
                r = results[i]
                if b["error"][k]:
                    r.error = str(b["error"][k])
                else:
                    r.verdict, r.score, r.distance = str(b["verdict"][k]), float(b["score"][k]), float(b["distance"][k])
                    entries[i] = json.loads(str(b["entry"][k]))
                    r.warnings = list(entries[i].pop("warnings", []))
            done += len(b["idx"])
            if progress:
                progress(done / max(len(rows), 1), f"{done}/{len(rows)} verified on Ray")
    ray_s = time.perf_counter() - t0
    # ---- idempotent audit merge: keys already in the log are not appended again
    t0 = time.perf_counter()
    keys = {
        i: item_key(items[i].item_id, items[i].customer_id, e["questioned_sha256"], e["reference_ids"], e["model_id"])
        for i, e in entries.items()
    }
    merged_new = 0
    if audit and entries:
        have = _existing_keys(library, list(keys.values()))
        todo = [i for i in sorted(entries) if keys[i] not in have]
        for i in sorted(entries):
            if keys[i] in have:
                results[i].audit_id = have[keys[i]]
        for c in range(0, len(todo), MERGE_CHUNK):
            part = todo[c : c + MERGE_CHUNK]
            batch_entries = []
            for i in part:
                e = dict(entries[i])
                e["details"] = {**e["details"], "batch_item": items[i].item_id, "batch_item_key": keys[i]}
                batch_entries.append(VerificationEntry(**e))
            aids = library.audit.append_many(batch_entries, "batch", operator, decide_automatically=True)
            for i, aid in zip(part, aids):
                results[i].audit_id = aid
            merged_new += len(part)
    rep.audit_s = time.perf_counter() - t0
    rep.results = results
    rep.embed_s = ray_s
    rep.elapsed_s = time.perf_counter() - t_start
    # ---- results: Parquet (with item ids and keys) + the batch CSV + a summary, all atomic
    table = pa.table(
        {
            "item_id": [it.item_id for it in items],
            "customer_id": [r.customer for r in results],
            "file": [r.file for r in results],
            "verdict": [r.verdict or None for r in results],
            "score": pa.array([r.score for r in results], pa.float64()),
            "distance": pa.array([r.distance for r in results], pa.float64()),
            "error": [r.error or None for r in results],
            "audit_id": pa.array([r.audit_id for r in results], pa.int64()),
            "batch_item_key": [keys.get(i) for i in range(len(items))],
        }
    )
    with atomic_path(parquet_out) as tmp:
        pq.write_table(table, tmp)
    rep.write_csv(out)
    summary = rep.summary_dict()
    summary.update(
        {
            "engine": "ray",
            "workers": int(workers),
            "address": address or "local",
            "ray_items_per_s": round(len(rows) / ray_s, 2) if ray_s > 0 and rows else None,
            "timing_s": {"specimens": round(spec_s, 3), "ray": round(ray_s, 3), "merge": round(rep.audit_s, 3)},
            "audit_appended": merged_new,
            "audit_already_merged": len(entries) - merged_new if audit else 0,
            "results_parquet": str(parquet_out),
            "specimens_parquet": str(specimens_out),
            "out": str(out),
        }
    )
    write_text_atomic(summary_out, json.dumps(summary, indent=2))
    rep.ray_summary = summary
    return rep


__all__ = [
    "ManifestItem",
    "read_manifest",
    "export_specimens",
    "read_specimens",
    "item_key",
    "run_ray_batch",
    "customer_references",
    "model_files",
    "start_ray",
    "require_ray",
]
