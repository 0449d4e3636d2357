"""The package's import graph against its layers (issue 13): imports go downward only, at module top, without cycles.

Every module of ``dsrecon`` is parsed with :mod:`ast` (nothing is imported), and every ``import`` /
``from ... import`` statement, at module level or inside a function, that names a dsrecon module is an edge.
The layers, lowest first (a module may import its own layer and the ones below, never above):

- ``foundation``: errors, the atomic write, the frozen config dataclasses (they import nothing else of dsrecon);
- ``core``: arrays and tensors only, never a card or a file: models, true systems, the estimators from data
  (embedding, divergence curves, λ_max, τ, correlation dimension), model spectra, the input check, the metric
  kernels, forcing, flossing, ensembles;
- ``data``: cards, file readers, downloads, preprocessing, loading -> ``xr.Dataset``;
- ``workflow``: training, evaluation of a model against data, runs, results, sweeps, leaderboards, reports, the CLI;
- ``api``: ``dsrecon/__init__.py``, which re-exports the public names of all of them.

A module missing from the table fails the test, so a new module has to be placed. Within a layer the graph
must have no cycle. A function-level import of a dsrecon module fails (it hides a dependency, and usually a
cycle); function-level imports of third-party packages are allowed only for the optional or slow extras in
:data:`DEFERRABLE`, each with its comment at the import.
"""
from __future__ import annotations

import ast
import sys
from pathlib import Path

PKG = Path(__file__).resolve().parent.parent / "dsrecon"

LAYERS = {
    "foundation": ["errors", "fileio", "config"],
    "core": ["models", "models.base", "models.observation", "models.plrnn", "models.shplrnn", "models.rnn",
             "models.lstm", "models.gru", "systems", "arrays", "inputs", "embedding", "divergence", "maxlyap", "tau",
             "dimension", "lyapunov", "score", "spectra", "views", "verdicts", "metrics", "fused", "forcing", "flossing", "ensemble"],
    "data": ["cards", "files", "recordings", "downloads", "preprocess", "data"],
    "workflow": ["validation", "train", "prediction", "evaluation", "tasks", "members", "experiment", "ownership", "runs", "results", "ray_options", "sweep_values", "jobs", "backends", "sweep", "leaderboard",
                 "report", "baselines", "cli_parser", "cli"],
    "api": [""],
}
ORDER = list(LAYERS)
LAYER = {mod: ORDER.index(layer) for layer, mods in LAYERS.items() for mod in mods}

# third-party packages a function may import: optional extras, or slow imports only one command needs
DEFERRABLE = {"ray", "reservoirpy", "edfio", "nolds", "matplotlib"}

# 600 lines: about what one reads in a sitting; every module of the package had one job and fit under it when
# the limit was set (issue 13). A module that grows past it is split by job, or listed here with its reason.
MAX_LINES = 600
LONG_MODULES: dict[str, str] = {}

# edges that break the rules today, each in a workflow module owned by another part of issue 13 (they fail
# the test when they are fixed, so that the list only shrinks)
KNOWN_VIOLATIONS: set[tuple[str, str, str]] = set()


def _module_name(path: Path) -> str:
    rel = path.relative_to(PKG).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _resolve(src: str, is_pkg: bool, node: ast.ImportFrom | ast.Import) -> list[tuple[str, list[str]]]:
    """(dsrecon module imported, names taken from it) for one import statement; empty for third-party ones."""
    out = []
    if isinstance(node, ast.Import):
        for a in node.names:
            if a.name == "dsrecon" or a.name.startswith("dsrecon."):
                out.append((a.name[len("dsrecon."):] if a.name != "dsrecon" else "", []))
        return out
    if node.level == 0:
        if node.module != "dsrecon" and not (node.module or "").startswith("dsrecon."):
            return out
        base = node.module[len("dsrecon."):] if node.module != "dsrecon" else ""
    else:
        pkg = src.split(".") if is_pkg else src.split(".")[:-1]
        pkg = [p for p in pkg if p]
        pkg = pkg[: len(pkg) - (node.level - 1)] if node.level > 1 else pkg
        base = ".".join(pkg + ([node.module] if node.module else []))
    names = [a.name for a in node.names]
    for name in names:      # ``from . import data`` names a module; ``from .data import load`` a name
        sub = f"{base}.{name}" if base else name
        if (PKG / (sub.replace(".", "/") + ".py")).is_file() or (PKG / sub.replace(".", "/") / "__init__.py").is_file():
            out.append((sub, []))
        else:
            out.append((base, [name]))
    return out


