"""The GPU check (lab/gpu_check.py, scripts/gpu_check.sh) on this CPU-only machine: its CPU rows
are measured and compared, its GPU rows and tables say why they are missing."""

import math

import torch

from sparse_depth_node.lab.gpu_check import NO_CUDA, ROWS, check, format_tables


def test_the_gpu_check_compares_every_row_with_the_cpus_torch_depth(kitti_dir):
    result = check("guided", kitti_dir, iterations=1, train_steps=2)
    rows = result["precision"]
    assert [(r["device"], r["backend"], r["precision"]) for r in rows] == list(ROWS)
    reference, ort = rows[0], rows[1]
    assert reference["max_abs_diff_m"] == 0.0 and reference["coverage"] == 1.0
    assert ort["providers"] == ["CPUExecutionProvider"]
    assert ort["max_abs_diff_m"] <= 1e-3 and ort["coverage"] > 0.999
    for r in rows[:2]:
        assert r["complete_ms"] > 0 and r["end_to_end_ms"] > 0  # measured (no timing compared)
        assert not math.isnan(r["prefill_ms"])  # guided corrects a classical fill
        assert r["rmse_mm"] > r["mae_mm"] > 0  # the held-out accuracy of the same depth
    assert abs(ort["rmse_mm"] - reference["rmse_mm"]) < 1.0  # 0.1 mm apart at most
    cpu_training = result["training"][0]
    assert cpu_training["device"] == "cpu" and cpu_training["steps_per_s"] > 0
    assert cpu_training["finite"]
    text = format_tables(result)
    assert text.splitlines()[0].startswith("guided on the bundled frames")
    if not torch.cuda.is_available():
        assert all(r["unavailable"] == NO_CUDA for r in rows[2:])
        assert all(r["unavailable"] == NO_CUDA for r in result["training"][1:])
        assert result["situations"] == [{"situation": "all", "unavailable": NO_CUDA}]
        assert text.count(f"unavailable: {NO_CUDA}") == len(ROWS) - 2 + 2 + 2
