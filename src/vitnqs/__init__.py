"""vitnqs: Vision-Transformer wave functions for the J1-J2 model (Rende & Viteritti 2025).

The public names are imported lazily, so that ``import vitnqs.config`` (what the workflow does
at parse time) costs milliseconds and no JAX.
"""

from importlib import import_module

__version__ = "0.1.0"

_PUBLIC = {
    "ATTENTIONS": "vitnqs.model",
    "MECHANISMS": "vitnqs.config",
    "RunConfig": "vitnqs.config",
    "ConfigError": "vitnqs.config",
    "ViT": "vitnqs.model",
    "count_parameters": "vitnqs.model",
    "build_system": "vitnqs.system",
    "energy_per_site": "vitnqs.system",
    "exact_ground_state": "vitnqs.system",
    "reference_energy": "vitnqs.reference",
    "load_run": "vitnqs.trained",
    "run": "vitnqs.train",
}

__all__ = sorted(_PUBLIC)


def __getattr__(name: str):
    if name in _PUBLIC:
        return getattr(import_module(_PUBLIC[name]), name)
    raise AttributeError(f"module 'vitnqs' has no attribute {name!r}")


def __dir__():
    return __all__
