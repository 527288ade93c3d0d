"""Benchmarks of the lab against a plain PyTorch pipeline (cpu.py) and of the engine on a GPU (gpu.py),
with the timing helpers they share (common.py). `python -m core bench` and scripts/gpu_bench.py call them;
nothing in core/ depends on this package except that CLI command.
"""
