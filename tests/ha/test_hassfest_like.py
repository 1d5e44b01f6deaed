"""What hassfest and the HACS action would check, for an integration they do not run on.

Static checks of the files Home Assistant reads: manifest, hacs.json, translations, icons,
services, brand icon. A missing translation shows raw keys to users; these tests name which.
"""

from __future__ import annotations

import ast
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from awesomeversion import AwesomeVersion
from packaging.requirements import Requirement
from PIL import Image

ROOT = Path(__file__).resolve().parents[2]
INTEGRATION = ROOT / "custom_components" / "pi_secure_ws"
PLATFORM_MODULES = (
    "binary_sensor",
    "button",
    "camera",
    "datetime",
    "image",
    "light",
    "number",
    "select",
    "sensor",
    "switch",
    "valve",
)


def load_json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def manifest() -> dict[str, Any]:
    return load_json(INTEGRATION / "manifest.json")


@pytest.fixture(scope="module")
def en() -> dict[str, Any]:
    return load_json(INTEGRATION / "translations" / "en.json")


def module_tree(name: str) -> ast.Module:
    return ast.parse((INTEGRATION / f"{name}.py").read_text(encoding="utf-8"))


def exception_translation_keys(tree: ast.AST) -> set[str]:
    """``translation_key``s of calls that also name a ``translation_domain`` (exceptions)."""
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and any(
            kw.arg == "translation_domain" for kw in node.keywords
        ):
            for kw in node.keywords:
                if kw.arg == "translation_key" and isinstance(kw.value, ast.Constant):
                    found.add(str(kw.value.value))
    return found


def keyword_strings(tree: ast.AST, keyword: str) -> set[str]:
    """Every string constant passed as ``keyword=...`` or assigned to ``_attr_<keyword>``."""
    found: set[str] = set()
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.keyword)
            and node.arg == keyword
            and isinstance(node.value, ast.Constant)
            and isinstance(node.value.value, str)
        ):
            found.add(node.value.value)
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant):
            for target in node.targets:
                if isinstance(target, ast.Name) and target.id == f"_attr_{keyword}":
                    found.add(str(node.value.value))
    return found


def test_manifest_keys_and_order(manifest: dict[str, Any]) -> None:
    keys = list(manifest)
    assert keys[:2] == ["domain", "name"]
    assert keys[2:] == sorted(keys[2:]), "after domain and name, keys are alphabetical"
    assert manifest["domain"] == INTEGRATION.name
    assert manifest["config_flow"] is True
    assert manifest["iot_class"] == "local_push"
    assert manifest["integration_type"] == "device"
    assert AwesomeVersion(manifest["version"]).valid
    assert manifest["documentation"].startswith("https://")
    assert manifest["issue_tracker"].startswith("https://")
    assert manifest["codeowners"]
    assert all(owner.startswith("@") for owner in manifest["codeowners"])
    assert manifest["loggers"]
    assert manifest["zeroconf"] == ["_pi-secure-ws._tcp.local."]
    allowed = {
        "domain", "name", "after_dependencies", "codeowners", "config_flow", "dependencies",
        "documentation", "integration_type", "iot_class", "issue_tracker", "loggers",
        "requirements", "single_config_entry", "version", "zeroconf",
    }  # fmt: skip
    assert set(keys) <= allowed


def test_manifest_requirements(manifest: dict[str, Any]) -> None:
    """Only what the integration runs: the client needs websockets; scramp is the agent's."""
    requirements = {Requirement(text).name: Requirement(text) for text in manifest["requirements"]}
    assert set(requirements) == {"websockets"}
    # Home Assistant ships these itself: listing them could fight its own pins.
    assert not {"cryptography", "voluptuous", "aiohttp"} & set(requirements)
    assert manifest["loggers"] == ["websockets"]


def test_documentation_is_the_user_guide(manifest: dict[str, Any]) -> None:
    url = manifest["documentation"]
    assert url.endswith("/docs/home-assistant.md")
    assert (ROOT / "docs" / "home-assistant.md").is_file()


