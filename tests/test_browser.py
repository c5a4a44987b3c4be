"""Browser tests: the web app served by uvicorn, driven in a real headless Chromium.

The browser is Debian's package (``/usr/bin/chromium``, or ``MSCATLAS_CHROMIUM``), driven by
Playwright for Python with ``executable_path`` set: no browser is ever downloaded. Install
with ``pip install -e ".[test,browser]"`` and ``apt-get install chromium``. Without Playwright
or Chromium the module is skipped, unless ``MSCATLAS_REQUIRE_BROWSER=1`` (CI), where that
fails. A screenshot of each step goes to ``MSCATLAS_SCREENSHOT_DIR`` (default: a temporary
folder), named after the test and the step.

Each test opens its own browser context (no shared cookies) and creates the records it needs
under ids of its own; expected numbers are computed from the store, never written in.
"""

from __future__ import annotations

import csv
import io
import itertools
import os
import re
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
import yaml

from mscatlas.kb.models import EvidenceItem
from mscatlas.kb.store import EvidenceFilter, Store
from mscatlas.web import create_app

pytestmark = pytest.mark.browser

CHROMIUM = os.environ.get("MSCATLAS_CHROMIUM", "/usr/bin/chromium")
REQUIRED = os.environ.get("MSCATLAS_REQUIRE_BROWSER") == "1"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
PASSWORD = "correct horse battery"
TIMEOUT_MS = 20_000  # generous: a loaded CI machine must not make a wait flaky


def _unavailable(reason: str) -> None:
    if REQUIRED:
        pytest.fail(f"browser tests are required (MSCATLAS_REQUIRE_BROWSER=1) but {reason}", pytrace=False)
    pytest.skip(f"browser tests skipped: {reason}", allow_module_level=True)


try:
    from playwright.sync_api import Browser, Page, expect, sync_playwright
except ImportError:
    _unavailable('Playwright is not installed (pip install -e ".[browser]")')
if not (Path(CHROMIUM).is_file() and os.access(CHROMIUM, os.X_OK)):
    _unavailable(f"no Chromium at {CHROMIUM} (apt-get install chromium, or set MSCATLAS_CHROMIUM)")

expect.set_options(timeout=TIMEOUT_MS)


# ------------------------------------------------------------------ server, browser, pages


class Server:
    """The app over a temporary store, served by uvicorn in a thread on a free local port."""

    def __init__(self, store: Store) -> None:
        import uvicorn

        self.store = store
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        app = create_app(store, secret_key="browser-test-secret-key")
        config = uvicorn.Config(app, log_level="warning", access_log=False)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)

    def start(self) -> None:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.02)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
        self.sock.close()


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    """The shipped data in a temporary SQLite store, with accounts of each writing role."""
    path = tmp_path_factory.mktemp("browser") / "browser.sqlite"
    store = Store.open(f"sqlite:///{path}")
    for name, role in [("cara", "curator"), ("ed", "editor"), ("eve", "editor")]:
        store.add_user(name, role, PASSWORD)
    yield store
    store.close()


@pytest.fixture(scope="module")
def server(store: Store) -> Iterator[Server]:
    server = Server(store)
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        try:
            browser = playwright.chromium.launch(
                executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS, timeout=60_000
            )
        except Exception as exc:
            if REQUIRED:
                pytest.fail(f"Chromium at {CHROMIUM} did not start: {exc}", pytrace=False)
            pytest.skip(f"Chromium at {CHROMIUM} did not start: {exc}")
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def screenshot_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    configured = os.environ.get("MSCATLAS_SCREENSHOT_DIR")
    path = Path(configured) if configured else tmp_path_factory.mktemp("screenshots")
    path.mkdir(parents=True, exist_ok=True)
    return path


Shot = Callable[[Page, str], Path]


@pytest.fixture
def shot(screenshot_dir: Path, request: pytest.FixtureRequest) -> Shot:
    """``shot(page, "step")`` saves ``<test>-<nn>-<step>.png``."""
    counter = itertools.count(1)

    def take(page: Page, step: str) -> Path:
        path = screenshot_dir / f"{request.node.name}-{next(counter):02d}-{step}.png"
        page.screenshot(path=str(path), full_page=True)
        return path

    return take


def new_page(browser: Browser, server: Server) -> Page:
    context = browser.new_context(base_url=server.url, viewport={"width": 1280, "height": 900})
    context.set_default_timeout(TIMEOUT_MS)
    context.set_default_navigation_timeout(TIMEOUT_MS)
    return context.new_page()


