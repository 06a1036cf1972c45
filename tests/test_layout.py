"""The package's layout: imports flow one way without cycles, no module reaches into another's private names,
every module declares its public names, stays under 700 lines, and documents and annotates what it exports.

The import graph is built from the source with ``ast`` (every ``import`` statement, at module level or inside
a function, since a lazy import is a dependency too). Layers, lowest first: the base modules (``errors``,
``checks``, ``io_utils``, ``paths``, ``caching``, the package itself), ``data``, ``evaluation``, ``models``,
``distill``, ``experiments``, then the entry points (``runner``, ``scale``); a module imports only from its
own layer or below.
"""

from __future__ import annotations

import ast
import importlib
import inspect
from pathlib import Path

import pytest

import infae_kit

PACKAGE = Path(infae_kit.__file__).resolve().parent
LAYERS = ("data", "evaluation", "models", "distill", "experiments")
ENTRY_POINTS = ("runner", "scale")
MAX_LINES = 700


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}
TREES = {name: ast.parse(path.read_text(encoding="utf-8"), filename=str(path)) for name, path in MODULES.items()}


def _owner(dotted: str) -> str | None:
    """The kit module an imported dotted name lives in (the longest module prefix)."""
    while dotted and dotted not in MODULES:
        dotted = dotted.rpartition(".")[0]
    return dotted or None


def _imports(tree: ast.Module) -> list[tuple[str, str | None]]:
    """``(dotted target, imported name)`` of every import of a kit module in ``tree``."""
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(a.name, None) for a in node.names if a.name.startswith("infae_kit")]
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, "use absolute imports (infae_kit.…)"
            if node.module and node.module.startswith("infae_kit"):
                out += [(f"{node.module}.{a.name}", a.name) for a in node.names]
    return out


def _graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {name: set() for name in MODULES}
    for name, tree in TREES.items():
        for target, _ in _imports(tree):
            owner = _owner(target)
            if owner is not None and owner != name:
                graph[name].add(owner)
    return graph


def _layer(name: str) -> int:
    parts = name.split(".")
    if len(parts) == 1:
        return 0
    if parts[1] in LAYERS:
        return 1 + LAYERS.index(parts[1])
    return 1 + len(LAYERS) if parts[1] in ENTRY_POINTS else 0


def test_the_import_graph_has_no_cycle():
    graph = _graph()
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycle = path[path.index(nxt):] + [nxt]
                pytest.fail("import cycle: " + " -> ".join(cycle))
            if nxt not in state:
                visit(nxt)
        path.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node)
    assert len(graph) > 40  # the walk saw the whole package


def test_imports_flow_one_way_through_the_layers():
    upward = [f"{name} -> {target}" for name, targets in _graph().items() for target in targets
              if _layer(target) > _layer(name)]
    assert not upward, f"imports against the layering {LAYERS}: {upward}"


def test_no_module_reaches_into_another_modules_private_names():
    found = []
    for name, tree in TREES.items():
        module_aliases = {}
        for target, imported in _imports(tree):
            if imported is not None and imported.startswith("_") and not imported.startswith("__"):
                found.append(f"{name} imports {target}")
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("infae_kit"):
                for a in node.names:
                    if f"{node.module}.{a.name}" in MODULES:
                        module_aliases[a.asname or a.name] = f"{node.module}.{a.name}"
            elif isinstance(node, ast.Import):
                for a in node.names:
                    if a.name.startswith("infae_kit") and a.asname:
                        module_aliases[a.asname] = a.name
        for node in ast.walk(tree):
            if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
                    and node.value.id in module_aliases and node.attr.startswith("_")
                    and not node.attr.startswith("__") and module_aliases[node.value.id] != name):
                found.append(f"{name} uses {module_aliases[node.value.id]}.{node.attr}")
    assert not found, found


@pytest.mark.parametrize("name", sorted(MODULES))
def test_module_is_short_and_declares_its_public_names(name):
    lines = MODULES[name].read_text(encoding="utf-8").count("\n")
    assert lines <= MAX_LINES, f"{name} has {lines} lines; split it (at most {MAX_LINES})"
    module = importlib.import_module(name)
    assert isinstance(getattr(module, "__all__", None), (list, tuple)), f"{name} has no __all__"
    missing = [n for n in module.__all__ if not hasattr(module, n)]
    assert not missing, f"{name}.__all__ names what the module does not have: {missing}"


def _unannotated(function, skip_first: bool) -> list[str]:
    params = list(inspect.signature(function).parameters.values())
    if skip_first and params and params[0].name in ("self", "cls"):
        params = params[1:]
    problems = [p.name for p in params if p.annotation is inspect.Parameter.empty]
    if function.__name__ != "__init__" and inspect.signature(function).return_annotation is inspect.Signature.empty:
        problems.append("return")
    return problems


def _public_callables(module):
    """``(qualified name, function, is_method)`` of every function and public method the module defines and
    exports."""
    for name in getattr(module, "__all__", ()):
        obj = getattr(module, name)
        if getattr(obj, "__module__", None) != module.__name__:
            continue  # re-exported: checked where it is defined
        if inspect.isfunction(obj):
            yield name, obj, False
        elif inspect.isclass(obj):
            yield name, obj, False
            for attr, member in vars(obj).items():
                if inspect.isfunction(member) and (not attr.startswith("_") or attr == "__init__"):
                    yield f"{name}.{attr}", member, True
                elif isinstance(member, (classmethod, staticmethod)) and not attr.startswith("_"):
                    yield f"{name}.{attr}", member.__func__, isinstance(member, classmethod)


@pytest.mark.parametrize("name", sorted(MODULES))
def test_public_functions_have_type_hints_and_docstrings(name):
    module = importlib.import_module(name)
    problems = []
    for qualname, obj, is_method in _public_callables(module):
        if inspect.isclass(obj):
            if not inspect.getdoc(obj):
                problems.append(f"{qualname}: no docstring")
            continue
        if obj.__name__ != "__init__" and not (obj.__doc__ or "").strip():
            problems.append(f"{qualname}: no docstring")
        missing = _unannotated(obj, is_method)
        if missing:
            problems.append(f"{qualname}: no type hint for {missing}")
    assert not problems, problems


def test_the_public_api_resolves():
    assert infae_kit.__all__[0] == "__version__" and len(infae_kit.__all__) == len(set(infae_kit.__all__))
    for name in infae_kit.__all__:
        assert getattr(infae_kit, name) is not None, name
    # the names a user needs, by the paper's parts
    wanted = {"load_dataset", "InfiniteAE", "tune_and_evaluate_infinite_ae", "distill", "DistillConfig",
              "sample", "add_noise", "evaluate_model", "tune_and_evaluate", "write_results", "read_results"}
    assert wanted <= set(infae_kit.__all__)
    with pytest.raises(AttributeError, match="public names"):
        infae_kit.not_a_name  # noqa: B018
