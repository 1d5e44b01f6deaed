"""Generated pictures for the demo picture frame that ``init`` sets up on mock pins."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Final

from .fsutil import atomic_write

SAMPLE_PICTURES: Final = (
    ("sunrise.jpg", (255, 170, 60), (90, 30, 120)),
    ("meadow.jpg", (120, 200, 90), (20, 80, 140)),
    ("ocean.png", (30, 110, 200), (220, 240, 255)),
    ("dusk.jpg", (40, 20, 80), (250, 120, 90)),
)


def write_sample_pictures(folder: Path, size: tuple[int, int] = (800, 480)) -> list[Path]:
    """A few generated pictures for the demo frame (gradients with a caption); existing files
    are left alone so user pictures survive ``init --force``."""
    from PIL import Image, ImageDraw

    folder.mkdir(mode=0o755, parents=True, exist_ok=True)
    written = []
    width, height = size
    for index, (filename, top, bottom) in enumerate(SAMPLE_PICTURES, start=1):
        path = folder / filename
        if path.exists():
            continue
        gradient = Image.linear_gradient("L").resize(size)
        image = Image.composite(
            Image.new("RGB", size, bottom), Image.new("RGB", size, top), gradient
        )
        draw = ImageDraw.Draw(image)
        radius = height // 5
        centre = (width * index // (len(SAMPLE_PICTURES) + 1), height // 2)
        draw.ellipse(
            (centre[0] - radius, centre[1] - radius, centre[0] + radius, centre[1] + radius),
            fill=(255, 255, 255),
        )
        draw.text((20, height - 40), f"pi-agent sample {index}: {path.stem}", fill=(0, 0, 0))
        buffer = io.BytesIO()
        image.save(buffer, format="PNG" if path.suffix == ".png" else "JPEG", quality=85)
        atomic_write(path, buffer.getvalue(), 0o644)
        written.append(path)
    return written
