"""Host side: `params` (the parameters-cell contract), `execute` (papermill runs into run folders),
`registry` (the SQLite run registry), `monitor` (peak memory, heartbeats, live runners), `sweep`
(grids of runs on an engine: local processes or Slurm through submitit), `notebooks` (the
committed form), `compare`, and `cli`. Cheap imports only: nothing here imports torch or
papermill at module load."""
