"""ferlib's import graph: no cycles, floors that run one way, no long module without a reason.

Every ``import`` and ``from ... import`` statement in every ``ferlib/**/*.py`` counts, wherever it stands
(module level, inside a function, under ``if TYPE_CHECKING``): a lazy import is still a dependency.
``importlib.import_module`` calls count too when their argument is a string, an f-string with a fixed
``ferlib.<package>.`` prefix (read as every module of that package) or a subscript of a module-level dict
or tuple of strings; any other dynamic import is reported, because this check cannot follow it.

Floors, lowest first (a module may import its own floor and the floors below, never one above):

0. foundations: ``ferlib`` (the package itself: ``__version__``), ``fileio`` (atomic writes),
   ``config`` (dataclass ↔ JSON), ``runs`` (run folders, seeding, devices): plumbing every floor uses;
1. data: ``ferlib.data`` and ``occlusion`` (occluders are placed on images by given landmarks, and
   SynthFER renders occluded faces with them, so they sit with the data);
2. landmarks; 3. models; 4. train;
5. explain: ``explain`` and ``plots`` (CAM and result figures drawn from trained models), and ``robustness``
   (evaluates trained models under test conditions and measures their CAMs there: it needs models, train's
   evaluation and explain, and the study notebooks and the CLI above it call it);
6. study: ``ferlib.study``, ``profiles`` (study profiles) and ``widgets`` (the notebooks' explorers);
7. commands and cli: ``ferlib.commands``, ``cli``, ``__main__``.

A module of a new top-level name fails the floor test until it is given a floor here.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGE = "ferlib"
MAX_LINES = 600

#: Module-name prefixes → floor. The longest matching prefix wins; "ferlib" itself means the package's
#: ``__init__`` only, so that a new top-level module must be placed here by hand.
FLOORS: dict[str, int] = {
    "ferlib": 0,
    "ferlib.fileio": 0,
    "ferlib.config": 0,
    "ferlib.runs": 0,
    "ferlib.data": 1,
    "ferlib.occlusion": 1,
    "ferlib.landmarks": 2,
    "ferlib.models": 3,
    "ferlib.train": 4,
    "ferlib.explain": 5,
    "ferlib.plots": 5,
    "ferlib.robustness": 5,
    "ferlib.study": 6,
    "ferlib.profiles": 6,
    "ferlib.widgets": 6,
    "ferlib.commands": 7,
    "ferlib.cli": 7,
    "ferlib.__main__": 7,
}
FLOOR_NAMES = ["foundations", "data", "landmarks", "models", "train", "explain", "study", "commands/cli"]


@dataclass
class ImportGraph:
    modules: dict[str, Path]  # dotted name -> file
    edges: dict[str, dict[str, int]] = field(default_factory=dict)  # importer -> {imported: first line}
    unresolved: list[str] = field(default_factory=list)  # dynamic imports this check cannot follow

    def is_package(self, name: str) -> bool:
        return self.modules[name].name == "__init__.py"


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _string_values(node: ast.AST) -> list[str] | None:
    """The strings of a dict's values or a tuple/list/set literal; None if it is anything else."""
    items = node.values if isinstance(node, ast.Dict) else getattr(node, "elts", None)
    if items is None or not isinstance(node, (ast.Dict, ast.Tuple, ast.List, ast.Set)):
        return None
    out = [i.value for i in items if isinstance(i, ast.Constant) and isinstance(i.value, str)]
    return out if len(out) == len(items) else None


def _module_literals(tree: ast.Module) -> dict[str, list[str]]:
    """Module-level ``NAME = {...}`` / ``(...)`` assignments of strings (e.g. a lazy-import table)."""
    found = {}
    for stmt in tree.body:
        if isinstance(stmt, (ast.Assign, ast.AnnAssign)) and stmt.value is not None:
            targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]
            values = _string_values(stmt.value)
            for t in targets:
                if isinstance(t, ast.Name) and values is not None:
                    found[t.id] = values
    return found


