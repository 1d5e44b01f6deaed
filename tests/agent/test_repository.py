"""The repository's shape: one copy of the protocol, clean import boundaries, what HACS checks."""

from __future__ import annotations

import ast
import hashlib
import json
import re
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pi_secure_ws_protocol
import pytest
from pi_secure_ws_testing.architecture import (
    AGENT_PROTOCOL,
    MAX_MODULE_LINES,
    cycles,
    import_edges,
    import_graph,
    oversized,
)
from PIL import Image

ROOT = Path(__file__).resolve().parents[2]
INTEGRATION = ROOT / "custom_components" / "pi_secure_ws"
PROTOCOL = INTEGRATION / "protocol"
AGENT = ROOT / "pi_agent"
ICON = INTEGRATION / "brand" / "icon.png"
# Not part of the project's sources: environments, caches, build output, local demo state.
SKIPPED_DIRS = {".git", "build", "dist", "demo", "config", "node_modules", "__pycache__"}
SKIPPED_PREFIXES = (".venv", ".mypy", ".ruff", ".pytest", ".hypothesis")
# Keys HACS accepts in hacs.json (its manifest schema).
HACS_KEYS = {
    "name",
    "content_in_root",
    "zip_release",
    "filename",
    "hide_default_branch",
    "country",
    "homeassistant",
    "persistent_directory",
    "render_readme",
    "hacs",
}
# A phrase only the full text of each licence contains, by SPDX id; all are OSI-approved.
OSI_LICENCES = {
    "MIT": "Permission is hereby granted, free of charge, to any person obtaining a copy",
    "Apache-2.0": "Apache License\n                           Version 2.0",
    "BSD-3-Clause": "Neither the name of the copyright holder nor the names of its",
    "BSD-2-Clause": "Redistribution and use in source and binary forms, with or without",
    "GPL-3.0-or-later": "GNU GENERAL PUBLIC LICENSE\n                       Version 3",
    "MPL-2.0": "Mozilla Public License Version 2.0",
}


def project_files(root: Path = ROOT) -> Iterator[Path]:
    """Every regular file of the project, without following symlinks (.mypy_path is one)."""
    for entry in root.iterdir():
        if entry.is_symlink():
            continue
        if entry.is_dir():
            if entry.name in SKIPPED_DIRS or entry.name.startswith(SKIPPED_PREFIXES):
                continue
            if entry.name.endswith(".egg-info"):
                continue
            yield from project_files(entry)
        elif entry.is_file():
            yield entry


def protocol_modules() -> list[Path]:
    return sorted(PROTOCOL.glob("*.py"))