@pytest.fixture
def page(browser: Browser, server: Server) -> Iterator[Page]:
    """A page in a fresh browser context: no cookies from another test."""
    page = new_page(browser, server)
    yield page
    page.context.close()


def log_in(page: Page, name: str, next_path: str = "/") -> None:
    page.goto(f"/login?next={next_path}")
    page.fill("#login-name", name)
    page.fill("#login-password", PASSWORD)
    page.click("form.curation button[type=submit]")
    expect(page.locator("#who")).to_contain_text(name)


_ids = itertools.count(1)


def fresh_id(prefix: str) -> str:
    return f"ev-browser-{prefix}-{os.getpid()}-{next(_ids)}"


def item_yaml(store: Store, record_id: str, **changes: str) -> str:
    """A new evidence item as YAML: a copy of a stored one under ``record_id``."""
    base = store.query_evidence()[0]
    data = base.model_dump(
        mode="json", exclude_none=True, exclude={"engineered", "ontology", "curation_status"}
    )
    data.update({"id": record_id, **changes})
    return yaml.safe_dump(data, sort_keys=False)


def query_of(page: Page) -> dict[str, list[str]]:
    return parse_qs(urlsplit(page.url).query)


def count(items: list[EvidenceItem], **wanted: str) -> int:
    def keep(e: EvidenceItem) -> bool:
        data = e.model_dump(mode="json")
        for key, value in wanted.items():
            field = data[key]
            if (value not in field) if isinstance(field, list) else field != value:
                return False
        return True

    return sum(1 for e in items if keep(e))


# ------------------------------------------------------------------ explore


def test_filtering_the_explorer_changes_the_counts_and_the_url(
    page: Page, server: Server, store: Store, shot: Shot
) -> None:
    everything = store.query_evidence()
    promotes = count(everything, direction="promotes")
    promotes_in_vitro = count(everything, direction="promotes", setting="in_vitro")
    assert len(everything) > promotes > promotes_in_vitro > 0

    page.goto("/evidence")
    expect(page.locator("#total")).to_have_text(str(len(everything)))
    shot(page, "all")

    # The filter form: choose a direction and submit.
    page.select_option("form.filters select[name=direction]", "promotes")
    page.click("form.filters button[type=submit]")
    page.wait_for_url(re.compile(r"[?&]direction=promotes(&|$)"))
    expect(page.locator("#total")).to_have_text(str(promotes))
    expect(page.locator("form.filters select[name=direction]")).to_have_value("promotes")
    expect(page.locator("#evidence-table tbody td.dir-promotes")).to_have_count(min(promotes, 100))
    expect(page.locator("#evidence-table tbody td.dir-inhibits")).to_have_count(0)
    shot(page, "direction-promotes")

    # A facet link narrows further; its count was the number the link showed.
    facet = page.locator("section.facet", has=page.locator("h3", has_text=re.compile(r"^setting$")))
    link = facet.locator("li", has=page.get_by_role("link", name="in vitro", exact=True))
    expect(link.locator(".count")).to_have_text(str(promotes_in_vitro))
    link.get_by_role("link", name="in vitro", exact=True).click()
    page.wait_for_url(re.compile(r"[?&]setting=in_vitro(&|$)"))
    assert query_of(page)["direction"] == ["promotes"]
    expect(page.locator("#total")).to_have_text(str(promotes_in_vitro))
    shot(page, "promotes-in-vitro")

    # The URL is shareable: a fresh browser context opening it sees the same result.
    shared_url = page.url
    other = new_page(page.context.browser, server)
    try:
        other.goto(shared_url)
        expect(other.locator("#total")).to_have_text(str(promotes_in_vitro))
        expect(other.locator("form.filters select[name=setting]")).to_have_value("in_vitro")
        shot(other, "shared-url")
    finally:
        other.context.close()

    # Removing a filter from its chip widens the result again and drops it from the URL.
    page.get_by_role("link", name="remove direction").click()
    page.wait_for_url(lambda url: "direction=" not in url)
    expect(page.locator("#total")).to_have_text(str(count(store.query_evidence(), setting="in_vitro")))
    assert query_of(page)["setting"] == ["in_vitro"]
    shot(page, "direction-removed")


