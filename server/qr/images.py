"""QR code images as SVG: small, sharp at any size, and cheap to draw."""

from __future__ import annotations

from functools import lru_cache

import qrcode
from qrcode.image.svg import SvgPathImage


def svg(data: str) -> bytes:
    """An SVG QR code of data, medium error correction, with a quiet zone."""
    code = qrcode.QRCode(
        error_correction=qrcode.constants.ERROR_CORRECT_M,
        box_size=10,
        border=2,
        image_factory=SvgPathImage,
    )
    code.add_data(data)
    code.make(fit=True)
    return code.make_image().to_string(encoding="unicode").encode()


@lru_cache(maxsize=8)
def cached_svg(data: str) -> bytes:
    """The same, remembered: for images that never change (the app download link)."""
    return svg(data)
