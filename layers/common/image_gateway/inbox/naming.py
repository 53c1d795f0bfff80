"""Naming conventions of the inbox: which objects are photos, masks, extra references and batch
manifests.

Next to a photo ``dir/name.png``:
- ``dir/name.mask.png`` is its mask (a PNG whose transparent pixels are repainted);
- ``dir/name.ref1.jpg`` ... ``dir/name.ref15.webp`` are extra reference images, in number order.
Masks and references are never edited themselves; upload them before the photo.
Keys ending in ``/`` are folder markers and are skipped too. A ``batches/<path>.jsonl`` is a
batch manifest (:mod:`image_gateway.service.inbox_batches`), except the ``.results.jsonl`` and
``.errors.jsonl`` its batch writes next to it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum

from image_gateway.models.request import MAX_REFERENCE_IMAGES

MASK_SUFFIX = ".mask.png"
_REFERENCE_RE = re.compile(r"\.ref([1-9][0-9]?)\.(?:png|jpe?g|webp)$", re.IGNORECASE)
MAX_EXTRA_REFERENCES = MAX_REFERENCE_IMAGES - 1


MANIFEST_PREFIX = "batches/"
MANIFEST_SUFFIX = ".jsonl"
REPLY_SUFFIXES = (".results.jsonl", ".errors.jsonl")  # written next to a manifest, by us


def is_manifest(key: str) -> bool:
    """A batch manifest: ``batches/...jsonl`` (any other key is a photo, a mask...), but not a
    results or errors file a manifest's batch wrote next to it."""
    return (
        key.startswith(MANIFEST_PREFIX)
        and key.lower().endswith(MANIFEST_SUFFIX)
        and not is_manifest_reply(key)
    )


def is_manifest_reply(key: str) -> bool:
    """A results or errors file written next to a manifest (``batches/...results.jsonl``):
    neither a manifest nor a photo."""
    return key.startswith(MANIFEST_PREFIX) and key.lower().endswith(REPLY_SUFFIXES)


def results_key_of(manifest_key: str, *, client_id: str, batch_id: str) -> str:
    """Where the batch of ``batches/<path>.jsonl`` writes its results (the images bucket)."""
    path = manifest_key[len(MANIFEST_PREFIX) : -len(MANIFEST_SUFFIX)]
    return f"batches/{client_id}/inbox/{path}.{batch_id}.results.jsonl"


class UploadKind(StrEnum):
    """What an inbox object is, by its name."""

    PHOTO = "photo"
    MASK = "mask"
    REFERENCE = "reference"
    FOLDER = "folder"

    @property
    def edited(self) -> bool:
        """Only photos start edits; the rest is skipped (logged and counted)."""
        return self is UploadKind.PHOTO


def classify_key(key: str) -> UploadKind:
    """Say what the object at ``key`` is by its name alone."""
    if key.endswith("/"):
        return UploadKind.FOLDER
    if key.lower().endswith(MASK_SUFFIX):
        return UploadKind.MASK
    if _REFERENCE_RE.search(key):
        return UploadKind.REFERENCE
    return UploadKind.PHOTO


def photo_stem(key: str) -> str:
    """The key without its extension: ``dir/name.png`` -> ``dir/name`` (the companions' base)."""
    folder, _, name = key.rpartition("/")
    stem = name.rsplit(".", 1)[0] if "." in name.lstrip(".") else name
    return f"{folder}/{stem}" if folder else stem


@dataclass(frozen=True)
class Companions:
    """The mask and extra references that belong to a photo (keys in the inbox)."""

    mask: str | None = None
    references: list[str] = field(default_factory=list)


def find_companions(photo_key: str, sibling_keys: Iterable[str]) -> Companions:
    """Pick the photo's mask and references from the keys that start with its stem + ``.``."""
    stem = photo_stem(photo_key)
    mask: str | None = None
    numbered: list[tuple[int, str]] = []
    for key in sibling_keys:
        if not key.startswith(stem + ".") or key == photo_key:
            continue
        rest = key[len(stem) :]
        if rest.lower() == MASK_SUFFIX:
            mask = key
            continue
        match = _REFERENCE_RE.fullmatch(rest)
        if match:
            numbered.append((int(match.group(1)), key))
    numbered.sort()
    return Companions(mask=mask, references=[key for _, key in numbered][:MAX_EXTRA_REFERENCES])
