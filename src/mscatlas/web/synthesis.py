"""The synthesis, in silico and trial-landscape views, and the predictions API.

The moderator model is fitted once per app and store content: :class:`SynthesisCache` keys
its fit by a cheap fingerprint of the evidence table (row count, summed record versions and
the latest revision id), so a curation change (submit, edit, review, flag) refits on the next
request and every other request reuses the fit. Leave-one-study-out validation (about a second)
is computed lazily, once per fingerprint. The fit, validation and verdict are those of
:func:`mscatlas.stats.synthesis.run_synthesis`, the one pipeline the CLI and the report also
render. The seed is fixed, and each prediction draws from a copy of the generator as it stood
right after fitting, so the API answers exactly what
``fit_moderator_model(harmonize(items), seed=SEED).predict(...)`` answers on a fresh fit.

The in silico page reads the replay figures stored in the shipped calibration file; it never
re-calibrates on a request.
"""

from __future__ import annotations

import copy
import dataclasses
import datetime as dt
import threading
from typing import Annotated, Any
from urllib.parse import urlencode

import numpy as np
from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment
from pydantic import BaseModel, Field
from sqlalchemy import func, select

from mscatlas.kb.enums import CancerClass, Delivery, MscSource, Setting
from mscatlas.kb.store import EvidenceRow, RevisionRow, Store
from mscatlas.stats.moderators import MODERATORS, SEED, ModeratorFit, Validation
from mscatlas.stats.synthesis import SynthesisResult, run_synthesis
from mscatlas.web.pages import render
from mscatlas.web.params import PARAM_ENUMS, FilterError

__all__ = ["SEED", "SynthesisCache", "SynthesisModel", "synthesis_router"]

COVARIATES = ("msc_source", "cancer_class", "delivery", "setting")


class SynthesisModel:
    """One fit of the moderator model on one store content, with its lazily computed validation."""

    def __init__(self, fingerprint: tuple[int, ...], result: SynthesisResult) -> None:
        if result.fit is None:
            raise ValueError("no accepted evidence item: the moderator model cannot be fitted")
        self.fingerprint = fingerprint
        self.result = result
        self.items = result.items
        self.seed = result.seed
        self.fit: ModeratorFit = result.fit
        self._rng_after_fit = copy.deepcopy(self.fit.rng)
        self.effects = result.effects
        self.study_sd = self.fit.sigma_summary()
        self._lock = threading.Lock()

    @property
    def levels(self) -> dict[str, list[str]]:
        return self.fit.design.levels

    def validation(self) -> Validation:
        with self._lock:  # computed once (about a second), by the first request that needs it
            validation = self.result.validation
        assert validation is not None  # a model exists, so its validation does
        return validation

    def verdict(self) -> str:
        self.validation()
        return self.result.verdict or ""

    def predict(self, **covariates: Any) -> dict[str, Any]:
        """As ``fit.predict`` on a fresh fit: the new-study draw starts from the post-fit generator."""
        for name in COVARIATES:
            value = covariates.get(name)
            if value is not None and value not in self.levels[name]:
                raise FilterError(
                    name, value, self.levels[name], "no accepted evidence item has it, so the model cannot"
                )
        fresh = dataclasses.replace(self.fit, rng=copy.deepcopy(self._rng_after_fit))
        return fresh.predict(**covariates)


def store_fingerprint(store: Store) -> tuple[int, ...]:
    """Evidence rows, their summed versions and the latest revision id: changes with any curation."""
    with store.session() as session:
        n, versions = session.execute(select(func.count(EvidenceRow.id), func.sum(EvidenceRow.version))).one()
        latest = session.scalar(select(func.max(RevisionRow.id)))
    return (int(n or 0), int(versions or 0), int(latest or 0))


class SynthesisCache:
    """The moderator model of a store, refitted only when the store's fingerprint changes."""

    def __init__(self, seed: int = SEED) -> None:
        self.seed = seed
        self._model: SynthesisModel | None = None
        self._lock = threading.Lock()

    def get(self, store: Store) -> SynthesisModel:
        fingerprint = store_fingerprint(store)
        with self._lock:
            if self._model is None or self._model.fingerprint != fingerprint:
                result = run_synthesis(store.dataset().evidence, seed=self.seed)
                self._model = SynthesisModel(fingerprint, result)
            return self._model


