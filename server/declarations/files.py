"""Deciding what an upload is from its bytes, never from its name.

A renamed executable (`report.pdf` that starts with MZ) is refused: puremagic reads
the signatures, and an allowed type counts only when its signature sits at the very
start of the file and no other signature is a better match.
"""

from __future__ import annotations

import re
import unicodedata

import puremagic

ALLOWED = {"application/pdf": "pdf", "image/png": "png", "image/jpeg": "jpg"}
ALLOWED_TEXT = "PDF、PNG 或 JPG"
_UNSAFE = re.compile(r'[\\/:*?"<>|\x00-\x1f\x7f]')


def sniff(data: bytes) -> str | None:
    """The allowed MIME type data really is, or None."""
    try:
        matches = puremagic.magic_string(data[:8192])
    except puremagic.PureError:
        return None
    if not matches:
        return None
    best = max(m.confidence for m in matches)
    for match in matches:
        if (
            match.mime_type in ALLOWED
            and match.offset == 0
            and match.confidence == best
        ):
            return match.mime_type
    return None


def safe_filename(name: str, content_type: str) -> str:
    """A display name with no path or control characters and the true extension."""
    name = unicodedata.normalize("NFC", name).replace("\\", "/").rsplit("/", 1)[-1]
    stem = _UNSAFE.sub("", name).strip().strip(".")
    stem = stem.rsplit(".", 1)[0] if "." in stem else stem
    return f"{(stem or '附件')[:100]}.{ALLOWED[content_type]}"
