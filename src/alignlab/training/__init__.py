"""Training classifiers on gold or weak labels, shared by the studies: learners (linear probes on
frozen features, fine-tuned models), losses, ensembles of weak teachers, and the weak-to-strong
pieces (`alignlab.training.w2s`: PGR, halves, the student and its ceiling).

The allowed values of the training options live here, in a module that imports nothing, so a
study's `config.py` can check its parameters against them without importing numpy or torch.
"""

MODES = ("probe", "finetune")  # linear heads on frozen features, or the model itself
LOSSES = ("xent", "logconf", "product")  # see alignlab.training.losses
METHODS = ("single", "bagging", "boosting")  # weak teachers; see alignlab.training.ensembles
# how a student's epoch is chosen: the last of the configured epochs (openai/weak-to-strong), or the
# best validation agreement with the teacher's labels, or with gold labels (optimistic: gold labels
# for the strong task are what weak-to-strong assumes missing)
SELECTIONS = ("fixed", "weak-val", "gold-val")
