"""Draw the integration's brand images: a raspberry-red shield holding a water drop marked with pi.

Run with any Python that has Pillow (``.venv/bin/python scripts/make_brand.py``); it writes the set
Home Assistant 2026.3+ reads from ``custom_components/pi_secure_ws/brand/`` (or ``--output-dir``):

- ``icon.png`` 256x256 and ``icon@2x.png`` 512x512, transparent. The shield carries its own dark
  rim, so it reads on light and dark themes alike: no ``dark_icon``.
- ``logo.png`` (128 high) and ``logo@2x.png`` (256 high): the shield and the name, in dark grey;
  ``dark_logo.png`` and ``dark_logo@2x.png``: the same with the name in near-white for dark themes.

Everything is drawn at four times the size, then scaled down, for smooth edges.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

SIZE = 256
SCALE = 4
NAME = "Pi Secure WS"
LOGO_HEIGHT = 128
TEXT_LIGHT_THEME = (33, 33, 33, 255)
TEXT_DARK_THEME = (241, 241, 241, 255)
RASPBERRY = (197, 26, 74, 255)
RIM = (120, 12, 42, 255)
WATER = (255, 255, 255, 255)
DEFAULT_OUTPUT_DIR = Path(__file__).resolve().parent.parent / "custom_components/pi_secure_ws/brand"

Point = tuple[float, float]


def _shield(width: float, inset: float) -> list[Point]:
    """Outline of a shield: a flat top with rounded shoulders curving down to a point."""
    left, right = inset, width - inset
    top = inset * 0.9
    bottom = width - inset * 0.6
    middle = width / 2
    points: list[Point] = [(left, top), (right, top)]
    # Each flank is a quadratic curve from the shoulder down to the tip.
    steps = 48
    shoulder_y = top + (bottom - top) * 0.45
    for index in range(steps + 1):
        t = index / steps
        control = (right, bottom - (bottom - top) * 0.15)
        x = (1 - t) ** 2 * right + 2 * (1 - t) * t * control[0] + t**2 * middle
        y = (1 - t) ** 2 * shoulder_y + 2 * (1 - t) * t * control[1] + t**2 * bottom
        points.append((x, y))
    for index in range(steps + 1):
        t = index / steps
        control = (left, bottom - (bottom - top) * 0.15)
        x = (1 - t) ** 2 * middle + 2 * (1 - t) * t * control[0] + t**2 * left
        y = (1 - t) ** 2 * bottom + 2 * (1 - t) * t * control[1] + t**2 * shoulder_y
        points.append((x, y))
    return points


def _drop(centre_x: float, centre_y: float, radius: float) -> list[Point]:
    """Outline of a water drop: a circle whose top is drawn out into a point."""
    tip_y = centre_y - radius * 2.1
    # The tangents from the tip touch the circle at this angle from the vertical.
    touch = math.acos(radius / (centre_y - tip_y))
    points: list[Point] = [(centre_x, tip_y)]
    steps = 96
    start = -math.pi / 2 + touch
    end = 3 * math.pi / 2 - touch
    for index in range(steps + 1):
        angle = start + (end - start) * index / steps
        points.append((centre_x + radius * math.cos(angle), centre_y + radius * math.sin(angle)))
    return points


def _pi(draw: ImageDraw.ImageDraw, centre_x: float, centre_y: float, size: float) -> None:
    """The letter pi from three strokes: a bar and two legs, the right one curling outwards."""
    stroke = size * 0.16
    half = size / 2
    bar_top = centre_y - half * 0.75
    draw.rounded_rectangle(
        (centre_x - half, bar_top, centre_x + half, bar_top + stroke),
        radius=stroke / 2,
        fill=RASPBERRY,
    )
    leg_bottom = centre_y + half
    left_leg = centre_x - half * 0.45
    draw.rounded_rectangle(
        (left_leg - stroke / 2, bar_top, left_leg + stroke / 2, leg_bottom),
        radius=stroke / 2,
        fill=RASPBERRY,
    )
    right_leg = centre_x + half * 0.35
    draw.rounded_rectangle(
        (right_leg - stroke / 2, bar_top, right_leg + stroke / 2, leg_bottom - stroke),
        radius=stroke / 2,
        fill=RASPBERRY,
    )
    draw.rounded_rectangle(
        (right_leg - stroke / 2, leg_bottom - stroke, right_leg + stroke * 1.3, leg_bottom),
        radius=stroke / 2,
        fill=RASPBERRY,
    )


def make_icon(size: int = SIZE) -> Image.Image:
    big = size * SCALE
    image = Image.new("RGBA", (big, big), (0, 0, 0, 0))
    draw = ImageDraw.Draw(image)
    # The rim's shield fills the square from edge to edge: brand images are trimmed.
    draw.polygon(_shield(big, 0), fill=RIM)
    draw.polygon(_shield(big, big * 0.04), fill=RASPBERRY)
    drop_radius = big * 0.2
    drop_centre_y = big * 0.56
    draw.polygon(_drop(big / 2, drop_centre_y, drop_radius), fill=WATER)
    _pi(draw, big / 2, drop_centre_y + drop_radius * 0.1, drop_radius * 1.25)
    return image.resize((size, size), Image.Resampling.LANCZOS)


def make_logo(height: int, text_colour: tuple[int, int, int, int]) -> Image.Image:
    """The icon with the name beside it, trimmed to what is drawn (as the brands rules ask)."""
    big = height * SCALE
    font = ImageFont.load_default(size=round(big * 0.42))
    measure = ImageDraw.Draw(Image.new("RGBA", (1, 1)))
    left, top, right, bottom = measure.textbbox((0, 0), NAME, font=font)
    gap = round(big * 0.12)
    image = Image.new("RGBA", (big + gap + (right - left), big), (0, 0, 0, 0))
    image.alpha_composite(make_icon(big))
    draw = ImageDraw.Draw(image)
    draw.text(
        (big + gap - left, (big - (bottom - top)) / 2 - top), NAME, font=font, fill=text_colour
    )
    box = image.getbbox()
    if box:
        image = image.crop(box)
    # Trimmed first, so the shortest side is exactly ``height`` (the brands rules: 128..256 px).
    width = round(image.width * height / image.height)
    return image.resize((width, height), Image.Resampling.LANCZOS)


def brand_images() -> dict[str, Image.Image]:
    return {
        "icon.png": make_icon(SIZE),
        "icon@2x.png": make_icon(SIZE * 2),
        "logo.png": make_logo(LOGO_HEIGHT, TEXT_LIGHT_THEME),
        "logo@2x.png": make_logo(LOGO_HEIGHT * 2, TEXT_LIGHT_THEME),
        "dark_logo.png": make_logo(LOGO_HEIGHT, TEXT_DARK_THEME),
        "dark_logo@2x.png": make_logo(LOGO_HEIGHT * 2, TEXT_DARK_THEME),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--output-dir", type=Path, default=DEFAULT_OUTPUT_DIR, help="folder to write into"
    )
    args = parser.parse_args()
    output_dir: Path = args.output_dir
    output_dir.mkdir(parents=True, exist_ok=True)
    for name, image in brand_images().items():
        image.save(output_dir / name, format="PNG", optimize=True)
        print(f"wrote {output_dir / name} ({image.width}x{image.height})")


if __name__ == "__main__":
    main()
