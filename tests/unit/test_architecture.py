"""The floor plan holds: imports point one way, no cycles, no imports hidden in functions,
no grab-bag modules.

Layers, top to bottom (a module may import its own layer and the ones its entry allows):
app/wsgi → blueprints → services → (freeswitch.esl, models) → config; the `events`
process (freeswitch.events, freeswitch.__main__) and workers sit above services.
"""
import ast
import os

import pytest

from tests.conftest import ROOT

PRODUCTION = ("app.py", "wsgi.py", "config.py", "gevent_setup.py", "blueprints", "services",
              "models", "freeswitch", "workers")

# layer -> the layers it may import (besides third-party code)
ALLOWED = {
    "app": {"app", "blueprints", "services", "models", "config", "freeswitch.esl"},
    "wsgi": {"app", "gevent_setup"},
    "gevent_setup": set(),
    "config": set(),
    "blueprints": {"blueprints", "services", "config"},
    "events": {"events", "services", "models", "freeswitch.esl", "config", "gevent_setup"},
    "workers": {"workers", "services", "models", "freeswitch.esl", "config", "gevent_setup"},
    "services": {"services", "models", "freeswitch.esl", "config"},
    "freeswitch.esl": {"freeswitch.esl"},
    "models": {"models", "config"},
}

MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 60


def layer_of(module):
    top = module.split(".")[0]
    if module.startswith("freeswitch.esl"):
        return "freeswitch.esl"
    if top == "freeswitch":
        return "events"
    return top


def production_files():
    for entry in PRODUCTION:
        path = os.path.join(ROOT, entry)
        if entry.endswith(".py"):
            yield path
            continue
        for folder, dirs, files in os.walk(path):
            dirs[:] = [d for d in dirs if d not in ("__pycache__", "conf", "static")]
            for name in files:
                if name.endswith(".py"):
                    yield os.path.join(folder, name)


def module_name(path):
    rel = os.path.relpath(path, ROOT)[:-3].replace(os.sep, ".")
    return rel[: -len(".__init__")] if rel.endswith(".__init__") else rel


TOPS = {"app", "wsgi", "config", "gevent_setup", "blueprints", "services", "models",
        "freeswitch", "workers"}


def project_imports(tree, module, top_level_only):
    """(imported module, line, inside a function) for each import of project code."""
    package = module if module.split(".")[-1] == module else module.rsplit(".", 1)[0]
    found = []

    def visit(node, in_function):
        for child in ast.iter_child_nodes(node):
            inner = in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef))
            names = []
            if isinstance(child, ast.Import):
                names = [alias.name for alias in child.names]
            elif isinstance(child, ast.ImportFrom):
                base = child.module or ""
                if child.level:
                    base = ".".join(package.split(".")[: len(package.split(".")) - child.level + 1]
                                    + ([base] if base else []))
                names = [base] + [f"{base}.{alias.name}" for alias in child.names]
                names = [n for n in names if n]
            for name in names:
                if name.split(".")[0] in TOPS:
                    found.append((name, child.lineno, in_function))
            visit(child, inner)

    visit(tree, False)
    return found


@pytest.fixture(scope="module")
def modules():
    out = {}
    for path in production_files():
        with open(path, encoding="utf-8") as fh:
            source = fh.read()
        out[module_name(path)] = (path, source, ast.parse(source))
    return out


def resolve(name, known):
    """The project module an import names (a symbol import resolves to its module)."""
    while name and name not in known:
        name = name.rpartition(".")[0]
    return name or None


def test_imports_point_one_way(modules):
    upward = set()
    for module, (path, _, tree) in modules.items():
        mine = layer_of(module)
        for name, line, _ in project_imports(tree, module, False):
            target = resolve(name, modules)
            if target is None or target == module:
                continue
            theirs = layer_of(target)
            if theirs not in ALLOWED[mine] and theirs != mine:
                upward.add(f"{module}:{line} ({mine}) imports {target} ({theirs})")
    assert not upward, "imports against the layering:\n" + "\n".join(sorted(upward))


def test_no_import_hides_in_a_function(modules):
    hidden = {f"{module}:{line} imports {resolve(name, modules)}"
              for module, (_, _, tree) in modules.items()
              for name, line, in_function in project_imports(tree, module, False) if in_function}
    assert not hidden, "imports of project code inside functions:\n" + "\n".join(sorted(hidden))


def test_no_import_cycles(modules):
    graph = {}
    for module, (_, _, tree) in modules.items():
        edges = set()
        for name, _, _ in project_imports(tree, module, True):
            target = resolve(name, modules)
            if target and target != module:
                edges.add(target)
        graph[module] = edges
    cycles = strongly_connected(graph)
    assert not cycles, "import cycles:\n" + "\n".join(" <-> ".join(sorted(c)) for c in cycles)


def strongly_connected(graph):
    """Tarjan's algorithm; returns the components with more than one module."""
    index, low, stack, on_stack, out = {}, {}, [], set(), []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
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
                out.append(component)

    for v in list(graph):
        if v not in index:
            visit(v)
    return out


def test_modules_and_functions_stay_small(modules):
    big = []
    for module, (_, source, tree) in modules.items():
        lines = source.count("\n")
        if lines > MAX_MODULE_LINES:
            big.append(f"module {module}: {lines} lines")
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = node.end_lineno - node.lineno + 1
                if length > MAX_FUNCTION_LINES:
                    big.append(f"function {module}.{node.name}: {length} lines")
    assert not big, "too big to read at once:\n" + "\n".join(sorted(big))


def test_the_checker_sees_a_violation():
    """The walk itself works: an upward import and a cycle are caught."""
    tree = ast.parse("import os\nfrom blueprints.calls import schemas\ndef f():\n"
                     "    from services import outbox\n")
    found = project_imports(tree, "services.calls.service", False)
    assert ("blueprints.calls", 2, False) in found
    assert ("services.outbox", 4, True) in found
    assert strongly_connected({"a": {"b"}, "b": {"a"}, "c": {"a"}}) != []
