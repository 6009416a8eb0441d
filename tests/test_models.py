"""Fetching models: from a mirror folder or a (faked) download, always sha256-checked.

The network is never touched: ``urllib.request.urlopen`` is replaced in every test.
"""

from __future__ import annotations

import dataclasses
import hashlib
import http.server
import io
import os
import threading
import urllib.request
import zipfile
from pathlib import Path

import pytest

from device.embedder import sha256_of
from device.errors import ChecksumError, ModelError, ModelMissingError
from device.models import (DEFAULT_MODEL, LANDMARKS, MEDIAPIPE_WHEEL, MIRROR_ENV, MODELS, LANDMARK_SOURCES, Archive,
                           embedding_models, fetch_command, fetch_hint, fetch_model, fetch_models, known_model,
                           landmark_models)

REPO = Path(__file__).resolve().parent.parent
V2 = "mobilenet_v2_1.0_224_quant_embedding_extractor.tflite"
V1_SMALL = "mobilenet_v1_0.5_160_quant_embedding_extractor.tflite"
HAND = ["palm_detection_lite.tflite", "palm_detection_full.tflite", "hand_landmark_full.tflite",
        "hand_landmark_lite.tflite"]
REAL_URLOPEN = urllib.request.urlopen  # before the autouse fixture takes the network away


@pytest.fixture(autouse=True)
def no_network(monkeypatch):
    """Any download attempt fails like a machine without network, and is recorded."""
    calls = []

    def offline(url, *args, **kwargs):
        calls.append(url)
        raise OSError("network is unreachable (test)")

    monkeypatch.setattr(urllib.request, "urlopen", offline)
    monkeypatch.delenv(MIRROR_ENV, raising=False)
    return calls


@pytest.fixture
def mirror(tmp_path, model_path) -> Path:
    """A mirror folder holding the real default model."""
    folder = tmp_path / "mirror"
    folder.mkdir()
    (folder / DEFAULT_MODEL).write_bytes(model_path.read_bytes())
    return folder


@pytest.fixture
def bad_mirror(tmp_path) -> Path:
    """A mirror folder whose files have the right names but the wrong bytes."""
    folder = tmp_path / "bad-mirror"
    folder.mkdir()
    for name in MODELS:
        (folder / name).write_bytes(b"not the model you are looking for" * 100)
    return folder


def shared_mirror() -> Path:
    return Path(os.environ.get("TEACHBOX_MODEL_MIRROR") or REPO.parent / "shared" / "models")


def entries(folder: Path):
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_known_models_table():
    assert DEFAULT_MODEL in MODELS
    assert MODELS[DEFAULT_MODEL].url and MODELS[DEFAULT_MODEL].url.startswith("https://")
    assert MODELS[DEFAULT_MODEL].url.endswith(DEFAULT_MODEL)
    assert MODELS[V2].url is None and MODELS[V1_SMALL].url is None
    for name, model in MODELS.items():
        assert model.filename == name
        assert len(model.sha256) == 64 and int(model.sha256, 16) >= 0


def test_known_models_match_the_mirror_checksums():
    sums = shared_mirror() / "SHA256SUMS"
    if not sums.is_file():
        pytest.skip(f"no model mirror at {sums.parent}")
    listed = dict(reversed(line.split()) for line in sums.read_text().splitlines() if line.strip())
    for name, model in MODELS.items():
        assert listed[name] == model.sha256, name


def test_unknown_model_name_lists_the_known_ones():
    with pytest.raises(ModelError) as info:
        known_model("resnet.tflite")
    assert "resnet.tflite" in str(info.value)
    assert DEFAULT_MODEL in str(info.value)


def test_fetch_from_mirror_installs_checked_file(tmp_path, mirror, model_path, no_network):
    model_dir = tmp_path / "models" / "nested"
    path = fetch_model(model_dir, mirror=mirror)
    assert path == model_dir / DEFAULT_MODEL
    assert path.is_file()
    assert sha256_of(path) == MODELS[DEFAULT_MODEL].sha256
    assert path.read_bytes() == model_path.read_bytes()
    assert entries(model_dir) == [DEFAULT_MODEL]  # no temp files left behind
    assert no_network == []