def test_opening_a_record_shows_its_fields_and_provenance(page: Page, store: Store, shot: Shot) -> None:
    page.goto("/evidence?direction=inhibits")
    first = page.locator("#evidence-table tbody tr td.id a").first
    record_id = first.inner_text().strip()
    item = store.get(record_id)
    assert isinstance(item, EvidenceItem)
    first.click()
    page.wait_for_url(f"**/evidence/{record_id}")
    expect(page.locator("h1")).to_have_text(f"Evidence {record_id}")
    expect(page.locator("p.lead")).to_have_text(item.provenance.summary)
    expect(page.locator("#dose")).to_contain_text(item.dose.describe())
    expect(page.get_by_role("heading", name="Provenance")).to_be_visible()
    expect(page.get_by_role("link", name=item.study, exact=True)).to_be_visible()
    shot(page, "record")
    # Every field sits in a closed <details>; opening it shows them.
    page.locator("details summary", has_text="Every field").click()
    expect(page.locator("#field-provenance")).to_be_visible()
    shot(page, "every-field")


# ------------------------------------------------------------------ curate


def test_logging_in_and_out(page: Page, shot: Shot) -> None:
    page.goto("/")
    page.get_by_role("link", name="Log in").click()
    page.wait_for_url("**/login")
    page.fill("#login-name", "cara")
    page.fill("#login-password", "not the password")
    page.click("form.curation button[type=submit]")
    expect(page.locator("#errors")).to_contain_text("wrong name or password")
    expect(page.locator("#who")).to_have_count(0)
    shot(page, "wrong-password")

    page.fill("#login-password", PASSWORD)
    page.click("form.curation button[type=submit]")
    expect(page.locator("#who")).to_have_text("cara (curator)")
    shot(page, "logged-in")

    page.get_by_role("button", name="Log out").click()
    expect(page.get_by_role("link", name="Log in")).to_be_visible()
    expect(page.locator("#who")).to_have_count(0)
    shot(page, "logged-out")


def test_submitting_an_item_with_an_error_then_fixing_it(page: Page, store: Store, shot: Shot) -> None:
    record_id = fresh_id("submit")
    log_in(page, "cara", "/curate/submit")
    page.wait_for_url("**/curate/submit")
    page.locator("#advanced summary").click()  # the YAML box is the advanced option
    expect(page.locator("#item-yaml")).to_be_visible()
    shot(page, "form")

    yaml_form = page.locator("#advanced form")
    page.fill("#item-yaml", item_yaml(store, record_id, direction="sideways"))
    page.fill("#yaml-reason", "read in the full text")
    yaml_form.get_by_role("button", name="Submit for review").click()
    errors = page.locator("#errors")
    expect(errors).to_contain_text("nothing was saved")
    expect(errors.locator('li.field-error[data-field="direction"]')).to_contain_text("inhibits")
    # The text and the reason come back as written, for fixing.
    expect(page.locator("#item-yaml")).to_be_visible()
    expect(page.locator("#item-yaml")).to_have_value(re.compile(r"direction: sideways"))
    expect(page.locator("#yaml-reason")).to_have_value("read in the full text")
    assert store.evidence_version(record_id) is None
    shot(page, "error")

    fixed = page.locator("#item-yaml").input_value().replace("direction: sideways", "direction: promotes")
    page.fill("#item-yaml", fixed)
    yaml_form.get_by_role("button", name="Submit for review").click()
    page.wait_for_url(f"**/evidence/{record_id}")
    expect(page.locator("h1")).to_have_text(f"Evidence {record_id}")
    expect(page.locator("#status")).to_have_text("submitted (unreviewed)")
    expect(page.locator("#review")).to_contain_text("submitted by cara")
    shot(page, "submitted")

    page.get_by_role("link", name="Curate", exact=True).click()
    expect(page.locator("#queue")).to_contain_text(record_id)
    shot(page, "queue")
    stored = store.get(record_id)
    assert isinstance(stored, EvidenceItem) and stored.curation_status.value == "submitted"


