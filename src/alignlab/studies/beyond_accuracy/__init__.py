"""Study 05: weak-to-strong generalization beyond accuracy (safety, legal reasoning, toxicity), after
Ye et al., "Weak-to-Strong Generalization beyond Accuracy" (arXiv 2410.12621, code yeruimeng/WTS).

- `config`          the notebook's parameters and their checks
- `tasks`           the classification tasks' splits (checked before any model loads), the model pairs
- `classification`  weak teacher, strong ceiling and students per seed (study 01's training layer),
                    the task metrics (accuracy, balanced accuracy, weighted F1, AUROC, recall,
                    false-refusal rate on the contrast set)
- `toxicity`        the toxicity scorer, expected maximum toxicity, toxicity probability, fluency guard
- `detox`           weak-to-strong training on toxicity: prompt splits, best-of-k targets, fine-tuned
                    generators (weak, student, ceiling) per seed (`alignlab.training.causal`)
- `report`          PGR per metric (lower-is-better ones negated), the paired verdicts, tables, the
                    figures, metrics and conclusions
"""
