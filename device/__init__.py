"""teachbox: the appliance side (camera, embedder, head, storage, loop, CLI)."""

__version__ = "0.1.0"
