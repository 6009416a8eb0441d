"""The gallery, quality and doubtful-frames API through Flask's test client, on real boxes.

As in ``test_web_api.py``: the real loop, model, examples library (SQLite in a temporary
folder) and mock panel; frames come from the synthetic camera and the test steps the
loop itself.  Every example here was really taught and stored; answers are checked
against a head taught from scratch with only the examples that should be left.
"""

from __future__ import annotations

import dataclasses
import io
import threading

import numpy as np
import pytest
from gpiozero.pins.mock import MockFactory, MockPWMPin
from PIL import Image

import device.box
from device.box import Box as DeviceBox
from device.box import NoLibrary
from device.camera import CameraSupervisor, SyntheticCamera
from device.config import WebConfig
from device.head import STATUS_UNKNOWN, NearestCentroidHead
from device.loop import TeachLoop
from device.storage import model_identity
from test_web_api import (JPEG_MAGIC, MODEL_MIRROR, PIN, REMOTE_ADDR, SMALL_MODEL, browser_at, error_of,
                          finish_switch, make_rig, post, status, unlock)
from web_ui.app import create_app


@pytest.fixture
def rig(embedder, factory, tmp_path):
    rig = make_rig(embedder, factory, tmp_path / "state")
    yield rig
    rig.box.close()


@pytest.fixture
def app(rig):
    return create_app({"TESTING": True}, box=rig.box, web=WebConfig(pin=PIN))


@pytest.fixture
def owner(app):
    """The owner's phone, unlocked (elsewhere on the network, like a real phone)."""
    client = browser_at(app, "10.0.0.8")
    unlock(client)
    return client


@pytest.fixture
def stranger(app):
    """Another browser on the network, locked."""
    return browser_at(app, REMOTE_ADDR)


# -- helpers --------------------------------------------------------------------------------------

def teach(rig, class_id, scene, n):
    """Teach ``n`` frames of ``scene`` to ``class_id`` as one burst; ``[(class, embedding)]`` in teaching order."""
    rig.camera.select(scene)
    rig.loop.teach_next(class_id, n)
    taught = []
    for _ in range(n):
        result = rig.loop.step()
        assert result.taught == class_id
        taught.append((class_id, result.embedding.copy()))  # the loop reuses its buffers
    rig.loop.step()  # the burst has ended: it goes to the writer
    rig.loop.keeper.settle()
    quiet_inbox(rig)
    return taught


def quiet_inbox(rig):
    """Forget the frames the loop itself kept as doubtful: the tests plant their own."""
    rig.box.inbox.clear()


def all_ids(rig):
    """Every stored example's id, oldest first (read straight from the box, not through the page)."""
    ids = []
    for class_id in range(rig.box.num_classes):
        page = rig.box.examples(class_id, limit=500)
        ids += [e.id for e in page.examples]
    return sorted(ids)


def fresh_head(rig, examples):
    """A head taught from scratch with ``[(class, embedding)]``, named as the box's."""
    head = NearestCentroidHead(rig.loop.head.dim, rig.loop.head.num_classes)
    for class_id, embedding in examples:
        head.teach(class_id, embedding)
    return head


def assert_same_head(head, fresh):
    assert head.counts == fresh.counts
    for class_id, n in enumerate(fresh.counts):
        if n:
            assert np.array_equal(head.centroid(class_id), fresh.centroid(class_id)), f"class {class_id + 1}"


def gallery(client, class_id, **query):
    args = "&".join(f"{k}={v}" for k, v in {"class": class_id, **query}.items())
    response = client.get(f"/api/examples?{args}")
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def plant_doubtful(rig, embedding, picture=b"\xff\xd8 a doubtful frame \xff\xd9"):
    """Put a frame into the inbox as the loop does: the head answered "unknown" for ``embedding``."""
    rig.clock.t += 10  # past the inbox's min_interval
    prediction = dataclasses.replace(rig.loop.head.predict(embedding), status=STATUS_UNKNOWN, class_id=None)
    frame_id = rig.box.inbox.consider(rig.clock.t, prediction, embedding, picture)
    assert frame_id is not None
    return frame_id


