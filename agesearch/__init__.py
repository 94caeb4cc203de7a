"""agesearch: which imbalance strategy is best for MY age data? A distributed search over
FT-Transformer trials with Ray Tune and Optuna, and an honest report."""

__version__ = "0.1.0"


def __getattr__(name: str):  # lazy: importing agesearch must not import torch
    if name == "load_model":
        from agesearch.export import load_model

        return load_model
    raise AttributeError(f"module 'agesearch' has no attribute {name!r}")
