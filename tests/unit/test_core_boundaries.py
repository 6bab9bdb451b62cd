"""The core is pure Python: no module under correlators/ or cordon/playbooks/ (parsing, normalization, detection,
correlation, playbook loading and planning) imports boto3 or botocore (DESIGN principle 1)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
CORE = [REPO / "correlators", REPO / "cordon" / "playbooks"]
AWS_SDK = {"boto3", "botocore", "aioboto3", "aiobotocore"}


def _imported_roots(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    roots = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            roots.add(node.module.split(".")[0])
    return roots


def test_no_core_module_imports_the_aws_sdk() -> None:
    offenders = {
        str(path.relative_to(REPO)): sorted(_imported_roots(path) & AWS_SDK)
        for folder in CORE
        for path in folder.rglob("*.py")
        if _imported_roots(path) & AWS_SDK
    }
    assert offenders == {}


def test_importing_the_core_loads_no_aws_sdk() -> None:
    # Catches indirect imports too (a dependency that pulls boto3 in).
    code = (
        "import sys, correlators.pipeline, correlators.normalize, correlators.ingest, cordon.replay,"
        " cordon.playbooks.loader, cordon.playbooks.plan, cordon.playbooks.guards;"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in {'boto3', 'botocore'}))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
