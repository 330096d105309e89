"""Shared test pieces: the official reference data, CPU-only defaults, the torchrun launcher.

Every multi-process test starts its processes through :func:`torchrun`: either a worker script
of ``tests/_workers/`` (a plain script that joins a gloo group from torchrun's environment and
writes its results to a path given on its command line) or ``-m aucseg train ...``.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import IO

import pytest
import torch

REPO_ROOT = Path(__file__).resolve().parents[1]
SRC = REPO_ROOT / "src"
WORKERS = Path(__file__).resolve().parent / "_workers"
SHARED = Path(os.environ.get("AUCSEG_SHARED", REPO_ROOT.parent / "shared"))
REFERENCE = SHARED / "reference"
# torchrun sets these for its workers; stale values from an outer launcher must not leak in
LAUNCH_VARS = ("RANK", "LOCAL_RANK", "WORLD_SIZE", "LOCAL_WORLD_SIZE", "GROUP_RANK",
               "MASTER_ADDR", "MASTER_PORT", "TORCHELASTIC_RUN_ID")  # fmt: skip
# what a launch that lost its port or its rendezvous prints (then one retry on a new port)
RETRY_MARKERS = ("rendezvous", "address already in use", "eaddrinuse")

# one intra-op thread per process when pytest-xdist runs several test processes (make test)
torch.set_num_threads(
    1 if os.environ.get("PYTEST_XDIST_WORKER") else max(1, min(2, os.cpu_count() or 1))
)


@pytest.fixture(scope="session")
def reference_dir() -> Path:
    """Folder of data produced by the official AUCSeg code (``../shared/reference``)."""
    if not REFERENCE.is_dir():
        pytest.skip(
            f"official reference data not found at {REFERENCE}: clone next to shared/ "
            "or set AUCSEG_SHARED to the folder that holds reference/"
        )
    return REFERENCE


@dataclass
class Launch:
    """Exit status and captured output of one ``torchrun`` start (one launcher per node).

    On one node the launcher's streams hold every rank's output (interleaved).
    """

    codes: list[int]
    outs: list[str]
    errs: list[str]
    attempts: int = 1

    @property
    def code(self) -> int:
        """0 when every node's launcher exited 0, else the first non-zero exit code."""
        return next((c for c in self.codes if c != 0), 0)

    @property
    def out(self) -> str:
        """Standard output of every node, node 0 first."""
        return "".join(self.outs)

    @property
    def err(self) -> str:
        """Standard error of every node, node 0 first."""
        return "".join(self.errs)

    def report(self, tail: int = 6000) -> str:
        """The last ``tail`` characters of each node's stderr, headed by its exit code."""
        return "\n".join(
            f"---- node {r} (exit {c}) stderr:\n{e[-tail:]}"
            for r, (c, e) in enumerate(zip(self.codes, self.errs, strict=True))
        )


