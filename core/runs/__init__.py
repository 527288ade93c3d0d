"""The run library: every run of the lab in one SQLite store, its lifecycle, queue and trainer processes.

One owner per concern, imported from the module that defines it (this package re-exports nothing):
library (`RunLibrary`, `open_library`: the façade ui/, pages/ and core/cli/ use), records (plain run records),
lifecycle (the only writer of a run's status), store (SQLite, schema, migrations), scheduler (the queue per
device), packing (what fits a device), supervisor (trainer processes, crash recovery), recorder (a run's events
into the store), trainer (the trainer process), rayjob / stream / cluster (runs on a Ray cluster), transfer
(export / import), sweeps, disk. docs/ARCHITECTURE.md has one line per module.
"""
