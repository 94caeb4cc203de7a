"""agesearch: which imbalance strategy is best for MY age data? A distributed search over
FT-Transformer trials with Ray Tune and Optuna, and an honest report."""

__version__ = "0.1.0"