def counts(client):
    return [c["examples"] for c in status(client)["classes"]]


# -- the gallery ---------------------------------------------------------------------------------

def test_pages_of_a_class_are_newest_first_and_together_hold_every_example_once(rig, owner):
    teach(rig, 1, "blue box", 3)  # another class's examples are never in class 1's pages
    teach(rig, 0, "red ball", 120)
    ids = [e.id for e in rig.box.examples(0, limit=500).examples][::-1]  # oldest first
    assert len(ids) == 120 and ids == all_ids(rig)[3:]
    seen, pages, before = [], [], None
    while True:
        data = gallery(owner, 0, limit=50, **({"before": before} if before else {}))
        assert data["class"] == 0
        page = [e["id"] for e in data["examples"]]
        pages.append(len(page))
        seen += page
        before = data["next"]
        if before is None:
            break
        assert before == page[-1]
    assert pages == [50, 50, 20]
    assert seen == sorted(ids, reverse=True)  # newest first, none twice, none left out
    first = gallery(owner, 0)["examples"]
    assert len(first) == 48  # the default page
    example = first[0]
    assert example == {"id": ids[-1], "class": 0, "taken": pytest.approx(example["taken"]), "source": "button",
                       "thumb": f"/api/examples/{ids[-1]}.jpg"}
    assert abs(example["taken"] - rig.box.examples(0, limit=1).examples[0].taken) < 0.01
    # any id can start a page: the ones older than it
    middle = ids[60]
    assert [e["id"] for e in gallery(owner, 0, before=middle, limit=5)["examples"]] == ids[55:60][::-1]
    assert gallery(owner, 0, before=ids[0])["examples"] == [] and gallery(owner, 0, before=ids[0])["next"] is None
    assert [e["class"] for e in gallery(owner, 1)["examples"]] == [1, 1, 1]


def test_a_thumbnail_is_the_crop_as_a_private_jpeg_and_404_once_deleted(rig, owner):
    teach(rig, 0, "red ball", 2)
    example = gallery(owner, 0)["examples"][0]
    response = owner.get(example["thumb"])
    assert response.status_code == 200 and response.mimetype == "image/jpeg"
    assert response.data == rig.box.example_crop(example["id"]) and response.data.startswith(JPEG_MAGIC)
    assert Image.open(io.BytesIO(response.data)).size == (224, 224)  # what the model saw
    cache = response.headers["Cache-Control"]
    assert "private" in cache and "public" not in cache
    again = owner.get(example["thumb"], headers={"If-None-Match": response.headers["ETag"]})
    assert again.status_code == 304 and again.data == b""
    assert post(owner, "/api/examples/delete", {"ids": [example["id"]]}).status_code == 200
    gone = owner.get(example["thumb"])
    assert gone.status_code == 404 and "deleted" in error_of(gone)
    for path in ("/api/examples/999999.jpg", f"/api/examples/{10 ** 30}.jpg", "/api/examples/0.jpg"):
        response = owner.get(path)
        assert response.status_code == 404, path
        error_of(response)


# -- deleting and moving -------------------------------------------------------------------------