def test_the_structured_form_parses_the_dose_and_submits(page: Page, store: Store, shot: Shot) -> None:
    """Issue 15 point 11: one field per model field, Check shows the parsed dose or the parse
    error beside the dose field (server-side, no JavaScript), then the item is submitted."""
    record_id = fresh_id("form")
    base = store.query_evidence(EvidenceFilter(setting="in_vitro"))[0]
    log_in(page, "cara", "/curate/submit")
    page.wait_for_url("**/curate/submit")
    form = page.locator("form#structured")

    def field(path: str):
        return form.locator(f'[name="{path}"]')

    field("id").fill(record_id)
    field("study").fill(base.study)
    field("refs").fill(", ".join(str(r) for r in base.refs))
    field("msc_species").select_option(base.msc_species.value)
    for source in base.msc_source:
        field(f"msc_source:{source.value}").check()
    field("cancer_type").select_option(base.cancer_type)
    field("cancer_class").select_option(base.cancer_class.value)
    for path, value in (("delivery", base.delivery), ("setting", base.setting), ("endpoint", base.endpoint)):
        field(path).select_option(value.value)
    field("direction").select_option("inhibits")
    field("evidence_level").select_option(base.evidence_level.value)
    field("provenance.review_location").fill("Table 1, row 1")
    field("provenance.summary").fill("Typed into the structured form.")
    field("dose").fill("K562 and MSCs at 10:1")
    form.get_by_role("button", name="Check").click()
    expect(page.locator('[id="parsed-dose"]')).to_contain_text("MSC:cancer 1:10")
    expect(page.locator("#checked")).to_contain_text("no problem found")
    assert store.get(record_id) is None  # a check saves nothing
    shot(page, "checked")

    field("dose").fill("10 to 1")
    form.get_by_role("button", name="Check").click()
    dose_error = page.locator('[id="field-dose"] .field-error')
    expect(dose_error).to_contain_text("ratio with its order")
    expect(field("dose")).to_have_attribute("aria-invalid", "true")
    shot(page, "dose-error")

    field("dose").fill("1:10 (MSC:cancer)")
    field("reason").fill("typed in")
    form.get_by_role("button", name="Submit for review").click()
    page.wait_for_url(f"**/evidence/{record_id}")
    expect(page.locator("#status")).to_have_text("submitted (unreviewed)")
    expect(page.locator("#dose")).to_contain_text("MSC:cancer 1:10")
    stored = store.get(record_id)
    assert isinstance(stored, EvidenceItem) and stored.provenance.summary == "Typed into the structured form."


def test_another_editor_accepts_a_submitted_item(
    browser: Browser, server: Server, store: Store, shot: Shot
) -> None:
    record_id = fresh_id("review")
    submitter = new_page(browser, server)
    try:
        log_in(submitter, "ed", "/curate/submit")
        submitter.locator("#advanced summary").click()
        submitter.fill("#item-yaml", item_yaml(store, record_id))
        submitter.fill("#yaml-reason", "new finding")
        submitter.locator("#advanced form").get_by_role("button", name="Submit for review").click()
        submitter.wait_for_url(f"**/evidence/{record_id}")
        # The submitter may not review their own item: no Accept button, a note instead.
        expect(submitter.locator("#review")).to_contain_text("another editor reviews it")
        expect(submitter.get_by_role("button", name="Accept")).to_have_count(0)
        shot(submitter, "submitter-cannot-review")
    finally:
        submitter.context.close()

    reviewer = new_page(browser, server)
    try:
        log_in(reviewer, "eve", "/curate")
        reviewer.get_by_role("link", name=record_id, exact=True).click()
        reviewer.wait_for_url(f"**/evidence/{record_id}")
        expect(reviewer.locator("#status")).to_contain_text("unreviewed")
        reviewer.fill("#review-reason", "checked against the primary source")
        shot(reviewer, "before-accept")
        reviewer.get_by_role("button", name="Accept").click()
        expect(reviewer.locator("#status")).to_have_text("accepted")
        expect(reviewer.locator("#review")).to_have_count(0)
        history = reviewer.locator("table.data", has=reviewer.locator("th", has_text="reason"))
        expect(history).to_contain_text("checked against the primary source")
        expect(history).to_contain_text("eve")
        shot(reviewer, "accepted")
        reviewer.get_by_role("link", name="Curate", exact=True).click()
        expect(reviewer.get_by_role("heading", name=re.compile(r"^Awaiting review"))).to_be_visible()
        expect(reviewer.locator("main")).not_to_contain_text(record_id)
    finally:
        reviewer.context.close()
    stored = store.get(record_id)
    assert isinstance(stored, EvidenceItem) and stored.curation_status.value == "accepted"


# ------------------------------------------------------------------ simulate


