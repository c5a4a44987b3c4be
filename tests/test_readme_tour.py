"""The README's tour, executed: every ``mscatlas ...`` line of its command-line tour and of its
living-intake walk-through runs, in README order, against one sandbox store.

The commands are read from README.md itself, so the test follows every later edit of the
README: a command that is added, renamed or broken there fails here. The sandbox is a fresh
store (``MSCATLAS_DATABASE_URL`` in a temporary folder), a temporary working directory holding
small fixture files under the names the README uses (``tests/data/tour/`` and the recorded
files of the other tests), and recorded answers for the commands that reach the network: the
PubMed, Europe PMC and ClinicalTrials.gov clients get an ``httpx.MockTransport`` replaying
``tests/data/intake`` and ``tests/data/ctgov``, and ``[--offline]`` runs the command twice,
online (recorded) and then offline from the cache just written. ``serve`` records the call it
would hand to uvicorn instead of listening. Prompts (``users add``) get their answers on stdin.

Every command must exit 0; a command whose README line documents another code lists it in
``EXPECTED_EXIT``. The commands run in one process (Typer's CliRunner), once per test session.

``SLOW`` commands (``sim calibrate``: about 10 minutes on a loaded two-core machine even with
``--starts 1 --folds 2``) are run only with ``MSCATLAS_TOUR_SLOW=1`` (a nightly job); otherwise
their README line is parsed by the command line itself, so a misspelt command, an unknown option
or a value of the wrong type still fails here, and the fit is tested in tests/test_sim_calibrate.py.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import typer.main
from typer.testing import CliRunner

from mscatlas.cli import app, trials_registry
from mscatlas.cli import intake as intake_cli
from mscatlas.intake.sources import EuropePmcClient, PubMedClient
from mscatlas.kb.store import Store
from mscatlas.trials.ctgov import CtgovClient

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DATA = Path(__file__).parent / "data"
TOUR_SECTIONS = ("A tour of the command line", "Living intake")
PASSWORD = "tour-password-1"

# Files the README's commands read, and where the sandbox takes them from.
FIXTURES = {
    "my_items.yaml": DATA / "tour" / "my_items.yaml",
    "fixes.yaml": DATA / "tour" / "fixes.yaml",
    "my_fixes.yaml": DATA / "tour" / "my_fixes.yaml",
    "my_item.yaml": DATA / "tour" / "my_item.yaml",
    "studies.csv": DATA / "metafor" / "normand1999.csv",
    "outcomes.csv": DATA / "tour" / "outcomes.csv",
    "page.json": DATA / "ctgov" / "page1.json",
    "pubmed-export.nbib": DATA / "intake" / "export.nbib",
    "labelled.csv": DATA / "intake" / "labelled.csv",
}

# Exit codes other than 0 that a README line documents (none today: every example succeeds).
EXPECTED_EXIT: dict[str, int] = {}

# Slow commands run with the faster options their --help and the README's comment document
# (a full calibration takes many minutes; the tour checks the command, not the fit's quality,
# which tests/test_sim_calibrate.py checks).
FASTER: dict[tuple[str, ...], tuple[str, ...]] = {
    ("sim", "calibrate"): ("--starts", "1", "--folds", "2"),
    ("sim", "sensitivity"): ("--trajectories", "2"),  # 2 Morris trajectories instead of 10
}
SLOW = frozenset({("sim", "calibrate")})
RUN_SLOW = os.environ.get("MSCATLAS_TOUR_SLOW") == "1"


@dataclass(frozen=True)
class TourLine:
    line: int  # README line number
    text: str  # the line as written
    args: tuple[str, ...]  # the arguments after `mscatlas`

    @property
    def name(self) -> str:
        return f"README:{self.line} {' '.join(self.args)}"


def _sections(text: str) -> Iterator[tuple[str, int, str]]:
    """(heading, first line number, body) of each level-2 section."""
    starts = [(m.start(), m.group(1)) for m in re.finditer(r"^## (.+)$", text, re.M)]
    for i, (start, heading) in enumerate(starts):
        end = starts[i + 1][0] if i + 1 < len(starts) else len(text)
        yield heading, text.count("\n", 0, start) + 1, text[start:end]


def tour_commands(text: str) -> list[TourLine]:
    """Every line of the tour sections' bash blocks that starts with `mscatlas`, parsed as the
    shell would (quotes kept, `# comments` dropped); an optional `[--flag]` is kept as `--flag`."""
    found = []
    for heading, first, body in _sections(text):
        if not heading.startswith(TOUR_SECTIONS):
            continue
        for block in re.finditer(r"^```bash\n(.*?)^```", body, re.S | re.M):
            block_first = first + body.count("\n", 0, block.start(1))
            for offset, raw in enumerate(block.group(1).splitlines()):
                words = shlex.split(raw, comments=True)
                if not words or words[0] != "mscatlas":
                    continue
                args = tuple(re.sub(r"^\[(--[\w-]+)\]$", r"\1", w) for w in words[1:])
                found.append(TourLine(block_first + offset, raw.strip(), args))
    return found


COMMANDS = tour_commands(README.read_text(encoding="utf-8"))


# ---------------------------------------------------------------- recorded network answers


def _pubmed_handler() -> Any:
    pages = [(DATA / "intake" / n).read_text("utf-8") for n in ("efetch_page1.xml", "efetch_page2.xml")]
    articles = [a for page in pages for a in re.findall(r"<PubmedArticle>.*?</PubmedArticle>", page, re.S)]

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("esearch.fcgi"):
            return httpx.Response(200, text=(DATA / "intake" / "esearch.xml").read_text("utf-8"))
        start, size = int(request.url.params["retstart"]), int(request.url.params["retmax"])
        chosen = "".join(articles[start : start + size])
        return httpx.Response(200, text=f"<?xml version='1.0'?><PubmedArticleSet>{chosen}</PubmedArticleSet>")

    return handler


def _europepmc_handler() -> Any:
    pages = {
        "*": "europepmc_page1.json",
        "AoIIQBh2cygyNzU1MjE4Ng==": "europepmc_page2.json",
        "AoIIQBh2cygyNzU1MjE4Ng==PAGE3": "europepmc_page3.json",
    }

    def handler(request: httpx.Request) -> httpx.Response:
        name = pages[request.url.params["cursorMark"]]
        return httpx.Response(200, text=(DATA / "intake" / name).read_text("utf-8"))

    return handler


def _ctgov_handler() -> Any:
    pages = {None: "page1.json", "TOKEN-PAGE-2": "page2.json", "TOKEN-PAGE-3": "page3_empty.json"}

    def handler(request: httpx.Request) -> httpx.Response:
        body = json.loads((DATA / "ctgov" / pages[request.url.params.get("pageToken")]).read_text("utf-8"))
        return httpx.Response(200, json=body)

    return handler


def _recorded_clients(monkeypatch: pytest.MonkeyPatch, cache: Path) -> None:
    quiet = {"sleep": lambda s: None, "min_interval_s": 0.0}

    def source_client(
        source: str, *, offline: bool, cache_dir: Path | None
    ) -> PubMedClient | EuropePmcClient:
        if source == "pubmed":
            transport = httpx.MockTransport(_pubmed_handler())
            return PubMedClient(offline=offline, cache_dir=cache, transport=transport, **quiet)
        transport = httpx.MockTransport(_europepmc_handler())
        return EuropePmcClient(offline=offline, cache_dir=cache, transport=transport, **quiet)

    def ctgov_client(*, offline: bool, cache_dir: Path | None) -> CtgovClient:
        transport = httpx.MockTransport(_ctgov_handler())
        return CtgovClient(offline=offline, cache_dir=cache, transport=transport, **quiet)

    monkeypatch.setattr(intake_cli, "make_source_client", source_client)
    monkeypatch.setattr(trials_registry, "make_client", ctgov_client)


# ---------------------------------------------------------------- the sandbox run


def parse_only(args: tuple[str, ...]) -> dict[str, Any]:
    """The options a command line would run with, read by the command line's own parser (every
    subcommand found, every option known, every value converted) without running it."""
    command = typer.main.get_command(app)
    name, rest, context = "mscatlas", list(args), None
    while hasattr(command, "resolve_command"):  # a group: the next word names its subcommand
        if not rest:
            raise ValueError(f"{name}: no subcommand")
        context = command.make_context(name, rest[:1], parent=context)
        name, command, rest = command.resolve_command(context, rest)
    return command.make_context(name, rest, parent=context).params


@dataclass
class Outcome:
    exit_code: int
    output: str
    served: list[dict[str, Any]]
    seconds: float


def _outcomes_from_run(tmp: Path, log: str | None = None) -> dict[TourLine, list[Outcome]]:
    """Run the tour; with ``log`` (MSCATLAS_TOUR_LOG), append each command's time and exit code there."""
    runner = CliRunner()
    work = tmp / "work"
    work.mkdir()
    for name, source in FIXTURES.items():
        shutil.copyfile(source, work / name)
    env = {"MSCATLAS_DATABASE_URL": f"sqlite:///{tmp / 'tour.sqlite'}"}
    served: list[dict[str, Any]] = []
    outcomes: dict[TourLine, list[Outcome]] = {}
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(work)
        for key, value in env.items():
            mp.setenv(key, value)
        _recorded_clients(mp, tmp / "http-cache")
        mp.setattr("uvicorn.run", lambda app, **kw: served.append({"app": app, **kw}))
        store = Store.open(env["MSCATLAS_DATABASE_URL"])  # the accounts the tour's --by names
        store.add_user("cara", "curator", PASSWORD)
        store.add_user("ed", "editor", PASSWORD)
        store.close()
        for command in COMMANDS:
            runs = [command.args + FASTER.get(command.args[:2], ())]
            if "--offline" in command.args:  # online (recorded answers) first, then from the cache
                runs.insert(0, tuple(a for a in runs[0] if a != "--offline"))
            if command.args[:2] in SLOW and not RUN_SLOW:
                try:
                    parse_only(runs[0])
                    parsed = Outcome(0, "parsed only (MSCATLAS_TOUR_SLOW=1 runs it)", [], 0.0)
                except Exception as exc:  # the command line's own usage error, reported per line
                    parsed = Outcome(2, f"{type(exc).__name__}: {exc}", [], 0.0)
                outcomes[command] = [parsed]
                continue
            for args in runs:
                before, start = len(served), time.perf_counter()
                result = runner.invoke(app, list(args), input=f"{PASSWORD}\n{PASSWORD}\n", env=env)
                seconds = time.perf_counter() - start
                text = result.output + (f"\n{result.exception!r}" if result.exception else "")
                outcome = Outcome(result.exit_code, text, served[before:], seconds)
                outcomes.setdefault(command, []).append(outcome)
                if log:
                    with Path(log).open("a", encoding="utf-8") as f:
                        f.write(f"{seconds:7.1f} s  exit {result.exit_code}  {' '.join(args)}\n")
    return outcomes


