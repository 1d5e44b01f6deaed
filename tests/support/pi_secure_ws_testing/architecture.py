"""The architecture rules tests/agent/test_repository.py holds, as functions of a source tree:
module sizes and the import graph of the agent, the protocol package and the integration (static,
from the AST). ``python -m pi_secure_ws_testing.architecture [ROOT]`` prints what breaks them.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

# A module does one thing and fits in one sitting.
MAX_MODULE_LINES = 400

# The integration imports the protocol as a subpackage; the agent as pi_secure_ws_protocol: one
# module either way.
INTEGRATION_PROTOCOL = "custom_components.pi_secure_ws.protocol"
AGENT_PROTOCOL = "pi_secure_ws_protocol"


def product_modules(root: Path) -> dict[str, Path]:
    """Every module of the agent, the protocol package and the integration under the repository
    ``root``, by its import name (the protocol's by its agent name)."""
    modules: dict[str, Path] = {}
    for top in (root / "pi_agent", root / "custom_components" / "pi_secure_ws"):
        for path in sorted(top.rglob("*.py")):
            parts = list(path.relative_to(root).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            modules[canonical(".".join(parts))] = path
    return modules


def canonical(module: str) -> str:
    """A module's one name: the protocol's modules by their agent name."""
    if module == INTEGRATION_PROTOCOL or module.startswith(INTEGRATION_PROTOCOL + "."):
        return AGENT_PROTOCOL + module.removeprefix(INTEGRATION_PROTOCOL)
    return module


def import_edges(name: str, path: Path, known: set[str]) -> set[str]:
    """The modules of ``known`` that module ``name`` (at ``path``) imports, anywhere in the file:
    at the top, under TYPE_CHECKING, inside functions; relative imports resolved."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    if package == AGENT_PROTOCOL or package.startswith(AGENT_PROTOCOL + "."):
        # Relative imports inside the protocol resolve in its real (integration) package.
        package = INTEGRATION_PROTOCOL + package.removeprefix(AGENT_PROTOCOL)
    edges: set[str] = set()
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    for node in ast.walk(tree):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module or ""
            # ``from package import module`` imports the submodule; else a name of ``source``.
            targets = [f"{source}.{alias.name}" for alias in node.names]
            targets = [t if canonical(t) in known else source for t in targets]
        for target in targets:
            module = canonical(target)
            # ``import a.b.c`` of a name not known as a module: its closest known package.
            while module and module not in known:
                module = module.rpartition(".")[0]
            if module and module != name:
                edges.add(module)
    return edges


def import_graph(root: Path) -> dict[str, set[str]]:
    """Module -> the product modules it imports."""
    modules = product_modules(root)
    known = set(modules)
    return {name: import_edges(name, path, known) for name, path in modules.items()}


def cycles(graph: dict[str, set[str]]) -> list[frozenset[str]]:
    """The strongly connected components with more than one module (Tarjan, iteratively)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[frozenset[str]] = []
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component = set()
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.add(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(frozenset(component))
    return found


def oversized(root: Path, limit: int = MAX_MODULE_LINES) -> dict[str, int]:
    """Modules over ``limit`` lines (docstring and comments included), by path from ``root``."""
    over: dict[str, int] = {}
    for path in product_modules(root).values():
        lines = len(path.read_text(encoding="utf-8").splitlines())
        if lines > limit:
            over[str(path.relative_to(root))] = lines
    return over


def main(argv: list[str]) -> int:
    root = Path(argv[0] if argv else ".").resolve()
    over = oversized(root)
    found = cycles(import_graph(root))
    for module, lines in sorted(over.items(), key=lambda item: -item[1]):
        print(f"over {MAX_MODULE_LINES} lines: {module} ({lines})")
    for cycle in found:
        print(f"import cycle: {' <-> '.join(sorted(cycle))}")
    if not over and not found:
        print("architecture: no module over the limit, no import cycle")
    return 1 if over or found else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
