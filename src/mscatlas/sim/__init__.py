"""In silico lab: population ODE models of MSC-cancer experiments and a xenograft model.

- :func:`run` simulates one in vitro protocol (co-culture, transwell, conditioned medium, cell
  extract, vesicles) with its control arm; :func:`run_protocol` does it for a knowledge-base
  item and :func:`replay` for all of them.
- :func:`rk4` advances an ensemble of parameter sets at once (NumPy arrays).
- :func:`simulate_xenograft` and :func:`fit_growth` cover tumour growth and MSC injections.
- :func:`load_parameters` reads the parameter file (value, unit, source, note for each number).
"""

from mscatlas.sim.ensemble import lognormal_ensemble, rk4
from mscatlas.sim.parameters import load_parameters
from mscatlas.sim.protocol import Conditioning, Outcome, Protocol, call_direction, run
from mscatlas.sim.replay import replay, run_protocol
from mscatlas.sim.xenograft import Injection, fit_growth, simulate_xenograft

__all__ = [
    "Conditioning",
    "Injection",
    "Outcome",
    "Protocol",
    "call_direction",
    "fit_growth",
    "load_parameters",
    "lognormal_ensemble",
    "replay",
    "rk4",
    "run",
    "run_protocol",
    "simulate_xenograft",
]