def test_deleting_makes_the_counts_and_the_answer_those_of_a_head_taught_without_them(rig, owner):
    taught = teach(rig, 0, "red ball", 3) + teach(rig, 0, "blue box", 4) + teach(rig, 1, "blue box", 2)
    ids = all_ids(rig)
    assert len(ids) == len(taught) == 9
    wrong = ids[3:7]  # the blue box taught to class 1 by mistake
    response = post(owner, "/api/examples/delete", {"ids": wrong + [wrong[0], 987654]})
    assert response.status_code == 200
    data = response.get_json()
    assert data["ok"] is True and data["deleted"] == 4 and data["asked"] == 5
    # the answer already holds the new counts, and so does every status after it
    assert [c["examples"] for c in data["status"]["classes"]] == [3, 2, 0, 0] == counts(owner)
    assert data["status"]["library"]["examples"] == 5
    left = [example for i, example in zip(ids, taught) if i not in wrong]
    assert_same_head(rig.loop.head, fresh_head(rig, left))
    rig.camera.select("blue box")
    result = rig.loop.step()
    expected = fresh_head(rig, left).predict(result.embedding)
    assert status(owner)["answer_id"] == expected.class_id == 1
    assert [e["id"] for e in gallery(owner, 0)["examples"]] == ids[:3][::-1]
    # gone for good: deleting them again deletes nothing
    again = post(owner, "/api/examples/delete", {"ids": wrong}).get_json()
    assert again["deleted"] == 0 and counts(owner) == [3, 2, 0, 0]


def test_moving_files_examples_under_another_class_as_if_taught_there(rig, owner):
    taught = teach(rig, 0, "red ball", 3) + teach(rig, 0, "blue box", 3) + teach(rig, 1, "blue box", 1)
    ids = all_ids(rig)
    wrong = ids[3:6]
    response = post(owner, "/api/examples/move", {"ids": wrong, "class": 1})
    assert response.status_code == 200
    data = response.get_json()
    assert data["moved"] == 3 and data["to"] == 1
    assert [c["examples"] for c in data["status"]["classes"]] == [3, 4, 0, 0] == counts(owner)
    moved = [(1 if i in wrong else c, e) for i, (c, e) in zip(ids, taught)]
    assert_same_head(rig.loop.head, fresh_head(rig, moved))
    rig.camera.select("blue box")
    result = rig.loop.step()
    assert status(owner)["answer_id"] == fresh_head(rig, moved).predict(result.embedding).class_id == 1
    assert sorted(e["id"] for e in gallery(owner, 1)["examples"]) == sorted(wrong + [ids[6]])
    assert [e["id"] for e in gallery(owner, 0)["examples"]] == ids[:3][::-1]


def test_a_locked_browser_sees_no_pictures_and_cannot_change_what_an_unlocked_one_can(rig, owner, stranger):
    teach(rig, 0, "red ball", 2)
    teach(rig, 1, "blue box", 2)
    frame = plant_doubtful(rig, teach(rig, 2, "green stripes", 1)[0][1])
    ids = all_ids(rig)
    for path in ("/api/examples?class=0", f"/api/examples/{ids[0]}.jpg", "/api/doubtful", f"/api/doubtful/{frame}.jpg"):
        response = stranger.get(path)
        assert response.status_code == 401, path
        assert "unlock" in error_of(response) and not response.data.startswith(JPEG_MAGIC)
    before = counts(owner)
    for path, payload in (("/api/examples/delete", {"ids": ids[:2]}), ("/api/examples/move", {"ids": ids[:2], "class": 3}),
                          ("/api/doubtful/file", {"id": frame, "class": 3}),
                          ("/api/doubtful/dismiss", {"id": frame}), ("/api/import", None)):
        if payload is None:  # an import: the owner's own export, replayed by the stranger
            response = post(stranger, path, data=owner.get("/api/export").data, content_type="application/zip")
        else:
            response = post(stranger, path, payload)
        assert response.status_code == 401, path
        assert "unlock" in error_of(response)
    rig.loop.keeper.settle()
    assert counts(owner) == counts(stranger) == before and all_ids(rig) == ids
    assert [f.id for f in rig.box.doubtful()] == [frame]
    # what the stranger may see: the numbers
    assert status(stranger)["library"]["examples"] == 5 and status(stranger)["doubtful"]["count"] == 1
    assert stranger.get("/api/quality").status_code == 200
    # the owner's phone can do all of it
    assert post(owner, "/api/examples/move", {"ids": ids[:1], "class": 3}).status_code == 200
    assert post(owner, "/api/examples/delete", {"ids": ids[1:2]}).status_code == 200
    assert post(owner, "/api/doubtful/file", {"id": frame, "class": 3}).status_code == 200
    assert counts(stranger) == [0, 2, 1, 2]


