"""The package's shape: no import cycles, the demo apart, modules of a readable size."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1] / "reduce"
DEMO = "reduce.demo"
#: Product modules that may import the demo package, inside a function only (its commands).
DEMO_COMMANDS = {"reduce.cli.demo"}
MAX_LINES = 360  # "~350": longer modules state why at their top ("Length:")


def _modules() -> dict[str, Path]:
    out = {}
    for p in ROOT.rglob("*.py"):
        parts = p.relative_to(ROOT.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = p
    return out


MODULES = _modules()


def _imports(name: str, path: Path) -> list[tuple[str, bool]]:
    """[(imported reduce module, at module level?)] of one module, relative imports resolved."""
    tree = ast.parse(path.read_text())
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    top_level = {id(n) for n in tree.body}
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base_parts = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join(base_parts + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            for alias in node.names:
                full = f"{base}.{alias.name}"
                target = full if full in MODULES else base
                if target in MODULES and target != name:
                    out.append((target, id(node) in top_level))
        elif isinstance(node, ast.Import):
            out += [(a.name, id(node) in top_level) for a in node.names if a.name in MODULES and a.name != name]
    return out


GRAPH = {name: _imports(name, path) for name, path in MODULES.items()}


def _cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on, found, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in edges[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(sorted(comp))

    for v in edges:
        if v not in index:
            visit(v)
    return found


def test_walker_sees_the_package():
    assert {"reduce.orchestrate", "reduce.clean.group", "reduce.cli.main", "reduce.demo.simulate"} <= set(MODULES)
    assert ("reduce.clean.masks", True) in GRAPH["reduce.clean.member"]
    # the walker finds a cycle when there is one
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_import_cycles_even_through_function_level_imports():
    edges = {m: {t for t, _ in imps} for m, imps in GRAPH.items()}
    assert _cycles(edges) == []


def test_product_does_not_import_the_demo_package():
    offenders = []
    for name, imps in GRAPH.items():
        if name.startswith(DEMO):
            continue
        for target, top in imps:
            if target.startswith(DEMO) and (name not in DEMO_COMMANDS or top):
                offenders.append((name, target, "module level" if top else "in a function"))
    assert offenders == []


def test_modules_are_short_or_say_why():
    long = []
    for name, path in MODULES.items():
        text = path.read_text()
        n = text.count("\n")
        doc = ast.get_docstring(ast.parse(text)) or ""
        if n > MAX_LINES and "Length:" not in doc:
            long.append((name, n))
    assert long == []


@pytest.mark.slow
def test_no_jwst_pipeline_import_in_the_main_process_before_stage1(demo_raw, crds_cache, tmp_path):
    """The step-parameter check and the reference types come from a worker (which keeps jwst
    for stage 1): the main process never imports jwst's pipelines."""
    import subprocess
    import sys

    code = ("import sys\n"
            "from reduce import config, crds_setup\n"
            "crds_setup.offline_environment()\n"
            "from reduce.orchestrate import reduce_folder\n"
            f"s = reduce_folder({str(demo_raw)!r}, {str(tmp_path / 'ws')!r}, config.load(None, {{'jobs': 1}}), "
            f"crds_path={str(crds_cache)!r}, stages=())\n"
            "print(len(s.exposures), 'jwst.pipeline' in sys.modules, 'jwst.tweakreg' in sys.modules)\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.split()[-3:] == ["14", "False", "False"], proc.stdout
