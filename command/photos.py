"""Photos from the field (a crew's report): kept as files under the data folder, named by a random id.

Only JPEG and PNG are taken, recognised by their first bytes (JPEG: FF D8 FF, ISO/IEC 10918-1
SOI marker then a marker; PNG: the 8-byte signature of RFC 2083 §3.1), not by what the client
claims; at most ``MAX_PHOTO_BYTES``. The id is 32 hex characters (128 random bits), so a photo
is found only by whoever was given its id.
"""

from __future__ import annotations

import re
import secrets
from pathlib import Path

__all__ = ["MAX_PHOTO_BYTES", "PhotoError", "PhotoStore"]

MAX_PHOTO_BYTES = 5 * 1024 * 1024  # a phone photo, downscaled or JPEG at normal quality
_ID = re.compile(r"^[0-9a-f]{32}$")
_KINDS = {"jpg": b"\xff\xd8\xff", "png": b"\x89PNG\r\n\x1a\n"}
MEDIA_TYPES = {"jpg": "image/jpeg", "png": "image/png"}


class PhotoError(ValueError):
    """A photo refused: empty, too large, or not a JPEG or PNG image."""


class PhotoStore:
    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)

    @staticmethod
    def kind_of(data: bytes) -> str:
        for kind, magic in _KINDS.items():
            if data.startswith(magic):
                return kind
        raise PhotoError("not a JPEG or PNG image (by its first bytes)")

    def save(self, data: bytes) -> str:
        """Keep a photo; its id."""
        if not data:
            raise PhotoError("the photo is empty")
        if len(data) > MAX_PHOTO_BYTES:
            raise PhotoError(f"a photo may be at most {MAX_PHOTO_BYTES // (1024 * 1024)} MB (got {len(data)} bytes)")
        kind = self.kind_of(data)
        photo_id = secrets.token_hex(16)
        self.folder.mkdir(parents=True, exist_ok=True)
        tmp = self.folder / f".{photo_id}.{kind}.part"
        tmp.write_bytes(data)
        tmp.rename(self.folder / f"{photo_id}.{kind}")  # whole or not at all
        return photo_id

    def path(self, photo_id: str) -> tuple[Path, str] | None:
        """The file and media type of a photo, or None for an unknown or malformed id."""
        if not _ID.fullmatch(photo_id):
            return None
        for kind, media in MEDIA_TYPES.items():
            p = self.folder / f"{photo_id}.{kind}"
            if p.is_file():
                return p, media
        return None

    def exists(self, photo_id: str) -> bool:
        return self.path(photo_id) is not None