def test_a_coculture_simulation_shows_its_plot(page: Page, server: Server, shot: Shot) -> None:
    assert httpx.get(f"{server.url}/simulate", timeout=10).status_code == 200, "the /simulate page is missing"
    page.goto("/simulate")
    form = page.locator("main form", has=page.locator("[name=kind]")).first
    expect(form).to_be_visible()
    kind = form.locator("[name=kind]")
    if kind.first.evaluate("e => e.tagName.toLowerCase()") == "select":
        kind.select_option("coculture")
    else:  # radio buttons
        form.locator("input[name=kind][value=coculture]").check()
    for name, value in [("msc_source", "umbilical_cord"), ("cancer_class", "solid")]:
        field = form.locator(f"select[name={name}]")
        if field.count():
            field.select_option(value)
    for name, value in [("ratio", "1:10"), ("hours", "72")]:
        field = form.locator(f"input[name={name}]")
        if field.count() and field.is_visible():
            field.fill(value)
    shot(page, "form")
    form.locator("button[type=submit], input[type=submit]").first.click()
    # The run goes on in the background; its page refreshes itself until the curves are there.
    page.wait_for_url(re.compile(r"/simulate/[^/?#]+$"))
    plot = page.locator("main svg").first
    expect(plot).to_be_visible(timeout=60_000)
    expect(page.locator("main")).to_contain_text("done")
    assert plot.locator("path, polyline, line").count() > 0
    expect(page.locator("main table").first).to_contain_text("inhibition")
    shot(page, "plot")


# ------------------------------------------------------------------ layout and downloads


def layout_pages(store: Store) -> list[str]:
    """Every kind of page: lists, record pages (ids taken from the store), curation, the lab."""
    item = store.query_evidence()[0]
    study = store.dataset().studies[0]
    trial = store.dataset().trials[0]
    return [
        "/",
        "/evidence",
        f"/evidence/{item.id}",
        "/studies",
        f"/studies/{study.id}",
        "/trials",
        f"/trials/{trial.nct_id}",
        "/trials/landscape",
        "/conflicts",
        "/synthesis",
        "/in-silico",
        "/simulate",
        "/search?q=breast",
        "/api",
        "/curate",
        "/curate/submit",
        "/curate/submit/trial",
        f"/studies/{study.id}/edit",
    ]


@pytest.mark.parametrize("width", [390, 1280])
def test_no_page_overflows_horizontally(browser: Browser, server: Server, store: Store, width: int) -> None:
    """Issue 15 point 12: at a phone's and a laptop's width no page scrolls sideways; wide
    tables scroll inside their own box instead."""
    context = browser.new_context(base_url=server.url, viewport={"width": width, "height": 900})
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    try:
        log_in(page, "cara")  # the curation pages too
        overflowing = {}
        for path in layout_pages(store):
            response = page.goto(path, timeout=90_000)  # the synthesis is computed on first use
            assert response is not None and response.status == 200, (path, response and response.status)
            scroll, inner = page.evaluate("[document.scrollingElement.scrollWidth, window.innerWidth]")
            if scroll > inner:
                overflowing[path] = scroll
        assert not overflowing, f"pages wider than the {width} px viewport: {overflowing}"
        # The widest table keeps all its columns: on a phone it scrolls inside its own box.
        page.goto("/evidence")
        wrap = page.locator(".table-wrap", has=page.locator("#evidence-table"))
        box_width, content_width = wrap.evaluate("w => [w.clientWidth, w.scrollWidth]")
        assert box_width <= width
        if width == 390:
            assert content_width > box_width
    finally:
        context.close()


def test_the_csv_link_of_a_filtered_list_downloads_those_rows(page: Page, store: Store, shot: Shot) -> None:
    """Issue 15 points 9 and 12: the CSV link of a filtered list gives the rows the page shows."""
    page.goto("/evidence?setting=in_vivo&direction=inhibits")
    total = int(page.locator("#total").inner_text())
    expected = count(store.query_evidence(), setting="in_vivo", direction="inhibits")
    assert total == expected and total > 0
    link = page.locator("#download-csv")
    assert parse_qs(urlsplit(link.get_attribute("href") or "").query) == {
        "setting": ["in_vivo"],
        "direction": ["inhibits"],
    }
    shot(page, "filtered")
    with page.expect_download() as info:
        link.click()
    download = info.value
    assert download.suggested_filename == "evidence.csv"
    rows = list(csv.DictReader(io.StringIO(Path(download.path()).read_text(encoding="utf-8"))))
    assert len(rows) == total
    assert {r["setting"] for r in rows} == {"in_vivo"} and {r["direction"] for r in rows} == {"inhibits"}
