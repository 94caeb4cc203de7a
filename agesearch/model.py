"""FT-Transformer for age (the authors' ``rtdl_revisiting_models`` backbone) with a pluggable head.

``x_num (B, n_num), x_cat (B, n_cat)`` -> rtdl ``FTTransformer`` with ``d_out=None`` (feature
tokenizer + CLS token + backbone) -> CLS vector ``(B, d_block)`` -> LayerNorm + ReLU (the paper's
output block without its final linear layer) = representation ``z`` -> optional feature smoother
(FDS, training only) -> head.

``z`` is exposed (:meth:`AgeFTTransformer.representation`) so feature smoothing and representation
regularisers (RankSim) act on the vector the head sees.
"""

from __future__ import annotations

from typing import Any, Protocol

import torch
from rtdl_revisiting_models import FTTransformer
from torch import Tensor, nn

from agesearch.heads import Head

MODEL_DEFAULTS: dict[str, Any] = {
    "n_blocks": 2,
    "d_block": 64,
    "attention_n_heads": 8,
    "attention_dropout": 0.1,
    "ffn_d_hidden_multiplier": 4 / 3,
    "ffn_dropout": 0.05,
    "residual_dropout": 0.0,
}
"""Backbone hyperparameters used when the configuration does not set them (small: tabular age data
sets are small, and the search can grow them)."""


class FeatureSmoother(Protocol):
    """What the model needs from a feature smoother such as FDS."""

    def smooth(self, z: Tensor, bin_idx: Tensor, epoch: int) -> Tensor:
        """Calibrated features, same shape as ``z`` ``(B, d)``; must not modify ``z`` in place."""
        ...


class AgeFTTransformer(nn.Module):
    """FT-Transformer backbone plus a head.

    Args:
        n_num: number of numeric inputs (>= 0).
        cat_cardinalities: cardinality of each categorical input (reserved codes included).
        head: the :class:`~agesearch.heads.Head`; its ``d_in`` must equal ``d_block``.
        n_blocks: transformer blocks (>= 1).
        d_block: token width; a multiple of ``attention_n_heads``.
        attention_n_heads: attention heads.
        attention_dropout, ffn_dropout, residual_dropout: dropout rates in [0, 1).
        ffn_d_hidden_multiplier: FFN hidden size as a multiple of ``d_block`` (ReGLU).
        smoother: optional feature smoother (FDS) applied to ``z`` in training.
    """

    def __init__(
        self,
        *,
        n_num: int,
        cat_cardinalities: list[int],
        head: Head,
        n_blocks: int = MODEL_DEFAULTS["n_blocks"],
        d_block: int = MODEL_DEFAULTS["d_block"],
        attention_n_heads: int = MODEL_DEFAULTS["attention_n_heads"],
        attention_dropout: float = MODEL_DEFAULTS["attention_dropout"],
        ffn_d_hidden_multiplier: float = MODEL_DEFAULTS["ffn_d_hidden_multiplier"],
        ffn_dropout: float = MODEL_DEFAULTS["ffn_dropout"],
        residual_dropout: float = MODEL_DEFAULTS["residual_dropout"],
        smoother: nn.Module | None = None,
    ) -> None:
        if n_blocks < 1:
            raise ValueError(f"n_blocks must be >= 1, got {n_blocks}")
        if d_block < 1 or attention_n_heads < 1 or d_block % attention_n_heads:
            raise ValueError(
                f"d_block ({d_block}) must be a positive multiple of attention_n_heads "
                f"({attention_n_heads})"
            )
        for name, p in (
            ("attention_dropout", attention_dropout),
            ("ffn_dropout", ffn_dropout),
            ("residual_dropout", residual_dropout),
        ):
            if not 0.0 <= p < 1.0:
                raise ValueError(f"{name} must be in [0, 1), got {p}")
        if ffn_d_hidden_multiplier <= 0:
            raise ValueError(f"ffn_d_hidden_multiplier must be > 0, got {ffn_d_hidden_multiplier}")
        if head.d_in != d_block:
            raise ValueError(f"head.d_in ({head.d_in}) must equal d_block ({d_block})")
        super().__init__()
        self.n_num = n_num
        self.n_cat = len(cat_cardinalities)
        self.backbone = FTTransformer(
            n_cont_features=n_num,
            cat_cardinalities=list(cat_cardinalities),
            d_out=None,
            n_blocks=n_blocks,
            d_block=d_block,
            attention_n_heads=attention_n_heads,
            attention_dropout=attention_dropout,
            ffn_d_hidden=None,
            ffn_d_hidden_multiplier=ffn_d_hidden_multiplier,
            ffn_dropout=ffn_dropout,
            residual_dropout=residual_dropout,
        )
        self.output_norm = nn.LayerNorm(d_block)
        self.head = head
        self.smoother = smoother

    @classmethod
    def from_config(
        cls,
        config: dict[str, Any],
        *,
        n_num: int,
        cat_cardinalities: list[int],
        head: Head,
        smoother: nn.Module | None = None,
    ) -> "AgeFTTransformer":
        kwargs = {k: config.get(k, v) for k, v in MODEL_DEFAULTS.items()}
        return cls(
            n_num=n_num, cat_cardinalities=cat_cardinalities, head=head, smoother=smoother, **kwargs
        )

    def representation(self, x_num: Tensor | None, x_cat: Tensor | None) -> Tensor:
        """``z`` of shape ``(B, d_block)``."""
        x_num = x_num if self.n_num else None
        x_cat = x_cat if self.n_cat else None
        return torch.relu(self.output_norm(self.backbone(x_num, x_cat)))

    def forward(
        self,
        x_num: Tensor | None,
        x_cat: Tensor | None,
        *,
        bin_idx: Tensor | None = None,
        epoch: int = 0,
    ) -> tuple[Tensor, Tensor]:
        """Raw head outputs ``(B, d_out)`` and the representation ``z`` ``(B, d_block)``.

        ``bin_idx`` (label bins, ``(B,)``) enables the smoother in training mode. The returned
        ``z`` is the representation BEFORE smoothing (as in the DIR reference): FDS statistics and
        representation regularisers are computed on it; the head sees the smoothed one.
        """
        z = self.representation(x_num, x_cat)
        z_head = z
        if self.smoother is not None and self.training and bin_idx is not None:
            z_head = self.smoother.smooth(z, bin_idx, epoch)  # type: ignore[operator]
        return self.head(z_head), z

    def parameter_groups(self, weight_decay: float) -> list[dict[str, Any]]:
        """AdamW groups as in FT-Transformer: no weight decay on embeddings, norms and biases."""
        groups = self.backbone.make_parameter_groups()
        no_wd = {id(p) for p in groups[1]["params"]}
        decay, plain = [], []
        for name, p in self.named_parameters():
            if not p.requires_grad:
                continue
            if name.startswith("backbone."):
                (plain if id(p) in no_wd else decay).append(p)
            elif name.endswith(".bias") or name.startswith("output_norm.") or p.ndim < 2:
                plain.append(p)
            else:
                decay.append(p)
        return [
            {"params": decay, "weight_decay": weight_decay},
            {"params": plain, "weight_decay": 0.0},
        ]
