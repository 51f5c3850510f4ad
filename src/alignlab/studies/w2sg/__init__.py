"""Study 01, weak-to-strong generalization with ensembles of weak teachers, and in-context W2SG.

    config.py    the notebook's parameters and their checks (`Config`)
    pipeline.py  data, weak teachers, ceilings and students per seed (`run_study`), PGR
    icl.py       the strong LM learning in context from weak-labelled demonstrations
    report.py    tables, figures, metrics and the conclusion
"""