@pytest.mark.parametrize("path", ["/api/examples/delete", "/api/examples/move", "/api/doubtful/file",
                                  "/api/doubtful/dismiss"])
@pytest.mark.parametrize("how", ["no-token", "wrong-token", "cross-origin"])
def test_changes_need_the_csrf_token_of_the_session_and_the_same_origin(rig, owner, path, how):
    teach(rig, 0, "red ball", 2)
    frame = plant_doubtful(rig, teach(rig, 1, "blue box", 1)[0][1])
    ids = all_ids(rig)
    payload = {"ids": ids, "class": 2, "id": frame}
    kwargs = {"no-token": {"token": False}, "wrong-token": {"token": "x" * 32},
              "cross-origin": {"headers": {"Origin": "http://evil.example"}}}[how]
    response = post(owner, path, payload, **kwargs)
    assert response.status_code == 403
    error_of(response)
    rig.loop.keeper.settle()
    assert all_ids(rig) == ids and counts(owner) == [2, 1, 0, 0] and len(rig.box.doubtful()) == 1
    assert post(owner, path, payload).status_code == 200  # with the token it works


BAD_IDS = [None, [], "1", 1, {"1": 1}, [0], [-1], [1.0], [True], ["1"], [None], [[1]], [1 << 62], [10 ** 30],
           list(range(1, 502))]


@pytest.mark.parametrize("path", ["/api/examples/delete", "/api/examples/move"])
@pytest.mark.parametrize("ids", BAD_IDS, ids=lambda v: repr(v)[:20])
def test_bad_example_ids_are_400_and_change_nothing(rig, owner, path, ids):
    teach(rig, 0, "red ball", 2)
    before = all_ids(rig)
    payload = {"class": 1} if ids is None else {"ids": ids, "class": 1}
    response = post(owner, path, payload)
    assert response.status_code == 400
    message = error_of(response)
    assert ("ids" in message or "at most 500" in message) and len(message) < 200
    assert all_ids(rig) == before and counts(owner) == [2, 0, 0, 0]


@pytest.mark.parametrize("value", [4, -1, None, "1", 1.0, True, [1]], ids=repr)
def test_moving_to_a_class_that_is_not_there_is_400(rig, owner, value):
    teach(rig, 0, "red ball", 2)
    ids = all_ids(rig)
    payload = {"ids": ids} if value is None else {"ids": ids, "class": value}
    response = post(owner, "/api/examples/move", payload)
    assert response.status_code == 400 and "class" in error_of(response)
    assert counts(owner) == [2, 0, 0, 0] and [e["id"] for e in gallery(owner, 0)["examples"]] == ids[::-1]


@pytest.mark.parametrize("query", ["", "class=", "class=4", "class=-1", "class=x", "class=1.0", "class=%EF%BC%91",
                                   "class=0&before=0", "class=0&before=-5", "class=0&before=abc",
                                   f"class=0&before={10 ** 30}", "class=0&limit=0", "class=0&limit=201",
                                   "class=0&limit=ten"])
def test_bad_gallery_queries_are_400_saying_what_is_wrong(rig, owner, query):
    response = owner.get(f"/api/examples?{query}")
    assert response.status_code == 400
    message = error_of(response)
    name = "class" if "before" not in query and "limit" not in query else ("before" if "before" in query else "limit")
    assert f"'{name}'" in message


def test_a_library_that_does_not_answer_in_time_is_a_503_saying_so(rig, owner, monkeypatch):
    teach(rig, 0, "red ball", 2)
    ids = all_ids(rig)
    monkeypatch.setattr(device.box, "EDIT_TIMEOUT", 0.3)
    stuck = threading.Event()
    rig.loop.keeper.writer.submit(lambda library: stuck.wait(10))  # a card that does not answer
    try:
        for path, payload in (("/api/examples/delete", {"ids": ids[:1]}), ("/api/examples/move", {"ids": ids, "class": 1})):
            response = post(owner, path, payload)
            assert response.status_code == 503, path
            assert "did not answer in time" in error_of(response)
    finally:
        stuck.set()
    rig.loop.keeper.settle()
    assert counts(owner) == [0, 1, 0, 0]  # the changes are made when it does answer


