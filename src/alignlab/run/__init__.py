"""Host side: the parameters-cell contract, papermill execution, the run registry, the CLI.
Cheap imports only: nothing here imports torch at module load."""
