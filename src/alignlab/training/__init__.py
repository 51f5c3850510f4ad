"""The weak-to-strong training pipeline that several studies share: learners (linear probes on
frozen features, fine-tuned models), losses, ensembles of weak teachers, PGR."""
