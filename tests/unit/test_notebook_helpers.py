"""fijiport.notebook outside a notebook (a terminal, a script, pytest): text bars on stderr, no plot, plain tables.
In a kernel the same callbacks draw widget bars and the live loss plot (tests/notebooks run them there)."""

from __future__ import annotations

from fijiport.notebook import CountBar, StepBar, TrainingMonitor, in_colab, in_notebook, report_table, runtime_table, table
from fijiport.package.report import Report, Status
from fijiport.training.common import TrainProgress


def test_bars_draw_the_librarys_callbacks_as_text_outside_a_notebook(capsys):
    assert not in_notebook() and not in_colab()
    count = CountBar("predicting")
    for i in range(3):
        count(i, 3, f"image_{i}.tif")
    count(3, 3)
    assert count._bar is None, "the bar closes when the count reaches its total"
    steps = StepBar("export")
    with steps:
        steps("freezing the graph")
        steps("converting to ONNX")
    assert steps.steps == ["freezing the graph", "converting to ONNX"]
    err = capsys.readouterr().err
    assert "predicting" in err and "3/3" in err and "export" in err and "converting to ONNX" in err


def test_training_monitor_records_every_epoch_and_plots_only_in_a_notebook(capsys):
    monitor = TrainingMonitor()
    assert not monitor.plot
    monitor(TrainProgress("patches", step=2, steps=4))
    monitor(TrainProgress("patches", step=4, steps=4))
    for epoch in (1, 2):
        for step in (1, 2):
            monitor(TrainProgress("step", epoch, 2, step, 2, {"loss": 1.0 / (epoch + step)}))
        monitor(TrainProgress("epoch", epoch, 2, 2, 2, {"loss": 1.0 / epoch, "val_loss": 2.0 / epoch}))
    assert monitor.epochs == [1, 2] and monitor.history == {"loss": [1.0, 0.5], "val_loss": [2.0, 1.0]}
    err = capsys.readouterr().err
    assert "sampling patches" in err and "epoch 2/2" in err


def test_tables_are_plain_text_outside_a_notebook():
    text = table([{"metric": "PSNR", "gain": 1.23456, "note": "a|b"}, {"metric": "SSIM", "gain": None}])
    assert text.splitlines() == ["| metric | gain | note |", "|---|---|---|", "| PSNR | 1.23 | a\\|b |", "| SSIM |  |  |"]
    report = Report("pkg.zip", "Validation")
    report.add("bioimageio.core test", Status.PASSED, "10 checks passed", weight_format="onnx")
    matrix = Report("pkg.zip", "Runtime matrix")
    matrix.add("KNIME", Status.PASSED, "", runtime="tensorflow-1.13.1", max_abs_diff=4e-7)
    report.parts["runtime_matrix"] = matrix
    assert "| bioimageio.core test | onnx | passed | 10 checks passed |" in report_table(report)
    assert "| KNIME | tensorflow-1.13.1 | passed | 4e-07 |  |" in runtime_table(report) == runtime_table(matrix)
    assert runtime_table(Report("pkg.zip", "Validation")).count("\n") == 1, "no matrix: an empty table"
