"""Batch verification: many questioned signatures against the customers' library references (no Qt).

Input (``load_items``):
- a CSV with rows ``customer_id,questioned_path`` (header optional, ``#`` comments and blank lines
  ignored; relative paths are relative to the CSV's folder), or
- a folder whose sub-folders are named by customer id and hold that customer's questioned images.

``run_batch`` preprocesses the files (a small thread pool: OpenCV and image decoding release the GIL),
embeds them in batches (``Embedder.embed_arrays``; GPU when the verifier runs on one), decides each
against the customer's cached reference embeddings and appends every verification to the audit log
(source ``batch``, decision source ``batch``). A bad row (unknown customer, customer without active
references, unreadable or blank file, malformed CSV line) becomes an error result; nothing else stops
the run. Cancelling (``should_stop``) returns the partial report with ``cancelled=True``.

Durable and resumable (issue 14): every chunk's results are stored in the library database
(``batch_results``) in the *same transaction* as its audit records, so a crash, a kill -9 or a full
disk loses at most the chunk in flight and never leaves an audit record without its result. A run
is identified by ``run_key`` (SHA-256 of the items, the model and the decision settings); each item
has an idempotency key (``item_key``: run key + position + customer + path) stored in its audit
record's details. Rerunning the same input resumes the run: items already verified are taken from
the database (no second verification, no duplicate audit record); items that ended in an error are
tried again. ``new_run=True`` (CLI ``--new-run``) verifies everything again as a new run.
"""

from __future__ import annotations

import csv
import io
import os
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from sigverify.errors import DataError, SigverifyError
from sigverify.progress import Progress, ShouldStop
from sigverify.safetext import csv_row, display_name

RESULT_COLUMNS = ["customer", "file", "verdict", "score", "distance", "error", "audit_id"]
_HEADER_FIRST = {"customer", "customer_id", "account", "account_id", "customer id", "account id"}


@dataclass
class BatchItem:
    customer_id: str
    path: str  # resolved path to read
    label: str = ""  # as written in the input (CSV cell, or path relative to the folder)
    error: str | None = None  # set when the input row itself is bad

    def __post_init__(self):
        if not self.label:
            self.label = self.path


@dataclass
class BatchResult:
    customer: str
    file: str
    verdict: str = ""
    score: float | None = None
    distance: float | None = None
    error: str = ""
    audit_id: int | None = None
    warnings: list[str] = field(default_factory=list)

    def row(self) -> dict:
        return {
            "customer": display_name(self.customer),
            "file": display_name(self.file),
            "verdict": self.verdict,
            "score": "" if self.score is None else f"{self.score:.2f}",
            "distance": "" if self.distance is None else f"{self.distance:.6f}",
            "error": self.error,
            "audit_id": "" if self.audit_id is None else self.audit_id,
        }

    def to_dict(self) -> dict:
        return {
            "customer": self.customer,
            "file": self.file,
            "verdict": self.verdict or None,
            "score": self.score,
            "distance": self.distance,
            "error": self.error or None,
            "audit_id": self.audit_id,
            "warnings": self.warnings,
        }


