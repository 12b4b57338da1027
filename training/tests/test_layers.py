"""The package's layers: no module imports a higher layer or a peer package, and no import circle.

Every import statement of every module of `countclip` is read from its syntax tree (module
level, inside functions, under `if TYPE_CHECKING:`, relative or absolute), plus the module
names a module imports by string (`importlib.import_module("countclip.x")`, the command table
of `countclip.cli`): each is an edge from the importing module to the module imported. Then

- every module belongs to a unit (a subpackage, or a module at the package root) listed in
  LAYERS, and every import names a module that exists;
- a unit imports only units of lower layers (and itself): never a higher layer, never a peer
  of its own layer;
- the module graph has no cycle (inside a unit too), function-level imports included.

The checks run on a fabricated package first (`test_the_checker_sees_*`), so they are known to
fail when a layer is broken.
"""

from __future__ import annotations

import ast
import importlib.util
from dataclasses import dataclass
from pathlib import Path

import pytest

PACKAGE = "countclip"
PACKAGE_DIR = Path(__file__).resolve().parents[1] / PACKAGE
MAX_ROOT_MODULES = 8  # .py files beside __init__.py at the package root (issue 17)

# Lowest first. A unit may import the units of the layers above it in this list, and itself;
# units of one layer are peers and import none of one another.
LAYERS: tuple[tuple[str, ...], ...] = (
    # countclip/__init__.py: the version; `import countclip` loads nothing else.
    ("countclip",),
    # The library's foundations, independent of one another:
    #   counting/     the count language: lexicon, parser and formatter, the compiled (mypyc) and C
    #                 cores, their build, the `countclip counts` CLI; no torch
    #   model/        CLIP behind one interface: the base, one module per backend, the factory
    #   distributed   torchrun's process group and the collectives
    ("counting", "model", "distributed"),
    # Built on the foundations, independent of one another:
    #   losses        L_clip and L_count (gathers across processes through distributed)
    #   data/         training data: sources, decoding with a model's preprocessing, collation
    #                 with counterfactual captions
    #   bundle/       what ships: manifest, ONNX export, int8 quantisation, the ONNX model
    #                 (BundleModel, load_any), `countclip embed`
    ("losses", "data", "bundle"),
    # evaluation/: CountBench and zero-shot, on a model or a bundle.
    ("evaluation",),
    # The tools, independent of one another: the trainer, the synthetic world, caption mining
    # and detector verification.
    ("train", "synth", "mining"),
    # cli: the `countclip` dispatcher, which imports every command's module by name.
    ("cli",),
)


@dataclass(frozen=True)
class Edge:
    source: str  # importing module
    target: str  # imported module
    line: int

    def where(self, modules: dict[str, Path]) -> str:
        """file:line, the file relative to the directory that holds the package."""
        base = modules[self.source.split(".")[0]].parents[1]
        return f"{modules[self.source].relative_to(base)}:{self.line}"


def find_modules(package_dir: Path) -> dict[str, Path]:
    """Dotted name -> file, for every .py module (a package: its __init__.py) and C source."""
    name = package_dir.name
    modules: dict[str, Path] = {}
    for path in sorted(package_dir.rglob("*")):
        if path.suffix not in (".py", ".c") or "__pycache__" in path.parts:
            continue
        parts = [name, *path.relative_to(package_dir).with_suffix("").parts]
        if any(not part.isidentifier() for part in parts[:-1]):
            continue  # a build directory (`.fastcount-build-*`), not a package
        if parts[-1] == "__init__":
            parts.pop()
        modules[".".join(parts)] = path
    return modules


def _resolve_relative(module: str, is_package: bool, level: int, name: str | None) -> str:
    base = module.split(".") if is_package else module.split(".")[:-1]
    base = base[: len(base) - (level - 1)] if level > 1 else base
    return ".".join(base + ([name] if name else []))


