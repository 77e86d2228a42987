"""Training curves for a policy card: the PNG shows the logged scalars; runs without logs are
refused by name."""

import numpy as np
import pytest
from PIL import Image
from torch.utils.tensorboard import SummaryWriter

from moe_loco_training.train.curves import (
    CurvesError,
    main,
    plot_curves,
    read_lineage,
    read_scalars,
)


def write_run(path, iterations=30, start=0, offset=0.0):
    w = SummaryWriter(str(path / "tb"))
    for i in range(start, start + iterations):
        w.add_scalar("train/mean_reward_per_step", 0.01 * i + offset, i)
        w.add_scalar("train/mean_episode_length_s", 0.5 * i, i)
        w.add_scalar("curriculum/plane_q", i / iterations, i)
        w.add_scalar("gate/plane_q/gate_entropy", 1.79 - 0.01 * i, i)
        w.add_scalar("loss/learning_rate", 1e-3, i)
    w.close()
    return path


def test_curves_are_read_back_and_plotted(tmp_path):
    run = write_run(tmp_path / "run")
    scalars = read_scalars(run)
    steps, values = scalars["train/mean_reward_per_step"]
    assert steps.tolist() == list(range(30))
    np.testing.assert_allclose(values, 0.01 * np.arange(30), rtol=1e-6)
    out = plot_curves(run, tmp_path / "curves.png")
    img = np.asarray(Image.open(out).convert("L"), dtype=float)
    assert img.shape[0] > 300 and img.std() > 10  # drawn panels, not an empty canvas


def test_a_run_without_logs_is_refused_by_name(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    with pytest.raises(CurvesError, match="no TensorBoard event file"):
        read_scalars(tmp_path / "empty")
    assert main([str(tmp_path / "empty")]) == 2
    assert "empty" in capsys.readouterr().err
    assert not (tmp_path / "empty" / "curves.png").exists()


def test_a_resumed_campaign_is_one_curve_each_resume_replacing_the_tail(tmp_path, capsys):
    """Run a logged 0-29, b resumed a's iteration 20 (its 20-29 discarded), c resumed b's 40."""
    a = write_run(tmp_path / "a")
    b = write_run(tmp_path / "b", iterations=25, start=20, offset=1.0)
    c = write_run(tmp_path / "c", iterations=10, start=40, offset=2.0)
    steps, values = read_lineage([a, b, c])["train/mean_reward_per_step"]
    assert steps.tolist() == list(range(50))
    expected = 0.01 * np.arange(50) + np.repeat([0.0, 1.0, 2.0], [20, 20, 10])
    np.testing.assert_allclose(values, expected, rtol=1e-6)
    assert main([str(a), str(b), str(c), "-o", str(tmp_path / "lineage.png")]) == 0
    assert (tmp_path / "lineage.png").is_file() and "lineage.png" in capsys.readouterr().out