def _is_import_module_call(node: ast.AST) -> bool:
    if not isinstance(node, ast.Call) or not node.args:
        return False
    f = node.func
    return (isinstance(f, ast.Attribute) and f.attr == "import_module") or (
        isinstance(f, ast.Name) and f.id in ("import_module", "__import__")
    )


def _imports_in(
    tree: ast.Module, here: str, modules: dict[str, Path], where: str, unresolved: list[str]
) -> Iterable[tuple[str, int]]:
    """(imported module or package, line) for every import in ``tree``; ``here`` is the importer's package."""
    literals = _module_literals(tree)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = here.split(".")
                base = base[: len(base) - (node.level - 1)]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module or ""
            for alias in node.names:
                sub = f"{source}.{alias.name}"
                yield (sub if sub in modules else source), node.lineno
        elif _is_import_module_call(node):
            arg = node.args[0]
            first = arg.values[0] if isinstance(arg, ast.JoinedStr) and arg.values else None
            if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                yield arg.value, node.lineno
            elif isinstance(first, ast.Constant) and str(first.value).count(".") and str(first.value).endswith("."):
                prefix = str(first.value)
                for other in modules:
                    if other.startswith(prefix) and "." not in other[len(prefix) :]:
                        yield other, node.lineno
            elif isinstance(arg, ast.Subscript) and isinstance(arg.value, ast.Name) and arg.value.id in literals:
                for target in literals[arg.value.id]:
                    yield target, node.lineno
            else:
                unresolved.append(f"{where}:{node.lineno}: {ast.unparse(node)}")


def build_graph(root: Path, package: str = PACKAGE) -> ImportGraph:
    """Walk ``root/package/**/*.py`` and collect every import of a module of ``package``."""
    files = sorted((root / package).rglob("*.py"))
    graph = ImportGraph({module_name(f, root): f for f in files})
    for name, path in graph.modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        here = name if graph.is_package(name) else name.rpartition(".")[0]
        edges = graph.edges.setdefault(name, {})
        for target, line in _imports_in(tree, here, graph.modules, str(path.relative_to(root)), graph.unresolved):
            # Python imports every parent package first; only the named module is this module's dependency.
            # A submodule importing its own parent (or an ancestor) package does not count.
            if target in graph.modules and target != name and not name.startswith(target + "."):
                edges.setdefault(target, line)
    return graph


def cycles(graph: ImportGraph) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.edges.get(v, {}):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph.modules):
        if v not in index:
            visit(v)
    return sorted(found)


def floor_of(name: str, floors: dict[str, int] = FLOORS) -> int | None:
    """The floor of the longest matching prefix; the root package's key matches the root package only."""
    best = max((p for p in floors if name == p or ("." in p and name.startswith(p + "."))), key=len, default=None)
    return None if best is None else floors[best]


def floor_violations(graph: ImportGraph, root: Path, floors: dict[str, int] = FLOORS) -> list[str]:
    out = []
    for name in sorted(graph.modules):
        mine = floor_of(name, floors)
        if mine is None:
            out.append(f"{name}: on no floor; add it to FLOORS in tests/test_layering.py")
            continue
        for target, line in sorted(graph.edges.get(name, {}).items()):
            theirs = floor_of(target, floors)
            if theirs is not None and theirs > mine:
                out.append(
                    f"{graph.modules[name].relative_to(root)}:{line}: {name} ({FLOOR_NAMES[mine]}) "
                    f"imports {target} ({FLOOR_NAMES[theirs]}, a higher floor)"
                )
    return out


def long_modules(graph: ImportGraph, root: Path, max_lines: int = MAX_LINES) -> list[str]:
    out = []
    for path in sorted(graph.modules.values()):
        text = path.read_text(encoding="utf-8")
        n = len(text.splitlines())
        if n <= max_lines:
            continue
        doc = ast.get_docstring(ast.parse(text)) or ""
        if not any(line.strip().startswith("Length:") for line in doc.splitlines()):
            out.append(
                f"{path.relative_to(root)}: {n} lines (> {max_lines}) and no 'Length:' line in its docstring saying why"
            )
    return out