@dataclass
class BatchReport:
    results: list[BatchResult]
    n_items: int
    model_id: str
    device: str = ""
    cancelled: bool = False
    run_key: str = ""
    resumed: int = 0  # items taken from an earlier, interrupted run of the same input
    elapsed_s: float = 0.0
    read_preprocess_s: float = 0.0  # wall time of the (threaded) decode + preprocess stage
    embed_s: float = 0.0
    decide_s: float = 0.0
    audit_s: float = 0.0

    @property
    def processed(self) -> int:
        return len(self.results)

    @property
    def errors(self) -> list[BatchResult]:
        return [r for r in self.results if r.error]

    def counts(self) -> dict[str, int]:
        c = Counter(r.verdict for r in self.results if not r.error)
        return {k: int(c.get(k, 0)) for k in ("genuine", "refer", "forgery")}

    @property
    def images_per_s(self) -> float:
        """Items verified by this run per second (items resumed from an earlier run do not count)."""
        return (self.processed - self.resumed) / self.elapsed_s if self.elapsed_s > 0 else 0.0

    def summary_dict(self) -> dict:
        return {
            "items": self.n_items,
            "processed": self.processed,
            "verdicts": self.counts(),
            "errors": len(self.errors),
            "cancelled": self.cancelled,
            "model": self.model_id,
            "run_key": self.run_key,
            "resumed": self.resumed,
            "device": self.device,
            "elapsed_s": round(self.elapsed_s, 3),
            "images_per_s": round(self.images_per_s, 2),
            "timing_s": {
                "read_preprocess": round(self.read_preprocess_s, 3),
                "embed": round(self.embed_s, 3),
                "decide": round(self.decide_s, 3),
                "audit": round(self.audit_s, 3),
            },
        }

    def to_dict(self) -> dict:
        d = self.summary_dict()
        d["results"] = [r.to_dict() for r in self.results]
        return d

    def summary_text(self) -> str:
        c = self.counts()
        lines = [
            f"{self.processed} of {self.n_items} item(s) processed"
            + (" (CANCELLED)" if self.cancelled else "")
            + f" in {self.elapsed_s:.1f} s: {self.images_per_s:.1f} images/s on {self.device or 'cpu'}"
            + (
                f"\n  {self.resumed} item(s) were already done in an earlier run of this input (not verified "
                "or audited again; --new-run verifies everything again)"
                if self.resumed
                else ""
            ),
            f"  genuine {c['genuine']}   refer {c['refer']}   forgery {c['forgery']}   errors {len(self.errors)}",
            f"  time: read+preprocess {self.read_preprocess_s:.1f} s, embed {self.embed_s:.1f} s, "
            f"decide {self.decide_s:.2f} s, audit {self.audit_s:.2f} s",
        ]
        for r in self.errors[:20]:
            lines.append(f"  error: {r.customer or '?'} / {r.file}: {r.error}")
        if len(self.errors) > 20:
            lines.append(f"  ... and {len(self.errors) - 20} more error(s) (see the results CSV)")
        return "\n".join(lines)

    def to_csv_text(self) -> str:
        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=RESULT_COLUMNS, lineterminator="\n")
        w.writeheader()
        for r in self.results:
            w.writerow(csv_row(r.row()))  # formulas neutralised (OWASP); names always valid UTF-8
        return buf.getvalue()

    def write_csv(self, path: str | os.PathLike) -> None:
        """Results CSV (customer, file, verdict, score, distance, error, audit_id), written atomically."""
        from sigverify.atomic import write_text_atomic

        write_text_atomic(path, self.to_csv_text())


# ---- input ------------------------------------------------------------------------------------------
def items_from_csv(path: str | os.PathLike) -> list[BatchItem]:
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"{p}: cannot read the batch CSV ({exc})") from exc
    base = p.parent
    items: list[BatchItem] = []
    first = True
    for lineno, row in enumerate(csv.reader(io.StringIO(text)), 1):
        cells = [c.strip() for c in row]
        while cells and not cells[-1]:
            cells.pop()
        if not cells or cells[0].startswith("#"):
            continue
        if first:
            first = False
            if cells[0].lower() in _HEADER_FIRST:
                continue
        if len(cells) != 2 or not cells[0] or not cells[1]:
            items.append(
                BatchItem(
                    cells[0] if cells else "",
                    "",
                    f"line {lineno}",
                    f"line {lineno}: expected 'customer_id,questioned_path', got {len(cells)} field(s)",
                )
            )
            continue
        q = Path(cells[1]).expanduser()
        items.append(BatchItem(cells[0], str(q if q.is_absolute() else base / q), cells[1]))
    return items


def items_from_folder(path: str | os.PathLike) -> list[BatchItem]:
    root = Path(path)
    items: list[BatchItem] = []
    for entry in sorted(root.iterdir()):
        if entry.name.startswith("."):
            continue
        if entry.is_dir():
            for f in sorted(entry.rglob("*")):
                # not only regular files: a FIFO or device is listed and refused by the reader with a
                # clear error instead of being skipped in silence
                if not f.is_dir() and not f.name.startswith("."):
                    items.append(BatchItem(entry.name, str(f), f.relative_to(root).as_posix()))
        elif entry.is_file():
            items.append(
                BatchItem(
                    "",
                    str(entry),
                    entry.name,
                    f"{entry.name}: not inside a customer sub-folder (expected FOLDER/<customer id>/<image>)",
                )
            )
    return items


