"""The picture library: the pictures folder's names, albums and files.

The folder is the source of truth: it is scanned again whenever the slideshow needs to know what is
there, so pictures copied in or removed by any means are picked up without a restart. Names are
relative paths inside the folder, checked before they touch the file system; nothing here follows
a symbolic link out of the folder. Every function that touches the disk blocks: call it from a
worker thread.
"""

from __future__ import annotations

import os
from pathlib import Path, PurePosixPath
from typing import Any, Final

import voluptuous as vol

from pi_agent.fsutil import atomic_write

PICTURE_SUFFIXES: Final = (".jpg", ".jpeg", ".png")
MAX_NAME_LENGTH: Final = 255
# Pictures are not secrets: other local users (a web gallery, Samba) may read them.
PICTURE_FILE_MODE: Final = 0o644

# Names: relative paths inside the pictures folder, checked before they touch the file system.


def _relative_parts(value: Any, what: str) -> list[str]:
    if not isinstance(value, str) or not value:
        raise vol.Invalid(f"expected a {what} (non-empty text)")
    if len(value) > MAX_NAME_LENGTH:
        raise vol.Invalid(f"{what} is longer than {MAX_NAME_LENGTH} characters")
    if "\\" in value or any(ord(char) < 32 or ord(char) == 127 for char in value):
        raise vol.Invalid(f"{what} contains a backslash or a control character")
    if PurePosixPath(value).is_absolute():
        raise vol.Invalid(f"{what} must be relative to the pictures folder")
    parts = value.split("/")
    for part in parts:
        if part in ("", ".", ".."):
            raise vol.Invalid(f"{what} may not contain '..', '.' or empty path parts")
        if part.startswith("."):
            raise vol.Invalid(f"{what} may not contain hidden names (starting with '.')")
    return parts


def picture_name(value: Any) -> str:
    """A voluptuous validator: a safe picture path like ``holidays/beach.jpg``."""
    parts = _relative_parts(value, "picture name")
    if not parts[-1].lower().endswith(PICTURE_SUFFIXES):
        raise vol.Invalid(f"picture name must end in {', '.join(PICTURE_SUFFIXES)}")
    return "/".join(parts)


def album_name(value: Any) -> str | None:
    """A voluptuous validator: a sub-folder of the pictures folder, or None for all pictures."""
    if value is None:
        return None
    return "/".join(_relative_parts(value, "album"))


# The folder: blocking, run on worker threads.


def scan_pictures(folder: Path, album: str | None) -> dict[str, int]:
    """Every picture under ``folder/album``: name (relative to ``folder``) -> mtime in ns.

    Hidden files and folders are skipped (that includes uploads still being written), and so are
    symbolic links to folders, which could lead anywhere.
    """
    top = folder / album if album else folder
    found: dict[str, int] = {}
    for directory, subdirs, files in os.walk(top):
        subdirs[:] = [name for name in subdirs if not name.startswith(".")]
        for file_name in files:
            if file_name.startswith(".") or not file_name.lower().endswith(PICTURE_SUFFIXES):
                continue
            path = Path(directory, file_name)
            try:
                mtime = path.stat().st_mtime_ns
            except OSError:
                continue  # removed while scanning
            found[path.relative_to(folder).as_posix()] = mtime
    return found


def list_albums(folder: Path) -> list[str]:
    try:
        return sorted(
            entry.name
            for entry in folder.iterdir()
            if entry.is_dir() and not entry.is_symlink() and not entry.name.startswith(".")
        )
    except OSError:
        return []


def inside(folder: Path, path: Path) -> bool:
    """Whether ``path`` stays inside ``folder`` once symbolic links are followed."""
    return path.resolve().is_relative_to(folder.resolve())


def write_picture(folder: Path, name: str, data: bytes) -> bool:
    """Save ``data`` as picture ``name`` (atomically); True when it replaced one.

    OSError when it cannot be written, PermissionError when a sub-folder on the way is a symbolic
    link leading out of ``folder``.
    """
    target = folder / name
    replaced = target.exists()
    target.parent.mkdir(parents=True, exist_ok=True)
    # A sub-folder that is a symbolic link could point anywhere: write only inside.
    if not inside(folder, target.parent):
        raise PermissionError(f"{target.parent} leads outside the pictures folder")
    atomic_write(target, data, mode=PICTURE_FILE_MODE)
    return replaced


def is_picture_file(folder: Path, name: str) -> bool:
    """Whether ``name`` is a file of this folder (not reached through a link out of it)."""
    target = folder / name
    return target.is_file() and inside(folder, target.parent)
