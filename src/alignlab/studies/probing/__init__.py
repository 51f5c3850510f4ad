"""Study 03_prompt_object_bias: object bias in prompt tuning for factual probing, and MeCoD.

config (parameters and checks), facts (data), queries (token-id queries and the frozen-LM scorer),
prompts (tuned prompt modules and MeCoD's losses), probes (training and cached runs), report
(metrics, intervals, figures, conclusion).
"""