@pytest.mark.parametrize("name", sorted(MODELS))
def test_fetch_every_model_from_the_shared_mirror(tmp_path, name):
    source = shared_mirror()
    if not (source / name).is_file():
        pytest.skip(f"no model mirror at {source}")
    path = fetch_model(tmp_path, name, mirror=source)
    assert sha256_of(path) == MODELS[name].sha256
    assert entries(tmp_path) == [name]


def test_good_file_already_present_is_kept(tmp_path, mirror, bad_mirror):
    model_dir = tmp_path / "models"
    installed = fetch_model(model_dir, mirror=mirror)
    before = installed.stat()
    # The bad mirror is never read: the good copy is already there.
    again = fetch_model(model_dir, mirror=bad_mirror)
    assert again == installed
    after = installed.stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    assert sha256_of(installed) == MODELS[DEFAULT_MODEL].sha256


def test_damaged_file_already_present_is_replaced(tmp_path, mirror):
    model_dir = tmp_path / "models"
    model_dir.mkdir()
    (model_dir / DEFAULT_MODEL).write_bytes(b"half a download")
    path = fetch_model(model_dir, mirror=mirror)
    assert sha256_of(path) == MODELS[DEFAULT_MODEL].sha256
    assert entries(model_dir) == [DEFAULT_MODEL]


def test_wrong_content_in_mirror_installs_nothing(tmp_path, bad_mirror):
    model_dir = tmp_path / "models"
    with pytest.raises(ChecksumError) as info:
        fetch_model(model_dir, mirror=bad_mirror)
    message = str(info.value)
    assert MODELS[DEFAULT_MODEL].sha256 in message
    assert "nothing was installed" in message
    assert entries(model_dir) == []  # neither the model nor a temp file
    assert isinstance(info.value, ModelError)


def test_forced_fetch_of_wrong_content_keeps_the_good_file(tmp_path, mirror, bad_mirror):
    model_dir = tmp_path / "models"
    installed = fetch_model(model_dir, mirror=mirror)
    with pytest.raises(ChecksumError):
        fetch_model(model_dir, mirror=bad_mirror, force=True)
    assert sha256_of(installed) == MODELS[DEFAULT_MODEL].sha256
    assert entries(model_dir) == [DEFAULT_MODEL]


def test_forced_fetch_replaces_the_file(tmp_path, mirror):
    model_dir = tmp_path / "models"
    installed = fetch_model(model_dir, mirror=mirror)
    inode = installed.stat().st_ino
    again = fetch_model(model_dir, mirror=mirror, force=True)
    assert sha256_of(again) == MODELS[DEFAULT_MODEL].sha256
    assert again.stat().st_ino != inode  # a new file was put in place
    assert entries(model_dir) == [DEFAULT_MODEL]


def test_file_missing_from_mirror(tmp_path):
    empty_mirror = tmp_path / "empty-mirror"
    empty_mirror.mkdir()
    model_dir = tmp_path / "models"
    with pytest.raises(ModelMissingError) as info:
        fetch_model(model_dir, mirror=empty_mirror)
    assert str(empty_mirror) in str(info.value)
    assert DEFAULT_MODEL in str(info.value)
    assert entries(model_dir) == []


def test_mirror_from_environment(tmp_path, mirror, monkeypatch, no_network):
    monkeypatch.setenv(MIRROR_ENV, str(mirror))
    path = fetch_model(tmp_path / "models")
    assert sha256_of(path) == MODELS[DEFAULT_MODEL].sha256
    assert no_network == []


def test_explicit_mirror_wins_over_environment(tmp_path, mirror, bad_mirror, monkeypatch):
    monkeypatch.setenv(MIRROR_ENV, str(bad_mirror))
    path = fetch_model(tmp_path / "models", mirror=mirror)
    assert sha256_of(path) == MODELS[DEFAULT_MODEL].sha256


