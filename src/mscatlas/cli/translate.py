"""`mscatlas translate dose`: a preclinical cell dose as cells/kg and human equivalent doses."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from mscatlas.cli.options import JsonOption
from mscatlas.cli.output import bad_input, console, print_json
from mscatlas.trials.dose_translation import DoseTranslationError, parse_cell_dose, translate_dose

__all__ = ["translate_app"]

translate_app = typer.Typer(help="Translate preclinical doses into human terms.", no_args_is_help=True)


def _number(field: str, text: str | None) -> float | None:
    if text is None:
        return None
    try:
        return float(text)
    except ValueError:
        raise DoseTranslationError(field, text, "not a number") from None


@translate_app.command("dose")
def dose(
    species: Annotated[str, typer.Option("--species", help="Animal species (FDA Km table), e.g. mouse.")],
    cells: Annotated[str | None, typer.Option("--cells", help="Cells per animal, e.g. 5e5.")] = None,
    dose_text: Annotated[
        str | None, typer.Option("--dose", help="Dose with its unit: '5e5 cells' or '2e7 cells/kg'.")
    ] = None,
    weight_kg: Annotated[
        str | None,
        typer.Option("--weight-kg", help="Animal body weight (default: the FDA reference weight)."),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Cells/kg and the human equivalent dose by body weight and by body-surface area (FDA 2005
    Km factors), with a 70 kg adult's total set against the 70–190 million cells per IV dose
    that MSC trials report as effective (Kabat et al. 2020)."""
    try:
        if (cells is None) == (dose_text is None):
            raise DoseTranslationError("cells", cells, "give --cells (per animal) or --dose (with its unit)")
        per_animal = per_kg = None
        if cells is not None:
            per_animal = _number("cells", cells)
        else:
            value, unit = parse_cell_dose(dose_text)  # type: ignore[arg-type]
            per_animal, per_kg = (value, None) if unit == "animal" else (None, value)
        result = translate_dose(
            species, cells=per_animal, cells_per_kg=per_kg, weight_kg=_number("weight_kg", weight_kg)
        )
    except DoseTranslationError as exc:
        bad_input(str(exc))
    out = result.to_dict()
    if as_json:
        print_json(out)
        return
    table = Table(
        title=f"{out['species']} dose in human terms ({out['weight_kg']} kg, {out['weight_source']})"
    )
    table.add_column("quantity")
    table.add_column("value", justify="right")
    table.add_row("cells per animal", f"{out['cells_per_animal']:.3g}")
    table.add_row("cells/kg", f"{out['cells_per_kg']:.3g}")
    table.add_row(f"HED by body-surface area (Km {out['km_animal']:g}/{out['km_human']:g}), cells/kg",
                  f"{out['hed_cells_per_kg_bsa']:.3g}")  # fmt: skip
    table.add_row(
        "  total for 70 kg", f"{out['hed_total_70kg']:.3g} ({out['vs_kabat_2020_bsa']} 70–190 million)"
    )
    table.add_row("HED by body weight, cells/kg", f"{out['hed_cells_per_kg_bw']:.3g}")
    table.add_row(
        "  total for 70 kg", f"{out['hed_total_70kg_bw']:.3g} ({out['vs_kabat_2020_bw']} 70–190 million)"
    )
    console.print(table)
