"""Study 00: the capability ladder that the other studies pick weak and strong models from, on two
measures: zero-shot accuracy and frozen-feature probe accuracy.

- `config`    the notebook's parameters and their checks
- `zeroshot`  candidate scores (cached), binary-view predictions, multiple-choice accuracy
- `probes`    linear probes on cached frozen features, the layer chosen on validation, heads cached
- `report`    tables (accuracy with CIs, by fact type, probe accuracy and validation by layer, ladder
              comparisons), figures, metrics and the conclusion
"""
