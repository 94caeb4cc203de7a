"""Multi-node search: a head and a worker started as separate `ray start` processes (fake GPUs).

Only the processes this test starts are stopped (by process group); never `ray stop`.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from agesearch.search.runner import check_storage_visible
from agesearch.search.storage import Location

ROOT = Path(__file__).resolve().parents[1]


def test_local_storage_refused_when_nodes_are_on_other_hosts(tmp_path):
    nodes = [{"Alive": True, "NodeManagerAddress": "10.0.0.1"}, {"Alive": True, "NodeManagerAddress": "10.0.0.2"}]
    with pytest.raises(ValueError, match=r"cannot see it; use a URI such as s3://.*--shared-storage"):
        check_storage_visible(Location(tmp_path), nodes, "10.0.0.1", shared_storage=False)
    check_storage_visible(Location(tmp_path), nodes, "10.0.0.1", shared_storage=True)
    check_storage_visible(Location("s3://bucket/exp"), nodes, "10.0.0.1", shared_storage=False)
    check_storage_visible(Location(tmp_path), nodes[:1], "10.0.0.1", shared_storage=False)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    ray_bin = str(Path(sys.executable).with_name("ray"))
    return subprocess.Popen([ray_bin, "start", "--block", *args], env=env, start_new_session=True,
                            stdout=log.open("w"), stderr=subprocess.STDOUT)  # fmt: skip


def _stop(proc: subprocess.Popen) -> None:
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=15)
            return
        except subprocess.TimeoutExpired:
            continue


DRIVER = textwrap.dedent(
    """
    import json, sys
    sys.path[:0] = [{root!r}, {root!r} + "/tests"]
    import ray
    from test_search_ray import tiny_space, tiny_frame
    from agesearch.search import search
    ray.init(address={address!r}, include_dashboard=False, log_to_driver=False)
    worker = [n["NodeID"] for n in ray.nodes() if n["Alive"] and n["Resources"].get("worker")]
    res = search(data=tiny_frame(500), space=tiny_space(max_epochs=3), name="mn", storage={storage!r},
                 num_samples=4, cpus_per_trial=1, gpus_per_trial=0.5, progress=False)
    print("WORKER", json.dumps(worker))
    """
)


@pytest.mark.ray
@pytest.mark.slow
def test_multi_node_places_trials_on_worker_and_packs_fractional_gpus(tmp_path):
    from agesearch.search import load_trials
    from agesearch.search.results import read_results

    import tempfile

    port = _free_port()
    ray_tmp = tempfile.mkdtemp(prefix="asr-", dir="/tmp")  # our own address file and sockets
    env = {**os.environ, "RAY_AUTH_MODE": "token", "PYTHONPATH": str(ROOT), "RAY_TMPDIR": ray_tmp}
    env.pop("RAY_ADDRESS", None)
    head = _start(["--head", "--node-ip-address", "127.0.0.1", "--port", str(port), "--num-cpus", "1",
                   "--num-gpus", "0", "--include-dashboard", "false", "--disable-usage-stats"],
                  env, tmp_path / "head.log")  # fmt: skip
    worker = None
    try:
        time.sleep(8)
        worker = _start(["--address", f"127.0.0.1:{port}", "--node-ip-address", "127.0.0.1",
                         "--num-cpus", "2", "--num-gpus", "1", "--resources", '{"worker": 1}',
                         "--disable-usage-stats"], env, tmp_path / "worker.log")  # fmt: skip
        script = tmp_path / "driver.py"
        script.write_text(DRIVER.format(root=str(ROOT), address=f"127.0.0.1:{port}", storage=str(tmp_path / "exp")))
        out = None
        for _ in range(3):  # the worker may still be joining
            out = subprocess.run([sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=400)
            if out.returncode == 0 and '"' in out.stdout.split("WORKER", 1)[-1]:
                break
            shutil.rmtree(tmp_path / "exp", ignore_errors=True)
            time.sleep(5)
        assert out is not None and out.returncode == 0, (out.stderr[-3000:], (tmp_path / "head.log").read_text()[-2000:])
        worker_ids = json.loads(out.stdout.split("WORKER", 1)[1].strip().splitlines()[0])
        assert len(worker_ids) == 1
        trials, history = load_trials(tmp_path / "exp" / "mn")
        assert len(trials) == 4 and set(trials.status) == {"COMPLETE"}
        spans = []
        for rec in (tmp_path / "exp" / "mn" / "trials").glob("*.json"):
            r = json.loads(rec.read_text())
            rows = read_results(tmp_path / "exp" / "mn" / "tune" / r["trial_dir"])
            assert {row["node_id"] for row in rows} == set(worker_ids)  # placed on the worker
            assert {row["gpu_ids"] for row in rows} == {"0"}  # a fake GPU id was assigned
            spans.append((rows[0]["timestamp"] - rows[0]["time_this_iter_s"], rows[-1]["timestamp"]))
        spans.sort()
        overlap = any(b[0] < a[1] for a, b in zip(spans, spans[1:]))
        assert overlap, f"no two trials shared the single GPU at once: {spans}"
    finally:
        if worker is not None:
            _stop(worker)
        _stop(head)
        shutil.rmtree(ray_tmp, ignore_errors=True)
