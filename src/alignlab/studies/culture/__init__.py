"""Study 04: cultural dimensions of language models, CDEval-style.

- `config`       the notebook's parameters and their checks; the allowed methods and prompt templates
- `prompts`      the items (authored bank or CDEval), their validation, the prompts built from them
- `scoring`      loglik and forced-choice log-probabilities (cached); `score_models` runs every method
- `generated`    the `generate` method: generated answers and their parser
- `aggregation`  votes (forced choice debiased in log-odds), the majority per question, orientation
                 per dimension and domain with bootstrap CIs, position bias, paired differences
- `verdicts`     TOST for the middle, the null model, and the four verdicts
- `report`       tables, figures, metrics and the conclusion
"""
