"""A worker node dies mid-search: head + worker as separate `ray start` processes on 127.0.0.1.

The worker's processes (its `ray start --block` process group: raylet and trial workers) are killed
with SIGKILL by process id; never `ray stop`. The search must finish on the head, the trials that
were running on the worker must continue from their latest checkpoint, and no trial finished before
the kill may be lost or changed.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import pytest

from tests.test_search_cluster import _free_port, _start, _stop

ROOT = Path(__file__).resolve().parents[1]
EPOCHS = 4

DRIVER = textwrap.dedent(
    """
    import json, sys, time
    sys.path[:0] = [{root!r}, {root!r} + "/tests"]
    import ray
    from test_search_ray import tiny_space, tiny_frame
    from agesearch.search import search
    ray.init(address={address!r}, include_dashboard=False, log_to_driver=False)
    for _ in range(60):
        worker = [n["NodeID"] for n in ray.nodes() if n["Alive"] and n["Resources"].get("worker")]
        if worker:
            break
        time.sleep(1)
    open({node_file!r}, "w").write(json.dumps(worker))
    search(data=tiny_frame(500), space=tiny_space(max_epochs={epochs}), name="wd", storage={storage!r},
           num_samples=3, cpus_per_trial=1, max_failures=3, progress=False,
           _fault={{"sleep_per_epoch": 0.8}})
    print("DONE")
    """
)


def _rows(exp: Path, rec: dict) -> list[dict]:
    f = exp / "tune" / rec["trial_dir"] / "result.json" if rec.get("trial_dir") else None
    if not f or not f.is_file():
        return []
    out = []
    for ln in f.read_text().splitlines():
        try:
            out.append(json.loads(ln))
        except ValueError:
            pass
    return out


def _records(exp: Path) -> list[dict]:
    out = []
    for f in (exp / "trials").glob("*.json") if (exp / "trials").is_dir() else []:
        try:
            out.append(json.loads(f.read_text()))
        except (OSError, ValueError):
            pass
    return out


@pytest.mark.ray
@pytest.mark.slow
@pytest.mark.timeout(600)
def test_worker_node_dies_mid_search_trials_resume_on_head(tmp_path):
    from agesearch.search import load_trials

    port = _free_port()
    ray_tmp = tempfile.mkdtemp(prefix="asw-", dir="/tmp")
    env = {**os.environ, "RAY_AUTH_MODE": "token", "PYTHONPATH": str(ROOT), "RAY_TMPDIR": ray_tmp,
           "RAY_health_check_period_ms": "1000", "RAY_health_check_failure_threshold": "3"}  # fmt: skip
    env.pop("RAY_ADDRESS", None)
    head = _start(["--head", "--node-ip-address", "127.0.0.1", "--port", str(port), "--num-cpus", "1",
                   "--include-dashboard", "false", "--disable-usage-stats"], env, tmp_path / "head.log")  # fmt: skip
    worker = driver = None
    exp = tmp_path / "exp" / "wd"
    try:
        time.sleep(8)
        worker = _start(["--address", f"127.0.0.1:{port}", "--node-ip-address", "127.0.0.1", "--num-cpus", "2",
                         "--resources", '{"worker": 1}', "--disable-usage-stats"], env, tmp_path / "worker.log")  # fmt: skip
        node_file = tmp_path / "worker_node.json"
        script = tmp_path / "driver.py"
        script.write_text(DRIVER.format(root=str(ROOT), address=f"127.0.0.1:{port}", node_file=str(node_file),
                                        storage=str(tmp_path / "exp"), epochs=EPOCHS))  # fmt: skip
        driver = subprocess.Popen([sys.executable, str(script)], env=env, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True, start_new_session=True)  # fmt: skip
        deadline = time.time() + 300
        victims: dict[str, int] = {}
        while time.time() < deadline:
            assert driver.poll() is None, driver.communicate()[1][-3000:]
            worker_ids = json.loads(node_file.read_text()) if node_file.is_file() else []
            if worker_ids:
                for rec in _records(exp):
                    rows = _rows(exp, rec)
                    if rec["status"] == "RUNNING" and rows and rows[-1].get("node_id") in worker_ids \
                            and 2 <= rows[-1]["epoch"] < EPOCHS:
                        victims[rec["trial_id"]] = int(rows[-1]["epoch"])
                if victims:
                    break
            time.sleep(0.2)
        else:
            pytest.fail("no trial ran on the worker node in time")
        finished_before = {r["trial_id"]: r for r in _records(exp) if r["status"] == "COMPLETE"}
        scores_before, _ = load_trials(exp)
        scores_before = scores_before.set_index("trial_id")["score"].to_dict()
        os.killpg(worker.pid, signal.SIGKILL)  # the worker node crashes: raylet + its trial workers
        worker.wait(timeout=30)
        worker_ids = json.loads(node_file.read_text())
        out, err = driver.communicate(timeout=400)
        assert driver.returncode == 0 and "DONE" in out, err[-3000:]
    finally:
        if driver is not None and driver.poll() is None:
            _stop(driver)
        if worker is not None:
            _stop(worker)
        _stop(head)
        shutil.rmtree(ray_tmp, ignore_errors=True)
    trials, history = load_trials(exp)
    assert len(trials) == 3 and trials.trial_id.is_unique and set(trials.status) == {"COMPLETE"}
    for tid in finished_before:  # nothing finished before the kill was lost or re-run
        assert trials.set_index("trial_id").loc[tid, "score"] == scores_before[tid]
    by_id = {r["trial_id"]: r for r in _records(exp)}
    for tid, epoch_at_kill in victims.items():
        rows = _rows(exp, by_id[tid])
        after = [r for r in rows if r.get("node_id") not in worker_ids]
        assert after, f"trial {tid} never continued on the head node"
        # Continued from its latest checkpoint, not from epoch 1: the first epoch on the head is the
        # one after the last checkpoint on the worker (EPOCHS + 1 when the worker had already
        # trained the last epoch and the retry only re-reports the final state).
        on_worker = [r for r in rows if r.get("node_id") in worker_ids]
        assert on_worker and max(r["epoch"] for r in on_worker) >= epoch_at_kill
        assert after[0]["start_epoch"] == max(r["epoch"] for r in on_worker) + 1 >= 2, (on_worker, after[0])
        assert history[history.trial_id == tid].epoch.tolist() == list(range(1, EPOCHS + 1))