def test_derived_models_cannot_be_downloaded(tmp_path, no_network):
    model_dir = tmp_path / "models"
    for name in (V2, V1_SMALL):
        with pytest.raises(ModelError) as info:
            fetch_model(model_dir, name)
        assert "--mirror" in str(info.value)
        assert MIRROR_ENV in str(info.value)
    assert no_network == []  # refused before trying
    assert entries(model_dir) == []


def test_download_failure_says_to_use_a_mirror(tmp_path, no_network):
    model_dir = tmp_path / "models"
    with pytest.raises(ModelError) as info:
        fetch_model(model_dir)
    message = str(info.value)
    assert "--mirror" in message
    assert "network is unreachable" in message
    assert no_network == [MODELS[DEFAULT_MODEL].url]
    assert entries(model_dir) == []


class FakeResponse(io.BytesIO):
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def test_download_is_checked_and_installed(tmp_path, model_path, monkeypatch):
    content = model_path.read_bytes()
    urls = []

    def fake_urlopen(url, timeout=None):
        urls.append(url)
        return FakeResponse(content)

    monkeypatch.setattr(urllib.request, "urlopen", fake_urlopen)
    path = fetch_model(tmp_path / "models")
    assert urls == [MODELS[DEFAULT_MODEL].url]
    assert sha256_of(path) == MODELS[DEFAULT_MODEL].sha256
    assert entries(tmp_path / "models") == [DEFAULT_MODEL]


def test_tampered_download_installs_nothing(tmp_path, monkeypatch):
    monkeypatch.setattr(urllib.request, "urlopen", lambda url, timeout=None: FakeResponse(b"<html>404</html>"))
    model_dir = tmp_path / "models"
    with pytest.raises(ChecksumError) as info:
        fetch_model(model_dir)
    assert MODELS[DEFAULT_MODEL].url in str(info.value)
    assert entries(model_dir) == []


def test_unknown_name_is_refused_before_touching_anything(tmp_path, mirror):
    with pytest.raises(ModelError, match="unknown model"):
        fetch_model(tmp_path / "models", "mystery.tflite", mirror=mirror)
    assert not (tmp_path / "models").exists()



# -- the MediaPipe landmark files --------------------------------------------------------------------


def test_landmark_models_table():
    landmarks = landmark_models()
    assert sorted(landmarks) == sorted(HAND + ["face_detection_short_range.tflite", "face_landmark.tflite",
                                               "pose_detection.tflite", "pose_landmark_full.tflite"])
    assert sorted(landmark_models("hand")) == sorted(HAND)
    assert sorted(landmark_models("face")) == ["face_detection_short_range.tflite", "face_landmark.tflite"]
    assert sorted(landmark_models("pose")) == ["pose_detection.tflite", "pose_landmark_full.tflite"]
    assert landmark_models("all") == landmarks
    for name, model in landmarks.items():
        assert model.kind == LANDMARKS and model.source in LANDMARK_SOURCES and model.role in ("detector", "landmarks")
        assert model.archive == MEDIAPIPE_WHEEL and model.url is None and model.dim == 0
        assert model.member.startswith("mediapipe/modules/") and model.member.endswith("/" + name)
    for source in LANDMARK_SOURCES:  # each source has its detector and its landmarks network
        assert {m.role for m in landmark_models(source).values()} == {"detector", "landmarks"}
    assert MODELS["hand_landmark_lite.tflite"].variant == "lite"
    assert MODELS["palm_detection_full.tflite"].variant == "full"
    assert MEDIAPIPE_WHEEL.url.startswith("https://files.pythonhosted.org/packages/")
    assert MEDIAPIPE_WHEEL.url.endswith("/mediapipe-0.10.14-cp311-cp311-manylinux_2_17_aarch64."
                                        "manylinux2014_aarch64.whl")
    assert MEDIAPIPE_WHEEL.sha256 == "1061d499d341e7f11dd7f18d5bee747e862db8ef47665ff777323282225d4315"
    with pytest.raises(ModelError, match="unknown landmark source 'feet'"):
        landmark_models("feet")


def test_embedding_models_are_what_the_box_can_switch_to():
    assert sorted(embedding_models()) == sorted([DEFAULT_MODEL, V2, V1_SMALL])
    assert all(m.dim > 0 for m in embedding_models().values())
    assert not set(embedding_models()) & set(landmark_models())
    assert set(embedding_models()) | set(landmark_models()) == set(MODELS)


