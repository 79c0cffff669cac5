"""The product path (`serve`, `query`) never loads the dev tools: bot/dev/ is for tests, the demo and benchmarks."""

import ast
import json
import pathlib
import subprocess
import sys

BOT = pathlib.Path(__file__).resolve().parent.parent / "bot"

# Imports every product module the way `python -m bot serve|query` reaches them, then reports what got loaded.
# (Found from the files: pkgutil.walk_packages would itself import bot.dev to look inside it.)
PROBE = """
import importlib, json, pathlib, sys
root = pathlib.Path(sys.argv[1])
for path in sorted(root.rglob("*.py")):
    parts = path.relative_to(root.parent).with_suffix("").parts
    if parts[:2] != ("bot", "dev"):
        importlib.import_module(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
from bot.cli import build_parser
build_parser().parse_args(["query", "demo-1"])
print(json.dumps(sorted(name for name in sys.modules if name.startswith("bot"))))
"""


def test_product_modules_load_nothing_from_dev():
    result = subprocess.run(  # noqa: S603  # our own interpreter and code, no shell
        [sys.executable, "-c", PROBE, str(BOT)], capture_output=True, text=True, check=True, timeout=60
    )
    loaded = json.loads(result.stdout)
    assert "bot.serve" in loaded
    assert "bot.query" in loaded
    assert "bot.state.leases" in loaded  # the walk really imported the product
    assert [name for name in loaded if name.startswith("bot.dev")] == []


def test_only_the_cli_names_the_dev_tools_and_only_inside_functions():
    # cli.py starts the demo, console and sandbox on request; it imports them lazily, inside main().
    offenders = []
    for path in BOT.rglob("*.py"):
        if BOT / "dev" in path.parents:
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in tree.body:  # module-level imports only
            names = [node.module] if isinstance(node, ast.ImportFrom) else []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            offenders += [f"{path.relative_to(BOT)}: {name}" for name in names if name and name.startswith("bot.dev")]
    assert offenders == []


QUERY_PROBE = """
import json, sys
import bot.query
print(json.dumps(sorted(name for name in sys.modules if name.split(".")[0] in ("slack_bolt", "slack_sdk", "aiohttp"))))
"""


def test_query_loads_no_slack_libraries():
    # `python -m bot query` talks to ZIM only; Bolt, the Slack SDK and aiohttp add ~0.4 s to every run's start.
    result = subprocess.run(  # noqa: S603  # our own interpreter and code, no shell
        [sys.executable, "-c", QUERY_PROBE], capture_output=True, text=True, check=True, timeout=60
    )
    assert json.loads(result.stdout) == []
