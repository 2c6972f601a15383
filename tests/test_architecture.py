"""The import rules of docs/architecture.md, checked on the source: encoder -> origin,
edge -> origin, delivery -> origin and the edge's stream-token signer only (keys are in
``common.signing_keys``); origin imports none of them;
nothing imports delivery. ``common`` (shared serving pieces) may be imported by every
part and imports none of them. ``loadtest`` (tooling) may import edge, origin and common,
and only the edge's command line imports it. Besides: no import cycles between project
modules, and no runtime module imports a command-line module."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("origin", "encoder", "edge", "delivery", "common", "loadtest")

# For each package: the other project packages (or exact modules) it may import.
ALLOWED = {
    "origin": {"common"},
    "encoder": {"origin", "common"},
    "edge": {"origin", "common"},
    "delivery": {"origin", "edge.token.sign_stream_token", "common"},
    "common": set(),
    "loadtest": {"edge", "origin", "common"},
}
# Single files allowed more than their package: ``edge loadtest`` dispatches to the tooling.
ALLOWED_FILES = {"edge/cli.py": {"loadtest.cli"}}
CLI_FILES = ("cli.py", "__main__.py")


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            # What is taken, not where from: "from edge.token import sign_stream_token"
            # is the function, "from edge import token" the whole module.
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def violations(package: str, root: Path = ROOT) -> list[str]:
    bad = []
    for path in sorted((root / package).rglob("*.py")):
        for name in imported_modules(path):
            top = name.split(".")[0]
            if top not in PACKAGES or top == package:
                continue
            allowed = ALLOWED[package] | ALLOWED_FILES.get(path.relative_to(root).as_posix(), set())
            if top in allowed or any(name == a or name.startswith(a + ".") for a in allowed):
                continue
            bad.append(f"{path.relative_to(root)} imports {name}")
    return bad


@pytest.mark.parametrize("package", PACKAGES)
def test_imports_run_one_way(package):
    assert violations(package) == []


def test_checker_sees_a_violation(tmp_path):
    # Guard against a checker that passes everything.
    fake = tmp_path / "origin"
    fake.mkdir()
    (fake / "bad.py").write_text("from delivery.app import create_app\nimport edge.fill\n")
    found = violations("origin", tmp_path)
    assert "origin/bad.py imports delivery.app.create_app" in found
    assert "origin/bad.py imports edge.fill" in found


def test_delivery_takes_only_the_stream_token_signer_from_the_edge(tmp_path):
    fake = tmp_path / "delivery"
    fake.mkdir()
    (fake / "ok.py").write_text("from edge.token import sign_stream_token\n")
    (fake / "bad.py").write_text(
        "from edge.token import TokenVerifier\nfrom edge import token\nimport edge.token\n"
    )
    found = violations("delivery", tmp_path)
    assert not [v for v in found if v.startswith("delivery/ok.py")]
    assert sorted(found) == [
        "delivery/bad.py imports edge.token",
        "delivery/bad.py imports edge.token.TokenVerifier",
    ]


def test_common_imports_no_part(tmp_path):
    fake = tmp_path / "common"
    fake.mkdir()
    (fake / "bad.py").write_text("from origin.keys import parse_key\n")
    assert "common/bad.py imports origin.keys.parse_key" in violations("common", tmp_path)


def test_only_the_edge_cli_imports_loadtest(tmp_path):
    fake = tmp_path / "edge"
    fake.mkdir()
    (fake / "cli.py").write_text("from loadtest.cli import main\n")
    (fake / "app.py").write_text("from loadtest.cli import main\n")
    found = violations("edge", tmp_path)
    assert "edge/app.py imports loadtest.cli.main" in found
    assert not [v for v in found if v.startswith("edge/cli.py")]


# -- the module graph: module-level imports only (an import inside a function runs late) --


def module_names(root: Path = ROOT) -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in (root / package).rglob("*.py"):
            parts = path.relative_to(root).with_suffix("").parts
            found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def module_level_imports(path: Path, module: str, modules: dict[str, Path]) -> set[str]:
    """The project modules ``module`` imports when it is imported (``if TYPE_CHECKING`` aside)."""

    def known(name: str) -> str | None:
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name or None

    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str | None] = set()
    for node in ast.parse(path.read_text(), filename=str(path)).body:
        inner = [node] if not isinstance(node, ast.Try) else list(ast.walk(node))
        for n in inner:
            if isinstance(n, ast.Import):
                found.update(known(alias.name) for alias in n.names)
            elif isinstance(n, ast.ImportFrom):
                base = n.module or ""
                if n.level:
                    base = ".".join([*package.split(".")[: len(package.split(".")) - n.level + 1],
                                     *filter(None, [n.module])])  # fmt: skip
                # "from pkg import sub" imports the module pkg.sub when there is one.
                found.update(known(f"{base}.{alias.name}") or known(base) for alias in n.names)
    return {m for m in found if m is not None and m != module}


def import_graph(root: Path = ROOT) -> dict[str, set[str]]:
    modules = module_names(root)
    return {m: module_level_imports(path, m, modules) for m, path in modules.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Each cycle found by a depth-first search, as the modules along it."""
    found, state, trail = [], {}, []

    def visit(module: str) -> None:
        state[module] = "open"
        trail.append(module)
        for dep in sorted(graph.get(module, ())):
            if state.get(dep) == "open":
                found.append([*trail[trail.index(dep) :], dep])
            elif dep not in state:
                visit(dep)
        trail.pop()
        state[module] = "done"

    for module in sorted(graph):
        if module not in state:
            visit(module)
    return found


def test_no_import_cycles():
    assert [" -> ".join(c) for c in cycles(import_graph())] == []


def test_cycle_checker_sees_a_cycle(tmp_path):
    pkg = tmp_path / "edge" / "upstream"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("def helper(): ...\nfrom edge.upstream.http import Http\n")
    (pkg / "http.py").write_text("from edge.upstream import helper\nclass Http: ...\n")
    (tmp_path / "edge" / "app.py").write_text("def f():\n    import edge.fill\n")
    (tmp_path / "edge" / "fill.py").write_text("import edge.app\n")  # app imports it late: fine
    assert cycles(import_graph(tmp_path)) == [
        ["edge.upstream", "edge.upstream.http", "edge.upstream"]
    ]


def test_runtime_modules_do_not_import_cli_modules():
    bad = [
        f"{path.relative_to(ROOT)} imports {name}"
        for package in PACKAGES
        for path in sorted((ROOT / package).rglob("*.py"))
        if path.name not in CLI_FILES
        for name in imported_modules(path)
        if name.split(".")[0] in PACKAGES and name.split(".")[-1] == "cli"
    ]
    assert bad == []
