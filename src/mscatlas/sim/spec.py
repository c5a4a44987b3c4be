"""One simulation request, validated, and its run: what the web form and ``/api/simulations`` send.

:class:`SimulationSpec` is a pydantic model, so the checks are declared once (types, bounds,
choices) and the same model is the request schema of the JSON API in its OpenAPI document.
Blank or missing fields take their defaults, and only the fields of the chosen ``kind`` are read:
a conditioned-medium request may carry a stale ``ratio`` from the form and is not refused for it.
Typed names go through the knowledge base's resolver (``"bone marrow"``, ``BM-MSC``), ratios
through :func:`mscatlas.kb.dose.parse_ratio` and EV units through :mod:`mscatlas.sim.units`, the
readers the command line uses too.

:func:`parse_spec` turns any input (form fields or JSON) into a spec or into one message per field
for people; :func:`run_spec` runs a spec and returns its result as plain JSON data (time grid and
every series). Drawing the result is the caller's business.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from mscatlas.kb.dose import DoseParseError, parse_ratio
from mscatlas.kb.enums import CancerClass, MscSource
from mscatlas.kb.terms import UnknownTermError, label, resolve_value
from mscatlas.sim.units import EV_UNIT_SPELLINGS, EV_UNITS, ev_ug_per_ml, ev_unit

__all__ = [
    "FIELDS",
    "GROWTH_MODELS",
    "KINDS",
    "MAX_FIELD",
    "ROUTES",
    "ProgressFn",
    "SimulationSpec",
    "parse_spec",
    "run_spec",
    "spec_errors",
]

KINDS = {
    "coculture": "direct co-culture",
    "transwell": "transwell (no contact)",
    "cm": "conditioned medium",
    "ev": "extracellular vesicles",
    "xenograft": "xenograft",
}
ROUTES = ("intravenous", "intratumoral", "co_injection")
GROWTH_MODELS = ("gompertz", "logistic")
MAX_HOURS = 720.0
MAX_DAYS = 365.0
MAX_ANIMALS = 50
MAX_INJECTIONS = 20
MAX_MSC_DOSE = 1e10
MAX_EV_UG_PER_ML = 1e4
MAX_FIELD = 200  # characters of any one text field

_COMMON = ("kind", "msc_source", "cancer_class")
_BY_KIND = {
    "coculture": ("ratio", "hours"),
    "transwell": ("ratio", "hours"),
    "cm": ("cm_percent", "hours"),
    "ev": ("ev_amount", "ev_unit", "hours"),
    "xenograft": ("msc_dose", "route", "schedule", "days", "n_animals", "model", "seed"),
}
_CHOICES: dict[str, tuple[str, ...]] = {
    "kind": tuple(KINDS),
    "msc_source": tuple(m.value for m in MscSource),
    "cancer_class": tuple(c.value for c in CancerClass),
    "ev_unit": EV_UNITS,
    "route": ROUTES,
    "model": GROWTH_MODELS,
}


def _no_bool(value: Any) -> Any:
    if isinstance(value, bool):
        raise ValueError("must be a number, not true or false")
    return value


def _term(cls: type[MscSource] | type[CancerClass]) -> Callable[[Any], Any]:
    def resolve(value: Any) -> Any:
        if not isinstance(value, str):
            return value
        try:
            return resolve_value(cls, value)
        except UnknownTermError as exc:
            hint = f"; did you mean {', '.join(exc.suggestions)}?" if exc.suggestions else ""
            allowed = ", ".join(m.value for m in cls)
            raise ValueError(f"unknown value '{value}'{hint}; allowed: {allowed}") from exc

    return resolve


def _days(value: Any) -> Any:
    """Injection days as a list, or as the form writes them: ``"0,7,14"``."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return [value]
    if not isinstance(value, str):
        return value
    try:
        return [float(x) for x in value.split(",") if x.strip()]
    except ValueError:
        raise ValueError(f"'{value}' is not a list of injection days such as 0,7,14") from None


Number = Annotated[float, BeforeValidator(_no_bool)]
Whole = Annotated[int, BeforeValidator(_no_bool)]


