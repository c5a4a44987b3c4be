"""Benchmark (never in CI): the spatial model and PhysiCell side by side on a matched scenario.

What it does

1. Builds PhysiCell from source (``make template`` then ``make``: g++ with OpenMP) unless the
   ``project`` binary is already there. The source comes from ``--physicell DIR``; when DIR has
   no ``Makefile`` and ``--git-dir`` names a bare clone (this box's ``fetch`` tool mirrors
   github:MathCancer/PhysiCell into one), it is extracted with
   ``git --git-dir GIT archive HEAD | tar -x -C DIR``.
2. For each cell count builds one matched scenario and runs it in both codes, each in its own
   child process (``nice``), timing the wall clock and reading the child's peak resident memory:
   - the same square 2D domain ``[0, L]^2`` with 20 µm voxels (slab 20 µm deep: PhysiCell's
     voxel volume equals ours), ``L`` a whole number of voxels sized as in ``bench_abm.py`` (the
     tumour disc covers about half the domain);
   - the same cells at the same positions: the model's seeded start is written to PhysiCell's
     ``cells.csv``; n cancer cells and n/5 MSCs (the ratio of the default scenario);
   - the same field, one: CXCL12 secreted by cancer cells at the model's rate, D = 600 µm²/min,
     decay 0.1/h, zero-flux walls (the model's MSC paracrine channels and contact terms are off);
   - the same mechanics: PhysiCell's default potentials (radius 8.41 µm, repulsion 10 µm/min,
     adhesion 0.4 µm/min, relative adhesion distance 1.25) with its 0.1 min Adams-Bashforth step;
   - the same cycle (flow-cytometry model: G0/G1 -> S -> G2/M at the model's rates), basal death
     and MSC loss rates, and the same simulated time.
   What cannot be made identical: PhysiCell moves an MSC at a fixed speed with persistence and a
   chemotactic bias (speed 20 µm/h, bias 0.5, persistence 6 min here), the model by a biased
   random walk (drift up to 20 µm/h, motility 100 µm²/h); PhysiCell's cells grow in volume
   through the cycle, the model's keep their radius; PhysiCell cancer cells do not wander.
3. Accuracy: both diffusion schemes are measured on the analytic point source of
   :mod:`mscatlas.sim.abm.accuracy` (relative max-norm error over 0.5-8 h): PhysiCell's
   (BioFVM's locally one-dimensional backward Euler, our ``split`` method, at 0.01 min) and ours.
   The model's field step is chosen to meet ``--tolerance`` (default: PhysiCell's own error,
   i.e. matched accuracy). The two final CXCL12 fields are compared voxel by voxel.

Reported per size: cells x simulated hours per second, wall seconds, peak resident memory (MiB)
for each code, and PhysiCell time / model time.

Measured 2026-12-03 on this 2-core box under load (load average 5-14; PhysiCell 1.14.2, g++ 12
-O3 -fopenmp, 2 threads), matched accuracy (PhysiCell's point-source error 0.57%; the model's
Douglas step 0.047 min meets it at 0.55%):

    cells (+20% MSCs)  sim h  model run s (process s)  PhysiCell s  speed-up run (process)  field diff
    1,000              1      0.91 (5.05)              194.9        213x (39x)              1.2%
    10,000             0.3    2.43 (4.94)              205.6        85x (42x)               1.6%
    100,000            0.1    11.8 (15.9)              422.7        36x (27x)               2.6%

Peak resident memory, model / PhysiCell: 96 / 17, 103 / 125, 176 / 1209 MiB. At a 2% tolerance
(4 field steps per agent step) the 1,000-cell hour took 0.29 s against 134 s (460x).

Run (about 10 min for the defaults on 2 busy cores):
``nice python benchmarks/bench_physicell.py --physicell /tmp/physicell \
--git-dir /work/.mirror/MathCancer+PhysiCell/repo --sizes 1000 10000 --hours 1``
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import shutil
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np

from mscatlas.sim.abm import AbmConfig, AbmModel
from mscatlas.sim.abm.accuracy import choose_time_step, point_source_error
from mscatlas.sim.abm.agents import CANCER, MSC
from mscatlas.sim.abm.mechanics import Mechanics

PHYSICELL_DT_DIFFUSION_H = 0.01 / 60.0
CHECK_TIMES = (0.5, 1.0, 2.0, 4.0, 8.0)


# ------------------------------------------------------------------------------ scenario
def matched_config(n: int, substeps: int = 1) -> AbmConfig:
    """n cancer cells, n/5 MSCs, mechanics on, on a domain of whole 20 µm voxels."""
    base = AbmConfig.from_parameters()
    density = base.initial_fill * base.max_density * 1e-6
    side = math.sqrt(2.0 * n / density)
    side = max(round(side / base.voxel_size), 1) * base.voxel_size
    # one field, as in PhysiCell: no MSC paracrine channels and no contact terms
    return base.with_(
        n_cancer=n,
        n_msc=n // 5,
        domain_size=side,
        mechanics=Mechanics(),
        field_substeps=substeps,
        sig_secretion=(0.0,) * len(base.sig_secretion),
        contact_arrest=0.0,
        contact_death=0.0,
    )


def run_ours(n: int, hours: float, substeps: int, out: Path) -> dict[str, float]:
    """One model run (called in a child process); writes its final field and counts to ``out``."""
    cfg = matched_config(n, substeps)
    t0 = time.perf_counter()
    model = AbmModel(cfg, seed=0, prime_fields=False)
    setup = time.perf_counter() - t0
    t0 = time.perf_counter()
    model.run(hours, record_every=hours)
    wall = time.perf_counter() - t0
    np.save(out / "ours_cxcl12.npy", model.cxcl12)
    return {
        "setup_s": setup,
        "wall_s": wall,
        "cancer": model.agents.count(CANCER),
        "msc": model.agents.count(MSC),
    }


# ----------------------------------------------------------------------------- PhysiCell
def build_physicell(src: Path, git_dir: Path | None) -> Path:
    binary = src / "project"
    if binary.exists():
        return binary
    if not (src / "Makefile").exists():
        if git_dir is None:
            raise SystemExit(f"{src} has no PhysiCell source; pass --git-dir of a PhysiCell clone")
        src.mkdir(parents=True, exist_ok=True)
        archive = subprocess.run(
            ["git", "--git-dir", str(git_dir), "archive", "HEAD"], check=True, capture_output=True
        )
        subprocess.run(["tar", "-x", "-C", str(src)], input=archive.stdout, check=True)
    for target in (["make", "template"], ["make", "-j2"]):
        done = subprocess.run(["nice", *target], cwd=src, capture_output=True, text=True)
        if done.returncode != 0:
            raise SystemExit(
                f"PhysiCell build failed at {' '.join(target)}:\n{done.stdout[-2000:]}{done.stderr[-2000:]}"
            )
    return binary


def _set(root: ET.Element, path: str, value: object) -> None:
    node = root.find(path)
    if node is None:
        raise KeyError(f"PhysiCell settings: no element {path}")
    node.text = str(value)


def write_physicell_config(src: Path, cfg: AbmConfig, hours: float, work: Path, model: AbmModel) -> Path:
    """Settings XML and cells.csv for the matched scenario, written under ``work``."""
    tree = ET.parse(src / "sample_projects" / "template" / "config" / "PhysiCell_settings.xml")
    root = tree.getroot()
    L = cfg.domain_size
    for key, value in (("x_min", 0), ("x_max", L), ("y_min", 0), ("y_max", L), ("z_min", -10), ("z_max", 10)):
        _set(root, f"domain/{key}", value)
    for key in ("dx", "dy", "dz"):
        _set(root, f"domain/{key}", cfg.voxel_size)
    _set(root, "overall/max_time", hours * 60.0)
    _set(root, "parallel/omp_num_threads", os.cpu_count() or 1)
    _set(root, "save/folder", str(work / "output"))
    _set(root, "save/full_data/interval", hours * 60.0)
    _set(root, "save/full_data/enable", "false")
    _set(root, "save/SVG/enable", "false")
    _set(root, "options/virtual_wall_at_domain_edge", "true")
    var = root.find("microenvironment_setup/variable")
    assert var is not None
    var.set("name", "CXCL12")
    _set(var, "physical_parameter_set/diffusion_coefficient", cfg.cxcl12_diffusivity / 60.0)
    _set(var, "physical_parameter_set/decay_rate", cfg.cxcl12_decay / 60.0)
    _set(root, "microenvironment_setup/options/track_internalized_substrates_in_each_agent", "false")

    defs = root.find("cell_definitions")
    assert defs is not None
    template = defs.find("cell_definition")
    assert template is not None
    defs.remove(template)
    k1, k2, k3 = (k / 60.0 for k in cfg.cycle_rates)
    for ident, name in ((CANCER, "cancer"), (MSC, "msc")):
        cd = ET.fromstring(ET.tostring(template))
        cd.set("name", name)
        cd.set("ID", str(ident))
        ph = cd.find("phenotype")
        assert ph is not None
        cycle = ph.find("cycle")
        assert cycle is not None
        for child in list(cycle):
            cycle.remove(child)
        rates = ET.SubElement(cycle, "phase_transition_rates", units="1/min")
        if ident == CANCER:
            cycle.set("code", "2")
            cycle.set("name", "Flow cytometry model (basic)")
            for (a, b), k in zip(((0, 1), (1, 2), (2, 0)), (k1, k2, k3), strict=True):
                ET.SubElement(
                    rates, "rate", start_index=str(a), end_index=str(b), fixed_duration="false"
                ).text = str(k)
            death = cfg.death / 60.0
        else:
            cycle.set("code", "5")
            cycle.set("name", "live")
            ET.SubElement(rates, "rate", start_index="0", end_index="0", fixed_duration="false").text = "0"
            death = cfg.msc_death / 60.0
        _set(ph, "death/model/death_rate", death)
        for path in ("mechanics/cell_adhesion_affinities",):
            node = ph.find(path)
            assert node is not None
            for child in list(node):
                node.remove(child)
            for other in ("cancer", "msc"):
                ET.SubElement(node, "cell_adhesion_affinity", name=other).text = "1"
        mot = ph.find("motility")
        assert mot is not None
        is_msc = ident == MSC
        _set(mot, "options/enabled", str(is_msc).lower())
        _set(mot, "speed", cfg.msc_speed_max / 60.0)
        _set(mot, "persistence_time", 6.0)
        _set(mot, "migration_bias", 0.5)
        _set(mot, "options/chemotaxis/enabled", str(is_msc).lower())
        _set(mot, "options/chemotaxis/substrate", "CXCL12")
        _set(mot, "options/advanced_chemotaxis/chemotactic_sensitivities/chemotactic_sensitivity", 0)
        mot.find("options/advanced_chemotaxis/chemotactic_sensitivities/chemotactic_sensitivity").set(  # type: ignore[union-attr]
            "substrate", "CXCL12"
        )
        sec = ph.find("secretion/substrate")
        assert sec is not None
        sec.set("name", "CXCL12")
        # net export (amount/min per cell) / voxel volume (µm³) = concentration rate; the model's
        # amount is ng and its volume mL (1e12 µm³): ng/mL concentrations on both sides
        export = cfg.cxcl12_secretion / 60.0 * 1e12 if ident == CANCER else 0.0
        _set(sec, "net_export_rate", export)
        for path in (
            "cell_interactions/live_phagocytosis_rates/phagocytosis_rate",
            "cell_interactions/attack_rates/attack_rate",
            "cell_interactions/fusion_rates/fusion_rate",
            "cell_transformations/transformation_rates/transformation_rate",
        ):
            node = ph.find(path)
            if node is not None:
                node.set("name", "cancer")
        defs.append(cd)
    pos = root.find("initial_conditions/cell_positions")
    assert pos is not None
    pos.set("enabled", "true")
    _set(pos, "folder", work)
    _set(pos, "filename", "cells.csv")
    _set(root, "user_parameters/number_of_cells", 0)
    a = model.agents
    rows = np.flatnonzero(a.alive[: a.n])
    lines = [f"{a.x[r]:.6f},{a.y[r]:.6f},0,{int(a.kind[r])}" for r in rows]
    (work / "cells.csv").write_text("\n".join(lines) + "\n")
    (work / "output").mkdir(parents=True, exist_ok=True)
    path = work / "PhysiCell_settings.xml"
    tree.write(path)
    return path


def _timed(cmd: list[str], cwd: Path) -> tuple[float, float, str]:
    """Wall seconds, peak resident MiB and output of one child process."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        ["nice", *cmd], cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    out, _ = proc.communicate()
    wall = time.perf_counter() - t0
    # the peak of the nice'd child tree, read from /usr/bin/time when there is one
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{out[-3000:]}")
    match = re.search(r"Maximum resident set size \(kbytes\): (\d+)", out)
    return wall, int(match.group(1)) / 1024 if match else math.nan, out


