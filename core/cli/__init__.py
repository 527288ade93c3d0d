"""The CLI: thin argument parsing over core's modules, one file per command group, and its entry point
(main.py: `python -m core`, one-line errors, exit codes).
"""