def imported_modules(path: Path) -> list[tuple[str, int]]:
    """(module, relative level) of every import in a source file."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: list[tuple[str, int]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend((alias.name, 0) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            found.append((node.module or "", node.level))
    return found


def normalised(source: bytes) -> str:
    """Source text with blank lines and surrounding whitespace removed, to catch edited copies."""
    lines = source.decode("utf-8", errors="replace").splitlines()
    return "\n".join(line.strip() for line in lines if line.strip())


def test_protocol_is_imported_from_the_integration_folder() -> None:
    # A namespace package (no __init__.py) would silently merge any other pi_secure_ws_protocol
    # folder on sys.path into this one: a second copy nobody notices.
    assert pi_secure_ws_protocol.__file__ is not None, (
        "custom_components/pi_secure_ws/protocol/ has no __init__.py: pi_secure_ws_protocol is a "
        "namespace package"
    )
    assert Path(pi_secure_ws_protocol.__file__).resolve() == (PROTOCOL / "__init__.py").resolve()
    portions = [Path(p).resolve() for p in pi_secure_ws_protocol.__path__ if Path(p).is_dir()]
    assert portions == [PROTOCOL.resolve()]
    for name in ("const", "messages", "scram", "pinning", "client"):
        module = __import__(f"pi_secure_ws_protocol.{name}", fromlist=["_"])
        assert Path(module.__file__ or "").resolve().parent == PROTOCOL.resolve(), name


def test_no_copy_of_a_protocol_module_elsewhere() -> None:
    modules = protocol_modules()
    # Modules with real content; an empty __init__.py says nothing about copies.
    by_digest = {
        hashlib.sha256(normalised(path.read_bytes()).encode()).hexdigest(): path
        for path in modules
        if len(normalised(path.read_bytes())) > 200
    }
    assert len(by_digest) >= 5, "the protocol package should hold its modules"
    distinctive_names = {path.name for path in modules} - {"__init__.py", "const.py", "errors.py"}
    names_by_dir: dict[Path, set[str]] = {}
    copies: list[str] = []
    for path in project_files():
        if path.parent.resolve() == PROTOCOL.resolve() or path.suffix != ".py":
            continue
        digest = hashlib.sha256(normalised(path.read_bytes()).encode()).hexdigest()
        if digest in by_digest:
            copies.append(f"{path.relative_to(ROOT)} is a copy of {by_digest[digest].name}")
        if path.name in distinctive_names:
            names_by_dir.setdefault(path.parent, set()).add(path.name)
    for directory, names in names_by_dir.items():
        if len(names) >= 3:
            copies.append(f"{directory.relative_to(ROOT)} repeats protocol modules {sorted(names)}")
    assert not copies, copies


def test_agent_imports_the_protocol_only_as_pi_secure_ws_protocol() -> None:
    uses_protocol = False
    wrong: list[str] = []
    for path in sorted(AGENT.rglob("*.py")):
        for module, _level in imported_modules(path):
            if module == "pi_secure_ws_protocol" or module.startswith("pi_secure_ws_protocol."):
                uses_protocol = True
            if module.split(".")[0] in {"custom_components", "pi_secure_ws", "homeassistant"}:
                wrong.append(f"{path.relative_to(ROOT)} imports {module}")
    assert uses_protocol, "the agent is expected to use the shared protocol package"
    assert not wrong, wrong


def test_protocol_imports_nothing_from_home_assistant_or_the_integration() -> None:
    wrong: list[str] = []
    for path in protocol_modules():
        for module, level in imported_modules(path):
            if module.split(".")[0] in {"homeassistant", "custom_components", "pi_agent"}:
                wrong.append(f"{path.name} imports {module}")
            # `from ..x import` would reach into the integration, which the agent does not have.
            if level > 1:
                wrong.append(f"{path.name} imports {'.' * level}{module} outside the package")
    assert not wrong, wrong


def test_protocol_and_agent_are_marked_typed() -> None:
    assert (PROTOCOL / "py.typed").is_file()
    assert (AGENT / "py.typed").is_file()


def test_licence_is_an_osi_licence_matching_pyproject() -> None:
    text = (ROOT / "LICENSE").read_text(encoding="utf-8")
    matching = [spdx for spdx, phrase in OSI_LICENCES.items() if phrase in text]
    assert len(matching) == 1, "LICENSE is not the full text of a known OSI licence"
    pyproject = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    declared = re.search(r'^license\s*=\s*"([^"]+)"', pyproject, re.MULTILINE)
    assert declared is not None, "pyproject.toml declares no licence"
    assert declared.group(1) == matching[0]
    assert re.search(r"Copyright \(c\) \d{4} \S", text), "LICENSE has no copyright line"


def test_hacs_json_is_valid_and_names_the_tested_home_assistant() -> None:
    hacs = json.loads((ROOT / "hacs.json").read_text(encoding="utf-8"))
    assert isinstance(hacs, dict)
    assert set(hacs) <= HACS_KEYS, f"unknown hacs.json keys: {sorted(set(hacs) - HACS_KEYS)}"
    assert isinstance(hacs["name"], str)
    assert hacs["name"].strip()
    assert hacs.get("content_in_root", False) is False
    assert isinstance(hacs.get("render_readme", False), bool)
    version = hacs["homeassistant"]
    assert re.fullmatch(r"20\d\d\.\d{1,2}\.\d+", version), version
    # The minimum named is the release the test environment installs.
    setup = (ROOT / "scripts" / "setup").read_text(encoding="utf-8")
    pinned = re.search(r'^HA_VERSION="([^"]+)"', setup, re.MULTILINE)
    assert pinned is not None
    assert version == pinned.group(1)
    # content_in_root false: HACS wants exactly one integration under custom_components/.
    integrations = [p.name for p in (ROOT / "custom_components").iterdir() if p.is_dir()]
    assert [name for name in integrations if name != "__pycache__"] == ["pi_secure_ws"]


def test_brand_icon_is_a_256_pixel_square_png() -> None:
    with Image.open(ICON) as icon:
        assert icon.format == "PNG"
        assert icon.size == (256, 256)
        assert icon.mode in {"RGBA", "LA", "P"}, "the icon needs a transparent background"
        # Not blank: the shield fills the square (brand images are trimmed), but its point leaves
        # the bottom corners transparent; the centre is opaque.
        alpha = icon.convert("RGBA").getchannel("A").tobytes()
        assert alpha[255 * 256] == 0
        assert alpha[255 * 256 + 255] == 0
        assert alpha[128 * 256 + 128] == 255


def test_brand_generator_draws_the_committed_images(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "make_brand.py"), "--output-dir", str(tmp_path)],
        check=True,
        capture_output=True,
        timeout=60,
    )
    committed = sorted(path.name for path in ICON.parent.iterdir())
    assert sorted(path.name for path in tmp_path.iterdir()) == committed
    for name in committed:
        with Image.open(tmp_path / name) as drawn, Image.open(ICON.parent / name) as shipped:
            if name.startswith("icon"):
                assert drawn.size == shipped.size
                # Same picture, allowing for resampling differences between Pillow versions.
                difference = [
                    abs(a - b)
                    for a, b in zip(
                        drawn.convert("RGBA").tobytes(),
                        shipped.convert("RGBA").tobytes(),
                        strict=True,
                    )
                ]
                assert sum(difference) / len(difference) < 2.0, name
            else:
                # The name is set in Pillow's own font, whose metrics move a little between
                # Pillow versions: the same height, about the same width.
                assert drawn.height == shipped.height, name
                assert abs(drawn.width - shipped.width) <= shipped.width * 0.05, name


@pytest.mark.parametrize("script", ["setup", "test", "lint", "develop", "debian-root"])
def test_scripts_are_executable_bash(script: str) -> None:
    path = ROOT / "scripts" / script
    assert path.stat().st_mode & 0o111, f"scripts/{script} is not executable"
    subprocess.run(["bash", "-n", str(path)], check=True, timeout=30)


def test_ci_runs_the_readme_commands() -> None:
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "set -euo pipefail" in ci
    for command in ("scripts/setup", "scripts/test"):
        assert re.search(rf"^{re.escape(command)}$", ci, re.MULTILINE), command
    assert "scripts/test" in readme
    assert "scripts/develop" in readme
    subprocess.run(["bash", "-n", str(ROOT / ".ci" / "run")], check=True, timeout=30)


def test_every_agent_package_is_in_the_wheel() -> None:
    """pyproject lists packages by hand: a new sub-package left out installs without it (seen:
    pi_agent.server, which only the editable install of the tests had)."""
    import tomllib

    listed = set(
        tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]
    )
    found = {
        ".".join(init.parent.relative_to(ROOT).parts)
        for init in (ROOT / "pi_agent").rglob("__init__.py")
    }
    assert found <= listed, f"missing from pyproject's packages: {sorted(found - listed)}"


def sys_path_edits(path: Path) -> list[int]:
    """Lines of ``path`` that change the import path: ``sys.path.insert(...)`` and the like,
    assignments to ``sys.path``, ``site.addsitedir(...)``."""
    lines: list[int] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Call):
            function = ast.unparse(node.func)
            if function.startswith("sys.path.") or function == "site.addsitedir":
                lines.append(node.lineno)
        elif isinstance(node, ast.Assign | ast.AugAssign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            if any(ast.unparse(target).startswith("sys.path") for target in targets):
                lines.append(node.lineno)
    return sorted(lines)


def test_nothing_edits_sys_path(tmp_path: Path) -> None:
    """Tests and benchmarks reach their helpers through the installed test-support package
    (tests/support), not by putting folders on the import path."""
    edits = [
        f"{path.relative_to(ROOT)}:{line}"
        for path in project_files()
        if path.suffix == ".py"
        for line in sys_path_edits(path)
    ]
    assert not edits, f"sys.path edited at {edits}"
    pytest_options = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["pytest"]
    assert "pythonpath" not in pytest_options["ini_options"]
    # The checker itself.
    sample = tmp_path / "sample.py"
    sample.write_text(
        "import sys, site\nsys.path.insert(0, 'x')\nsys.path += ['y']\nsys.path[:0] = ['z']\n"
        "site.addsitedir('w')\nprint(sys.path)\n"
    )
    assert sys_path_edits(sample) == [2, 3, 4, 5]


def test_the_test_support_is_not_in_the_wheel() -> None:
    setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    shipped = set(setuptools["packages"]) | set(setuptools.get("package-dir", {}))
    assert not {name for name in shipped if "testing" in name or name.startswith("tests")}
    assert not any(
        str(folder).startswith("tests") for folder in setuptools.get("package-dir", {}).values()
    )


# ---- architecture: module size and import cycles -------------------------------------------


def test_no_module_is_over_the_size_limit() -> None:
    over = oversized(ROOT)
    assert not over, (
        f"modules over {MAX_MODULE_LINES} lines: {over}; split them along their jobs "
        "(docs/architecture.md)"
    )


def test_no_import_cycle() -> None:
    found = [sorted(cycle) for cycle in cycles(import_graph(ROOT))]
    assert not found, f"import cycles: {found}"


def test_the_import_graph_sees_every_kind_of_import(tmp_path: Path) -> None:
    """The checker itself: relative, TYPE_CHECKING and function-local imports, a package's
    submodule imported by ``from``, the protocol by either of its names."""
    source = tmp_path / "config.py"
    source.write_text(
        "from typing import TYPE_CHECKING\n"
        "import os\n"
        "from . import fsutil\n"
        "from .devices import base\n"
        "from custom_components.pi_secure_ws.protocol.const import Role\n"
        "if TYPE_CHECKING:\n"
        "    from .devices import DeviceModule\n"
        "def load():\n"
        "    from pi_agent.errors import ConfigError\n"
    )
    known = {
        "pi_agent.fsutil",
        "pi_agent.devices",
        "pi_agent.devices.base",
        "pi_agent.errors",
        "pi_secure_ws_protocol.const",
    }
    assert import_edges("pi_agent.config", source, known) == known
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [frozenset("abc")]
    assert cycles({"a": {"b"}, "b": set()}) == []
    # And on the real tree: the integration reaches the protocol under the agent's name.
    graph = import_graph(ROOT)
    assert any(
        target.startswith(AGENT_PROTOCOL + ".")
        for name, targets in graph.items()
        if name.startswith("custom_components.")
        for target in targets
    )
