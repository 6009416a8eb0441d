"""The installer and the shell scripts: dry run, platform refusal, a real install into a folder."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from device.config import BoxConfig, Config, load_config

REPO = Path(__file__).resolve().parent.parent
INSTALL = REPO / "scripts" / "install.sh"
UNINSTALL = REPO / "scripts" / "uninstall.sh"
MIRROR = Path(os.environ.get("TEACHBOX_MODEL_MIRROR") or REPO.parent / "shared" / "models")
SCRIPTS = sorted(REPO.glob("scripts/*.sh")) + [REPO / ".ci" / "run"]


def run(*args, env=None, check=False):
    full_env = dict(os.environ, **(env or {}))
    return subprocess.run([str(a) for a in args], capture_output=True, text=True, env=full_env, check=check)


def fake_os_release(tmp_path, id_, codename, pretty):
    path = tmp_path / "os-release"
    path.write_text(f'ID={id_}\nVERSION_CODENAME={codename}\nPRETTY_NAME="{pretty}"\n')
    return str(path)


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_shell_scripts_are_shellcheck_clean(script):
    shellcheck = shutil.which("shellcheck")
    if shellcheck is None:
        pytest.fail("shellcheck is missing: run scripts/dev.sh test (it installs it)")
    result = run(shellcheck, script)
    assert result.returncode == 0, result.stdout


@pytest.mark.parametrize("suite", ["bookworm", "trixie"])
def test_dry_run_checks_and_prints_every_step_changing_nothing(tmp_path, suite):
    root = tmp_path / "root"
    env = {"TEACHBOX_OS_RELEASE": fake_os_release(tmp_path, "debian", suite, f"Debian {suite}"),
           "TEACHBOX_ARCH": "aarch64"}
    result = run("bash", INSTALL, "--dry-run", "--root", root, env=env)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert f"platform: Debian {suite}, aarch64" in out
    for step in ("apt-get -o DPkg::Lock::Timeout=300 install -y -qq python3 python3-venv", "-m venv --system-site-packages", "pip install", "fetch-model",
                 "default-config", "teachbox.service"):
        assert step in out, step
    assert "nothing was changed" in out
    assert not root.exists()


@pytest.mark.parametrize("os_release, arch, why", [
    (("ubuntu", "noble", "Ubuntu 24.04"), "aarch64", "unsupported OS Ubuntu 24.04"),
    (("debian", "bullseye", "Debian 11"), "aarch64", "unsupported OS Debian 11"),
    (("raspbian", "bookworm", "Raspbian 12"), "armv7l", "32-bit system (armv7l): no TFLite runtime"),
    (("debian", "bookworm", "Debian 12"), "riscv64", "unsupported architecture riscv64"),
])
def test_no_tflite_runtime_means_stop_before_changing_anything(tmp_path, os_release, arch, why):
    root = tmp_path / "root"
    env = {"TEACHBOX_OS_RELEASE": fake_os_release(tmp_path, *os_release), "TEACHBOX_ARCH": arch}
    result = run("bash", INSTALL, "--root", root, env=env)
    assert result.returncode == 1
    assert why in result.stderr and "Nothing was changed" in result.stderr
    assert not root.exists()


def test_real_install_into_a_folder_then_upgrade_keeps_state_and_config(tmp_path):
    if not (MIRROR / "mobilenet_v1_1.0_224_quant_embedding_extractor.tflite").is_file():
        pytest.fail(f"the model mirror {MIRROR} is missing (set TEACHBOX_MODEL_MIRROR)")
    root = tmp_path / "root"
    first = run("bash", INSTALL, "--root", root, "--mirror", MIRROR, "--name", "Cat flap")
    assert first.returncode == 0, first.stdout + first.stderr
    assert "Open the phone page" in first.stdout and ":8000/" in first.stdout
    teachbox = root / "opt/teachbox/venv/bin/teachbox"
    config = root / "etc/teachbox/config.toml"
    model = root / "var/lib/teachbox/models/mobilenet_v1_1.0_224_quant_embedding_extractor.tflite"
    unit = root / "etc/systemd/system/teachbox.service"
    assert teachbox.is_file() and model.is_file() and unit.read_text() == (REPO / "systemd/teachbox.service").read_text()
    assert load_config(config) == Config(box=BoxConfig(name="Cat flap"))  # every other key at its default
    assert config.stat().st_mode & 0o777 == 0o640  # secrets (PIN, MQTT password, webhook key): not world-readable
    avahi = (root / "etc/avahi/services/teachbox.service").read_text()  # the page, announced under its name
    assert "<name>Cat flap (teachbox)</name>" in avahi and "<type>_http._tcp</type>" in avahi
    assert "<port>8000</port>" in avahi
    assert "# [head]" not in config.read_text() and "# classes = 4" in config.read_text()

    # the user changes the config, the box learns something; then an upgrade
    config.write_text(config.read_text().replace("# classes = 4", "classes = 3"))
    state = root / "var/lib/teachbox/state/head.npz"
    state.parent.mkdir(parents=True, exist_ok=True)
    state.write_bytes(b"learned")
    second = run("bash", INSTALL, "--root", root, "--mirror", MIRROR)
    assert second.returncode == 0, second.stdout + second.stderr
    assert "keeping" in second.stdout
    assert load_config(config).head.classes == 3
    assert state.read_bytes() == b"learned"
    info = run(teachbox, "info", "--json", "--config", config, "--model-dir", model.parent)
    assert info.returncode == 0 and '"dim": 1024' in info.stdout

    # a typo in the config is refused by the installer before the service trips over it
    config.write_text("[head]\nclases = 3\n")
    third = run("bash", INSTALL, "--root", root, "--mirror", MIRROR)
    assert third.returncode != 0 and "Did you mean 'classes'?" in third.stderr

    kept = run("bash", UNINSTALL, "--root", root)
    assert kept.returncode == 0
    assert not (root / "opt/teachbox").exists() and not unit.exists()
    assert not (root / "etc/avahi/services/teachbox.service").exists()
    assert state.exists() and config.exists()
    purged = run("bash", UNINSTALL, "--root", root, "--purge")
    assert purged.returncode == 0
    assert not (root / "var/lib/teachbox").exists() and not (root / "etc/teachbox").exists()

