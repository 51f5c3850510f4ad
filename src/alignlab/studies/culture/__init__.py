"""Study 04: cultural dimensions of language models, CDEval-style.

- `config`       the notebook's parameters and their checks; the allowed methods and prompt templates
- `prompts`      the items (authored bank or CDEval) and the prompts built from them
- `scoring`      each model's orientation on each prompt (cached)
- `aggregation`  orientation per dimension and domain with bootstrap CIs; consistency, position
                 bias, stability
- `report`       tables, figures, metrics and the conclusion
"""