class SimulationSpec(BaseModel):
    """A simulation request: an in vitro experiment (co-culture, transwell, conditioned medium,
    vesicles) or a xenograft study. Blank or missing fields take their defaults; only the fields
    of the chosen kind are read."""

    model_config = ConfigDict(
        extra="forbid", frozen=True, allow_inf_nan=False, use_enum_values=True, str_strip_whitespace=True
    )

    kind: Literal["coculture", "transwell", "cm", "ev", "xenograft"] = Field(
        "coculture", description="; ".join(f"{k}: {v}" for k, v in KINDS.items())
    )
    msc_source: Annotated[MscSource, BeforeValidator(_term(MscSource))] = Field(
        MscSource.bone_marrow.value,
        description="MSC tissue source; labels and synonyms (BM-MSC, UC-MSC) are read",
    )
    cancer_class: Annotated[CancerClass, BeforeValidator(_term(CancerClass))] = Field(
        CancerClass.solid.value, description="Cancer class of the target cells"
    )
    ratio: str = Field(
        "1:10",
        max_length=MAX_FIELD,
        description="coculture, transwell: MSC:cancer seeding ratio, MSC first (1:10), "
        "or MSCs per cancer cell (0.1)",
        examples=["1:10"],
    )
    cm_percent: Number = Field(50.0, gt=0.0, le=100.0, description="cm: conditioned medium, % of the medium")
    ev_unit: str = Field(
        "ug/mL",
        description="ev: unit of ev_amount; ug is per well",
        json_schema_extra={"enum": list(EV_UNIT_SPELLINGS)},
    )
    ev_amount: Number = Field(50.0, gt=0.0, le=1e15, validate_default=True, description="ev: vesicle dose")
    hours: Number = Field(72.0, gt=0.0, le=MAX_HOURS, description="in vitro kinds: exposure, hours")
    msc_dose: Number = Field(1e6, gt=0.0, le=MAX_MSC_DOSE, description="xenograft: MSCs per injection")
    route: Literal["intravenous", "intratumoral", "co_injection"] = Field(
        "intravenous", description="xenograft: injection route"
    )
    days: Number = Field(28.0, ge=1.0, le=MAX_DAYS, description="xenograft: study length, days")
    schedule: Annotated[tuple[float, ...], BeforeValidator(_days)] = Field(
        (0.0,),
        validate_default=True,
        description="xenograft: injection days (a list, or comma-separated text such as '0,7,14')",
        examples=[[0, 7, 14]],
    )
    n_animals: Whole = Field(8, ge=1, le=MAX_ANIMALS, description="xenograft: animals per group")
    model: Literal["gompertz", "logistic"] = Field("gompertz", description="xenograft: growth law")
    seed: Whole = Field(0, ge=0, le=2**32 - 1, description="xenograft: seed of the between-animal variation")

    @model_validator(mode="before")
    @classmethod
    def _read_fields_of_the_kind(cls, data: Any) -> Any:
        """Blank values are missing; fields that belong to another kind are not read."""
        if not isinstance(data, Mapping):
            return data
        kind = data.get("kind")
        kind = kind.strip() if isinstance(kind, str) and kind.strip() else "coculture"
        read = _BY_KIND.get(kind, ()) if isinstance(kind, str) else ()
        out: dict[str, Any] = {}
        for name, value in data.items():
            if value is None or (isinstance(value, str) and not value.strip()):
                continue
            if name in FIELDS and name not in _COMMON and name not in read:
                continue
            out[name] = value
        return out

    @field_validator("ratio")
    @classmethod
    def _ratio(cls, value: str) -> str:
        try:
            parse_ratio(value)
        except DoseParseError as exc:
            raise ValueError(str(exc)) from None
        return value

    @field_validator("ev_unit")
    @classmethod
    def _ev_unit(cls, value: str) -> str:
        try:
            return ev_unit(value)
        except ValueError:
            raise ValueError(f"unknown value '{value}'; allowed: {', '.join(EV_UNITS)}") from None

    @field_validator("ev_amount")
    @classmethod
    def _ev_dose(cls, value: float, info: ValidationInfo) -> float:
        unit, cancer = info.data.get("ev_unit"), info.data.get("cancer_class")
        if unit is not None and cancer is not None:
            dose = ev_ug_per_ml(value, unit, cancer_class=cancer)
            if dose > MAX_EV_UG_PER_ML:
                raise ValueError(f"{dose:.3g} µg/mL is more than the {MAX_EV_UG_PER_ML:g} µg/mL allowed")
        return value

    @field_validator("schedule")
    @classmethod
    def _schedule(cls, value: tuple[float, ...], info: ValidationInfo) -> tuple[float, ...]:
        days = tuple(sorted(set(value)))
        if not days:
            raise ValueError("name at least one injection day")
        if len(days) > MAX_INJECTIONS:
            raise ValueError(f"at most {MAX_INJECTIONS} injection days")
        if days[0] < 0:
            raise ValueError("injection days must be non-negative")
        end = info.data.get("days")
        if end is not None and days[-1] > end:
            raise ValueError(f"day {days[-1]:g} is after the end of the study (day {end:g})")
        return days

    # ------------------------------------------------------------ derived values

    @property
    def in_vitro(self) -> bool:
        return self.kind != "xenograft"

    @property
    def msc_per_cancer(self) -> float:
        """MSCs per cancer cell of the ratio (co-culture and transwell)."""
        return parse_ratio(self.ratio) if self.kind in ("coculture", "transwell") else 0.0

    @property
    def ev_ug_per_ml(self) -> float:
        """The EV dose in µg/mL (vesicles only)."""
        if self.kind != "ev":
            return 0.0
        return ev_ug_per_ml(self.ev_amount, self.ev_unit, cancer_class=str(self.cancer_class))

    def to_dict(self) -> dict[str, Any]:
        """The request as run: the fields its kind reads, and the dose in the model's units."""
        out = {name: getattr(self, name) for name in (*_COMMON, *_BY_KIND[self.kind])}
        if self.kind in ("coculture", "transwell"):
            out["msc_per_cancer"] = self.msc_per_cancer
        elif self.kind == "ev":
            out["ev_ug_per_ml"] = self.ev_ug_per_ml
        elif self.kind == "xenograft":
            out["schedule"] = list(self.schedule)
        return out

    def describe(self) -> str:
        """One line for people."""
        who = f"{label(self.msc_source, MscSource)} MSCs on {label(self.cancer_class, CancerClass)} cancer"
        if self.kind in ("coculture", "transwell"):
            return f"{KINDS[self.kind]}, MSC:cancer {self.ratio}, {self.hours:g} h, {who}"
        if self.kind == "cm":
            return f"conditioned medium {self.cm_percent:g}%, {self.hours:g} h, {who}"
        if self.kind == "ev":
            return f"extracellular vesicles {self.ev_amount:g} {self.ev_unit}, {self.hours:g} h, {who}"
        days = ", ".join(f"{d:g}" for d in self.schedule)
        return (
            f"xenograft ({self.model}), {self.msc_dose:.3g} MSCs {label(self.route)} "
            f"on day {days}, {self.days:g} days, {self.n_animals} animals, {who}"
        )