def test_fetch_command_for_a_landmark_file(tmp_path, monkeypatch):
    # every landmark file has a public download (the wheel): no --mirror DIR needed
    assert fetch_command(tmp_path, "face_landmark.tflite") == \
        f"teachbox fetch-model --model-dir {tmp_path} --name face_landmark.tflite"
    assert fetch_command(tmp_path, source="hand") == f"teachbox fetch-model --model-dir {tmp_path} --source hand"
    # the hint fetches the file with the rest of its source, in one download
    assert fetch_hint(tmp_path / "hand_landmark_lite.tflite") == \
        f"Fetch it with: teachbox fetch-model --model-dir {tmp_path} --source hand"
    assert fetch_hint(tmp_path / "pose_landmark_full.tflite", force=True) == \
        f"Fetch it with: teachbox fetch-model --force --model-dir {tmp_path} --source pose"
    monkeypatch.setenv(MIRROR_ENV, str(tmp_path / "mirror"))
    assert fetch_hint(tmp_path / "face_landmark.tflite") == \
        f"Fetch it with: teachbox fetch-model --model-dir {tmp_path} --source face --mirror {tmp_path / 'mirror'}"


@pytest.fixture
def landmark_mirror(tmp_path) -> Path:
    """A mirror folder holding the real hand files (copied from the shared mirror)."""
    folder = tmp_path / "landmark-mirror"
    folder.mkdir()
    for name in HAND:
        if not (shared_mirror() / name).is_file():
            pytest.skip(f"no model mirror at {shared_mirror()}")
        (folder / name).write_bytes((shared_mirror() / name).read_bytes())
    return folder


def test_landmark_files_from_a_mirror(tmp_path, landmark_mirror, no_network):
    model_dir = tmp_path / "models"
    paths = fetch_models(model_dir, landmark_models("hand"), mirror=landmark_mirror)
    assert paths == [model_dir / name for name in landmark_models("hand")]
    for path in paths:
        assert sha256_of(path) == MODELS[path.name].sha256
    assert entries(model_dir) == sorted(HAND)
    assert no_network == []


def test_a_tampered_landmark_file_in_the_mirror_installs_nothing(tmp_path, landmark_mirror):
    (landmark_mirror / "hand_landmark_lite.tflite").write_bytes(b"tampered" * 1000)
    model_dir = tmp_path / "models"
    with pytest.raises(ChecksumError) as info:
        fetch_models(model_dir, HAND, mirror=landmark_mirror)
    message = str(info.value)
    assert "hand_landmark_lite.tflite" in message and MODELS["hand_landmark_lite.tflite"].sha256 in message
    assert "nothing was installed" in message
    assert entries(model_dir) == []  # not even the three good files, nor a temp file


def test_a_landmark_file_missing_from_the_mirror_installs_nothing(tmp_path, landmark_mirror):
    (landmark_mirror / "palm_detection_full.tflite").unlink()
    model_dir = tmp_path / "models"
    with pytest.raises(ModelMissingError, match="has no palm_detection_full.tflite"):
        fetch_models(model_dir, HAND, mirror=landmark_mirror)
    assert entries(model_dir) == []


class Server:
    """A local HTTP server answering GET /<name> with ``files[name]``; it records the paths asked for."""

    def __init__(self):
        self.files, self.requests = {}, []
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                server.requests.append(self.path)
                body = server.files.get(self.path.lstrip("/"))
                if body is None:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.httpd.server_port}/{name}"

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def fake_member(name: str) -> bytes:
    return f"fake model {name} ".encode() * 500


def make_wheel(members: dict) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as wheel:
        wheel.writestr("mediapipe/__init__.py", "")
        for member, data in members.items():
            wheel.writestr(member, data)
    return buffer.getvalue()


