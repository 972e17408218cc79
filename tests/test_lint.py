"""The linters are part of the suite: ruff (pyflakes, bugbear, bandit's rules, import order, no
private names imported inside the app) and import-linter (the layers of DESIGN.md, no import
cycles). Their settings are in pyproject.toml."""
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=300)


def test_ruff_finds_nothing():
    proc = _run(str(BIN / "ruff"), "check", "--no-cache", ".")
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_import_contracts_hold():
    proc = _run(str(BIN / "lint-imports"), "--no-cache")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "0 broken" in proc.stdout


# a private name crosses a module boundary only where it is a capability on purpose
PRIVATE_IMPORTS_ALLOWED = {
    ("avatar/domain/gate.py", "avatar.synthesis.grant", "_MINT"): "the grant capability: only the consent gate mints grants",
}


def test_no_module_imports_a_private_name_of_another():
    import ast

    found = set()
    for path in sorted((ROOT / "avatar").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("avatar"):
                for alias in node.names:
                    if alias.name.startswith("_") and not alias.name.startswith("__"):
                        found.add((str(path.relative_to(ROOT)), node.module, alias.name))
    assert found == set(PRIVATE_IMPORTS_ALLOWED)


def test_benchmarks_do_not_import_the_tests():
    """Benchmarks and tests share media builders through avatar.demo, not through each other."""
    import ast

    for path in sorted((ROOT / "bench").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            names = ([node.module or ""] if isinstance(node, ast.ImportFrom)
                     else [a.name for a in node.names] if isinstance(node, ast.Import) else [])
            assert not any(n == "tests" or n.startswith("tests.") for n in names), f"{path.name} imports {names}"
