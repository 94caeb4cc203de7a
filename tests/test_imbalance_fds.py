"""FDS: calibration identity, smoothing towards neighbours, gradients, snapshots, checkpoint."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.ndimage import convolve1d, gaussian_filter1d

from agesearch.imbalance import FDS


def _feats(n_bins=12, d=4, per_bin=50, seed=0):
    g = torch.Generator().manual_seed(seed)
    b = torch.arange(n_bins).repeat_interleave(per_bin)
    mu = torch.linspace(-1, 1, n_bins)[:, None] * torch.ones(n_bins, d)
    z = mu[b] + 0.5 * torch.randn(len(b), d, generator=g)
    return z, b


def test_identity_when_smoothed_equals_raw():
    # identical statistics in every bin -> smoothed == raw -> calibration is the identity
    fds = FDS(3, 8, start_update=0, start_smooth=1)
    g = torch.Generator().manual_seed(1)
    base = torch.randn(20, 3, generator=g)
    z = base.repeat(8, 1)
    b = torch.arange(8).repeat_interleave(20)
    fds.update(z, b, epoch=0)
    torch.testing.assert_close(fds.smooth_mean, fds.snap_mean)
    torch.testing.assert_close(fds.smooth_var, fds.snap_var)
    q = torch.randn(16, 3, generator=g)
    qb = torch.randint(0, 8, (16,), generator=g)
    torch.testing.assert_close(fds.smooth(q, qb, epoch=1), q)


def test_smoothed_statistics_match_reference_convolution():
    z, b = _feats(n_bins=10, d=2)
    fds = FDS(2, 10, kernel="gaussian", ks=5, sigma=2)
    fds.update(z, b, 0)
    w = gaussian_filter1d([0, 0, 1.0, 0, 0], 2)
    w = w / w.sum()
    for stat, sm in ((fds.snap_mean, fds.smooth_mean), (fds.snap_var, fds.smooth_var)):
        expect = convolve1d(stat.double().numpy(), w, axis=0, mode="mirror")  # torch reflect == scipy mirror
        np.testing.assert_allclose(sm.numpy(), expect, rtol=1e-5, atol=1e-6)
    # unbiased per-bin variance, momentum 0 at the first update
    np.testing.assert_allclose(fds.running_var[3].numpy(), z[b == 3].var(0, unbiased=True).numpy(), rtol=1e-5)


def test_moves_sparse_bin_means_towards_neighbours():
    z, b = _feats(n_bins=9, d=3, per_bin=40)
    # bin 4 is sparse and its features are shifted far from its neighbours
    keep = (b != 4) | (torch.arange(len(b)) % 40 < 3)
    z, b = z[keep].clone(), b[keep]
    z[b == 4] += 5.0
    fds = FDS(3, 9)
    fds.update(z, b, 0)
    out = fds.smooth(z, b, 1)
    neigh = 0.5 * (z[b == 3].mean(0) + z[b == 5].mean(0))
    before = (z[b == 4].mean(0) - neigh).norm()
    after = (out[b == 4].mean(0) - neigh).norm()
    assert after < 0.5 * before
    # variance ratio clip: the calibration scale never exceeds sqrt(10)
    assert (out[b == 4].std(0) <= z[b == 4].std(0) * 10**0.5 + 1e-5).all()


def test_gradients_flow_and_no_in_place_write():
    z, b = _feats()
    fds = FDS(4, 12)
    fds.update(z, b, 0)
    x = z[:64].clone().requires_grad_(True)
    x_copy = x.detach().clone()
    out = fds.smooth(x, b[:64], 1)
    assert not torch.equal(out.detach(), x_copy)
    torch.testing.assert_close(x.detach(), x_copy)  # input untouched
    (out**2).sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0


def test_start_update_start_smooth_and_snapshots():
    z, b = _feats(n_bins=6, d=2)
    fds = FDS(2, 6, start_update=1, start_smooth=2, momentum=0.5)
    fds.update(z, b, 0)  # before start_update: ignored
    assert int(fds.n_updates) == 0 and int(fds.snap_epoch) == -1
    assert torch.equal(fds.smooth(z, b, 5), z)  # no statistics yet
    fds.update(z, b, 1)
    assert int(fds.snap_epoch) == 1
    assert torch.equal(fds.smooth(z, b, 1), z)  # before start_smooth
    assert not torch.equal(fds.smooth(z, b, 2), z)
    first = fds.running_mean.clone()
    z2 = z + 1.0
    fds.update(z2, b, 2)
    # momentum update: 0.5 * current + 0.5 * running
    torch.testing.assert_close(fds.running_mean, 0.5 * (first + 1.0) + 0.5 * first)
    # snapshot equals the running stats after the update, and is a copy (not an alias)
    torch.testing.assert_close(fds.snap_mean, fds.running_mean)
    assert fds.snap_mean.data_ptr() != fds.running_mean.data_ptr()
    with pytest.raises(ValueError, match="fds_start_smooth"):
        FDS(2, 6, start_update=2, start_smooth=2)


def test_bins_without_statistics_are_skipped():
    z, b = _feats(n_bins=6, d=2)
    keep = b != 2
    fds = FDS(2, 6)
    fds.update(z[keep], b[keep], 0)
    assert not bool(fds.snap_valid[2])
    q = torch.randn(5, 2)
    torch.testing.assert_close(fds.smooth(q, torch.full((5,), 2), 1), q)
    assert torch.isfinite(fds.smooth_mean).all()


def test_state_dict_round_trip():
    z, b = _feats()
    a = FDS(4, 12)
    a.update(z, b, 0)
    c = FDS(4, 12)
    c.load_state_dict(a.state_dict())
    torch.testing.assert_close(c.smooth(z, b, 1), a.smooth(z, b, 1))
    assert {"running_mean", "snap_mean", "smooth_var", "snap_epoch", "n_updates"} <= set(a.state_dict())