# ------------------------------------------------------------------ API models


class Effect(BaseModel):
    name: str = Field(description="Model term: a moderator level vs its reference, engineered, dose.")
    estimate: float = Field(description="Posterior mean log odds ratio of inhibiting.")
    ci_lb: float
    ci_ub: float
    odds_ratio: float
    n_items: int
    supported: bool = Field(description="Whether the 95% interval excludes no effect.")


class StudySd(BaseModel):
    mean: float
    ci_lb: float
    ci_ub: float


class SynthesisReport(BaseModel):
    seed: int
    n_items: int = Field(description="Accepted items with an inhibiting, promoting or null outcome.")
    n_studies: int
    reference_levels: dict[str, str]
    effects: list[Effect]
    study_sd: StudySd = Field(description="Between-study SD of the log odds (random intercept).")
    validation: dict[str, Any] = Field(
        description="Leave-one-study-out log loss, Brier score and accuracy beside the majority baseline."
    )
    verdict: str


class ClosestItem(BaseModel):
    id: str
    direction: str
    mismatches: int = Field(description="Moderators (categorical and engineered) that differ from the query.")
    url: str


class Prediction(BaseModel):
    covariates: dict[str, Any]
    p_inhibits: float = Field(description="P(inhibits) for an average study.")
    ci_lb: float
    ci_ub: float
    p_inhibits_new_study: float = Field(description="P(inhibits) for a new study (study effect integrated).")
    closest_items: list[ClosestItem]
    seed: int


def _report(model: SynthesisModel) -> SynthesisReport:
    design = model.fit.design
    return SynthesisReport(
        seed=model.seed,
        n_items=len(design.y),
        n_studies=len(design.studies),
        reference_levels=dict(MODERATORS),
        effects=[Effect(**e) for e in model.effects],
        study_sd=StudySd(**model.study_sd),
        validation=model.validation().to_dict(),
        verdict=model.verdict(),
    )


def _prediction(model: SynthesisModel, **covariates: Any) -> Prediction:
    result = model.predict(**covariates)
    return Prediction(
        **{k: v for k, v in result.items() if k != "closest_items"},
        closest_items=[ClosestItem(**c, url=f"/evidence/{c['id']}") for c in result["closest_items"]],
        seed=model.seed,
    )


def _enum_value(param: str, value: str | None) -> str | None:
    """A form value of an enum parameter: empty is None, unknown is a 422 naming the allowed values."""
    if value is None or value == "":
        return None
    if value not in PARAM_ENUMS[param]:
        raise FilterError(param, value, PARAM_ENUMS[param])
    return value


def _dose_value(value: str | None) -> float | None:
    if value is None or value.strip() == "":
        return None
    try:
        number = float(value)
    except ValueError:
        number = float("nan")
    if not np.isfinite(number):
        raise FilterError("dose", value, ["a finite number on the delivery's dose scale"])
    return number


