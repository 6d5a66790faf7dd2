"""The clerk's crop rectangle is part of the case (issue 13 / 15): a re-crop gets a record of its own, the
same rectangle again is a re-run of the recorded case."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from sigverify.app.case import build_case, record_case
from sigverify.paths import samples_dir
from sigverify.store.library import Library

REFS = [str(samples_dir() / f"alice_ref{i}.png") for i in (1, 2, 3)]
Q = str(samples_dir() / "alice_questioned_forgery.png")


@pytest.fixture(scope="module")
def verifier():
    from sigverify.model.embedder import open_model
    from sigverify.verify.service import Verifier

    return Verifier(open_model(None), "cpu")


def test_a_recrop_is_a_case_of_its_own_and_the_same_crop_a_rerun(verifier, tmp_path):
    img = np.asarray(Image.open(Q).convert("RGB"))
    h, w = img.shape[:2]
    lib = Library(tmp_path / "lib.sqlite3")
    try:

        def case(crop):
            q = verifier.signature_from_array(img, Q, True, crop=crop)
            return record_case(build_case(verifier, q, REFS), lib, verifier=verifier)

        auto = case(None)
        whole = case((0, 0, w, h))
        part = case((0, 0, w * 3 // 4, h))
        assert auto.crop is None and whole.crop == (0, 0, w, h)
        assert len({auto.key, whole.key, part.key}) == 3
        assert not (auto.rerun or whole.rerun or part.rerun) and lib.audit.count()[0] == 3
        again = case((0, 0, w, h))
        assert again.rerun and again.audit_id == whole.audit_id and lib.audit.count()[0] == 3
        assert lib.audit.get(whole.audit_id).details["questioned_region"] == [0, 0, w, h]
    finally:
        lib.close()
