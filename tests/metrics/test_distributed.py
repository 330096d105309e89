"""Two gloo processes on CPU: all-reduced metrics equal the single-process ones."""

import json

import pytest

from ..conftest import torchrun, worker


@pytest.mark.distributed
def test_two_process_all_reduce_matches_single_process(tmp_path):
    torchrun(worker("metric_all_reduce"), tmp_path, nproc=2, timeout=240)
    single = json.loads((tmp_path / "single.json").read_text())
    for rank in (0, 1):
        got = json.loads((tmp_path / f"rank{rank}.json").read_text())
        assert got["matrix"] == single["matrix"]
        assert got["hist"] == single["hist"]
        assert got["eval"] == single["eval"]
    assert single["eval"]["num_images"] == 5
    assert sum(map(sum, single["matrix"])) > 0