def synthesis_router(store: Store, env: Environment, cache: SynthesisCache) -> APIRouter:
    router = APIRouter()

    @router.get(
        "/api/synthesis",
        response_model=SynthesisReport,
        tags=["api"],
        summary="Moderator model: effects, between-study SD, leave-one-study-out validation, verdict",
    )
    def synthesis_api() -> SynthesisReport:
        return _report(cache.get(store))

    @router.get(
        "/api/predictions",
        response_model=Prediction,
        tags=["api"],
        summary="P(inhibits) for one combination of moderators, with the items closest to it",
    )
    def predictions_api(
        msc_source: Annotated[MscSource, Query(description="MSC tissue source.")],
        cancer_class: Annotated[CancerClass, Query(description="Solid or hematological.")],
        delivery: Annotated[Delivery, Query(description="How the MSC product reached the cancer.")],
        setting: Annotated[Setting, Query()] = Setting.in_vitro,
        engineered: Annotated[bool, Query(description="Engineered (true) or native (false) MSCs.")] = False,
        dose: Annotated[
            float | None,
            Query(
                allow_inf_nan=False,
                description="On the delivery's scale (log10 MSC:cancer ratio, CM %, log10 cells/injection).",
            ),
        ] = None,
    ) -> Prediction:
        return _prediction(
            cache.get(store),
            msc_source=msc_source.value,
            cancer_class=cancer_class.value,
            delivery=delivery.value,
            setting=setting.value,
            engineered=engineered,
            dose=dose,
        )

    @router.get("/synthesis", response_class=HTMLResponse, include_in_schema=False)
    def synthesis_page(
        request: Request,
        msc_source: Annotated[str | None, Query(max_length=64)] = None,
        cancer_class: Annotated[str | None, Query(max_length=64)] = None,
        delivery: Annotated[str | None, Query(max_length=64)] = None,
        setting: Annotated[str | None, Query(max_length=64)] = None,
        engineered: Annotated[bool, Query()] = False,
        dose: Annotated[str | None, Query(max_length=64)] = None,
    ) -> HTMLResponse:
        model = cache.get(store)
        chosen = {
            "msc_source": _enum_value("msc_source", msc_source),
            "cancer_class": _enum_value("cancer_class", cancer_class),
            "delivery": _enum_value("delivery", delivery),
            "setting": _enum_value("setting", setting),
        }
        dose_value = _dose_value(dose)
        prediction = None
        if chosen["msc_source"] and chosen["cancer_class"] and chosen["delivery"]:
            prediction = _prediction(
                model,
                msc_source=chosen["msc_source"],
                cancer_class=chosen["cancer_class"],
                delivery=chosen["delivery"],
                setting=chosen["setting"] or Setting.in_vitro.value,
                engineered=engineered,
                dose=dose_value,
            )
        api_url = None
        if prediction is not None:
            pairs = {k: v for k, v in prediction.covariates.items() if k != "engineered"}
            pairs["engineered"] = "true" if engineered else "false"
            api_url = "/api/predictions?" + urlencode(pairs)
        report = _report(model)
        return render(
            env,
            request,
            "synthesis.html.j2",
            report=report,
            levels=model.levels,
            chosen=chosen,
            form={"engineered": engineered, "dose": dose or ""},
            prediction=prediction,
            api_url=api_url,
        )

    @router.get("/in-silico", response_class=HTMLResponse, include_in_schema=False)
    def in_silico_page(request: Request) -> HTMLResponse:
        return render(env, request, "in_silico.html.j2", **in_silico_context(store))

    @router.get("/trials/landscape", response_class=HTMLResponse, include_in_schema=False)
    def landscape_page(request: Request) -> HTMLResponse:
        from mscatlas.trials.landscape import landscape

        report = landscape(store.dataset().trials, today=dt.date.today())
        sections = [
            ("Purpose", report.by_purpose),
            ("Phase", report.by_phase),
            ("Status", report.by_status),
            ("Start year", report.by_start_year),
            ("MSC source", report.by_msc_source),
            ("Engineering", report.by_engineering),
        ]
        return render(env, request, "landscape.html.j2", report=report, sections=sections)

    return router


def in_silico_context(store: Store) -> dict[str, Any]:
    """The stored replay figures of the shipped calibration, and whether they are current."""
    from mscatlas.sim.calibrate import items_digest, load_calibration

    calibration = load_calibration()
    if calibration is None:
        return {
            "calibrated": False,
            "rows": [],
            "stamp": "",
            "current": False,
            "n_items": None,
            "n_studies": None,
        }
    prov = calibration.provenance
    validation = dict(prov.get("validation", {}))
    current = items_digest(store.dataset().evidence) == prov.get("knowledge_base", {}).get("items_sha256")
    rows = [
        ("accuracy", "mechanistic model, calibrated, in sample", "3 directions"),
        ("loo_accuracy", "mechanistic model, leave one study out", "3 directions"),
        ("baseline_accuracy", "majority class of the training folds", "3 directions"),
        ("loo_accuracy_binary", "mechanistic model, leave one study out", "inhibits or not"),
        ("moderator_loo_accuracy", "moderator model, leave one study out", "inhibits or not"),
    ]
    return {
        "calibrated": True,
        "stamp": prov.get("stamp", ""),
        "current": current,
        "n_items": validation.get("n_scored"),
        "n_studies": validation.get("n_studies"),
        "rows": [
            {"key": key, "name": name, "kind": kind, "value": validation.get(key)}
            for key, name, kind in rows
            if key in validation
        ],
    }
