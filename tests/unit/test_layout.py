"""The library's shape, checked: folders by stage, layers that point down, one error policy, small modules.

These are the rules of ``workbook/`` (see the README's layout section):
- each stage is a package, and a stage imports only from the stages below it; no import cycle,
  counting imports inside functions;
- ``infra/`` imports nothing from ``workbook/``;
- every exception class under ``workbook/`` derives from ``WorkbookError`` and carries an exit code;
- no module is longer than 600 lines, and no function longer than 80 without saying why.
"""
from __future__ import annotations

import ast
import importlib
import inspect
import pkgutil
from pathlib import Path

import pytest

import workbook
from workbook.errors import ExitCode, WorkbookError

REPO = Path(__file__).resolve().parents[2]
PACKAGES = ("workbook", "infra")

# The stages, bottom to top: a module may import from its own stage and the stages before it.
LAYERS = (
    ("workbook.errors", "workbook.aws", "workbook._deferred"),
    ("workbook.telemetry",),
    ("workbook.analysis",),
    ("workbook.deploy",),
    ("workbook.local",),
    ("workbook.tuning",),
    ("workbook.report",),
    ("workbook.logs", "workbook.cost", "workbook.cli"),   # the documented public names, and the command
)
MAX_MODULE_LINES = 600
MAX_FUNCTION_LINES = 80


def _modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in sorted((REPO / package).rglob("*.py")):
            parts = path.relative_to(REPO).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            found[name] = path
    return found


MODULES = _modules()


def _type_only(tree: ast.Module) -> set[ast.AST]:
    """Import nodes under ``if TYPE_CHECKING:``: annotations only, never executed."""
    nodes: set[ast.AST] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING":
            nodes.update(inner for child in node.body for inner in ast.walk(child))
    return nodes


def _imports(name: str, path: Path) -> set[str]:
    """Every project module ``name`` imports at run time: at module level or inside functions."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    targets: set[str] = set()
    type_only = _type_only(tree)
    for node in ast.walk(tree):
        if node in type_only:
            continue
        if isinstance(node, ast.Import):
            targets.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else []))
            targets.add(base)
            targets.update(f"{base}.{alias.name}" for alias in node.names)
    return {_owner(target) for target in targets if _owner(target)}


def _owner(target: str) -> str | None:
    """The project module a dotted import target refers to (a module, or a name inside one)."""
    while target:
        if target in MODULES:
            return target
        target = target.rpartition(".")[0]
    return None


GRAPH = {name: _imports(name, path) - {name} for name, path in MODULES.items()}


def _layer(module: str) -> int | None:
    for index, prefixes in enumerate(LAYERS):
        if any(module == p or module.startswith(p + ".") for p in prefixes):
            return index
    return None


def test_infra_imports_nothing_from_workbook():
    offenders = {name: sorted(t for t in targets if t.startswith("workbook"))
                 for name, targets in GRAPH.items() if name.startswith("infra")}
    assert not {k: v for k, v in offenders.items() if v}


def test_every_workbook_module_belongs_to_a_stage():
    assert [m for m in MODULES if m.startswith("workbook.") and _layer(m) is None] == []


def test_stages_import_only_from_stages_below():
    upward = []
    for name, targets in GRAPH.items():
        own = _layer(name)
        if own is None:
            continue
        upward += [f"{name} -> {t}" for t in targets if (_layer(t) or 0) > own]
    assert upward == []


def test_no_import_cycle():
    """Tarjan's strongly connected components over every project import, function-level ones included."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in GRAPH.get(node, ()):
            # a package's __init__ importing its own submodules is how a package re-exports
            if node != target.rpartition(".")[0] and target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack and node != target.rpartition(".")[0]:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for module in GRAPH:
        if module not in index:
            visit(module)
    assert cycles == []


def test_modules_are_short():
    long = {name: n for name, path in MODULES.items()
            if name.startswith("workbook") and (n := len(path.read_text().splitlines())) > MAX_MODULE_LINES}
    assert long == {}


def test_long_functions_say_why():
    """A function over 80 lines must say why in its docstring (a line starting "Long because")."""
    unexplained = []
    for name, path in MODULES.items():
        if not name.startswith("workbook"):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = node.end_lineno - node.lineno + 1
                doc = ast.get_docstring(node) or ""
                if length > MAX_FUNCTION_LINES and "Long because" not in doc:
                    unexplained.append(f"{name}.{node.name}: {length} lines")
    assert unexplained == []


def _exception_classes() -> list[type]:
    classes = []
    for info in pkgutil.walk_packages(workbook.__path__, "workbook."):
        if info.name.endswith(".engine") and ".local." in info.name or ".sandbox.runtime" in info.name:
            continue   # process entry points; they define no exceptions
        module = importlib.import_module(info.name)
        classes += [obj for _, obj in inspect.getmembers(module, inspect.isclass)
                    if issubclass(obj, BaseException) and obj.__module__ == info.name]
    return classes


def test_every_exception_is_a_workbook_error_with_an_exit_code():
    classes = _exception_classes()
    assert len(classes) > 20
    strays = [f"{c.__module__}.{c.__name__}" for c in classes if not issubclass(c, WorkbookError)]
    assert strays == []
    assert {ExitCode(c.exit_code) for c in classes} <= {ExitCode.FAILED, ExitCode.BAD_INPUT, ExitCode.INTERRUPTED}


@pytest.mark.parametrize("contract", ["workbook.logs.parse_reports", "workbook.cost.monthly_cost",
                                      "workbook.tuning.analyze"])
def test_the_documented_contracts_stay_importable(contract):
    module, _, attribute = contract.rpartition(".")
    assert callable(getattr(importlib.import_module(module), attribute))