@pytest.fixture(scope="module")
def tour(tmp_path_factory: pytest.TempPathFactory) -> dict[TourLine, list[Outcome]]:
    return _outcomes_from_run(tmp_path_factory.mktemp("tour"), os.environ.get("MSCATLAS_TOUR_LOG"))


# ---------------------------------------------------------------- tests


def test_the_tour_is_read_from_the_readme() -> None:
    """The parser finds the tour (not an empty list that would make every other test vacuous)."""
    assert len(COMMANDS) >= 40, [c.text for c in COMMANDS]
    firsts = {c.args[0] for c in COMMANDS}
    assert {"query", "show", "load", "meta", "sim", "trials", "intake", "report", "serve"} <= firsts
    sync = next(c for c in COMMANDS if c.args[:2] == ("trials", "sync"))
    assert sync.args[-1] == "--offline" and sync.args[2:4] == ("--cond", "cancer")
    pubmed = next(c for c in COMMANDS if c.args[:3] == ("intake", "search", "pubmed"))
    assert pubmed.args[4] == '"mesenchymal stem cells"[MeSH] AND neoplasms[MeSH]'
    for name in FIXTURES:
        assert any(name in c.args for c in COMMANDS), f"fixture {name} is named by no tour command"
    for prefix in FASTER:
        assert any(c.args[: len(prefix)] == prefix for c in COMMANDS), f"FASTER: no tour command {prefix}"


