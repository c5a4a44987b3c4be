"""The in silico lab in the browser: the form, background runs, the job page and /api/simulations."""

from __future__ import annotations

import json
import re
import threading
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest

import mscatlas
from mscatlas._svg import csp_safe_svg
from mscatlas.kb.dose import DoseParseError, parse_ratio
from mscatlas.kb.enums import Direction
from mscatlas.kb.store import Store
from mscatlas.kb.terms import label
from mscatlas.sim import Injection, Protocol, call_direction, run, simulate_xenograft
from mscatlas.sim.calibration import default_calibration
from mscatlas.sim.parameters import load_parameters
from mscatlas.sim.spec import SimulationSpec, parse_spec
from mscatlas.sim.units import ev_ug_per_ml
from mscatlas.web import create_app
from mscatlas.web.simulate import SimulationRegistry

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # starlette asks for httpx2 instead of httpx; both work
    from fastapi.testclient import TestClient

PAYLOAD = '<script>alert("x")</script>'


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    store = Store.open(f"sqlite:///{tmp_path_factory.mktemp('sim') / 'w.sqlite'}", seed=False)
    yield store
    store.close()


def make_client(store: Store, registry: SimulationRegistry | None = None, **kwargs) -> TestClient:
    app = create_app(store, secret_key="test-secret-key", simulations=registry, **kwargs)
    return TestClient(app, follow_redirects=False)


@pytest.fixture(scope="module")
def client(store: Store) -> TestClient:
    return make_client(store)


def csrf(c: TestClient) -> str:
    page = c.get("/simulate")
    assert page.status_code == 200, page.text
    match = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert match
    return match.group(1)