def test_the_integration_runs_without_scramp() -> None:
    """Every module of the integration imports, and a login runs, with scramp unimportable."""
    modules = [f"custom_components.pi_secure_ws.{path.stem}" for path in INTEGRATION.glob("*.py")]
    modules += [
        f"custom_components.pi_secure_ws.protocol.{path.stem}"
        for path in (INTEGRATION / "protocol").glob("*.py")
    ]
    script = (
        "import importlib, sys\n"
        "sys.modules['scramp'] = None  # any import of it raises ImportError\n"
        f"for name in {sorted(modules)!r}:\n"
        "    importlib.import_module(name)\n"
        "from custom_components.pi_secure_ws.protocol.scram import ClientExchange\n"
        "exchange = ClientExchange('homeassistant', 'AAAA-BBBB', b'cbind')\n"
        "first = exchange.client_first()\n"
        "nonce = first.split('r=', 1)[1]\n"
        "print(exchange.client_final(f'r={nonce}x,s=c2FsdA==,i=4096')[:2])\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "c="


def test_hacs_json() -> None:
    hacs = load_json(ROOT / "hacs.json")
    allowed = {
        "name", "content_in_root", "zip_release", "filename", "hide_default_branch", "country",
        "homeassistant", "hacs", "render_readme", "persistent_directory",
    }  # fmt: skip
    assert set(hacs) <= allowed, f"unknown hacs.json keys: {set(hacs) - allowed}"
    assert hacs["name"]
    assert AwesomeVersion(hacs["homeassistant"]) >= AwesomeVersion("2025.4.0")
    assert hacs.get("content_in_root", False) is False


def test_repository_has_licence_and_brand_images() -> None:
    """The set Home Assistant 2026.3+ reads from brand/, in the brands repository's sizes."""
    assert (ROOT / "LICENSE").is_file()
    brand = INTEGRATION / "brand"
    sizes: dict[str, tuple[int, int]] = {}
    for path in brand.iterdir():
        with Image.open(path) as image:
            assert image.format == "PNG", path.name
            assert image.mode == "RGBA", f"{path.name}: needs a transparent background"
            assert image.getbbox() == (0, 0, *image.size), f"{path.name}: not trimmed"
            sizes[path.name] = image.size
    names = {"icon", "logo", "dark_logo"}
    assert set(sizes) == {f"{n}{hdpi}.png" for n in names for hdpi in ("", "@2x")}
    assert sizes["icon.png"] == (256, 256)
    assert sizes["icon@2x.png"] == (512, 512)
    for prefix in ("", "dark_"):
        width, height = sizes[f"{prefix}logo.png"]
        assert 128 <= min(width, height) <= 256
        assert sizes[f"{prefix}logo@2x.png"][1] == 2 * height
    # A dark_ variant is shipped only because it differs (the name is drawn light on dark).
    with (
        Image.open(brand / "logo.png") as light,
        Image.open(brand / "dark_logo.png") as dark,
    ):
        assert light.size == dark.size
        assert light.tobytes() != dark.tobytes()


def test_workflows_run_hassfest_and_hacs_on_push_and_pull_request() -> None:
    """GitHub runs them, not this machine: at least check they say what is documented."""
    workflows = ROOT / ".github" / "workflows"
    for name, action in (
        ("hassfest.yml", "home-assistant/actions/hassfest@"),
        ("hacs.yml", "hacs/action@"),
    ):
        document = yaml.safe_load((workflows / name).read_text(encoding="utf-8"))
        triggers = document.get("on", document.get(True))  # YAML 1.1 reads a bare `on` as true
        assert {"push", "pull_request"} <= set(triggers), name
        steps = [step for job in document["jobs"].values() for step in job["steps"]]
        assert steps[0]["uses"].startswith("actions/checkout@"), name
        uses = [step for step in steps if step.get("uses", "").startswith(action)]
        assert len(uses) == 1, f"{name} does not run {action}"
        if action.startswith("hacs"):
            assert uses[0]["with"] == {"category": "integration"}


def test_translations_are_literal(en: dict[str, Any]) -> None:
    """Custom integrations get no strings.json processing: no [%key:...] references."""
    text = json.dumps(en)
    assert "[%key:" not in text
    assert not (INTEGRATION / "strings.json").exists()


def test_every_flow_step_error_and_abort_has_text(en: dict[str, Any]) -> None:
    tree = module_tree("config_flow")
    steps = keyword_strings(tree, "step_id")
    reasons = keyword_strings(tree, "reason")
    errors: set[str] = set()
    for node in ast.walk(tree):
        # errors["base"] = "..." and _PairingError("...")
        if (
            isinstance(node, ast.Assign)
            and isinstance(node.targets[0], ast.Subscript)
            and isinstance(node.value, ast.Constant)
        ):
            errors.add(str(node.value.value))
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id == "_PairingError"
        ):
            errors.add(str(node.args[0].value))  # type: ignore[attr-defined]
    assert steps == {
        "user",
        "confirm",
        "zeroconf_confirm",
        "reauth_confirm",
        "reconfigure",
        "init",
    }
    config = en["config"]
    for step in steps - {"init"}:
        assert step in config["step"], f"config step {step} has no text"
        assert config["step"][step].get("title") or config["step"][step].get("description")
    assert "init" in en["options"]["step"]
    missing_errors = errors - set(config["error"])
    assert not missing_errors, f"errors without text: {missing_errors}"
    # Reasons Home Assistant's own helpers abort with in our flows.
    reasons |= {"already_configured", "already_in_progress", "reauth_successful"}
    reasons |= {"reconfigure_successful"}
    missing_aborts = reasons - set(config["abort"])
    assert not missing_aborts, f"aborts without text: {missing_aborts}"