def run_physicell(binary: Path, settings: Path, work: Path) -> dict[str, float]:
    wall, rss, out = _timed(["/usr/bin/time", "-v", str(binary), str(settings)], binary.parent)
    (work / "physicell.log").write_text(out)
    result = {"wall_s": wall, "peak_mib": rss}
    from scipy.io import loadmat

    cells = loadmat(work / "output" / "final_cells.mat")
    key = next(k for k in cells if not k.startswith("__"))
    labels = ET.parse(work / "output" / "final.xml").getroot()
    types = _cell_type_row(labels)
    kinds = cells[key][types] if types is not None else None
    result["cancer"] = int(np.sum(kinds == CANCER)) if kinds is not None else math.nan
    result["msc"] = int(np.sum(kinds == MSC)) if kinds is not None else math.nan
    return result


def _cell_type_row(xml: ET.Element) -> int | None:
    for label in xml.iter("label"):
        if label.text == "cell_type":
            return int(label.get("index", "-1"))
    return None


def physicell_field(work: Path, shape: tuple[int, int], h: float) -> np.ndarray:
    from scipy.io import loadmat

    mat = loadmat(work / "output" / "final_microenvironment0.mat")
    data = mat[next(k for k in mat if not k.startswith("__"))]
    x, y, c = data[0], data[1], data[4]
    field = np.zeros(shape)
    field[(y // h).astype(int), (x // h).astype(int)] = c
    return field


# ----------------------------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--physicell", type=Path, default=Path("/tmp/physicell"))
    parser.add_argument("--git-dir", type=Path, default=None)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10_000])
    parser.add_argument("--hours", type=float, default=1.0)
    parser.add_argument(
        "--tolerance", type=float, default=None, help="field error bound (default: PhysiCell's)"
    )
    parser.add_argument("--work", type=Path, default=Path("/tmp/bench_physicell"))
    parser.add_argument("--ours", nargs=3, metavar=("N", "HOURS", "SUBSTEPS"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.ours:  # child mode: one model run, JSON on stdout
        n, hours, sub = int(args.ours[0]), float(args.ours[1]), int(args.ours[2])
        out = args.work / f"n{n}"
        out.mkdir(parents=True, exist_ok=True)
        print(json.dumps(run_ours(n, hours, sub, out)))
        return 0

    base = AbmConfig.from_parameters()
    if abs(args.hours / base.dt - round(args.hours / base.dt)) > 1e-9:
        raise SystemExit(f"--hours must be a whole number of {base.dt} h agent steps (the model rounds)")
    h, D, k = base.voxel_size, base.cxcl12_diffusivity, base.cxcl12_decay
    t0 = time.perf_counter()
    pc_err = max(
        point_source_error(
            "split", PHYSICELL_DT_DIFFUSION_H, h=h, diffusivity=D, decay=k, times=(0.5, 1.0, 2.0)
        ).values()
    )
    print(
        f"PhysiCell diffusion (LOD backward Euler, 0.01 min): point-source error {pc_err:.4f} over 0.5-2 h "
        f"({time.perf_counter() - t0:.0f} s to measure)"
    )
    tol = args.tolerance if args.tolerance is not None else pc_err
    choice = choose_time_step(
        "douglas",
        h=h,
        diffusivity=D,
        decay=k,
        tolerance=tol,
        dt_max=base.dt,
        times=(0.5, 1.0, 2.0),
        max_halvings=8,
    )
    substeps = round(base.dt / choice.dt)
    print(
        f"model (Douglas ADI): tolerance {tol:.4f} -> field step {choice.dt * 60:.3g} min "
        f"({substeps} per 6 min agent step), error {choice.error:.4f}"
    )

    binary = build_physicell(args.physicell, args.git_dir)
    print(f"PhysiCell binary: {binary}\n")
    header = (
        f"{'cells':>7} {'voxels':>8} {'h sim':>6} | {'ours run s':>10} {'child s':>8} {'MiB':>6} "
        f"{'cells*h/s':>10} | "
        f"{'PC s':>8} {'MiB':>6} {'cells*h/s':>10} | {'speed-up run':>12} {'child':>6} | {'field diff':>10} "
        "counts ours / PC"
    )
    print(header)
    for n in args.sizes:
        work = args.work / f"n{n}"
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir(parents=True)
        cfg = matched_config(n, substeps)
        start = AbmModel(cfg, seed=0, prime_fields=False)
        settings = write_physicell_config(args.physicell, cfg, args.hours, work, start)
        me = [
            sys.executable,
            __file__,
            "--work",
            str(args.work),
            "--ours",
            str(n),
            str(args.hours),
            str(substeps),
        ]
        child, rss, out = _timed(["/usr/bin/time", "-v", *me], Path.cwd())
        ours = json.loads(next(line for line in out.splitlines() if line.startswith("{")))
        pc = run_physicell(binary, settings, work)
        cells = n + n // 5
        field_ours = np.load(work / "ours_cxcl12.npy")
        field_pc = physicell_field(work, field_ours.shape, cfg.voxel_size)
        diff = float(np.linalg.norm(field_ours - field_pc) / max(np.linalg.norm(field_pc), 1e-300))
        # run: the simulation loop alone (no interpreter start-up, imports or parameter parsing);
        # child: the whole process, as PhysiCell's time is
        run = ours["wall_s"]
        print(
            f"{n:>7} {start.grid.size:>8} {args.hours:>6g} | {run:>10.2f} {child:>8.2f} {rss:>6.0f} "
            f"{cells * args.hours / run:>10.3g} | {pc['wall_s']:>8.2f} {pc['peak_mib']:>6.0f} "
            f"{cells * args.hours / pc['wall_s']:>10.3g} | {pc['wall_s'] / run:>12.1f} "
            f"{pc['wall_s'] / child:>6.1f} | "
            f"{diff:>10.3f} {ours['cancer']}+{ours['msc']} / {pc['cancer']}+{pc['msc']}",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
