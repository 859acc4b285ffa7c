"""The imports follow the data, one way: no module of lookout_xero imports its way back.

Read from the source (every `import`, including those inside functions), so a lazy import that
hides a cycle from Python counts here too.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "lookout_xero"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imported_modules(path: Path, known: set[str]) -> set[str]:
    """lookout_xero modules that this file imports, wherever in the file the import is."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found = set()
    tree = ast.parse(path.read_text())
    type_only = {
        id(inner)
        for node in ast.walk(tree)
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)
        for inner in ast.walk(node)
    }  # imports for type checkers only never run
    for node in ast.walk(tree):
        if id(node) in type_only:
            continue
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            # `from package import module` needs the module, not the package's other names.
            submodules = {f"{base}.{alias.name}" for alias in node.names} & known
            found |= submodules if len(submodules) == len(node.names) else {base, *submodules}
    return {module for module in found if module in known and module != name}


def import_graph() -> dict[str, set[str]]:
    files = [p for p in PACKAGE.rglob("*.py") if "migrations" not in p.parts]
    known = {module_name(p) for p in files}
    return {module_name(p): imported_modules(p, known) for p in files}


def find_cycle(graph: dict[str, set[str]]) -> list[str]:
    """One import cycle as a path of module names, or [] when the graph has none."""
    state: dict[str, str] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str]:
        state[node] = "open"
        stack.append(node)
        for target in sorted(graph.get(node, ())):
            if state.get(target) == "open":
                return [*stack[stack.index(target) :], target]
            if target not in state and (cycle := visit(target)):
                return cycle
        state[node] = "done"
        stack.pop()
        return []

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return []


def test_the_import_graph_has_no_cycle():
    graph = import_graph()
    assert "lookout_xero.services.drain" in graph and "lookout_xero.models" in graph
    assert find_cycle(graph) == []


def test_the_cycle_finder_finds_a_cycle():
    # The check above can fail: the same finder on a graph with the old models → services edge.
    graph = import_graph()
    graph["lookout_xero.models"] = graph["lookout_xero.models"] | {"lookout_xero.services"}
    cycle = find_cycle(graph)
    assert cycle[0] == cycle[-1] and "lookout_xero.models" in cycle


def test_layers_point_one_way():
    graph = import_graph()

    def reaches(start: str) -> set[str]:
        seen, todo = set(), [start]
        while todo:
            for target in graph.get(todo.pop(), ()):
                if target not in seen:
                    seen.add(target)
                    todo.append(target)
        return seen

    assert "lookout_xero.tasks" not in reaches("lookout_xero.services")
    assert not {m for m in reaches("lookout_xero.models") if m.startswith("lookout_xero.services")}
    for pure in ("lookout_xero.mapping", "lookout_xero.matching", "lookout_xero.client"):
        assert "lookout_xero.models" not in reaches(pure), pure
    # The fake Xero stands apart from the code it tests.
    fake = {m for m in graph if m.startswith("lookout_xero.testing")}
    for module in fake:
        assert reaches(module) <= fake | {"lookout_xero"}, module


def test_no_function_in_services_is_longer_than_fifty_lines():
    lengths = {}
    for path in (PACKAGE / "services").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef):
                lengths[f"{path.name}:{node.name}"] = node.end_lineno - node.lineno + 1
    longest = max(lengths, key=lengths.get)
    print(f"longest function in services/: {longest} ({lengths[longest]} lines)")
    assert lengths[longest] <= 50, longest


def test_only_public_django_api_and_the_routers_database():
    """No query compiled for the default database while it runs on the outbox's, no on-commit
    hook that waits on the default database's transaction, no expression subclassed around its
    ``__init__``, no driver module's internals."""
    problems = []
    for path in PACKAGE.rglob("*.py"):
        tree = ast.parse(path.read_text())
        where = path.relative_to(PACKAGE.parent)
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
                name = node.func.attr
                if name == "sql_with_params":
                    problems.append(f"{where}:{node.lineno} sql_with_params() (default database)")
                if name == "on_commit" and "using" not in {k.arg for k in node.keywords}:
                    problems.append(f"{where}:{node.lineno} on_commit() without using")
            if isinstance(node, ast.ClassDef) and "F" in {ast.unparse(b) for b in node.bases}:
                problems.append(f"{where}:{node.lineno} a subclass of F")
            if isinstance(node, ast.Attribute) and ast.unparse(node).endswith("Database.__name__"):
                problems.append(f"{where}:{node.lineno} the driver module's name")
    assert problems == []


def defined_functions(module: str) -> set[str]:
    tree = ast.parse((PACKAGE / "services" / f"{module}.py").read_text())
    return {node.name for node in tree.body if isinstance(node, ast.FunctionDef)}


def test_each_services_module_keeps_to_its_job():
    graph = import_graph()
    # What a match does to a link is shared, not borrowed from a sibling.
    assert "lookout_xero.services.full_sync" not in graph["lookout_xero.services.drain"]
    assert "lookout_xero.services.links" in graph["lookout_xero.services.drain"]
    assert "lookout_xero.services.links" in graph["lookout_xero.services.full_sync"]
    # The outbox queues; people, the sweep and retention are elsewhere.
    public = {name for name in defined_functions("outbox") if not name.startswith("_")}
    assert public == {
        "queue_funder",
        "queue_funder_of_organisation",
        "queue_changed_funders",
        "upsert_statement",
        "ask_for_drain_on_commit",
    }
    # What the parts share has a name each, not one grab bag.
    assert not (PACKAGE / "services" / "common.py").exists()
    # The sweep's four jobs, each on its own.
    jobs = {"end_pauses", "restart_runs", "restart_drains", "restart_webhooks"}
    assert jobs | {"sweep"} == defined_functions("sweep")
