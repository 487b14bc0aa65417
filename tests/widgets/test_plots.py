"""Live training plots: buffered appends, timer-driven redraws, runs kept for comparison."""

from __future__ import annotations

import numpy as np
import PySide6  # noqa: F401  (before anything that may import pyqtgraph)
import pytest

from widgets.plots import MAX_RUNS, TrainingPlots


@pytest.fixture
def plots(shown):
    return shown(TrainingPlots(), 600, 500)


def feed(plots: TrainingPlots, steps: int, start: float = 2.0) -> None:
    for i in range(steps):
        plots.add_step(i, start - i * start / (2 * steps), min(1.0, i / steps), 1e-3)


def test_ten_thousand_steps_are_all_drawn(plots, qtbot):
    feed(plots, 10_000)
    assert plots.point_count() == 10_000
    qtbot.wait(80)
    for name in ("loss", "loss_smooth", "acc", "lr"):
        x, y = plots.curve_data(name)
        assert len(x) == len(y) == 10_000, name
    x, _ = plots.curve_data("loss")
    assert x[0] == 0 and x[-1] == 9_999


def test_redraw_waits_for_the_timer(plots, qtbot):
    plots.add_step(0, 1.0, 0.1, 0.01)
    assert len(plots.curve_data("loss")[0]) == 0  # buffered, not drawn per call
    qtbot.wait(80)
    assert len(plots.curve_data("loss")[0]) == 1
    plots.add_step(1, 0.9, 0.2, 0.01)
    assert len(plots.curve_data("loss")[0]) == 1
    qtbot.wait(80)
    assert len(plots.curve_data("loss")[0]) == 2


def test_smoothed_curve_lags_the_raw_one(plots, qtbot):
    feed(plots, 200)
    qtbot.wait(80)
    _, raw = plots.curve_data("loss")
    _, smooth = plots.curve_data("loss_smooth")
    assert smooth[0] == raw[0]
    assert np.all(smooth[10:] > raw[10:])  # a falling loss: the average trails above


def test_smoothing_removes_noise(plots, qtbot):
    rng = np.random.default_rng(0)
    for i, noise in enumerate(rng.normal(0.0, 0.3, 500)):
        plots.add_step(i, 1.0 + noise, 0.5, 0.01)
    qtbot.wait(80)
    _, raw = plots.curve_data("loss")
    _, smooth = plots.curve_data("loss_smooth")
    assert np.std(smooth[100:]) < 0.3 * np.std(raw[100:])


def test_non_finite_loss_is_skipped(plots, qtbot):
    plots.add_step(0, 1.0, 0.1, 0.01)
    plots.add_step(1, float("nan"), 0.1, 0.01)
    plots.add_step(2, float("inf"), 0.1, 0.01)
    plots.add_step(3, 0.8, 0.1, 0.01)
    plots.add_epoch(3, 0, 0.9, 0.1, float("nan"), 0.2)
    qtbot.wait(80)
    x, y = plots.curve_data("loss")
    assert list(x) == [0, 3]
    assert np.all(np.isfinite(y))
    assert np.all(np.isfinite(plots.curve_data("loss_smooth")[1]))
    assert len(plots.curve_data("lr")[0]) == 4
    assert len(plots.curve_data("val_loss")[0]) == 0
    assert len(plots.curve_data("val_acc")[0]) == 1


def test_epochs_share_the_step_axis(plots, qtbot):
    feed(plots, 100)
    plots.add_epoch(49, 0, 1.5, 0.4, 1.6, 0.35)
    plots.add_epoch(99, 1, 1.2, 0.6, 1.3, 0.55)
    plots.add_epoch(149, 2, 1.1, 0.7, None, None)  # no validation this epoch
    qtbot.wait(80)
    assert list(plots.curve_data("val_loss")[0]) == [49, 99]
    assert list(plots.curve_data("train_acc")[1]) == [0.4, 0.6, 0.7]
    assert list(plots.curve_data("val_acc")[1]) == [0.35, 0.55]


