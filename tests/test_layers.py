"""The import graph is one-way: the core (input encoding, model, backends, predictor) stands alone;
training and serving stand on it; the `stanceline` command stands on everything. Read from the source
with `ast`, so a lazy import inside a function counts as much as one at the top."""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("stanceline", "training", "serving")
CORE = {
    "training.labels",
    "training.text",
    "training.windows",
    "training.catalog",
    "training.modeling",
    "training.backends",
    "training.quantize",
    "training.predictor",
    "training.files",
}
COMMAND = "stanceline.cli"
"""Above both packages: `training` never imports `serving`, nor `serving` `training` beyond the core."""
"""The command imports each command's modules when it runs, so `stanceline --help` does not load torch."""


def project_modules() -> dict[str, Path]:
    modules = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            name = ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
            modules[name] = path
    return modules


def imports_of(path: Path, modules: dict[str, Path]) -> list[tuple[str, bool]]:
    """(imported project module, imported inside a function) for every import statement in `path`."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        names = []
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [f"{node.module}.{alias.name}" for alias in node.names] + [node.module]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        target = next((name for name in names if name in modules), None)
        if target:
            found.append((target, node.col_offset > 0))
    return found


MODULES = project_modules()
GRAPH = {name: imports_of(path, MODULES) for name, path in MODULES.items()}


def layer(module: str) -> int:
    if module in CORE or module in PACKAGES:
        return 0
    return 2 if module.split(".")[0] == "stanceline" else 1


def test_the_walk_sees_the_known_edges():
    assert ("training.predictor", False) in GRAPH["serving.schemas"]
    assert ("training.trainer", True) in GRAPH[COMMAND]


def test_training_never_imports_serving():
    upward = [
        f"{module} -> {target}"
        for module, edges in GRAPH.items()
        for target, _ in edges
        if module.startswith("training") and target.startswith("serving")
    ]
    assert not upward


def test_no_module_imports_a_layer_above_it():
    upward = [f"{module} -> {target}" for module, edges in GRAPH.items() for target, _ in edges if layer(target) > layer(module)]
    assert not upward


def test_training_and_serving_meet_only_in_the_core_and_the_command():
    crossing = [
        f"{module} -> {target}"
        for module, edges in GRAPH.items()
        for target, _ in edges
        if layer(module) == 1 and layer(target) == 1 and module.split(".")[0] != target.split(".")[0]
    ]
    assert not crossing


def test_the_import_graph_has_no_cycle():
    state: dict[str, str] = {}

    def visit(module: str, path: list[str]) -> list[str] | None:
        state[module] = "open"
        for target, _ in GRAPH[module]:
            if target == module:
                continue
            if state.get(target) == "open":
                return [*path, module, target]
            if target not in state and (cycle := visit(target, [*path, module])):
                return cycle
        state[module] = "done"
        return None

    for module in GRAPH:
        if module not in state:
            assert (cycle := visit(module, [])) is None, " -> ".join(cycle)


def test_only_the_command_imports_project_modules_inside_functions():
    hidden = [
        f"{module} -> {target}" for module, edges in GRAPH.items() for target, inner in edges if inner and module != COMMAND
    ]
    assert not hidden