def test_a_box_that_keeps_no_examples_says_so_with_404(embedder, tmp_path):
    camera = CameraSupervisor(SyntheticCamera(fps=0), timeout=2.0)
    loop = TeachLoop(camera, embedder, NearestCentroidHead(embedder.dim, 4),
                     model=model_identity(embedder.describe()))
    box = DeviceBox(loop)
    assert box.loop.keeper is None and box.inbox is None
    client = create_app({"TESTING": True}, box=box, web=WebConfig(require_unlock=False)).test_client()
    with pytest.raises(NoLibrary):
        box.quality()
    for method, path, payload in (("GET", "/api/examples?class=0", None), ("GET", "/api/examples/1.jpg", None),
                                  ("GET", "/api/quality", None), ("POST", "/api/examples/delete", {"ids": [1]}),
                                  ("POST", "/api/examples/move", {"ids": [1], "class": 1}),
                                  ("POST", "/api/doubtful/file", {"id": 1, "class": 0}),
                                  ("POST", "/api/doubtful/dismiss", {"id": 1}), ("GET", "/api/export", None)):
        response = client.get(path) if method == "GET" else post(client, path, payload)
        assert response.status_code == 404, path
        assert "keeps no" in error_of(response) or "no picture" in error_of(response), path
    assert client.get("/api/doubtful").get_json() == {"frames": []}
    imported = post(client, "/api/import", data=b"PK\x03\x04 an export", content_type="application/zip")
    assert imported.status_code == 404 and "keeps no" in error_of(imported)
    assert status(client)["library"] is None and status(client)["doubtful"] == {"count": 0, "newest": None}
    box.close()


# -- the library in the status -------------------------------------------------------------------

def test_the_status_says_how_full_the_library_is_and_what_a_cap_refused(embedder, factory, tmp_path):
    rig = make_rig(embedder, factory, tmp_path / "state", storage={"max_examples_per_class": 3})
    try:
        client = create_app({"TESTING": True}, box=rig.box, web=WebConfig(pin=PIN)).test_client()
        library = status(client)["library"]
        assert library == {"examples": 0, "bytes": library["bytes"], "max_bytes": 512 << 20, "max_per_class": 3,
                           "unwritten": 0, "notice": None, "saving_error": None}
        teach(rig, 0, "red ball", 2)
        library = status(client)["library"]
        assert library["examples"] == 2 and library["unwritten"] == 0 and library["bytes"] > 0
        teach(rig, 0, "blue box", 2)  # one more than class 1 may keep: that burst is refused
        library = status(client)["library"]
        assert "class 1" in library["notice"] and "3" in library["notice"]
        assert library["examples"] == 2 == status(client)["classes"][0]["examples"]
    finally:
        rig.box.close()


# -- quality ---------------------------------------------------------------------------------------

