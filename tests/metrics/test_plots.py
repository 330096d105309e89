import numpy as np
import pytest
from PIL import Image

from aucseg.metrics import (
    aggregate_figure,
    aggregate_results,
    per_class_figure,
    plot_aggregate,
    plot_group_comparison,
    plot_per_class,
)


def _valid_png(path) -> tuple[int, int]:
    """Size of the PNG at ``path``; fails if it is not a readable PNG."""
    with Image.open(path) as img:
        assert img.format == "PNG"
        img.verify()
    with Image.open(path) as img:
        img.load()
        return img.size


def test_per_class_plot_uses_stored_names_in_order(tmp_path, make_results):
    names = ["Wasserfall", "kelp forest", "ship", "buoy", "seal"]
    res = make_results(0, names=names, absent=[4])
    fig = per_class_figure(res, order=[2, 0, 4, 1, 3])
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == [names[i] for i in (2, 0, 4, 1, 3)]
    heights = [p.get_height() for p in ax.patches]
    expected = [res["per_class"][i]["iou"] or 0.0 for i in (2, 0, 4, 1, 3)]
    np.testing.assert_allclose(heights, expected)
    width, height = _valid_png(plot_per_class(res, tmp_path / "pc.png"))
    assert width > 100 and height > 100


def test_per_class_plot_rejects_bad_order(tmp_path, make_results):
    with pytest.raises(ValueError, match="distinct class ids"):
        plot_per_class(make_results(0), tmp_path / "x.png", order=[0, 0, 1, 2, 3])


def test_group_comparison_png(tmp_path, make_results):
    path = plot_group_comparison(make_results(0), make_results(1, groups=None), tmp_path / "g.png")
    assert min(_valid_png(path)) > 100


def test_aggregate_figure_bars_and_error_bars(tmp_path, make_results):
    runs = [make_results(s) for s in range(4)]
    agg = aggregate_results(runs, ["CE", "CE", "CE", "AUC"])
    ax = aggregate_figure(agg).axes[0]
    bars = [c for c in ax.containers if hasattr(c, "errorbar")]
    assert [c.get_label() for c in bars] == ["CE (n=3)", "AUC (n=1)"]
    keys = ["mIoU", "mIoU_head", "mIoU_middle", "mIoU_tail"]
    ce = np.array([[r[k] for k in keys] for r in runs[:3]])
    np.testing.assert_allclose([p.get_height() for p in bars[0]], ce.mean(axis=0))
    segments = bars[0].errorbar.lines[2][0].get_segments()
    half = [(s[1][1] - s[0][1]) / 2 for s in segments]
    np.testing.assert_allclose(half, ce.std(axis=0, ddof=1))
    single = bars[1].errorbar.lines[2][0].get_segments()
    assert all(s[1][1] == s[0][1] for s in single)  # one run: no spread drawn
    assert [t.get_text() for t in ax.get_xticklabels()] == ["Overall", "Head", "Middle", "Tail"]
    width, height = _valid_png(plot_aggregate(agg, tmp_path / "out" / "agg.png"))
    assert width > 100 and height > 100


def test_aggregate_figure_marks_missing_groups(make_results):
    agg = aggregate_results([make_results(0, groups=None)], ["CE"])
    ax = aggregate_figure(agg).axes[0]
    assert [t.get_text() for t in ax.texts].count("n/a") == 3
