"""The pytest plugin of pi_secure_ws's tests (entry point ``pytest11``, loaded by every pytest run
in an environment scripts/setup made).

Home Assistant tests run a real agent in the same process as the integration. The protocol is one
folder with two names: ``custom_components.pi_secure_ws.protocol`` (the integration's) and
``pi_secure_ws_protocol`` (the agent's, through the agent's editable install). Imported under both
names it would be two copies in one process: two ``Role`` enums, two ``InvalidAuth`` classes, and an
``except`` in the integration that misses what the in-process agent raised. So when Home
Assistant's plugin is active, this plugin imports the integration's copy and enters each of its
modules under the agent's name as well, before any conftest or test module is imported.

It also lets Home Assistant find ``custom_components`` in the repository without putting the
repository on ``sys.path``: an import hook that knows that one name.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import pkgutil
import sys
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

import pytest

# This package is installed editable from tests/support/ of the repository.
REPOSITORY = Path(__file__).resolve().parents[3]
CUSTOM_COMPONENTS = "custom_components"
INTEGRATION_PROTOCOL = "custom_components.pi_secure_ws.protocol"
AGENT_PROTOCOL = "pi_secure_ws_protocol"
# Home Assistant's pytest plugin (pytest-homeassistant-custom-component's entry point name).
HOME_ASSISTANT_PLUGIN = "homeassistant"


class CustomComponentsFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Finds ``custom_components`` in the repository, where Home Assistant looks for the
    integration. A package with a fixed ``__path__``: a namespace package's path would follow
    ``sys.path`` and lose the folder."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def find_spec(
        self,
        fullname: str,
        path: Sequence[str] | None,
        target: ModuleType | None = None,
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname != CUSTOM_COMPONENTS:
            return None
        spec = importlib.machinery.ModuleSpec(fullname, self, is_package=True)
        spec.submodule_search_locations = [str(self.folder)]
        return spec

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType | None:
        return None  # the default module; its __path__ comes from the spec

    def exec_module(self, module: ModuleType) -> None:
        """A folder without ``__init__.py``: nothing to run."""


def find_custom_components(repository: Path = REPOSITORY) -> None:
    """Make ``import custom_components`` the repository's folder (once per process)."""
    folder = repository / CUSTOM_COMPONENTS
    if not (folder / "pi_secure_ws" / "manifest.json").is_file():
        raise pytest.UsageError(
            f"pi_secure_ws_testing is installed from {repository}, which has no "
            "custom_components/pi_secure_ws: install it editable from the repository's "
            "tests/support (scripts/setup does)"
        )
    if not any(isinstance(finder, CustomComponentsFinder) for finder in sys.meta_path):
        sys.meta_path.insert(0, CustomComponentsFinder(folder))


def share_the_protocol() -> list[str]:
    """Enter every module of the integration's protocol package under the agent's name too;
    return the names entered."""
    early = sorted(name for name in sys.modules if is_agent_protocol(name))
    if early and sys.modules[AGENT_PROTOCOL] is not sys.modules.get(INTEGRATION_PROTOCOL):
        raise pytest.UsageError(
            f"{early[0]} was imported before the pi_secure_ws plugin could map it onto "
            f"{INTEGRATION_PROTOCOL}: the protocol would be loaded twice"
        )
    package = importlib.import_module(INTEGRATION_PROTOCOL)
    modules = [package]
    for info in pkgutil.walk_packages(package.__path__, INTEGRATION_PROTOCOL + "."):
        modules.append(importlib.import_module(info.name))
    entered = []
    for module in modules:
        name = AGENT_PROTOCOL + module.__name__.removeprefix(INTEGRATION_PROTOCOL)
        sys.modules[name] = module
        entered.append(name)
    return entered


def is_agent_protocol(name: str) -> bool:
    return name == AGENT_PROTOCOL or name.startswith(AGENT_PROTOCOL + ".")


# Neither tryfirst nor trylast: after pytest-cov (tryfirst) has started measuring, so that the
# protocol's module bodies count; before pytest's own implementation (trylast) imports the
# conftest files.
def pytest_load_initial_conftests(early_config: pytest.Config) -> None:
    if early_config.pluginmanager.has_plugin(HOME_ASSISTANT_PLUGIN):
        find_custom_components()
        share_the_protocol()


@pytest.fixture
def headless_display(monkeypatch: pytest.MonkeyPatch) -> None:
    """SDL (pygame, the picture frame) draws to no screen."""
    monkeypatch.setenv("SDL_VIDEODRIVER", "dummy")


@pytest.fixture
def every_entity_enabled(monkeypatch: pytest.MonkeyPatch) -> None:
    """Home Assistant creates the entities that are disabled by default too."""
    from homeassistant.helpers.entity import Entity

    monkeypatch.setattr(Entity, "entity_registry_enabled_default", property(lambda self: True))