def load_items(path: str | os.PathLike) -> list[BatchItem]:
    """Batch items from a CSV file or a folder of per-customer sub-folders."""
    p = Path(path)
    if p.is_dir():
        items = items_from_folder(p)
    elif p.is_file():
        items = items_from_csv(p)
    else:
        raise DataError(f"{p}: no such CSV file or folder")
    if not items:
        raise DataError(
            f"{p}: no questioned images found (expected a CSV 'customer_id,questioned_path' "
            "or a folder of <customer id>/ sub-folders)"
        )
    return items


# ---- run --------------------------------------------------------------------------------------------
def _read_and_preprocess(item: BatchItem, cfg):
    from sigverify.app.library_service import read_specimen_file
    from sigverify.hashing import sha256_bytes
    from sigverify.imaging.load import decode_and_preprocess

    data = read_specimen_file(item.path)
    return decode_and_preprocess(data, display_name(os.path.basename(item.path)), cfg).input, sha256_bytes(data)


def run_key_for(items: Sequence[BatchItem], verifier, audit: bool = True, extra: dict | None = None) -> str:
    """The identity of a batch run: the items (customer, path, label, in order), the model and the
    decision settings. The same input verified the same way gives the same key (so it resumes)."""
    import json

    from sigverify.hashing import sha256_bytes

    d = {
        "items": [[display_name(it.customer_id), display_name(it.path), display_name(it.label), it.error or ""] for it in items],
        "model": verifier.model.model_id,
        "metric": getattr(verifier, "metric", ""),
        "aggregate": getattr(verifier, "aggregate", ""),
        "adapt": bool(getattr(verifier, "adapt_to_person", True)),
        "audit": bool(audit),
        **(extra or {}),
    }
    return sha256_bytes(json.dumps(d, sort_keys=True, ensure_ascii=False).encode("utf-8"))


def item_key(run_key: str, index: int, item: BatchItem) -> str:
    """The idempotency key of one item of a run (stored with its result and in its audit record)."""
    from sigverify.hashing import sha256_bytes

    return sha256_bytes(f"{run_key}\n{index}\n{display_name(item.customer_id)}\n{display_name(item.path)}".encode("utf-8"))