def free_port() -> int:
    """A TCP port nobody listens on right now (for torchrun's rendezvous)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def worker(name: str) -> Path:
    """Path of the worker script ``tests/_workers/<name>.py``."""
    return WORKERS / f"{name}.py"


def load_worker(name: str) -> ModuleType:
    """The worker script ``name`` as a module (its constants and data builders), not run."""
    spec = importlib.util.spec_from_file_location(f"aucseg_test_worker_{name}", worker(name))
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def launch_env(env: Mapping[str, str] | None = None) -> dict[str, str]:
    """Environment of a launcher: ``env`` (default this process's) with this checkout's
    ``src`` first on ``PYTHONPATH``, one intra-op thread and no outer torchrun variables."""
    base = dict(os.environ if env is None else env)
    for key in LAUNCH_VARS:
        base.pop(key, None)
    paths = [str(SRC), *filter(None, base.get("PYTHONPATH", "").split(os.pathsep))]
    return {**base, "PYTHONPATH": os.pathsep.join(paths), "OMP_NUM_THREADS": "1"}


def node_command(
    target: Sequence[object], nproc: int, nnodes: int, rank: int, port: int
) -> list[str]:
    """``python -m torch.distributed.run`` for node ``rank`` of ``nnodes``, then ``target``."""
    launcher = {"--nnodes": nnodes, "--node_rank": rank, "--nproc_per_node": nproc,
                "--master_addr": "127.0.0.1", "--master_port": port}  # fmt: skip
    options = [str(x) for item in launcher.items() for x in item]
    return [sys.executable, "-m", "torch.distributed.run", *options, *map(str, target)]


def _read(stream: IO[bytes]) -> str:
    """All that was written to the temporary file ``stream``, as text."""
    stream.seek(0)
    return stream.read().decode(errors="replace")


def _stop(procs: Sequence[subprocess.Popen]) -> None:
    """Kill every launcher still running, with its workers (each leads its process group)."""
    for proc in procs:
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def _wait(procs: Sequence[subprocess.Popen], timeout: float, grace: float = 20.0) -> bool:
    """Wait for every launcher, then kill what is left with its workers.

    Once one launcher has failed, the others get ``grace`` seconds: a node whose peer never
    came up would wait for it until torchrun's own (long) rendezvous timeout.

    Returns:
        False when ``timeout`` ran out before the launchers finished or failed.
    """
    now = time.monotonic()
    deadline = end = now + timeout
    while any(p.poll() is None for p in procs) and now < end:
        if any(p.returncode for p in procs):
            end = min(end, now + grace)
        time.sleep(0.1)
        now = time.monotonic()
    _stop(procs)
    return now < deadline


def _launch_once(
    target: Sequence[object], nproc: int, nnodes: int, env: dict[str, str], timeout: float
) -> Launch:
    """Start one launcher per node on a fresh port and wait for all of them.

    Output goes to temporary files, not pipes: a full pipe of one node would stall it while
    the others wait for it in a collective. A launch past ``timeout`` fails the test.
    """
    port, procs = free_port(), []
    with contextlib.ExitStack() as stack:
        temp = [stack.enter_context(tempfile.TemporaryFile()) for _ in range(2 * nnodes)]
        files = list(zip(temp[::2], temp[1::2], strict=True))
        stack.callback(_stop, procs)  # also when this process is interrupted
        for rank, (out, err) in enumerate(files):
            cmd = node_command(target, nproc, nnodes, rank, port)
            procs.append(
                subprocess.Popen(cmd, env=env, stdout=out, stderr=err, start_new_session=True)
            )
        in_time = _wait(procs, timeout)
        outs, errs = [_read(o) for o, _ in files], [_read(e) for _, e in files]
    launch = Launch([p.returncode for p in procs], outs, errs)
    if not in_time:
        pytest.fail(f"torchrun {list(target)} ran past {timeout}s:\n{launch.report()}")
    return launch


def torchrun(
    *target: object,
    nproc: int = 2,
    nnodes: int = 1,
    env: Mapping[str, str] | None = None,
    clean: Path | None = None,
    check: bool = True,
    timeout: float = 300,
) -> Launch:
    """Run ``torchrun TARGET`` with ``nnodes`` local nodes of ``nproc`` processes each.

    The rendezvous is static on ``127.0.0.1`` and a free port; a launch that fails on its port
    or its rendezvous (a loaded machine) is retried once on a new port.

    Args:
        target: a script path and its arguments, or ``"-m", module, ...``.
        nproc: processes per node.
        nnodes: nodes, each its own launcher on this machine (``--node_rank`` 0..nnodes-1).
        env: base environment (default this process's); see :func:`launch_env`.
        clean: a folder removed before each attempt (the work dir of a run).
        check: fail the test, with every node's stderr, unless every launcher exits 0.
        timeout: seconds one attempt may take before it is killed and the test fails.

    Returns:
        The :class:`Launch` of the last attempt.
    """
    full_env, lost = launch_env(env), []
    for attempt in (1, 2):
        if clean is not None:
            shutil.rmtree(clean, ignore_errors=True)
        launch = _launch_once(target, nproc, nnodes, full_env, timeout)
        launch.attempts = attempt
        if launch.code == 0 or not any(m in launch.err.lower() for m in RETRY_MARKERS):
            break
        lost.append(f"==== attempt {attempt} lost its port or rendezvous:\n{launch.report()}")
    if check and launch.code != 0:
        attempts = [
            *lost[: launch.attempts - 1],
            f"==== attempt {launch.attempts}:\n{launch.report()}",
        ]
        pytest.fail(f"torchrun {list(target)} failed:\n" + "\n".join(attempts))
    return launch