def test_quality_names_the_example_taken_for_another_class(rig, owner, stranger):
    teach(rig, 0, "red ball", 3)
    teach(rig, 0, "blue box", 1)  # a mistake: the blue box under class 1
    teach(rig, 1, "blue box", 3)
    teach(rig, 2, "green stripes", 1)  # too few to judge
    ids = all_ids(rig)
    mistake = ids[3]
    response = stranger.get("/api/quality")  # numbers only: open like the status
    assert response.status_code == 200
    data = response.get_json()
    first, second, third, fourth = data["classes"]
    assert first["class"] == 0 and first["name"] == "Class 1" and first["examples"] == 4
    assert first["correct"] == 3 and first["loo_accuracy"] == 0.75 and first["confused_with"] == 1
    assert "Class 2" in first["hint"]
    assert second["loo_accuracy"] == 1.0 and second["confused_with"] is None
    assert third["loo_accuracy"] is None and third["examples"] == 1 and "at least" in third["hint"]
    assert fourth["examples"] == 0 and fourth["loo_accuracy"] is None
    assert data["confusion"] == [[3, 1, 0, 0], [0, 3, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0]]
    cells = {(c["class"], c["answered"]): c for c in data["cells"]}
    assert cells[(0, 1)] == {"class": 0, "answered": 1, "count": 1, "ids": [mistake]}
    assert cells[(0, 0)]["ids"] == ids[:3] and cells[(1, 1)]["ids"] == ids[4:7]
    # moving the mistake where it belongs: every example is recognised
    assert post(owner, "/api/examples/move", {"ids": [mistake], "class": 1}).status_code == 200
    data = owner.get("/api/quality").get_json()
    assert [c["loo_accuracy"] for c in data["classes"][:2]] == [1.0, 1.0]
    assert data["confusion"][0] == [3, 0, 0, 0] and data["confusion"][1] == [0, 4, 0, 0]


# -- doubtful frames ---------------------------------------------------------------------------------

def test_filing_a_doubtful_frame_teaches_it_with_source_inbox_and_it_leaves_the_inbox(rig, owner):
    teach(rig, 0, "red ball", 2)
    teach(rig, 1, "blue box", 2)
    picture = rig.box.example_crop(all_ids(rig)[0])
    rig.camera.select("green stripes")
    embedding = rig.loop.step().embedding.copy()
    quiet_inbox(rig)
    older = plant_doubtful(rig, np.roll(embedding, 7), picture)
    frame = plant_doubtful(rig, embedding, picture)
    assert status(owner)["doubtful"] == {"count": 2, "newest": frame}
    listed = owner.get("/api/doubtful").get_json()["frames"]
    assert [f["id"] for f in listed] == [frame, older]  # newest first
    shown = listed[0]
    assert shown["thumb"] == f"/api/doubtful/{frame}.jpg" and shown["reason"] == "unknown"
    assert {shown["best"], shown["runner_up"]} == {0, 1} and shown["best_score"] >= shown["runner_up_score"]
    response = owner.get(shown["thumb"])
    assert response.status_code == 200 and response.mimetype == "image/jpeg" and response.data == picture
    assert "private" in response.headers["Cache-Control"]

    response = post(owner, "/api/doubtful/file", {"id": frame, "class": 2})
    assert response.status_code == 200
    data = response.get_json()
    assert data["filed"] == frame and data["to"] == 2
    assert [c["examples"] for c in data["status"]["classes"]] == [2, 2, 1, 0]
    assert data["status"]["doubtful"] == {"count": 1, "newest": older}
    rig.loop.keeper.settle()
    stored = gallery(owner, 2)["examples"]
    assert [e["source"] for e in stored] == ["inbox"]
    assert owner.get(stored[0]["thumb"]).data == picture
    assert np.array_equal(rig.loop.head.centroid(2), fresh_head(rig, [(2, embedding)]).centroid(2))
    assert [f["id"] for f in owner.get("/api/doubtful").get_json()["frames"]] == [older]

    # gone: filed already (a second tap, another phone), or never there
    for frame_id, words in ((frame, "left the inbox"), (999, "no doubtful frame 999")):
        again = post(owner, "/api/doubtful/file", {"id": frame_id, "class": 1})
        assert again.status_code == 404
        assert words in error_of(again) and again.get_json()["gone"] == frame_id
        assert owner.get(f"/api/doubtful/{frame_id}.jpg").status_code == 404
    assert counts(owner) == [2, 2, 1, 0]


FRAME = "the planted frame's id"


@pytest.mark.parametrize("payload", [{}, {"class": 0}, {"id": FRAME}, {"id": 0, "class": 0}, {"id": -1, "class": 0},
                                     {"id": "1", "class": 0}, {"id": True, "class": 0}, {"id": 1.0, "class": 0},
                                     {"id": [1], "class": 0}, {"id": FRAME, "class": 4}, {"id": FRAME, "class": "0"},
                                     {"id": FRAME, "class": None}], ids=repr)
