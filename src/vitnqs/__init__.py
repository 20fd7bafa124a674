"""vitnqs: Vision-Transformer wave functions for the J1-J2 model (Rende & Viteritti 2025)."""

from vitnqs.model import ATTENTIONS, MECHANISMS, ViT, count_parameters
from vitnqs.system import build_system, energy_per_site, exact_ground_state, reference_energy

__all__ = [
    "ATTENTIONS",
    "MECHANISMS",
    "ViT",
    "build_system",
    "count_parameters",
    "energy_per_site",
    "exact_ground_state",
    "load_run",
    "reference_energy",
]


def __getattr__(name):
    # load_run pulls in the training stack; import it only when asked for.
    if name == "load_run":
        from vitnqs.trained import load_run

        return load_run
    raise AttributeError(name)