@pytest.fixture
def fake_wheel(monkeypatch):
    """The hand files known as members of a small local zip served over HTTP (the real network stays off).

    ``serve(members, served=None)`` makes the wheel from ``members`` (member path -> bytes), points the hand
    models' archive at it (its sha256 and size) and serves ``served`` (default: the wheel itself)."""
    monkeypatch.setattr(urllib.request, "urlopen", REAL_URLOPEN)
    server = Server()

    def serve(members, served=None):
        wheel = make_wheel(members)
        archive = Archive(server.url("fake-0.1-py3-none-any.whl"), hashlib.sha256(wheel).hexdigest(), len(wheel),
                          "the fake wheel")
        server.files["fake-0.1-py3-none-any.whl"] = wheel if served is None else served
        for name in HAND:
            monkeypatch.setitem(MODELS, name, dataclasses.replace(
                MODELS[name], sha256=hashlib.sha256(fake_member(name)).hexdigest(), archive=archive))
        return server

    yield serve
    server.close()


def good_members() -> dict:
    return {MODELS[name].member: fake_member(name) for name in HAND}


def test_landmark_files_read_out_of_one_download_of_the_wheel(tmp_path, fake_wheel):
    server = fake_wheel(good_members())
    model_dir = tmp_path / "models"
    paths = fetch_models(model_dir, HAND)
    assert [p.read_bytes() for p in paths] == [fake_member(name) for name in HAND]
    assert server.requests == ["/fake-0.1-py3-none-any.whl"]  # once for all four
    assert entries(model_dir) == sorted(HAND)  # no wheel or temp file left behind
    assert fetch_models(model_dir, HAND) == paths  # good copies are kept: no second download
    assert len(server.requests) == 1


def test_a_tampered_member_of_the_wheel_installs_nothing(tmp_path, fake_wheel):
    members = good_members()
    members[MODELS["hand_landmark_full.tflite"].member] = b"tampered" * 100
    fake_wheel(members)  # the wheel's own sha256 is right: the member's is not
    model_dir = tmp_path / "models"
    with pytest.raises(ChecksumError) as info:
        fetch_models(model_dir, HAND)
    message = str(info.value)
    assert MODELS["hand_landmark_full.tflite"].member in message and "nothing was installed" in message
    assert entries(model_dir) == []


def test_a_tampered_wheel_installs_nothing(tmp_path, fake_wheel):
    tampered = bytearray(make_wheel(good_members()))
    tampered[len(tampered) // 3] ^= 0xFF  # one byte changed: the right size, not the wheel whose sha256 is known
    fake_wheel(good_members(), served=bytes(tampered))
    model_dir = tmp_path / "models"
    with pytest.raises(ChecksumError) as info:
        fetch_models(model_dir, HAND)
    message = str(info.value)
    assert "the fake wheel" in message and MODELS[HAND[0]].archive.sha256 in message
    assert "nothing was installed" in message
    assert entries(model_dir) == []


def test_a_wheel_bigger_than_known_is_cut_off_and_refused(tmp_path, fake_wheel):
    server = fake_wheel(good_members())
    server.files["fake-0.1-py3-none-any.whl"] += b"\0" * (1 << 20)
    model_dir = tmp_path / "models"
    with pytest.raises(ChecksumError, match="larger than the .* bytes expected"):
        fetch_models(model_dir, HAND)
    assert entries(model_dir) == []


def test_a_member_missing_from_the_wheel_is_a_clear_error(tmp_path, fake_wheel):
    members = good_members()
    del members[MODELS["palm_detection_full.tflite"].member]
    fake_wheel(members)
    model_dir = tmp_path / "models"
    with pytest.raises(ModelError) as info:
        fetch_models(model_dir, HAND)
    message = str(info.value)
    assert f"has no {MODELS['palm_detection_full.tflite'].member}" in message and "nothing was installed" in message
    assert entries(model_dir) == []


def test_landmark_download_without_network_names_the_mirror(tmp_path, no_network):
    model_dir = tmp_path / "models"
    with pytest.raises(ModelError) as info:
        fetch_models(model_dir, landmark_models("all"))
    message = str(info.value)
    assert "network is unreachable" in message and "--mirror DIR" in message and MIRROR_ENV in message
    assert no_network == [MEDIAPIPE_WHEEL.url]  # one download for all eight
    assert entries(model_dir) == []
