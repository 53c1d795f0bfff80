"""Downloads: where an image goes, and checking it is the image the gateway stored.

The bytes go to a temporary file beside the destination while their sha256 and size are
counted; only a file that matches the task's record (``outputs[i].sha256``, ``bytes``) is
renamed into place, so a broken or tampered download never leaves a file that looks done.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path
from typing import IO, Protocol

from imagegw.errors import IntegrityError
from imagegw.models import Output

Destination = str | os.PathLike[str]


def target_path(dest: Destination, task_id: str, output: Output, index: int) -> Path:
    """``dest/{task id}[-i].{ext}`` for a folder; for a file name, itself (image 0) or with
    ``-i`` before its extension (image ``i`` of a task of n images).

    A folder is an existing directory, or a path written with a trailing slash (created).
    """
    text = os.fspath(dest)
    path = Path(text)
    suffix = "" if index == 0 else f"-{index}"
    if path.is_dir() or text.endswith(("/", os.sep)):
        return path / f"{task_id}{suffix}.{output.extension}"
    return path.with_name(f"{path.stem}{suffix}{path.suffix}")


class Expected(Protocol):
    """What a download must be: a task's output, or a line of a batch's results file."""

    @property
    def key(self) -> str: ...
    @property
    def bytes(self) -> int: ...
    @property
    def sha256(self) -> str: ...


class VerifiedWriter:
    """A temporary file that becomes ``path`` only if its bytes match ``output``."""

    def __init__(self, path: Path, output: Expected) -> None:
        self.path = path
        self.output = output
        self._digest = hashlib.sha256()
        self._size = 0
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
        self._temp = Path(name)
        self._file: IO[bytes] = os.fdopen(handle, "wb")

    def write(self, chunk: bytes) -> None:
        """Add a chunk."""
        self._digest.update(chunk)
        self._size += len(chunk)
        self._file.write(chunk)

    def commit(self, *, verify: bool = True) -> Path:
        """Check the digest and size, then move the file into place (IntegrityError if not)."""
        self._file.close()
        digest = self._digest.hexdigest()
        if verify and (digest != self.output.sha256 or self._size != self.output.bytes):
            self._temp.unlink(missing_ok=True)
            raise IntegrityError(
                f"{self.output.key}: got {self._size} bytes with sha256 {digest}, expected "
                f"{self.output.bytes} bytes with sha256 {self.output.sha256}"
            )
        self._temp.replace(self.path)
        return self.path

    def discard(self) -> None:
        """Drop the temporary file (the download failed)."""
        self._file.close()
        self._temp.unlink(missing_ok=True)
