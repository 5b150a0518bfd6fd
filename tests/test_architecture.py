"""The import rules of the house (docs/ARCHITECTURE.md), read from the source with ast: a module of one
package importing a package it must not fails here, lazy imports inside functions included."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Iterator, Tuple

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "blurtools"


def imports_of(path: Path) -> Iterator[Tuple[int, str]]:
    """(line, absolute module name) of every import in ``path``, wherever it sits in the file."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts[:-1])
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1] + ([base] if base else []))
            yield node.lineno, base
            for alias in node.names:  # ``from blurtools import train`` imports the package too
                yield node.lineno, f"{base}.{alias.name}"


def violations(package: str, forbidden: Tuple[str, ...]):
    found = []
    for path in sorted((PACKAGE / package).rglob("*.py")):
        for line, name in imports_of(path):
            if any(name == f or name.startswith(f + ".") for f in forbidden):
                found.append(f"{path.relative_to(PACKAGE.parent)}:{line} imports {name}")
    return found


RULES = [
    ("ops", ("blurtools.train", "blurtools.cli", "blurtools.infer", "blurtools.models", "blurtools.losses",
             "blurtools.metrics", "blurtools.data")),
    ("models", ("blurtools.train", "blurtools.cli", "blurtools.infer", "blurtools.losses", "blurtools.metrics",
                "blurtools.data")),
    ("infer", ("blurtools.train", "blurtools.cli")),
]

# The layers (docs/ARCHITECTURE.md): the blurtools packages each package may import besides itself,
# ``errors`` and ``__version__``. ``cli`` may import any of them (its command modules not each other).
ALLOWED = {
    "request": set(),
    "io": set(),
    "ops": set(),
    "data": {"io"},
    "models": {"io", "ops"},
    "losses": {"ops"},
    "metrics": {"io", "ops"},
    "synth": {"io", "ops", "request"},
    "infer": {"io", "ops", "models", "request", "weights"},
    "report": {"io", "metrics"},
    "train": {"io", "ops", "models", "losses", "metrics", "data", "request"},
}


@pytest.mark.parametrize("package,forbidden", RULES, ids=[r[0] for r in RULES])
def test_package_imports_follow_the_layers(package, forbidden):
    assert violations(package, forbidden) == []


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_package_imports_only_lower_layers(package):
    allowed = ALLOWED[package] | {package, "errors", "__version__"}
    found = []
    root = PACKAGE / package
    paths = sorted(root.rglob("*.py")) if root.is_dir() else [root.with_suffix(".py")]
    assert paths and all(p.is_file() for p in paths), f"no module {package}"
    for path in paths:
        for line, name in imports_of(path):
            parts = name.split(".")
            if parts[0] == "blurtools" and len(parts) > 1 and parts[1] not in allowed:
                found.append(f"{path.relative_to(PACKAGE.parent)}:{line} imports {name}")
    assert found == []


def test_the_checker_sees_lazy_and_relative_imports(tmp_path, monkeypatch):
    pkg = tmp_path / "blurtools" / "infer"
    pkg.mkdir(parents=True)
    (pkg / "x.py").write_text("def f():\n    from blurtools.train import engine\n\nfrom ..train import config\n")
    monkeypatch.setattr(__import__(__name__), "PACKAGE", tmp_path / "blurtools")
    assert len(violations("infer", ("blurtools.train",))) == 4


def test_no_private_name_crosses_a_file():
    crossing = []
    for path in sorted(PACKAGE.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("blurtools"):
                crossing += [f"{path.relative_to(PACKAGE.parent)}:{node.lineno} imports {node.module}.{a.name}"
                             for a in node.names if a.name.startswith("_") and not a.name.startswith("__")]
    assert crossing == []
