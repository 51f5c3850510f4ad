"""Study 00: the zero-shot capability ladder that the other studies pick weak and strong models from.

- `config`    the notebook's parameters and their checks
- `zeroshot`  candidate scores (cached), binary-view predictions, multiple-choice accuracy
- `report`    tables (accuracy with CIs, by fact type, ladder comparisons), figures, metrics and
              the conclusion
"""