def imports_of(module: str, path: Path, root: str, known: set[str]) -> list[Edge]:
    """Every edge from `module` to a module of package `root` (see the module docstring)."""
    if path.suffix != ".py":
        return []  # a C source imports nothing of the package
    tree = ast.parse(path.read_text("utf-8"), str(path))
    is_package = path.name == "__init__.py"
    edges: list[Edge] = []

    def ours(name: str) -> bool:
        return name == root or name.startswith(root + ".")

    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            edges += [Edge(module, alias.name, node.lineno) for alias in node.names if ours(alias.name)]
        elif isinstance(node, ast.ImportFrom):
            base = (_resolve_relative(module, is_package, node.level, node.module) if node.level
                    else node.module or "")
            if not ours(base):
                continue
            for alias in node.names:
                # `from pkg import sub` imports the module pkg.sub; `from pkg import name`, pkg.
                candidate = f"{base}.{alias.name}"
                edges.append(Edge(module, candidate if candidate in known else base, node.lineno))
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value in known \
                and node.value != root:
            # A module named by string: importlib.import_module("countclip.x"), cli's table.
            edges.append(Edge(module, node.value, node.lineno))
    return [edge for edge in edges if edge.target != module]


def unit_of(module: str) -> str:
    parts = module.split(".")
    return parts[0] if len(parts) == 1 else parts[1]


def layer_index(layers: tuple[tuple[str, ...], ...]) -> dict[str, int]:
    index: dict[str, int] = {}
    for level, units in enumerate(layers):
        for unit in units:
            assert unit not in index, f"{unit} is listed twice in LAYERS"
            index[unit] = level
    return index


def graph(package_dir: Path) -> tuple[dict[str, Path], list[Edge]]:
    modules = find_modules(package_dir)
    known = set(modules)
    edges = [edge for module, path in modules.items() for edge in imports_of(module, path, package_dir.name, known)]
    return modules, edges


def unplaced(modules: dict[str, Path], layers: tuple[tuple[str, ...], ...]) -> list[str]:
    index = layer_index(layers)
    return sorted(module for module in modules if unit_of(module) not in index)


def missing_targets(modules: dict[str, Path], edges: list[Edge]) -> list[str]:
    return sorted(f"{edge.where(modules)}: imports {edge.target}, which does not exist"
                  for edge in edges if edge.target not in modules)


def upward(modules: dict[str, Path], edges: list[Edge], layers: tuple[tuple[str, ...], ...]) -> list[str]:
    """Each import of a higher layer or of a peer unit, as `file:line: a (layer) imports b (layer)`."""
    index = layer_index(layers)
    bad = []
    for edge in edges:
        source, target = unit_of(edge.source), unit_of(edge.target)
        if source == target or source not in index or target not in index:
            continue
        if index[target] >= index[source]:
            kind = "a peer" if index[target] == index[source] else "a higher layer"
            bad.append(f"{edge.where(modules)}: {edge.source} (layer {index[source]}) imports {edge.target} "
                       f"({kind}: layer {index[target]})")
    return sorted(bad)


