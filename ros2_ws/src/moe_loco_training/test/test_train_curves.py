"""Training curves for a policy card: the PNG shows the logged scalars; runs without logs are
refused by name."""

import numpy as np
import pytest
from PIL import Image
from torch.utils.tensorboard import SummaryWriter

from moe_loco_training.train.curves import CurvesError, main, plot_curves, read_scalars


def write_run(path, iterations=30):
    w = SummaryWriter(str(path / "tb"))
    for i in range(iterations):
        w.add_scalar("train/mean_reward_per_step", 0.01 * i, i)
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
