"""Feature distribution smoothing (FDS, Yang et al. 2021) on the representation ``z``.

Reference: agedb-dir ``fds.py``. Per label bin, running mean and per-dimension variance of ``z``
over the whole training set; smoothed over the bin axis with a sum-normalised kernel (reflect
padding); a feature of bin ``b`` is calibrated in training as
``z' = (z - mu_b) * sqrt(clamp(v_smooth_b / v_b, 0.1, 10)) + mu_smooth_b``.

Differences from the reference (its known flaws, not copied):

* no in-place writes: :meth:`FDS.smooth` returns a new tensor, autograd works with any head;
* explicit snapshots: :meth:`FDS.update` after epoch ``e`` updates the running statistics with
  epoch ``e``'s features and then snapshots them (``snap_mean``/``snap_var``) together with their
  smoothed versions. During epoch ``e + 1`` whitening (``mu_b``, ``v_b``) AND recolouring
  (``mu_smooth_b``, ``v_smooth_b``) both use that one snapshot, i.e. the running statistics as of
  the end of the last update (the reference whitens with statistics one epoch newer than it
  recolours with);
* so the first smoothing epoch is not an identity: with ``start_update=0, start_smooth=1`` epoch 1
  is already calibrated with epoch 0's statistics;
* bins without statistics are skipped (identity) and left out of the smoothing of their
  neighbours (normalised convolution: weights re-normalised over bins with statistics; when every
  bin has statistics this is exactly the reference's sum-normalised, reflect-padded convolution).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from agesearch.imbalance.kernels import KERNELS, kernel_window


class FDS(nn.Module):
    """Feature distribution smoothing.

    Args:
        feature_dim: width ``d`` of the representation.
        n_bins: number of label bins (bin indices are in ``[0, n_bins)``).
        kernel, ks, sigma: smoothing window over bins (sum-normalised).
        momentum: ``running = (1 - m) * current + m * running``; the first update uses ``m = 0``.
        start_update: first epoch (0-based) whose features update the statistics.
        start_smooth: first epoch (0-based) during which features are calibrated; must be
            > ``start_update`` (statistics must exist).
        clip_min, clip_max: variance-ratio clip (reference 0.1, 10).

    Buffers (part of ``state_dict``, hence of the trial checkpoint): ``running_mean``,
    ``running_var`` ``(n_bins, d)``, ``snap_mean``, ``snap_var``, ``smooth_mean``, ``smooth_var``
    ``(n_bins, d)``, ``snap_valid`` ``(n_bins,)`` bool, ``seen`` ``(n_bins,)`` bool,
    ``n_updates`` and ``snap_epoch`` (scalar int64, ``-1`` = no snapshot yet).
    """

    def __init__(
        self,
        feature_dim: int,
        n_bins: int,
        *,
        kernel: str = "gaussian",
        ks: int = 5,
        sigma: float = 2.0,
        momentum: float = 0.9,
        start_update: int = 0,
        start_smooth: int = 1,
        clip_min: float = 0.1,
        clip_max: float = 10.0,
    ) -> None:
        if feature_dim < 1:
            raise ValueError(f"feature_dim must be >= 1, got {feature_dim}")
        if n_bins < 1:
            raise ValueError(f"n_bins must be >= 1, got {n_bins}")
        if kernel not in KERNELS:
            raise ValueError(f"unknown fds_kernel {kernel!r}; valid: {', '.join(KERNELS)}")
        if not 0.0 <= momentum < 1.0:
            raise ValueError(f"fds_momentum must be in [0, 1), got {momentum}; use e.g. 0.9")
        if start_update < 0:
            raise ValueError(f"fds_start_update must be >= 0, got {start_update}")
        if start_smooth <= start_update:
            raise ValueError(
                f"fds_start_smooth ({start_smooth}) must be > fds_start_update ({start_update}): "
                "smoothing needs statistics from an earlier epoch"
            )
        if not 0 < clip_min <= 1 <= clip_max:
            raise ValueError(f"need 0 < clip_min <= 1 <= clip_max, got {clip_min}, {clip_max}")
        super().__init__()
        self.feature_dim = int(feature_dim)
        self.n_bins = int(n_bins)
        self.momentum = float(momentum)
        self.start_update = int(start_update)
        self.start_smooth = int(start_smooth)
        self.clip_min = float(clip_min)
        self.clip_max = float(clip_max)
        w = kernel_window(kernel, ks, sigma, normalize="sum")
        self.half = (len(w) - 1) // 2
        self.register_buffer("kernel", torch.tensor(w, dtype=torch.float32), persistent=False)
        shape = (self.n_bins, self.feature_dim)
        for name, fill in (("running_mean", 0.0), ("running_var", 1.0), ("snap_mean", 0.0),
                           ("snap_var", 1.0), ("smooth_mean", 0.0), ("smooth_var", 1.0)):
            self.register_buffer(name, torch.full(shape, fill))
        self.register_buffer("seen", torch.zeros(self.n_bins, dtype=torch.bool))
        self.register_buffer("snap_valid", torch.zeros(self.n_bins, dtype=torch.bool))
        self.register_buffer("n_updates", torch.zeros((), dtype=torch.long))
        self.register_buffer("snap_epoch", torch.full((), -1, dtype=torch.long))

    # ------------------------------------------------------------------ statistics
    @torch.no_grad()
    def update(self, z_all: Tensor, bin_idx_all: Tensor, epoch: int) -> None:
        """Update the running statistics with epoch ``epoch``'s features, then snapshot them.

        Args:
            z_all: representations of all training rows gathered during the epoch, ``(n, d)``.
            bin_idx_all: their label bins, ``(n,)`` int64.
            epoch: the epoch (0-based) the features come from; ignored before ``start_update``.
        """
        if epoch < self.start_update:
            return
        z = z_all.detach().to(self.running_mean)
        b = bin_idx_all.to(device=z.device, dtype=torch.long).reshape(-1)
        if z.ndim != 2 or z.shape[1] != self.feature_dim or z.shape[0] != b.shape[0]:
            raise ValueError(
                f"update needs z_all (n, {self.feature_dim}) and bin_idx_all (n,), "
                f"got {tuple(z_all.shape)} and {tuple(bin_idx_all.shape)}"
            )
        if b.numel() and (b.min() < 0 or b.max() >= self.n_bins):
            raise ValueError(f"bin indices must lie in [0, {self.n_bins}), got [{b.min()}, {b.max()}]")
        count = torch.bincount(b, minlength=self.n_bins).to(z)
        present = count > 0
        mean = torch.zeros_like(self.running_mean).index_add_(0, b, z) / count.clamp(min=1)[:, None]
        sq = torch.zeros_like(self.running_var).index_add_(0, b, (z - mean[b]) ** 2)
        # unbiased variance; a bin with one row has variance 0 (as in the reference)
        var = sq / (count - 1).clamp(min=1)[:, None]
        m = self.momentum if int(self.n_updates) > 0 else 0.0
        # a bin seen for the first time takes the current statistics as they are
        factor = torch.where(self.seen, torch.tensor(m, device=z.device), torch.zeros((), device=z.device))
        factor = factor[:, None]
        new_mean = (1 - factor) * mean + factor * self.running_mean
        new_var = (1 - factor) * var + factor * self.running_var
        self.running_mean.copy_(torch.where(present[:, None], new_mean, self.running_mean))
        self.running_var.copy_(torch.where(present[:, None], new_var, self.running_var))
        self.seen |= present
        self.n_updates += 1
        self._snapshot(epoch)

    @torch.no_grad()
    def _snapshot(self, epoch: int) -> None:
        self.snap_mean.copy_(self.running_mean)
        self.snap_var.copy_(self.running_var)
        self.snap_valid.copy_(self.seen)
        self.smooth_mean.copy_(self._smooth_bins(self.snap_mean, self.snap_valid))
        self.smooth_var.copy_(self._smooth_bins(self.snap_var, self.snap_valid))
        self.snap_epoch.fill_(int(epoch))

    def _smooth_bins(self, stat: Tensor, valid: Tensor) -> Tensor:
        """Normalised, reflect-padded convolution over bins of ``stat`` ``(n_bins, d)``."""
        v = valid.to(stat)[:, None]
        num = self._conv(stat * v)
        den = self._conv(v.expand_as(stat))
        return torch.where(den > 1e-12, num / den.clamp(min=1e-12), stat)

    def _conv(self, x: Tensor) -> Tensor:
        if self.half == 0:
            return x * self.kernel[0]
        inp = x.T[:, None, :]  # (d, 1, n_bins)
        h = self.half
        if self.n_bins > h:
            inp = F.pad(inp, (h, h), mode="reflect")
        else:  # too few bins to reflect: replicate the ends
            inp = F.pad(inp, (h, h), mode="replicate")
        out = F.conv1d(inp, self.kernel.view(1, 1, -1))
        return out[:, 0, :].T

    # ------------------------------------------------------------------ calibration
    def smooth(self, z: Tensor, bin_idx: Tensor, epoch: int) -> Tensor:
        """Calibrated features ``(B, d)`` for ``z`` ``(B, d)`` in bins ``bin_idx`` ``(B,)``.

        Identity before ``start_smooth`` or before the first snapshot; rows whose bin has no
        statistics (or total variance < 1e-10) and dimensions with zero variance are unchanged.
        Never modifies ``z`` in place.
        """
        if epoch < self.start_smooth or int(self.snap_epoch) < 0:
            return z
        b = bin_idx.to(device=z.device, dtype=torch.long).reshape(-1).clamp(0, self.n_bins - 1)
        m1, v1 = self.snap_mean[b], self.snap_var[b]
        m2, v2 = self.smooth_mean[b], self.smooth_var[b]
        row_ok = self.snap_valid[b] & (v1.sum(1) >= 1e-10)
        ok = row_ok[:, None] & (v1 != 0)
        ratio = torch.clamp(v2 / torch.where(ok, v1, torch.ones_like(v1)), self.clip_min, self.clip_max)
        cal = (z - m1) * torch.sqrt(ratio) + m2
        return torch.where(ok, cal.to(z.dtype), z)

    def extra_repr(self) -> str:
        return (
            f"feature_dim={self.feature_dim}, n_bins={self.n_bins}, momentum={self.momentum}, "
            f"start_update={self.start_update}, start_smooth={self.start_smooth}"
        )
