"""Likeness guard search: real face templates, numpy and faiss backends give the same answers."""
import csv

import numpy as np
import pytest

from avatar.analysis.evaluation import face_template_of_file
from avatar.domain.guard import Entry, Gallery


@pytest.fixture(scope="module")
def faces(shared_data):
    rows = list(csv.DictReader(open(shared_data / "faces/pairs.csv")))
    names = sorted({r["file_x"] for r in rows} | {r["file_y"] for r in rows})
    same = {(r["file_x"], r["file_y"]) for r in rows if r["same"] == "1"}
    return {n: face_template_of_file(shared_data / "faces" / n) for n in names}, same


@pytest.mark.parametrize("backend", ["numpy", "faiss"])
def test_face_gallery_matches_the_same_person_only(faces, backend):
    templates, same = faces
    rng = np.random.default_rng(0)
    decoys = [Entry("user", 1000 + i, f"decoy {i}", (rng.normal(0, 0.06, 128)).astype(np.float32)) for i in range(500)]
    for probe, other in sorted(same)[:10]:
        gallery = Gallery("face", decoys + [Entry("user", 1, other, templates[other])], backend)
        hit = gallery.match(templates[probe])
        assert hit is not None and hit["label"] == other and hit["distance"] < 0.6
    strangers = [n for n in templates if (n, "img1.jpg") not in same and ("img1.jpg", n) not in same and n != "img1.jpg"]
    gallery = Gallery("face", decoys + [Entry("user", 2, "img1", templates["img1.jpg"])], backend)
    for n in strangers[:8]:
        assert gallery.match(templates[n]) is None, n


def test_backends_agree_on_nearest(faces):
    templates, _ = faces
    entries = [Entry("user", i, n, t) for i, (n, t) in enumerate(templates.items())]
    a, b = Gallery("face", entries, "numpy"), Gallery("face", entries, "faiss")
    for t in list(templates.values())[:6]:
        ca, cb = a.candidates(t, k=3), b.candidates(t, k=3)
        assert [i for i, _ in ca] == [i for i, _ in cb]
        assert np.allclose([s for _, s in ca], [s for _, s in cb], atol=1e-3)


def test_empty_gallery():
    assert Gallery("face", [], "faiss").match(np.zeros(128, np.float32)) is None
    assert Gallery("voice", [], "numpy").match(np.zeros((3, 256), np.float32)) is None


def test_large_galleries_use_an_inverted_file_index_that_still_finds_the_match(monkeypatch):
    import numpy as np

    from avatar.domain import guard

    monkeypatch.setattr(guard, "APPROXIMATE_FROM", 1000)
    rng = np.random.default_rng(3)
    vecs = rng.standard_normal((20000, 128)).astype(np.float32)
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    entries = [guard.Entry("user", i, f"user {i}", v) for i, v in enumerate(vecs)]
    gallery = guard.Gallery("face", entries, backend="faiss")
    assert type(gallery._faiss).__name__ == "IndexIVFFlat"
    for owner in (7, 12345, 19999):
        probe = vecs[owner] + rng.standard_normal(128).astype(np.float32) * 0.03
        hit = gallery.match(probe)
        assert hit is not None and hit["owner_id"] == owner
    assert gallery.match(rng.standard_normal(128).astype(np.float32) * 0.1) is None