def _graph():
    """{module: [(imported module, names, line, deferred?)]} and {module: [(third-party top name, line)]} of
    function-level third-party imports."""
    edges, deferred_ext = {}, {}
    for path in sorted(PKG.rglob("*.py")):
        src = _module_name(path)
        tree = ast.parse(path.read_text(), filename=str(path))
        top = set(id(n) for n in tree.body)
        for n in tree.body:    # imports under a module-level ``if``/``try`` still run at import time
            if isinstance(n, (ast.If, ast.Try)):
                top.update(id(m) for m in ast.walk(n) if isinstance(m, (ast.Import, ast.ImportFrom)))
        edges[src], deferred_ext[src] = [], []
        for node in ast.walk(tree):
            if not isinstance(node, (ast.Import, ast.ImportFrom)):
                continue
            deferred = id(node) not in top
            found = _resolve(src, path.name == "__init__.py", node)
            for mod, names in found:
                edges[src].append((mod, names, node.lineno, deferred))
            if not found and deferred and not (isinstance(node, ast.ImportFrom) and node.level):
                names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module]
                for name in names:
                    root = name.split(".")[0]
                    if root not in sys.stdlib_module_names and root != "dsrecon":
                        deferred_ext[src].append((root, node.lineno))
    return edges, deferred_ext


EDGES, DEFERRED_EXT = _graph()


def _problems():
    problems = []
    for src, targets in EDGES.items():
        for mod, names, line, deferred in targets:
            if mod == src:
                continue
            if mod == "" and set(names) <= {"__version__"}:
                continue      # the version string of the package, defined before __init__ imports anything
            if deferred:
                problems.append((src, mod, f"dsrecon/{src or '__init__'}: line {line}: import of {mod or 'dsrecon'} "
                                           f"inside a function (move it to the module top)"))
            elif mod in LAYER and src in LAYER and LAYER[mod] > LAYER[src]:
                problems.append((src, mod, f"dsrecon/{src or '__init__'}: line {line}: upward import of "
                                           f"{mod} ({ORDER[LAYER[mod]]}) from the {ORDER[LAYER[src]]} layer"))
    return problems


def test_every_module_has_a_layer():
    missing = sorted(m for m in EDGES if m not in LAYER)
    assert not missing, f"modules without a layer in tests/test_architecture.py LAYERS: {missing}"
    gone = sorted(m for m in LAYER if m not in EDGES)
    assert not gone, f"LAYERS lists modules that do not exist: {gone}"


def test_imports_go_downward_at_module_top():
    found = {(s, m): why for s, m, why in _problems()}
    unexpected = [why for key, why in found.items() if (*key, "") not in {(a, b, "") for a, b, _ in KNOWN_VIOLATIONS}]
    assert not unexpected, "\n".join(unexpected)
    fixed = [v for v in KNOWN_VIOLATIONS if (v[0], v[1]) not in found]
    assert not fixed, f"fixed, remove from KNOWN_VIOLATIONS: {fixed}"


def test_no_import_cycle():
    graph = {src: {m for m, _, _, deferred in ts if m != src and m in EDGES and not deferred and m != ""}
             for src, ts in EDGES.items()}
    state: dict[str, int] = {}
    cycles = []

    def visit(node, stack):
        state[node] = 1
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                cycles.append(stack[stack.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt, stack + [nxt])
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])
    assert not cycles, "import cycles: " + "; ".join(" -> ".join(c) for c in cycles)


def test_deferred_third_party_imports_are_optional_extras():
    bad = [f"dsrecon/{src}: line {line}: {root} imported inside a function; import it at the module top (only "
           f"{', '.join(sorted(DEFERRABLE))} may wait)" for src, found in DEFERRED_EXT.items()
           for root, line in found if root not in DEFERRABLE]
    assert not bad, "\n".join(bad)


def test_no_module_over_the_line_limit():
    too_long = []
    for path in sorted(PKG.rglob("*.py")):
        mod, n = _module_name(path), len(path.read_text().splitlines())
        if n > MAX_LINES and mod not in LONG_MODULES:
            too_long.append(f"dsrecon/{path.relative_to(PKG)}: {n} lines > {MAX_LINES}")
    assert not too_long, "\n".join(too_long)
    short = [m for m in LONG_MODULES
             if len((PKG / (m.replace(".", "/") + ".py")).read_text().splitlines()) <= MAX_LINES]
    assert not short, f"now under {MAX_LINES} lines, remove from LONG_MODULES: {short}"
