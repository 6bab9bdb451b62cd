"""Convert the vendored SigmaHQ rules to EQL with pySigma's Elasticsearch backend (`EqlBackend`).

Runs in a venv of its own (the Makefile's `.venv-bench-sigma`): pySigma-backend-elasticsearch 2.1 requires
pySigma < 2, Cordon requires pySigma >= 2, so the two cannot share one environment. It writes, as JSON, each
rule's id, title and EQL query, and for each rule the backend refuses, the reason it gave:

    python bench/sigma_to_eql.py RULES_FOLDER OUTPUT.json
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from sigma.backends.elasticsearch import EqlBackend
from sigma.collection import SigmaCollection
from sigma.exceptions import SigmaError


def convert(folder: Path) -> dict[str, Any]:
    backend = EqlBackend()
    converted: dict[str, dict[str, str]] = {}
    refused: dict[str, dict[str, str]] = {}
    for path in sorted(folder.glob("*.yml")):
        collection = SigmaCollection.from_yaml(path.read_text())
        [rule] = collection.rules
        entry = {"file": path.name, "title": str(rule.title)}
        try:
            [query] = backend.convert(collection)
        except SigmaError as error:
            refused[str(rule.id)] = {**entry, "reason": f"{type(error).__name__}: {error}"}
            continue
        converted[str(rule.id)] = {**entry, "query": str(query)}
    return {"backend": "pySigma-backend-elasticsearch EqlBackend", "converted": converted, "refused": refused}


def main() -> None:
    folder, output = Path(sys.argv[1]), Path(sys.argv[2])
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(convert(folder), indent=1, sort_keys=True) + "\n")


if __name__ == "__main__":
    main()
