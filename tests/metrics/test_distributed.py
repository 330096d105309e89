"""Two gloo processes on CPU: all-reduced metrics equal the single-process ones."""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src"

WORKER = textwrap.dedent(
    """
    import json, sys
    import torch
    import torch.distributed as dist
    import torch.multiprocessing as mp

    from aucseg.engine.evaluate import evaluate
    from aucseg.metrics import ConfusionMatrix, PairwiseAUC

    C = 5

    def data():
        g = torch.Generator().manual_seed(0)
        items = []
        for k in range(5):
            h, w = 12 + k, 10 + 2 * k
            label = torch.randint(0, C, (h, w), generator=g)
            label[torch.rand(h, w, generator=g) < 0.1] = 255
            image = torch.randn(3, h, w, generator=g)
            items.append({"image": image, "label": label, "image_path": f"img{k}.png"})
        return items

    def model():
        torch.manual_seed(0)
        return torch.nn.Conv2d(3, C, 1)

    def metrics(items, rank, world):
        cm, auc = ConfusionMatrix(C), PairwiseAUC(C, bins=20)
        for item in items[rank::world]:
            g = torch.Generator().manual_seed(7)
            pred = torch.randint(0, C, item["label"].shape, generator=g)
            cm.update(pred, item["label"])
            auc.update(torch.rand(1, C, *item["label"].shape,
                                  generator=torch.Generator().manual_seed(8)), item["label"][None])
        cm.all_reduce()
        auc.all_reduce()
        return cm, auc

    def run(rank, world, init, out):
        dist.init_process_group("gloo", init_method=init, rank=rank, world_size=world)
        items = data()
        cm, auc = metrics(items, rank, world)
        res = evaluate(model(), items, C, [f"c{i}" for i in range(C)], progress=False)
        with open(f"{out}/rank{rank}.json", "w") as f:
            json.dump({"matrix": cm.matrix.tolist(), "hist": auc.hist.tolist(),
                       "eval": res}, f)
        dist.destroy_process_group()

    if __name__ == "__main__":
        init, out = sys.argv[1], sys.argv[2]
        items = data()
        cm, auc = metrics(items, 0, 1)
        res = evaluate(model(), items, C, [f"c{i}" for i in range(C)], progress=False)
        with open(f"{out}/single.json", "w") as f:
            json.dump({"matrix": cm.matrix.tolist(), "hist": auc.hist.tolist(), "eval": res}, f)
        mp.spawn(run, args=(2, init, out), nprocs=2, join=True)
    """
)


@pytest.mark.distributed
def test_two_process_all_reduce_matches_single_process(tmp_path):
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")]))
    for key in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(key, None)
    init = (tmp_path / "pg_init").as_uri()
    proc = subprocess.run(
        [sys.executable, str(script), init, str(tmp_path)],
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    single = json.loads((tmp_path / "single.json").read_text())
    for rank in (0, 1):
        got = json.loads((tmp_path / f"rank{rank}.json").read_text())
        assert got["matrix"] == single["matrix"]
        assert got["hist"] == single["hist"]
        assert got["eval"] == single["eval"]
    assert single["eval"]["num_images"] == 5
    assert sum(map(sum, single["matrix"])) > 0
