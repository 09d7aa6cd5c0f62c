"""The packages depend one way: kernel <- probes <- collector <- sla <- notify <- portal
<- the command line's wiring. A module importing from a later layer fails here, naming
the import, so the rule the README states cannot quietly erode."""

from __future__ import annotations

import ast
from pathlib import Path

from tests.helpers import REPO

# Earlier layers may not import later ones; a layer may import itself and earlier ones.
LAYERS = ["kernel", "probes", "collector", "sla", "notify", "portal", "wiring"]
PACKAGES = ("kernel", "probes", "collector", "sla", "notify", "portal", "linkwatch")
# The top-level package of each layer; linkwatch/ is the program, the wiring.
PACKAGE_LAYER = {"linkwatch": "wiring"}


def layer_of(module: str) -> str | None:
    """The layer of a dotted module name of ours, or None for any other module."""
    top = module.partition(".")[0]
    if top in PACKAGE_LAYER:
        return PACKAGE_LAYER[top]
    return top if top in LAYERS else None


def violations(root: Path) -> tuple[int, list[str]]:
    """How many modules of ours under `root` were read, and each import in them that
    points to a later layer, as `path:line: layer imports module (layer)`."""
    wrong = []
    modules = 0
    for package in PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            module = ".".join(path.relative_to(root).with_suffix("").parts)
            source = layer_of(module)
            assert source is not None
            modules += 1
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.Import):
                    targets = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    targets = [node.module]
                else:
                    continue
                for target in targets:
                    layer = layer_of(target)
                    if layer is not None and LAYERS.index(layer) > LAYERS.index(source):
                        where = path.relative_to(root)
                        wrong.append(f"{where}:{node.lineno}: {source} imports {target} ({layer})")
    return modules, wrong


def test_every_import_points_to_the_same_or_an_earlier_layer() -> None:
    modules, wrong = violations(REPO)
    assert modules > 50  # the walk found the code
    assert wrong == []


def test_an_import_against_the_rule_is_named(tmp_path: Path) -> None:
    (tmp_path / "sla").mkdir()
    (tmp_path / "sla" / "report.py").write_text(
        "from collector.state_reads import link_intervals\n"
        "\n"
        "def page():\n"
        "    from portal.app import build_app  # hidden in a function, still counted\n"
    )
    assert violations(tmp_path) == (1, ["sla/report.py:4: sla imports portal.app (portal)"])
