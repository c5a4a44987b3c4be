"""Start-up (issue 14 point 4): the command line imports what a command needs when it runs.

Which modules load is checked in a fresh interpreter (not how long they take: that is the
benchmark's, ``benchmarks/bench_scale_report.py --startup-only``).
"""

from __future__ import annotations

import json
import math
import subprocess
import sys

import click
import numpy as np
import pytest
import typer

from mscatlas.cli import COMMANDS, app, load_command
from mscatlas.stats._roots import brentq

# Heavy libraries and the parts of mscatlas built on them: none loads for `mscatlas --help`.
HEAVY = [
    "alembic",
    "fastapi",
    "jinja2",
    "matplotlib",
    "numpy",
    "pandas",
    "pydantic",
    "scipy",
    "sqlalchemy",
    "mscatlas.kb.models",
    "mscatlas.kb.store",
    "mscatlas.stats",
    "mscatlas.web",
    "mscatlas.report",
]
# `mscatlas meta` needs numpy and scipy.special, and typer's own parameter handling loads pydantic.
META_NEVER = [
    "alembic",
    "fastapi",
    "jinja2",
    "matplotlib",
    "pandas",
    "scipy.optimize",
    "scipy.stats",
    "sqlalchemy",
    "mscatlas.kb.models",
    "mscatlas.kb.store",
    "mscatlas.stats.multilevel",
    "mscatlas.stats.synthesis",
    "mscatlas.web",
    "mscatlas.report",
]


def _modules(code: str, *args: str) -> set[str]:
    """The modules loaded after running ``code`` in a fresh interpreter."""
    script = f"import json, sys\n{code}\nprint(json.dumps(sorted(sys.modules)), file=sys.stderr)"
    done = subprocess.run([sys.executable, "-c", script, *args], capture_output=True, text=True, check=False)
    assert done.stderr.strip(), done.stdout
    return set(json.loads(done.stderr.strip().splitlines()[-1]))


def _run_cli(*args: str) -> str:
    return f"from mscatlas.cli import main\ntry:\n    main({list(args)!r})\nexcept SystemExit:\n    pass"


def _loaded(modules: set[str], name: str) -> bool:
    return any(m == name or m.startswith(name + ".") for m in modules)


@pytest.fixture(scope="module")
def after_import() -> set[str]:
    return _modules("import mscatlas.cli")


@pytest.fixture(scope="module")
def after_help() -> set[str]:
    return _modules(_run_cli("--help"))


@pytest.fixture(scope="module")
def after_meta(tmp_path_factory: pytest.TempPathFactory) -> set[str]:
    rng = np.random.default_rng(20)
    path = tmp_path_factory.mktemp("meta") / "k20.csv"
    rows = [f"{rng.normal(0.3, 0.3)!r},{rng.uniform(0.01, 0.2)!r}" for _ in range(20)]
    path.write_text("yi,vi\n" + "\n".join(rows) + "\n")
    modules = _modules(_run_cli("meta", str(path), "--measure", "GEN", "--method", "REML", "--json"))
    assert "mscatlas.stats.tau2" in modules  # the command ran
    return modules


@pytest.mark.parametrize("module", HEAVY)
def test_import_cli_does_not_import(after_import: set[str], module: str) -> None:
    assert not _loaded(after_import, module)


@pytest.mark.parametrize("module", HEAVY)
def test_help_does_not_import(after_help: set[str], module: str) -> None:
    assert not _loaded(after_help, module)


@pytest.mark.parametrize("module", META_NEVER)
def test_meta_does_not_import(after_meta: set[str], module: str) -> None:
    assert not _loaded(after_meta, module)


def test_help_lines_are_the_commands_own() -> None:
    """Each line `mscatlas --help` shows without importing a command is the command's own help."""
    for name, (_, line) in COMMANDS.items():
        command = load_command(name)
        assert command.name == name
        assert (command.help or "").split("\n\n")[0].strip() == line, name


def test_help_lists_every_command_in_order() -> None:
    root = typer.main.get_command(app)
    ctx = click.Context(root)
    assert root.list_commands(ctx) == list(COMMANDS)
    assert isinstance(root.get_command(ctx, "sim"), click.Command)
    assert root.get_command(ctx, "no-such-command") is None
    assert set(root.commands["trials"].commands) >= {"design", "import", "sync", "landscape", "list", "flow"}  # type: ignore[attr-defined]
    assert "sweep" in root.commands["sim"].commands  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("f", "a", "b"),
    [
        (lambda x: x**3 - 2 * x - 5, 0.0, 4.0),
        (lambda x: math.cos(x) - x, 0.0, 1.0),
        (lambda x: math.exp(x) - 10, -5.0, 10.0),
        (lambda x: math.tanh(x - 0.3) * 1e-8, -3.0, 4.0),
        (lambda x: 1 / (1 + x) - 0.25, 0.0, 1e6),
    ],
)
@pytest.mark.parametrize(("xtol", "rtol"), [(1e-14, 1e-13), (2e-12, 4 * 2.220446049250313e-16), (1e-4, 1e-6)])
def test_brentq_is_scipys_to_the_bit(f, a: float, b: float, xtol: float, rtol: float) -> None:
    from scipy.optimize import brentq as scipy_brentq

    ours = brentq(f, a, b, xtol=xtol, rtol=rtol, maxiter=500)
    assert ours == scipy_brentq(f, a, b, xtol=xtol, rtol=rtol, maxiter=500)
    with pytest.raises(ValueError, match="different signs"):
        brentq(lambda x: 1.0 + x * x, a, b)


def test_cli_runs_a_lazily_loaded_command() -> None:
    from typer.testing import CliRunner

    result = CliRunner().invoke(app, ["dose", "1:10 MSC:cancer", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)
