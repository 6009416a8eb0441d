"""The box on the network: the avahi service file names the box and the page's port."""

from __future__ import annotations

import subprocess
import sys
import xml.etree.ElementTree as ET

import pytest

from device.mdns import avahi_service


def test_the_service_file_announces_the_page_under_the_box_name():
    root = ET.fromstring(avahi_service("Room 4 & 5", 8080).split("\n", 2)[2])  # past the XML and DOCTYPE lines
    assert root.findtext("name") == "Room 4 & 5 (teachbox)"
    assert root.findtext("service/type") == "_http._tcp" and root.findtext("service/port") == "8080"
    with pytest.raises(ValueError, match="port"):
        avahi_service("x", 0)


def test_teachbox_mdns_service_uses_the_config(tmp_path):
    config = tmp_path / "config.toml"
    config.write_text('[box]\nname = "Cat flap"\n[web]\nport = 8001\n')
    out = subprocess.run([sys.executable, "-m", "device", "mdns-service", "--config", str(config)],
                         capture_output=True, text=True, check=True).stdout
    assert "<name>Cat flap (teachbox)</name>" in out and "<port>8001</port>" in out
    config.write_text('[box]\nname = "a/b"\n')
    bad = subprocess.run([sys.executable, "-m", "device", "mdns-service", "--config", str(config)],
                         capture_output=True, text=True)
    assert bad.returncode != 0 and "[box] name" in bad.stderr
