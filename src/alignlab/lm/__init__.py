"""Language-model computation: batched log-likelihood scoring, generation, padding."""
