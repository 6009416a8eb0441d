"""What was learned, derived from the examples library: the head, and the migration of old states.

The library (:mod:`device.library`) is the one source of truth; a head is a cache of it,
rebuilt here at start and after deletes or moves, kept incrementally while teaching.
Because the head's sums are exact fixed point, the incremental head and one rebuilt from
the same library are identical (tests check it).
"""

from __future__ import annotations

import logging
from typing import Callable, Optional

import numpy as np

from .exchange import ExportContents, ExportedExample
from .head import NearestCentroidHead, default_class_names
from .library import ExampleLibrary, decode_vector
from .storage import ModelIdentity, StateStore

log = logging.getLogger(__name__)

MIGRATED_KEY = "migrated-head-npz"
Decode = Callable[[np.ndarray], np.ndarray]  # a stored vector -> the float embedding (Embedder.from_stored)


def head_from_library(library: ExampleLibrary, model: ModelIdentity, *, num_classes: int,
                      decode: Optional[Decode] = None, **options) -> NearestCentroidHead:
    """The head of every example (and seed) the library holds for ``model``.

    It has ``num_classes`` classes, or more when the library has examples in classes beyond
    them (nothing learned is dropped); names come from the library where it has them.
    """
    decode = decode or (lambda vector: vector)
    seeds = library.seeds(model.sha256, model.dim)
    used = list(library.counts()) + list(seeds)
    classes = max([num_classes] + [c + 1 for c in used])
    head = NearestCentroidHead(model.dim, classes, **options)
    for class_id, name in library.names().items():
        if class_id < classes:
            head.rename(class_id, name)
    for class_id, (sums, count) in seeds.items():
        head.add_sums(class_id, sums, count)
    for _, class_id, vector in library.embeddings(model.sha256, model.dim):  # streamed: memory stays flat
        head.teach(class_id, decode(vector))
    head.generation = 0
    return head


def migrate_head_state(store: StateStore, library: ExampleLibrary, model: ModelIdentity) -> bool:
    """Carry a saved ``head.npz`` into the library once: its sums become each class's seed, names kept.

    The file itself is left where it is (nothing is deleted).  ``True`` if something was carried over.
    """
    if library.meta(MIGRATED_KEY) is not None:
        return False
    loaded = store.load(model)
    migrated = False
    if loaded.head is not None:
        meta, arrays = loaded.head.to_state()
        for class_id, count in enumerate(arrays["counts"]):
            if count > 0:
                library.set_seed(class_id, model=model.sha256, sums=arrays["sums"][class_id], count=int(count))
                migrated = True
        for class_id, name in enumerate(meta["names"]):
            library.rename(class_id, name)
        log.info("carried what was learned in %s into the examples library (%d examples as starting points)",
                 loaded.source, int(arrays["counts"].sum()))
    library.set_meta(MIGRATED_KEY, str(loaded.source) if loaded.source else "nothing to migrate")
    return migrated


def export_contents(library: ExampleLibrary, model: ModelIdentity, *, names=None,
                    num_classes: int = 0) -> ExportContents:
    """Everything stored, for an export file: crops, embeddings under ``model``, names and seeds."""
    examples = []
    for _, class_id, taken, source, crop, vectors in library.dump():
        stored = vectors.get(model.sha256)
        vector = None if stored is None else decode_vector(stored[0], stored[1], model.dim)
        examples.append(ExportedExample(class_id, taken, source, crop, vector))
    seeds = library.seeds(model.sha256, model.dim)
    classes = max([num_classes, 2] + [e.class_id + 1 for e in examples] + [c + 1 for c in seeds])
    known = library.names() if names is None else dict(names)
    defaults = default_class_names(classes)
    return ExportContents(model, classes, {c: known.get(c, defaults[c]) for c in range(classes)}, tuple(examples),
                          seeds)