def _fail_with(title: str, problems: Iterable[str]) -> None:
    """Fail with one violation per line (no assertion diff to read through)."""
    problems = list(problems)
    if problems:
        pytest.fail(f"{len(problems)} {title}:\n  " + "\n  ".join(problems), pytrace=False)


# --- the checks on ferlib -------------------------------------------------------------------------------------


def _ferlib_graph() -> ImportGraph:
    return build_graph(REPO)


def test_every_dynamic_import_can_be_followed():
    graph = _ferlib_graph()
    _fail_with(
        "dynamic imports this check cannot follow (import by a literal name, or from a module-level table of names)",
        graph.unresolved,
    )


def test_no_import_cycles():
    graph = _ferlib_graph()
    found = cycles(graph)
    lines = []
    for component in found:
        members = set(component)
        pairs = [
            f"{a} -> {b} (line {graph.edges[a][b]})"
            for a in component
            for b in sorted(graph.edges.get(a, {}))
            if b in members
        ]
        lines.append(" <-> ".join(component) + "\n      " + "\n      ".join(pairs))
    _fail_with("import cycles (modules that reach each other)", lines)


def test_floors_run_one_way():
    graph = _ferlib_graph()
    problems = floor_violations(graph, REPO)
    _fail_with(
        "imports of a higher floor (data → landmarks → models → train → explain → study → commands/cli)", problems
    )


def test_no_long_module_without_a_reason():
    problems = long_modules(_ferlib_graph(), REPO)
    _fail_with(f"modules over {MAX_LINES} lines without a reason", problems)


# --- the checker itself, on a made-up package -----------------------------------------------------------------


def _write(root: Path, files: dict[str, str]) -> None:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def test_checker_finds_lazy_relative_and_dynamic_imports_cycles_floors_and_length(tmp_path):
    _write(
        tmp_path,
        {
            "pkg/__init__.py": "",
            "pkg/low/__init__.py": "from pkg.low.a import f\n",
            "pkg/low/a.py": "def f():\n    from ..high import g  # lazy, relative, upward\n    return g\n",
            "pkg/low/b.py": "import pkg.low  # own parent: allowed\nfrom . import a\n",
            "pkg/high.py": "import importlib\nfrom pkg.low import a\n"
            "_LAZY = {'x': 'pkg.low.b'}\n"
            "def g(name):\n    return importlib.import_module(_LAZY[name])\n"
            "def h(name):\n    return importlib.import_module(f'pkg.low.{name}')\n"
            "def k(name):\n    return importlib.import_module(name)\n",
            "pkg/long.py": '"""A long module."""\n' + "x = 1\n" * 10,
            "pkg/long_ok.py": '"""A long module.\n\nLength: one table of constants.\n"""\n' + "x = 1\n" * 10,
        },
    )
    graph = build_graph(tmp_path, "pkg")
    assert graph.edges["pkg.low.a"] == {"pkg.high": 2}
    assert "pkg.low" not in graph.edges["pkg.low.b"] and "pkg.low.a" in graph.edges["pkg.low.b"]
    assert {"pkg.low.a", "pkg.low.b"} <= set(graph.edges["pkg.high"])
    assert len(graph.unresolved) == 1 and "import_module(name)" in graph.unresolved[0]
    # high -> low.b (through the _LAZY table) -> low.a -> high (lazily): one component of three
    assert cycles(graph) == [["pkg.high", "pkg.low.a", "pkg.low.b"]]
    floors = {"pkg": 0, "pkg.low": 0, "pkg.high": 1}
    problems = floor_violations(graph, tmp_path, floors)
    assert any("pkg.low.a (foundations) imports pkg.high (data" in p for p in problems)
    assert any(p.startswith("pkg.long: on no floor") for p in problems)
    assert long_modules(graph, tmp_path, max_lines=10) == [
        "pkg/long.py: 11 lines (> 10) and no 'Length:' line in its docstring saying why"
    ]