def wait_done(c: TestClient, url: str, timeout: float = 30.0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        data = c.get(url).json()
        if data["status"] in ("done", "failed"):
            return data
        time.sleep(0.05)
    raise AssertionError(f"{url} did not finish in {timeout} s")


def job_id(location: str) -> str:
    match = re.fullmatch(r"/(?:simulate|api/simulations)/([A-Za-z0-9_-]+)", location)
    assert match, location
    return match.group(1)


class Gate:
    """A runner that reports progress, then waits until the test opens the gate."""

    def __init__(self, fail: bool = False) -> None:
        self.open = threading.Event()
        self.fail = fail

    def __call__(self, spec, progress):
        progress(0.5, "half way")
        assert self.open.wait(10)
        if self.fail:
            raise RuntimeError(f"solver exploded {PAYLOAD}")
        return {"kind": "test", "spec": spec.to_dict()}, "<svg></svg>"


# ------------------------------------------------------------------ the form


def test_form_page_has_every_kind_and_the_header_link(client: TestClient) -> None:
    page = client.get("/simulate")
    assert page.status_code == 200
    html = page.text
    assert '<a href="/simulate" aria-current="page">Simulate</a>' in html
    for kind in ("coculture", "transwell", "cm", "ev", "xenograft"):
        assert f'name="kind" value="{kind}"' in html
    for name in ("ratio", "cm_percent", "ev_amount", "ev_unit", "hours", "msc_dose", "route", "days"):
        assert f'name="{name}"' in html
    assert 'http-equiv="refresh"' not in html
    assert "Simulate</a>" in client.get("/").text  # the link is in every page's header


SELECTS = {"msc_source", "cancer_class", "ev_unit", "route", "model"}


@pytest.mark.parametrize(
    ("form", "field", "message"),
    [
        ({"kind": "coculture", "ratio": "lots"}, "ratio", "cannot read"),
        ({"kind": "coculture", "ratio": "1:10", "hours": "-5"}, "hours", "must be more than 0"),
        ({"kind": "coculture", "hours": "many"}, "hours", "is not a number"),
        ({"kind": "cm", "cm_percent": "150"}, "cm_percent", "at most 100"),
        ({"kind": "ev", "ev_unit": "bananas"}, "ev_unit", "unknown value"),
        ({"kind": "xenograft", "schedule": "0,40", "days": "28"}, "schedule", "after the end"),
        ({"kind": "xenograft", "route": "oral"}, "route", "unknown value"),
        ({"kind": "xenograft", "n_animals": "0"}, "n_animals", "between 1 and 50"),
        ({"kind": "organoid"}, "kind", "unknown value"),
        ({"kind": "coculture", "msc_source": "moon"}, "msc_source", "unknown value"),
    ],
)
def test_form_errors_are_shown_next_to_the_field(store: Store, form, field, message) -> None:
    registry = SimulationRegistry(max_workers=1)
    c = make_client(store, registry)
    response = c.post("/simulate", data={**form, "csrf_token": csrf(c)})
    assert response.status_code == 422
    assert f'id="error-{field}"' in response.text
    assert message in response.text
    assert f'data-field="{field}"' in response.text
    assert len(registry) == 0  # nothing was started
    # what was typed is kept in the form; a refused choice is not an option to keep, so its
    # message echoes it
    for name, value in form.items():
        if name in SELECTS:
            assert f"unknown value &#39;{value}&#39;" in response.text
        elif name != "kind":
            assert f'name="{name}" value="{value}"' in response.text


def test_only_the_fields_of_the_chosen_kind_are_checked() -> None:
    spec, errors = parse_spec({"kind": "cm", "cm_percent": "25", "ratio": "nonsense", "days": "-1"})
    assert errors == {} and spec is not None
    assert spec.cm_percent == 25.0
    spec, errors = parse_spec({"kind": "coculture", "ratio": "1:10"})
    assert spec is not None and spec.msc_per_cancer == pytest.approx(0.1)
    spec, errors = parse_spec({"kind": "ev", "ev_amount": "500", "ev_unit": "ng/mL"})
    assert spec is not None and spec.ev_ug_per_ml == pytest.approx(0.5)


def test_hostile_input_is_escaped(client: TestClient) -> None:
    response = client.post(
        "/simulate",
        data={"kind": "coculture", "ratio": PAYLOAD, "hours": PAYLOAD, "csrf_token": csrf(client)},
    )
    assert response.status_code == 422
    assert "<script" not in response.text.lower()
    assert "&lt;script&gt;" in response.text


# ------------------------------------------------------------------ CSRF and limits


def test_the_form_needs_its_csrf_token(store: Store) -> None:
    registry = SimulationRegistry(max_workers=1)
    c = make_client(store, registry)
    csrf(c)  # the session cookie exists, but the token is not sent
    assert c.post("/simulate", data={"kind": "coculture"}).status_code == 403
    wrong = c.post("/simulate", data={"kind": "coculture", "csrf_token": "forged"})
    assert wrong.status_code == 403
    assert "CSRF" in wrong.text
    assert len(registry) == 0


def test_request_size_limit_is_kept(store: Store) -> None:
    c = make_client(store, max_body_bytes=1024)
    big = {"kind": "coculture", "ratio": "1:10" + " " * 4000}
    assert c.post("/simulate", data={**big, "csrf_token": csrf(c)}).status_code == 413
    assert c.post("/api/simulations", json=big).status_code == 413


# ------------------------------------------------------------------ a real run


def test_coculture_run_completes_with_svg_and_the_right_numbers(client: TestClient) -> None:
    form = {
        "kind": "coculture",
        "msc_source": "umbilical_cord",
        "cancer_class": "solid",
        "ratio": "1:10",
        "hours": "48",
        "csrf_token": csrf(client),
    }
    response = client.post("/simulate", data=form)
    assert response.status_code == 303
    location = response.headers["location"]
    ident = job_id(location)
    data = wait_done(client, f"/api/simulations/{ident}")
    assert data["status"] == "done", data

    expected = run(
        Protocol("direct_coculture", 48.0, msc_per_cancer=0.1),
        "umbilical_cord",
        "solid",
        calibration=default_calibration()[0],
    )
    final = expected.final()
    result = data["result"]
    assert result["final"] == pytest.approx(final)
    assert result["series"]["time_h"] == expected.times.tolist()
    assert result["series"]["inhibition_percent"] == pytest.approx(expected.inhibition_percent().tolist())
    assert result["predicted_direction"] == call_direction(expected)
    assert data["request"]["ratio"] == "1:10"

    page = client.get(location)
    assert page.status_code == 200
    html = page.text
    assert 'http-equiv="refresh"' not in html  # finished: no more reloads
    assert "<svg" in html and "</svg>" in html
    svg = html[html.index("<svg") : html.index("</svg>")]
    assert "style=" not in svg and "<style" not in svg  # renders under the CSP
    assert "<script" not in html.lower()
    assert f"{final['inhibition_percent']:.1f}" in html
    assert f"{final['viable_control']:,.0f}" in html
    assert f"{final['viable_treated']:,.0f}" in html
    assert label(call_direction(expected), Direction) in html
    assert "umbilical cord MSCs on solid cancer" in html


def test_xenograft_through_the_api_matches_the_model(client: TestClient) -> None:
    response = client.post(
        "/api/simulations",
        json={
            "kind": "xenograft",
            "msc_dose": 2e6,
            "route": "intratumoral",
            "schedule": [0, 7],
            "days": 21,
            "n_animals": 4,
            "seed": 3,
        },
    )
    assert response.status_code == 202, response.text
    data = wait_done(client, response.headers["location"])
    assert data["status"] == "done"
    expected = simulate_xenograft(
        msc_source="bone_marrow",
        cancer_class="solid",
        injections=[Injection(0.0, 2e6, "intratumoral"), Injection(7.0, 2e6, "intratumoral")],
        days=21.0,
        n_animals=4,
        seed=3,
    )
    series = data["result"]["series"]
    assert series["day"] == expected.days.tolist()
    assert series["treated_mean_mm3"] == pytest.approx(expected.group_mean("treated").tolist())
    assert data["result"]["tgi_percent"] == pytest.approx(expected.tgi_percent())
    page = client.get(data["url"]).text
    assert "<svg" in page and f"{expected.tgi_percent():.1f}" in page


# ------------------------------------------------------------------ status, progress, failures


def test_api_status_goes_queued_running_done(store: Store) -> None:
    gate = Gate()
    registry = SimulationRegistry(max_workers=1, runner=gate)
    c = make_client(store, registry)
    first = c.post("/api/simulations", json={"kind": "cm", "cm_percent": 30})
    second = c.post("/api/simulations", json={"kind": "ev", "ev_amount": 10})
    assert first.status_code == second.status_code == 202
    assert first.json()["status"] in ("queued", "running")  # the worker may already have it
    assert second.json()["status"] == "queued"  # one worker, held by the first run
    one, two = first.headers["location"], second.headers["location"]
    deadline = time.monotonic() + 10
    while c.get(one).json()["status"] != "running":
        assert time.monotonic() < deadline
        time.sleep(0.01)
    running = c.get(one).json()
    assert running["progress"] == 0.5 and running["stage"] == "half way"
    assert running["result"] is None
    assert c.get(two).json()["status"] == "queued"  # one worker: the second waits

    page = c.get(f"/simulate/{job_id(one)}").text  # the page reloads itself while running
    assert '<meta http-equiv="refresh" content="1">' in page
    assert '<progress max="100" value="50">' in page

    gate.open.set()
    done = wait_done(c, one)
    assert done["status"] == "done" and done["progress"] == 1.0
    assert done["result"] == {"kind": "test", "spec": {**done["request"]}}
    assert wait_done(c, two)["status"] == "done"


def test_a_failed_run_is_reported_escaped(store: Store) -> None:
    gate = Gate(fail=True)
    gate.open.set()
    c = make_client(store, SimulationRegistry(max_workers=1, runner=gate))
    response = c.post("/simulate", data={"kind": "coculture", "csrf_token": csrf(c)})
    location = response.headers["location"]
    data = wait_done(c, f"/api/simulations/{job_id(location)}")
    assert data["status"] == "failed" and "solver exploded" in data["error"]
    page = c.get(location).text
    assert "The run failed" in page and "<script" not in page.lower()
    assert 'http-equiv="refresh"' not in page


def test_unknown_job_is_404(client: TestClient) -> None:
    for path in ("/simulate/nosuchjobidatall", "/simulate/x", "/simulate/%3Cscript%3E"):
        page = client.get(path)
        assert page.status_code == 404
        assert "<script" not in page.text.lower()
    api = client.get("/api/simulations/nosuchjobidatall")
    assert api.status_code == 404 and "no such simulation" in api.json()["detail"]


def test_job_ids_are_random_and_the_registry_is_bounded(store: Store) -> None:
    gate = Gate()
    registry = SimulationRegistry(max_workers=1, max_jobs=2, retention_s=0, runner=gate)
    c = make_client(store, registry)
    ids = [c.post("/api/simulations", json={}).json()["id"] for _ in range(2)]
    assert len(set(ids)) == 2 and all(len(i) >= 20 for i in ids)
    full = c.post("/api/simulations", json={})
    assert full.status_code == 503 and full.headers["retry-after"] == "5"
    page = c.post("/simulate", data={"csrf_token": csrf(c)})
    assert page.status_code == 503
    gate.open.set()
    for ident in ids:
        wait_done(c, f"/api/simulations/{ident}")
    third = c.post("/api/simulations", json={})
    assert third.status_code == 202  # the oldest finished job made room
    assert c.get(f"/api/simulations/{ids[0]}").status_code == 404
    assert c.get(f"/api/simulations/{ids[1]}").status_code == 200
    wait_done(c, third.headers["location"])


# ------------------------------------------------------------------ the API's input checks


def test_api_rejects_bad_requests(client: TestClient) -> None:
    bad = client.post("/api/simulations", json={"kind": "coculture", "ratio": "x", "colour": "red"})
    assert bad.status_code == 422
    params = {p["param"]: p for p in bad.json()["detail"]}
    assert set(params) == {"ratio", "colour"}
    assert "ratio" in params["ratio"]["message"]
    form = client.post("/api/simulations", data={"kind": "coculture"})
    assert form.status_code == 415
    assert client.post("/api/simulations", json=[1, 2]).status_code == 422
    garbled = client.post(
        "/api/simulations", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert garbled.status_code == 400
    huge = client.post(
        "/api/simulations", content=b'{"hours": 1e400}', headers={"content-type": "application/json"}
    )  # reads as infinity: refused, and echoed as text (JSON has no infinity)
    assert huge.status_code == 422
    assert huge.json()["detail"] == [
        {
            "param": "hours",
            "where": "body",
            "value": "inf",
            "message": "hours: must be more than 0 and at most 720 (got inf)",
        }
    ]


def test_api_is_in_the_openapi_schema(client: TestClient) -> None:
    paths = client.get("/api/openapi.json").json()["paths"]
    assert "post" in paths["/api/simulations"]
    assert "get" in paths["/api/simulations/{job_id}"]
    assert "/simulate" not in paths


def test_csp_safe_svg_turns_styles_into_attributes() -> None:
    svg = (
        '<svg width="1"><defs><style type="text/css">*{x: y}</style></defs>'
        '<path style="fill: none; stroke: #000"/></svg>'
    )
    out = csp_safe_svg(svg)
    assert "<style" not in out and "style=" not in out
    assert '<path fill="none" stroke="#000"/>' in out
    assert out.startswith('<svg stroke-linejoin="round" stroke-linecap="butt"')


def test_module_has_no_global_registry(tmp_path: Path) -> None:
    one = Store.open(f"sqlite:///{tmp_path / 'a.sqlite'}", seed=False)
    try:
        a, b = create_app(one, secret_key="k"), create_app(one, secret_key="k")
        assert a.state.simulations is not b.state.simulations
    finally:
        one.close()


# ------------------------------------------------------------------ the request model


def test_openapi_lists_the_request_schema_and_its_fields(client: TestClient) -> None:
    doc = client.get("/api/openapi.json").json()
    body = doc["paths"]["/api/simulations"]["post"]["requestBody"]
    assert body["required"] is True
    ref = body["content"]["application/json"]["schema"]["$ref"]
    schema = doc["components"]["schemas"][ref.rsplit("/", 1)[1]]
    fields = {
        "kind", "msc_source", "cancer_class", "ratio", "cm_percent", "ev_amount", "ev_unit", "hours",
        "msc_dose", "route", "schedule", "days", "n_animals", "model", "seed",
    }  # fmt: skip
    assert set(schema["properties"]) == fields
    assert schema["additionalProperties"] is False  # unknown fields are refused
    props = schema["properties"]
    assert props["kind"]["enum"] == ["coculture", "transwell", "cm", "ev", "xenograft"]
    assert props["route"]["enum"] == ["intravenous", "intratumoral", "co_injection"]
    assert {"ug/mL", "µg/mL", "particles/mL"} <= set(props["ev_unit"]["enum"])
    assert props["hours"]["exclusiveMinimum"] == 0 and props["hours"]["maximum"] == 720
    assert props["n_animals"]["minimum"] == 1 and props["n_animals"]["maximum"] == 50
    assert props["schedule"]["type"] == "array"
    source = doc["components"]["schemas"][props["msc_source"]["$ref"].rsplit("/", 1)[1]]
    assert "bone_marrow" in source["enum"]


def test_api_and_form_give_the_same_messages(client: TestClient) -> None:
    bad = {"kind": "coculture", "hours": "-5", "ratio": "10 to 1"}
    api = client.post("/api/simulations", json=bad)
    assert api.status_code == 422
    messages = {p["param"]: p["message"] for p in api.json()["detail"]}
    _, errors = parse_spec(bad)
    assert messages == {k: f"{k}: {m}" for k, m in errors.items()}
    assert "must be more than 0 and at most 720 (got -5)" in messages["hours"]
    assert "such as 1:10" in messages["ratio"]  # parse_ratio's accepted forms
    assert {p["value"] for p in api.json()["detail"]} == {"-5", "10 to 1"}


def test_api_reads_synonyms_and_list_or_text_schedules(client: TestClient) -> None:
    ok = client.post("/api/simulations", json={"kind": "cm", "msc_source": "UC-MSC", "cm_percent": 10})
    assert ok.status_code == 202, ok.text
    assert ok.json()["request"]["msc_source"] == "umbilical_cord"
    wait_done(client, ok.headers["location"])
    spec, _ = parse_spec({"kind": "xenograft", "schedule": "14, 0,7", "days": "21"})
    assert spec is not None and spec.schedule == (0.0, 7.0, 14.0)
    assert SimulationSpec.model_validate({"kind": "xenograft", "schedule": [14, 0, 7]}).schedule == (0, 7, 14)
    _, errors = parse_spec({"kind": "xenograft", "n_animals": True})
    assert errors == {"n_animals": "must be a number, not true or false"}


# ------------------------------------------------------------------ said once: ratios and EV units


@pytest.mark.parametrize("text", ["1:10", "10:1", "0.1", "1:10 (MSC:cancer)", "K562 and MSCs at 10:1"])
def test_the_web_reads_ratios_with_parse_ratio(text: str) -> None:
    spec, errors = parse_spec({"kind": "transwell", "ratio": text})
    assert errors == {} and spec is not None
    assert spec.msc_per_cancer == parse_ratio(text)


def test_a_bad_ratio_gets_parse_ratios_message() -> None:
    with pytest.raises(DoseParseError) as raised:
        parse_ratio("10 to 1")
    assert parse_spec({"ratio": "10 to 1"})[1] == {"ratio": str(raised.value)}


def test_ev_units_convert_by_hand_computed_factors() -> None:
    table = load_parameters()
    per_well = table.value("cancer", "hematological", "well_volume")
    per_ug = table.value("ev", "particles_per_ug")
    cases = [
        (500.0, "ng/mL", 0.5),
        (2.0, "mg/mL", 2000.0),
        (20.0, "ug/mL", 20.0),
        (20.0, "µg/mL", 20.0),  # micro sign
        (20.0, "μg/mL", 20.0),  # Greek mu
        (20.0, "UG/ML", 20.0),
        (30.0, "ug", 30.0 / per_well),
        (30.0, "µg", 30.0 / per_well),
        (3e10, "particles/mL", 3e10 / per_ug),
    ]
    for amount, unit, expected in cases:
        got = ev_ug_per_ml(amount, unit, cancer_class="hematological")
        assert got == pytest.approx(expected, rel=1e-12), unit
    assert ev_ug_per_ml(30.0, "ug", well_volume_ml=0.5) == pytest.approx(60.0)
    with pytest.raises(ValueError, match="accepted: ug/mL, ng/mL, mg/mL, ug, particles/mL"):
        ev_ug_per_ml(1.0, "furlongs")


@pytest.mark.parametrize(
    ("amount", "unit"), [("50", "µg/mL"), ("500", "ng/mL"), ("20", "ug"), ("5e11", "particles/mL")]
)
def test_cli_and_web_accept_the_same_ev_units_and_agree(amount: str, unit: str) -> None:
    from typer.testing import CliRunner

    from mscatlas.cli.sim import sim_app

    spec, errors = parse_spec({"kind": "ev", "ev_amount": amount, "ev_unit": unit, "cancer_class": "solid"})
    assert errors == {} and spec is not None
    cli = CliRunner().invoke(
        sim_app, ["ev", "--amount", amount, "--unit", unit, "--hours", "24", "--assumed", "--json"]
    )
    assert cli.exit_code == 0, cli.output
    cli_dose = json.loads(cli.stdout)["protocol"]["ev_ug_per_ml"]
    assert spec.ev_ug_per_ml == pytest.approx(cli_dose, rel=1e-12)
    assert cli_dose == pytest.approx(ev_ug_per_ml(float(amount), unit), rel=1e-12)


def test_ev_doses_are_converted_in_one_place() -> None:
    """The command line, the web and replay all go through sim.units; no module converts by hand."""
    root = Path(mscatlas.__file__).parent
    hand = re.compile(r"""value\(\s*"ev",\s*"particles_per_ug"\s*\)""")
    readers = sorted(
        p.relative_to(root).as_posix() for p in root.rglob("*.py") if hand.search(p.read_text("utf-8"))
    )
    assert readers == ["sim/units.py"]