def test_second_run_keeps_the_first(plots, qtbot):
    plots.start_run("baseline")
    feed(plots, 300)
    plots.add_epoch(299, 0, 1.0, 0.5, 1.1, 0.45)
    plots.start_run("wider")  # flushes the first run even before the timer fires
    feed(plots, 50)
    qtbot.wait(80)
    assert plots.run_labels() == ["baseline", "wider"]
    assert len(plots.curve_data("loss", run=0)[0]) == 300
    assert len(plots.curve_data("val_loss", run=0)[0]) == 1
    assert len(plots.curve_data("loss", run=1)[0]) == 50
    assert plots.point_count(0) == 300 and plots.point_count() == 50
    legend_labels = [label.text for _, label in plots.legend.items]
    assert legend_labels == ["baseline", "wider"]


def test_old_runs_are_dropped_beyond_the_limit(plots, qtbot):
    for r in range(MAX_RUNS + 2):
        plots.start_run(f"run {r}")
        feed(plots, 5)
    qtbot.wait(80)
    assert plots.run_count() == MAX_RUNS
    assert plots.run_labels()[0] == "run 2"
    assert len(plots.legend.items) == MAX_RUNS
    assert len(plots.loss_plot.getPlotItem().listDataItems()) == 3 * MAX_RUNS


def test_log_scale_toggles_the_loss_axis(plots, qtbot):
    feed(plots, 20)
    qtbot.wait(80)
    axis = plots.loss_plot.getPlotItem().getAxis("left")
    assert not axis.logMode
    plots.set_log_scale(True)
    assert axis.logMode and plots.is_log_scale()
    qtbot.wait(80)
    plots.set_log_scale(False)
    assert not axis.logMode


def test_clear_removes_everything(plots, qtbot):
    feed(plots, 10)
    plots.clear()
    qtbot.wait(80)
    assert plots.run_count() == 0 and plots.point_count() == 0
    assert plots.loss_plot.getPlotItem().listDataItems() == []
    plots.add_step(0, 1.0, 0.5, 0.1)  # a step without start_run opens a run itself
    assert plots.run_count() == 1


def test_smoothed_loss_starts_on_the_data_and_follows_steps_not_reports(plots, qtbot):
    from widgets.plots import SMOOTHING

    for step in (1, 2, 3):
        plots.add_step(step, 0.7, 0.5, 1e-3)   # constant: the smoothed curve is exactly it
    # one report that stands for 50 steps at a lower loss: the decay covers all 50
    plots.add_step(53, 0.1, 0.9, 1e-3)
    qtbot.wait(80)
    _, smooth = plots.curve_data("loss_smooth")
    np.testing.assert_allclose(smooth[:3], 0.7)
    w3, d = 1 - SMOOTHING ** 3, SMOOTHING ** 50   # weight after 3 steps, decay over 50
    assert smooth[3] == pytest.approx((0.7 * d * w3 + 0.1 * (1 - d)) / (d * w3 + 1 - d),
                                      rel=1e-9)
    assert smooth[3] < 0.11


def test_a_constant_learning_rate_is_a_visible_level(plots, qtbot):
    feed(plots, 20)                                  # lr 1e-3 throughout
    qtbot.wait(80)
    low, high = plots.lr_plot.getViewBox().viewRange()[1]
    assert low == pytest.approx(0.0) and 1e-3 < high < 2e-3


def test_log_box_and_clear_earlier_runs_are_one_click_away(plots, qtbot):
    from PySide6.QtCore import Qt

    feed(plots, 10)
    qtbot.mouseClick(plots.log_box, Qt.MouseButton.LeftButton)
    assert plots.is_log_scale() and plots.loss_plot.getPlotItem().getAxis("left").logMode
    plots.set_log_scale(False)                       # the box follows the API, too
    assert not plots.log_box.isChecked()
    plots.start_run("second")
    feed(plots, 5)
    plots.start_run("third")
    feed(plots, 3)
    assert plots.run_count() == 3
    qtbot.mouseClick(plots.clear_button, Qt.MouseButton.LeftButton)
    assert plots.run_labels() == ["third"] and plots.point_count() == 3
    items = plots.loss_plot.getPlotItem().listDataItems()
    assert len(items) == 3                           # loss, smoothed, validation: one run


def test_dark_theme_darkens_the_plots(plots):
    plots.set_dark(True)
    assert plots.is_dark()
    assert plots.loss_plot.backgroundBrush().color().lightness() < 60
    assert plots.acc_plot.getAxis("left").textPen().color().lightness() > 180
    plots.set_dark(False)
    assert plots.loss_plot.backgroundBrush().color().lightness() > 240
