"""Plain regression head: one output, trained on the standardised label."""

from __future__ import annotations

from torch import Tensor, nn

from agesearch.heads.base import Head, TargetInfo, register_head
from agesearch.losses import POINT_LOSSES, weighted_mean


@register_head
class RegressionHead(Head):
    """Linear layer to one output; the output is the standardised age ``(y - mean) / std``.

    Args:
        d_in: representation size.
        target: label scale and bins.
        loss: a name in :data:`agesearch.losses.POINT_LOSSES` (``l1``, ``mse``, ``huber``, ...).
        huber_delta: Huber threshold in years.
    """

    name = "regression"
    config_keys = ("loss", "huber_delta")

    def __init__(
        self, d_in: int, target: TargetInfo, *, loss: str = "l1", huber_delta: float = 1.0
    ) -> None:
        super().__init__(d_in, target)
        if loss not in POINT_LOSSES:
            raise ValueError(
                f"unknown loss {loss!r} for head 'regression'; valid: {', '.join(sorted(POINT_LOSSES))}"
            )
        if not huber_delta > 0:
            raise ValueError(f"huber_delta must be > 0 years, got {huber_delta}")
        self.loss_name = loss
        self.huber_delta = float(huber_delta)
        self.linear = nn.Linear(d_in, 1)

    def forward(self, z: Tensor) -> Tensor:
        """``(B, d_in) -> (B, 1)``."""
        return self.linear(z)

    def _standardise(self, y: Tensor) -> Tensor:
        return (y - self.target.mean) / self.target.std

    def loss(self, out: Tensor, y: Tensor, weights: Tensor | None = None, **batch: Tensor) -> Tensor:
        pred = out[:, 0]
        target = self._standardise(y)
        fn = POINT_LOSSES[self.loss_name]
        if self.loss_name == "huber":
            per = fn(pred, target, delta=self.huber_delta / self.target.std)
        else:
            per = fn(pred, target)
        return weighted_mean(per, weights)

    def predict(self, out: Tensor) -> Tensor:
        """``(B, 1) -> (B,)`` ages in years."""
        return out[:, 0] * self.target.std + self.target.mean