FIELDS = tuple(SimulationSpec.model_fields)


# ---------------------------------------------------------------- errors for people


def _bounds(name: str) -> str:
    """A field's range in words: 'be more than 0 and at most 720', 'lie between 1 and 50'."""
    low = high = None
    low_open = False
    for rule in SimulationSpec.model_fields[name].metadata:
        if getattr(rule, "gt", None) is not None:
            low, low_open = rule.gt, True
        elif getattr(rule, "ge", None) is not None:
            low = rule.ge
        elif getattr(rule, "le", None) is not None:
            high = rule.le
    if low is not None and high is not None and not low_open:
        return f"lie between {low:g} and {high:g}"
    parts = [f"more than {low:g}" if low_open else f"at least {low:g}"] if low is not None else []
    if high is not None:
        parts.append(f"at most {high:g}")
    return "be " + " and ".join(parts)


def _message(error: Mapping[str, Any]) -> str:
    kind, value = error["type"], error.get("input")
    name = str(error["loc"][0]) if error.get("loc") else ""
    if kind == "extra_forbidden":
        return f"unknown field; known: {', '.join(FIELDS)}"
    if kind in ("literal_error", "enum"):
        return f"unknown value '{value}'; allowed: {', '.join(_CHOICES.get(name, ()))}"
    if kind in ("float_parsing", "float_type"):
        return f"'{value}' is not a number"
    if kind in ("int_parsing", "int_type", "int_from_float"):
        return f"'{value}' is not a whole number"
    if kind in ("greater_than", "greater_than_equal", "less_than", "less_than_equal", "finite_number"):
        return f"must {_bounds(name)} (got {value})"
    if kind == "string_too_long":
        return f"longer than {MAX_FIELD} characters"
    if kind == "value_error":
        return str(error["ctx"]["error"])
    return str(error["msg"])


