"""Study 00: the capability ladder that the other studies pick weak and strong models from, on two
measures: zero-shot accuracy and frozen-feature probe accuracy, and whether each model reads its context.

- `config`    the notebook's parameters and their checks
- `zeroshot`  candidate scores (cached), binary-view predictions, multiple-choice accuracy
- `probes`    linear probes on cached frozen features, the layer chosen on validation, heads cached
- `context`   does each causal LM read its context? study 02's judge without and with the support
              passage, both option orders (`alignlab.lm.judge`), scores cached
- `report`    tables (accuracy with CIs, by fact type, probe accuracy and validation by layer, ladder
              comparisons), figures, metrics and the conclusion
"""