def run_batch(
    items: Sequence[BatchItem],
    library,
    verifier,
    progress: Progress | None = None,
    should_stop: ShouldStop | None = None,
    *,
    audit: bool = True,
    operator: str | None = None,
    batch_size: int | None = None,
    workers: int | None = None,
    new_run: bool = False,
    input_name: str = "",
) -> "BatchReport":
    """Verify every item against its customer's active references in ``library``; see the module doc."""
    from sigverify.app.case import decide
    from sigverify.app.library_service import LibraryService
    from sigverify.store.audit import entry_from_decision, utc_now

    t_start = time.perf_counter()
    bs = int(batch_size if batch_size is not None else (getattr(verifier.embedder, "batch_size", 64) or 64))
    if bs < 1:
        raise SigverifyError(f"batch size must be 1 or more (got {bs})")
    if workers is not None and int(workers) < 1:
        raise SigverifyError(f"workers must be 1 or more (got {workers})")
    n_workers = int(workers or min(4, max(1, os.cpu_count() or 1)))
    cfg = verifier.embedder.preprocess_config
    rep = BatchReport([], len(items), verifier.model.model_id, getattr(verifier, "device_text", ""))
    run_key = run_key_for(items, verifier, audit, {"new_run": utc_now()} if new_run else None)
    rep.run_key = run_key
    library.batch_start(run_key, input_name, len(items), verifier.model.model_id)
    done = library.batch_done(run_key)  # index -> stored result of an earlier (interrupted) run
    final: dict[int, BatchResult] = {}
    for i, d in done.items():
        final[i] = BatchResult(
            d["customer"], d["file"], d["verdict"], d["score"], d["distance"], d["error"], d["audit_id"], d["warnings"]
        )
    rep.resumed = len(final)
    service = LibraryService(library, verifier)  # the embedding cache and the customers' decision options
    refs: dict[str, tuple[list[int], np.ndarray] | str] = {}
    options: dict[str, dict] = {}  # per customer: decision options (a supervisor's threshold override)

    def customer_refs(cid: str):
        if cid not in refs:
            refs[cid] = service.customer_references(cid)
            if not isinstance(refs[cid], str):
                options[cid] = service.case_options(cid)
        return refs[cid]

    pending = [i for i in range(len(items)) if i not in final]
    pool = ThreadPoolExecutor(n_workers) if n_workers > 1 else None
    interrupted = False
    try:
        for start in range(0, len(pending), bs):
            if should_stop and should_stop():
                rep.cancelled = True
                break
            index = pending[start : start + bs]
            chunk = [items[i] for i in index]
            results = [BatchResult(display_name(it.customer_id), display_name(it.label)) for it in chunk]
            todo: list[int] = []
            for k, it in enumerate(chunk):
                if it.error:
                    results[k].error = it.error
                    continue
                r = customer_refs(it.customer_id)
                if isinstance(r, str):
                    results[k].error = r
                else:
                    todo.append(k)
            t0 = time.perf_counter()

            def work(k):
                try:
                    return _read_and_preprocess(chunk[k], cfg)
                except SigverifyError as exc:
                    return exc
                except Exception as exc:  # a decoder crash on a hostile file must not stop the batch
                    return SigverifyError(f"{display_name(os.path.basename(chunk[k].path))}: cannot be processed ({exc})")

            outs = list(pool.map(work, todo)) if pool else [work(k) for k in todo]
            rep.read_preprocess_s += time.perf_counter() - t0
            good, inputs, digests = [], [], []
            for k, o in zip(todo, outs):
                if isinstance(o, Exception):
                    results[k].error = str(o)
                else:
                    good.append(k)
                    inputs.append(o[0])
                    digests.append(o[1])
            t0 = time.perf_counter()
            embs = verifier.embedder.embed_arrays(inputs) if inputs else np.zeros((0, 1), np.float32)
            rep.embed_s += time.perf_counter() - t0
            t0 = time.perf_counter()
            entries = []
            for k, e, digest in zip(good, embs, digests):
                ids, ref_embs = refs[chunk[k].customer_id]  # type: ignore[misc]
                dec = decide(verifier, e, ref_embs, **options.get(chunk[k].customer_id, {}))
                res = results[k]
                res.verdict, res.score, res.distance = dec.verdict.zone, dec.verdict.score, dec.verdict.distance
                res.warnings = list(dec.warnings)
                det = {
                    "batch_file": display_name(chunk[k].label),
                    "batch_run": run_key,
                    "batch_item_key": item_key(run_key, index[k], chunk[k]),
                }
                if dec.threshold_override != 1.0:  # a supervisor's per-customer override was applied
                    det["threshold_override"] = dec.threshold_override
                entries.append(
                    entry_from_decision(
                        dec, display_name(os.path.basename(chunk[k].path)), digest, verifier, chunk[k].customer_id, ids, det
                    )
                )
            rep.decide_s += time.perf_counter() - t0
            t0 = time.perf_counter()
            keys = [item_key(run_key, i, it) for i, it in zip(index, chunk)]

            def store(conn, aids, _good=good, _results=results, _index=index, _keys=keys):
                for k, aid in zip(_good, aids):
                    _results[k].audit_id = aid
                library.batch_store(conn, run_key, list(zip(_index, _keys, _results)))

            if audit and entries:  # results and their audit records: one transaction
                library.audit.append_many(entries, "batch", operator, decide_automatically=True, in_transaction=store)
            else:
                library.batch_store(None, run_key, list(zip(index, keys, results)))
            rep.audit_s += time.perf_counter() - t0
            for i, r in zip(index, results):
                final[i] = r
            if progress:
                n = len(final)
                progress(
                    n / max(len(items), 1), f"{n}/{len(items)} verified ({sum(1 for r in final.values() if r.error)} error(s))"
                )
    except BaseException:
        interrupted = True
        raise
    finally:
        if pool:
            pool.shutdown(wait=not interrupted, cancel_futures=True)
        rep.results = [final[i] for i in sorted(final)]
        if not rep.cancelled and not interrupted and len(final) == len(items):
            library.batch_finish(run_key)
        rep.elapsed_s = time.perf_counter() - t_start
    return rep


__all__ = [
    "BatchItem",
    "BatchResult",
    "BatchReport",
    "load_items",
    "items_from_csv",
    "items_from_folder",
    "run_batch",
    "RESULT_COLUMNS",
    "run_key_for",
    "item_key",
]