def spec_errors(errors: Iterable[Mapping[str, Any]]) -> dict[str, str]:
    """One message per field (``"request"`` for the request as a whole), for people, from
    pydantic's errors (``ValidationError.errors()``, locations starting at the field)."""
    messages: dict[str, str] = {}
    for error in errors:
        field = str(error["loc"][0]) if error.get("loc") else "request"
        messages.setdefault(field, _message(error))
    return messages


def parse_spec(data: Any) -> tuple[SimulationSpec | None, dict[str, str]]:
    """Validate a request (form fields or JSON): the spec, or the errors as ``{field: message}``."""
    try:
        return SimulationSpec.model_validate(data), {}
    except ValidationError as exc:
        return None, spec_errors(exc.errors())


# ---------------------------------------------------------------- running one request

ProgressFn = Callable[[float, str], None]
_DELIVERY = {
    "coculture": "direct_coculture",
    "transwell": "transwell",
    "cm": "conditioned_medium",
    "ev": "extracellular_vesicles",
}


def _in_vitro(spec: SimulationSpec) -> dict[str, Any]:
    from mscatlas.sim.calibration import default_calibration, out_of_sample
    from mscatlas.sim.protocol import SOLVER, Protocol, call_direction, run

    proto = Protocol(
        _DELIVERY[spec.kind],  # type: ignore[arg-type]
        spec.hours,
        msc_per_cancer=spec.msc_per_cancer,
        cm_percent=spec.cm_percent if spec.kind == "cm" else 0.0,
        ev_ug_per_ml=spec.ev_ug_per_ml,
    )
    # The same parameters as the command line: the shipped calibration unless it loses out of sample.
    calibration, _ = default_calibration()
    used = "calibrated" if calibration is not None else "assumed"
    outcome = run(proto, str(spec.msc_source), str(spec.cancer_class), calibration=calibration)
    return {
        "kind": "in_vitro",
        "parameters": used,
        "validation": out_of_sample(used),
        "protocol": {
            "delivery": proto.delivery,
            "hours": proto.hours,
            "msc_per_cancer": proto.msc_per_cancer,
            "cm_percent": proto.cm_percent,
            "ev_ug_per_ml": proto.ev_ug_per_ml,
        },
        "msc_source": outcome.product.msc_source,
        "cancer_class": outcome.cancer_class,
        "solver": SOLVER,
        "series": outcome.series(),
        "final": outcome.final(),
        "predicted_direction": call_direction(outcome),
        "notes": list(outcome.notes),
    }


def _xenograft(spec: SimulationSpec) -> dict[str, Any]:
    from mscatlas.sim.xenograft import Injection, simulate_xenograft

    injections = [Injection(d, spec.msc_dose, spec.route) for d in spec.schedule]  # type: ignore[arg-type]
    outcome = simulate_xenograft(
        model=spec.model,  # type: ignore[arg-type]
        msc_source=str(spec.msc_source),
        cancer_class=str(spec.cancer_class),
        injections=injections,
        days=spec.days,
        n_animals=spec.n_animals,
        seed=spec.seed,
    )
    series = outcome.series()
    return {
        "kind": "xenograft",
        "model": spec.model,
        "route": spec.route,
        "msc_dose": spec.msc_dose,
        "schedule_days": [i.day for i in injections],
        "n_animals": spec.n_animals,
        "seed": spec.seed,
        "msc_source": spec.msc_source,
        "cancer_class": spec.cancer_class,
        "series": series,
        "tgi_percent": series["tgi_percent"],
    }


def run_spec(spec: SimulationSpec, progress: ProgressFn | None = None) -> dict[str, Any]:
    """Run ``spec``; the result as JSON data (``kind`` is ``in_vitro`` or ``xenograft``)."""
    if progress is not None:
        progress(0.1, "solving the treated and control arms")
    return _in_vitro(spec) if spec.in_vitro else _xenograft(spec)