def test_bad_filing_requests_are_400_and_the_frame_stays(rig, owner, payload):
    teach(rig, 0, "red ball", 1)
    frame = plant_doubtful(rig, teach(rig, 1, "blue box", 1)[0][1])
    payload = {key: frame if value == FRAME else value for key, value in payload.items()}
    response = post(owner, "/api/doubtful/file", payload)
    assert response.status_code == 400
    message = error_of(response)
    assert "'id'" in message or "'class'" in message
    assert [f.id for f in rig.box.doubtful()] == [frame] and counts(owner) == [1, 1, 0, 0]


def test_a_doubtful_frame_says_how_old_it_is(rig, owner):
    teach(rig, 0, "red ball", 1)
    older = plant_doubtful(rig, teach(rig, 1, "blue box", 1)[0][1])
    rig.clock.t += 110
    newer = plant_doubtful(rig, np.roll(rig.loop.head.centroid(0), 3))  # kept 10 s after that
    rig.clock.t += 5
    frames = {f["id"]: f for f in owner.get("/api/doubtful").get_json()["frames"]}
    assert frames[newer]["age_s"] == pytest.approx(5, abs=0.05)
    assert frames[older]["age_s"] == pytest.approx(125, abs=0.05)
    rig.clock.t += 3600
    assert owner.get("/api/doubtful").get_json()["frames"][0]["age_s"] == pytest.approx(3605, abs=0.05)


def test_throwing_a_doubtful_frame_away_teaches_nothing_and_a_gone_one_is_404(rig, owner):
    teach(rig, 0, "red ball", 2)
    teach(rig, 1, "blue box", 2)
    older = plant_doubtful(rig, teach(rig, 2, "green stripes", 1)[0][1])
    ids = all_ids(rig)
    frame = plant_doubtful(rig, np.roll(rig.loop.head.centroid(0), 5))
    before = counts(owner)
    response = post(owner, "/api/doubtful/dismiss", {"id": frame})
    assert response.status_code == 200
    data = response.get_json()
    assert data["ok"] is True and data["dismissed"] == frame
    assert data["status"]["doubtful"] == {"count": 1, "newest": older}
    assert [c["examples"] for c in data["status"]["classes"]] == before == [2, 2, 1, 0]
    rig.loop.keeper.settle()
    assert all_ids(rig) == ids and counts(owner) == before  # nothing was taught
    assert [f["id"] for f in owner.get("/api/doubtful").get_json()["frames"]] == [older]
    assert owner.get(f"/api/doubtful/{frame}.jpg").status_code == 404
    for frame_id, words in ((frame, "left the inbox"), (999, "no doubtful frame 999")):
        again = post(owner, "/api/doubtful/dismiss", {"id": frame_id})
        assert again.status_code == 404
        assert words in error_of(again) and again.get_json()["gone"] == frame_id
        filed = post(owner, "/api/doubtful/file", {"id": frame_id, "class": 1})  # nor can it be filed now
        assert filed.status_code == 404
    assert counts(owner) == before and [f.id for f in rig.box.doubtful()] == [older]


@pytest.mark.parametrize("payload", [{}, {"id": 0}, {"id": -1}, {"id": "1"}, {"id": True}, {"id": 1.0}, {"id": [1]},
                                     {"id": None}, {"id": 10 ** 30}], ids=repr)
def test_bad_dismiss_requests_are_400_and_the_frame_stays(rig, owner, payload):
    frame = plant_doubtful(rig, teach(rig, 1, "blue box", 1)[0][1])
    response = post(owner, "/api/doubtful/dismiss", payload)
    assert response.status_code == 400 and "'id'" in error_of(response)
    assert [f.id for f in rig.box.doubtful()] == [frame]


# -- export and import over HTTP ------------------------------------------------------------------------

