"""Fetching models: from a mirror folder or a (faked) download, always sha256-checked.

The network is never touched: ``urllib.request.urlopen`` is replaced in every test.
"""

from __future__ import annotations

import io
import os
import urllib.request
from pathlib import Path

import pytest

from device.embedder import sha256_of
from device.errors import ChecksumError, ModelError, ModelMissingError
from device.models import DEFAULT_MODEL, MIRROR_ENV, MODELS, fetch_model, known_model

REPO = Path(__file__).resolve().parent.parent
V2 = "mobilenet_v2_1.0_224_quant_embedding_extractor.tflite"
V1_SMALL = "mobilenet_v1_0.5_160_quant_embedding_extractor.tflite"


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