def test_every_form_field_has_a_label(en: dict[str, Any]) -> None:
    steps = en["config"]["step"]
    assert set(steps["user"]["data"]) == {"host", "port", "secret", "client_id", "fingerprint"}
    assert set(steps["zeroconf_confirm"]["data"]) == {"secret"}
    assert set(steps["reauth_confirm"]["data"]) == {"secret", "client_id"}
    assert set(steps["reconfigure"]["data"]) == {"host", "port", "fingerprint"}
    assert set(en["options"]["step"]["init"]["data"]) == {"camera_fps", "request_timeout"}
    for step in steps.values():
        assert set(step.get("data_description", {})) <= set(step.get("data", {}))


def test_every_entity_translation_key_has_a_name(en: dict[str, Any]) -> None:
    for platform in PLATFORM_MODULES:
        tree = module_tree(platform)
        keys = keyword_strings(tree, "translation_key") - exception_translation_keys(tree)
        assert keys, f"{platform} uses no translation keys"
        translated = en["entity"].get(platform, {})
        missing = keys - set(translated)
        assert not missing, f"{platform}: no entity translation for {missing}"
        for key in keys:
            assert translated[key]["name"], f"{platform}.{key} has an empty name"


def test_every_exception_and_issue_has_text(en: dict[str, Any]) -> None:
    used: set[str] = set()
    for path in INTEGRATION.glob("*.py"):
        used |= exception_translation_keys(ast.parse(path.read_text(encoding="utf-8")))
    assert used
    missing = used - set(en["exceptions"])
    assert not missing, f"exceptions without text: {missing}"
    issue = en["issues"]["certificate_mismatch"]
    assert "man in the middle" in issue["description"]
    assert "Reconfigure" in issue["description"]


def test_placeholders_in_texts_are_well_formed(en: dict[str, Any]) -> None:
    def walk(value: Any, path: str) -> None:
        if isinstance(value, dict):
            for key, child in value.items():
                walk(child, f"{path}.{key}")
        elif isinstance(value, str):
            assert value.count("{") == value.count("}"), path
            for name in re.findall(r"{([^}]*)}", value):
                assert re.fullmatch(r"[a-z_]+", name), f"{path}: odd placeholder {{{name}}}"

    walk(en, "en")


def test_icons_match_translations(en: dict[str, Any]) -> None:
    icons = load_json(INTEGRATION / "icons.json")
    for platform, entries in icons["entity"].items():
        for key, icon in entries.items():
            assert key in en["entity"][platform], f"icon for untranslated {platform}.{key}"
            assert icon["default"].startswith("mdi:")
    services = yaml.safe_load((INTEGRATION / "services.yaml").read_text(encoding="utf-8"))
    assert set(icons["services"]) == set(services)


def test_services_yaml_matches_translations_and_code(en: dict[str, Any]) -> None:
    services = yaml.safe_load((INTEGRATION / "services.yaml").read_text(encoding="utf-8"))
    assert set(services) == {"run_zone", "stop_all", "show_picture"}
    assert set(en["services"]) == set(services)
    for service, definition in services.items():
        text = en["services"][service]
        assert text["name"]
        assert text["description"]
        assert set(text["fields"]) == set(definition["fields"]), service
    # Zones are a target (entities, devices, areas), as Home Assistant's own actions take them.
    assert services["run_zone"]["target"] == {
        "entity": {"integration": "pi_secure_ws", "domain": "valve"}
    }
    assert "entity_id" not in services["run_zone"]["fields"]
    assert "duration" in services["run_zone"]["fields"]["duration"]["selector"]


def test_every_platform_sets_parallel_updates() -> None:
    for platform in PLATFORM_MODULES:
        tree = module_tree(platform)
        names = {
            target.id
            for node in tree.body
            if isinstance(node, ast.Assign)
            for target in node.targets
            if isinstance(target, ast.Name)
        }
        assert "PARALLEL_UPDATES" in names, f"{platform} does not set PARALLEL_UPDATES"


def test_platform_list_matches_modules() -> None:
    from custom_components.pi_secure_ws.const import PLATFORMS

    assert sorted(str(platform) for platform in PLATFORMS) == sorted(PLATFORM_MODULES)