def pictures(client, rig):
    """Every stored example's picture as the page gets it, per class: ``{class: sorted [jpeg bytes]}``."""
    shown = {}
    for class_id in range(rig.box.num_classes):
        examples = gallery(client, class_id, limit=200)["examples"]
        shown[class_id] = sorted(client.get(e["thumb"]).data for e in examples if e["thumb"])
    return shown


def test_an_export_imported_over_http_gives_back_every_example_and_its_picture(rig, owner):
    teach(rig, 0, "red ball", 4)
    teach(rig, 1, "blue box", 3)
    teach(rig, 3, "yellow ring", 2)
    assert post(owner, "/api/rename", {"class": 3, "name": "Ring"}).status_code == 200
    before, names, shown = counts(owner), [c["name"] for c in status(owner)["classes"]], pictures(owner, rig)
    assert before == [4, 3, 0, 2] and sum(len(p) for p in shown.values()) == 9
    response = owner.get("/api/export")
    assert response.status_code == 200 and response.mimetype == "application/zip"
    assert response.headers["Content-Disposition"] == 'attachment; filename="teachbox-examples.zip"'
    blob = response.data
    for as_form in (False, True):
        assert post(owner, "/api/clear-all", {"confirm": True}).status_code == 200
        assert post(owner, "/api/rename", {"class": 3, "name": "Other"}).status_code == 200
        assert counts(owner) == [0, 0, 0, 0] and pictures(owner, rig) == {0: [], 1: [], 2: [], 3: []}
        if as_form:
            response = post(owner, "/api/import", data={"file": (io.BytesIO(blob), "teachbox-examples.zip")},
                            content_type="multipart/form-data")
        else:
            response = post(owner, "/api/import", data=blob, content_type="application/zip")
        assert response.status_code == 200, response.get_json()
        data = response.get_json()
        assert data["classes"] == [{"name": n, "examples": c} for n, c in zip(names, before)]
        assert [c["examples"] for c in data["status"]["classes"]] == before
        assert data["switch"] is None  # made with this model: nothing to learn again
        rig.loop.keeper.settle()
        assert counts(owner) == before and [c["name"] for c in status(owner)["classes"]] == names
        assert pictures(owner, rig) == shown
    rig.camera.select("yellow ring")
    rig.loop.step()
    assert status(owner)["answer"] == "Ring"


def test_an_export_of_another_model_is_learned_again_in_the_background(rig, owner, factory, tmp_path):
    from device.embedder import Embedder

    teach(rig, 0, "red ball", 3)
    teach(rig, 1, "blue box", 3)
    blob = owner.get("/api/export").data
    shown = pictures(owner, rig)
    small = Embedder(MODEL_MIRROR / SMALL_MODEL, num_threads=2)
    other = make_rig(small, MockFactory(pin_class=MockPWMPin), tmp_path / "other", model={"dir": str(MODEL_MIRROR)})
    try:
        app = create_app({"TESTING": True}, box=other.box, web=WebConfig(pin=PIN))
        phone = browser_at(app, "10.0.0.9")
        unlock(phone)
        assert status(phone)["model"] == SMALL_MODEL
        response = post(phone, "/api/import", data=blob, content_type="application/zip")
        assert response.status_code == 200, response.get_json()
        data = response.get_json()
        assert data["classes"][:2] == [{"name": "Class 1", "examples": 3}, {"name": "Class 2", "examples": 3}]
        assert data["switch"]["model"] == SMALL_MODEL and data["switch"]["state"] in ("embedding", "done")
        progress = finish_switch(other)
        assert (progress.state, progress.done, progress.total) == ("done", 6, 6)
        after = status(phone)
        assert after["model"] == SMALL_MODEL and after["model_switch"]["state"] == "done"
        assert [c["examples"] for c in after["classes"]] == [3, 3, 0, 0]
        assert pictures(phone, other) == shown
        other.camera.select("blue box")
        other.loop.step()
        assert status(phone)["answer"] == "Class 2"
    finally:
        other.box.close()
