"""The GPU check (lab/gpu_check.py, scripts/gpu_check.sh) on this CPU-only machine: its CPU rows
are measured and compared, its CUDA rows say why they are missing."""

import math

import torch

from sparse_depth_node.lab.gpu_check import ROWS, check, format_rows


def test_the_gpu_check_compares_every_row_with_the_cpus_torch_depth(kitti_dir):
    rows = check("guided", kitti_dir, iterations=1, warmup=0)
    assert [(r["device"], r["backend"], r["precision"]) for r in rows] == list(ROWS)
    reference, ort = rows[0], rows[1]
    assert reference["max_abs_diff_m"] == 0.0 and reference["coverage"] == 1.0
    assert ort["providers"] == ["CPUExecutionProvider"]
    assert ort["max_abs_diff_m"] <= 1e-3 and ort["coverage"] > 0.999
    for r in rows[:2]:
        assert r["complete_ms"] > 0 and r["end_to_end_ms"] > r["copies_ms"] >= 0
        assert not math.isnan(r["prefill_ms"])  # guided corrects a classical fill
    text = format_rows(rows, "guided")
    assert len(text.splitlines()) == len(ROWS) + 3
    if not torch.cuda.is_available():
        assert all(r["unavailable"] == "no CUDA device" for r in rows[2:])
        assert text.count("unavailable: no CUDA device") == len(ROWS) - 2
