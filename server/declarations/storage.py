"""Where attachment bytes live: outside the database, behind a small interface.

The database keeps each attachment's name, type, size and sha256; the bytes go to a
storage. The default keeps them in a local folder (under var/); an object store can
take its place by implementing the same three calls. Every read is checked against
the recorded checksum, so a file changed on disk is refused instead of served.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import secrets
from pathlib import Path
from typing import Protocol

from server.errors import Unavailable
from server.settings import Settings


class AttachmentStorage(Protocol):
    """Put, get and delete attachment bytes by an opaque key."""

    async def put(self, data: bytes, sha256: str) -> str:
        """Store data and return its key."""
        ...

    async def get(self, key: str, sha256: str) -> bytes:
        """The bytes under key, checked against sha256."""
        ...

    async def delete(self, key: str) -> None:
        """Forget key; a missing key is not an error."""
        ...


def checksum(data: bytes) -> str:
    """The sha256 of data, in hex."""
    return hashlib.sha256(data).hexdigest()


class LocalStorage:
    """Attachments as files under one folder: ab/<sha256>.<random>.

    Keys are unique per upload, so deleting one attachment never removes bytes that
    another attachment with the same content still uses.
    """

    def __init__(self, root: Path) -> None:
        self._root = root

    @classmethod
    def from_settings(cls, settings: Settings) -> LocalStorage:
        """The folder QRLOGIN_ATTACHMENT_DIR names, or var/attachments."""
        return cls(Path(settings.attachment_dir or settings.var_dir / "attachments"))

    def _path(self, key: str) -> Path:
        path = (self._root / key).resolve()
        if self._root.resolve() not in path.parents:
            raise Unavailable(
                "Attachment storage refused a key.", code="bad_storage_key"
            )
        return path

    async def put(self, data: bytes, sha256: str) -> str:
        """Write to a temporary name, then rename, so no reader sees half a file."""
        key = f"{sha256[:2]}/{sha256}.{secrets.token_hex(6)}"
        path = self._path(key)

        def write() -> None:
            path.parent.mkdir(parents=True, exist_ok=True)
            partial = path.with_suffix(".part")
            partial.write_bytes(data)
            os.replace(partial, path)

        await asyncio.to_thread(write)
        return key

    async def get(self, key: str, sha256: str) -> bytes:
        """Read the file and refuse it when its checksum no longer matches."""
        path = self._path(key)
        try:
            data = await asyncio.to_thread(path.read_bytes)
        except OSError as err:
            raise Unavailable("附件暂时无法读取。", code="attachment_missing") from err
        if checksum(data) != sha256:
            raise Unavailable("附件校验失败。", code="attachment_corrupt")
        return data

    async def delete(self, key: str) -> None:
        """Remove the file if it is there."""
        path = self._path(key)
        await asyncio.to_thread(path.unlink, missing_ok=True)