def cycles(edges: list[Edge]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan), each sorted."""
    successors: dict[str, set[str]] = {}
    for edge in edges:
        successors.setdefault(edge.source, set()).add(edge.target)
        successors.setdefault(edge.target, set())
    order: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:  # recursion depth is bounded by the number of modules
        order[node] = low[node] = len(order)
        stack.append(node)
        on_stack.add(node)
        for successor in sorted(successors[node]):
            if successor not in order:
                visit(successor)
                low[node] = min(low[node], low[successor])
            elif successor in on_stack:
                low[node] = min(low[node], order[successor])
        if low[node] == order[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(successors):
        if node not in order:
            visit(node)
    return sorted(found)


def describe_cycle(component: list[str], modules: dict[str, Path], edges: list[Edge]) -> str:
    inside = set(component)
    links = sorted({f"{edge.source} -> {edge.target} ({edge.where(modules)})" for edge in edges
                    if edge.source in inside and edge.target in inside})
    return f"cycle among {', '.join(component)}:\n    " + "\n    ".join(links)


# ----------------------------------------------------------------------------- the checker itself

def _write(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


FAKE_LAYERS = (("pkg",), ("low",), ("high", "peer"))


@pytest.fixture
def fake(tmp_path: Path) -> Path:
    return _write(tmp_path / "pkg", {
        "__init__.py": "",
        "low/__init__.py": "",
        "low/a.py": "import os\n",
        "high/__init__.py": "from . import b\n",
        "high/b.py": "from pkg.low import a\nfrom ..low.a import thing\n",
        "peer.py": "def f():\n    from pkg.low import a\n",
    })


def test_the_checker_passes_a_clean_package(fake):
    modules, edges = graph(fake)
    assert set(modules) == {"pkg", "pkg.low", "pkg.low.a", "pkg.high", "pkg.high.b", "pkg.peer"}
    assert {(e.source, e.target) for e in edges} == {("pkg.high", "pkg.high.b"), ("pkg.high.b", "pkg.low.a"),
                                                     ("pkg.peer", "pkg.low.a")}
    assert not unplaced(modules, FAKE_LAYERS) and not missing_targets(modules, edges)
    assert not upward(modules, edges, FAKE_LAYERS) and not cycles(edges)


def test_the_checker_sees_an_upward_import_inside_a_function(fake):
    _write(fake, {"low/a.py": "def f():\n    import pkg.high.b\n"})
    modules, edges = graph(fake)
    assert upward(modules, edges, FAKE_LAYERS) == [
        "pkg/low/a.py:2: pkg.low.a (layer 1) imports pkg.high.b (a higher layer: layer 2)"]


def test_the_checker_sees_a_peer_import_a_relative_import_and_a_string(fake):
    _write(fake, {"peer.py": "from .high import b\n", "high/c.py": "X = 'pkg.peer'\n"})
    modules, edges = graph(fake)
    assert upward(modules, edges, FAKE_LAYERS) == [
        "pkg/high/c.py:1: pkg.high.c (layer 2) imports pkg.peer (a peer: layer 2)",
        "pkg/peer.py:1: pkg.peer (layer 2) imports pkg.high.b (a peer: layer 2)"]


def test_the_checker_sees_a_cycle_a_missing_module_and_an_unplaced_one(fake):
    _write(fake, {"high/b.py": "import pkg.high\nfrom pkg.low import gone\n", "extra.py": ""})
    modules, edges = graph(fake)
    assert cycles(edges) == [["pkg.high", "pkg.high.b"]]
    assert unplaced(modules, FAKE_LAYERS) == ["pkg.extra"]
    assert not missing_targets(modules, edges)  # `gone` may be a name in pkg.low; pkg.low exists
    _write(fake, {"high/b.py": "import pkg.low.gone\n"})
    modules, edges = graph(fake)
    assert missing_targets(modules, edges) == ["pkg/high/b.py:1: imports pkg.low.gone, which does not exist"]


# ----------------------------------------------------------------------------- countclip

@pytest.fixture(scope="module")
def countclip_graph() -> tuple[dict[str, Path], list[Edge]]:
    return graph(PACKAGE_DIR)


def test_every_module_has_a_layer(countclip_graph):
    modules, _ = countclip_graph
    missing = unplaced(modules, LAYERS)
    assert not missing, "place these in LAYERS (a new unit: its own layer or a peer):\n" + "\n".join(missing)


def test_every_import_names_a_module_that_exists(countclip_graph):
    modules, edges = countclip_graph
    missing = missing_targets(modules, edges)
    assert not missing, "\n".join(missing)


def test_no_import_runs_up_a_layer_or_across_peers(countclip_graph):
    modules, edges = countclip_graph
    bad = upward(modules, edges, LAYERS)
    assert not bad, "imports against the layers (see LAYERS):\n" + "\n".join(bad)


def test_no_import_cycle(countclip_graph):
    modules, edges = countclip_graph
    found = cycles(edges)
    assert not found, "\n".join(describe_cycle(component, modules, edges) for component in found)


def test_the_package_root_holds_few_modules():
    root = sorted(path.name for path in PACKAGE_DIR.glob("*.py") if path.name != "__init__.py")
    assert len(root) <= MAX_ROOT_MODULES, root


def test_every_command_module_exists():
    """The dispatcher names its commands' modules as strings: each must import."""
    from countclip import cli

    for command, (module, _) in cli.COMMANDS.items():
        assert importlib.util.find_spec(module) is not None, (command, module)