def test_tour_parser_on_a_small_readme() -> None:
    text = (
        "## A tour of the command line\n\n```bash\nmscatlas show ref44   # a study\n"
        "# mscatlas commented out\nmscatlas dose \"1:10 # not a comment\" [--json]\n```\n"
        "## Other\n```bash\nmscatlas not-the-tour\n```\n"
    )
    got = [(c.line, c.args) for c in tour_commands(text)]
    assert got == [(4, ("show", "ref44")), (6, ("dose", "1:10 # not a comment", "--json"))]


@pytest.mark.parametrize("command", COMMANDS, ids=[c.name for c in COMMANDS])
def test_tour_command(command: TourLine, tour: dict[TourLine, list[Outcome]]) -> None:
    expected = EXPECTED_EXIT.get(" ".join(command.args), 0)
    for outcome in tour[command]:
        assert outcome.exit_code == expected, f"README line {command.line}: {command.text}\n{outcome.output}"
    if command.args[0] == "serve":
        (call,) = tour[command][0].served
        assert call["port"] == 8000 or call.get("workers") == 4


def test_parse_only_reads_options_and_refuses_bad_lines() -> None:
    params = parse_only(("sim", "calibrate", "--out", "c.yaml", "--starts", "1"))
    assert params["out"] == "c.yaml" and params["starts"] == 1
    for bad in (("sim", "calibrat"), ("sim", "calibrate", "--bogus"), ("sim", "calibrate", "--starts", "x")):
        with pytest.raises(Exception):  # noqa: B017 - the command line's own usage errors
            parse_only(bad)
