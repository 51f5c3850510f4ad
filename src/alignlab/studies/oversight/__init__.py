"""Study 02, scalable oversight: a weak judge helped by a stronger model (interaction), or
refereeing a consultant or two debaters, under two information settings (the helpers read the
support passage, or nobody does); the judge's labels then train study 01's strong student and label
its in-context demonstrations.

- `config`       the notebook's parameters and their checks (`Config`);
- `questions`    the pool of questions with their support passages;
- `quotes`       quotes from the passage, verified by string match (at least `min_quote_words`);
- `prompts`      what the helper, consultant, debaters and judge read, per information setting;
- `protocols`    transcripts and the judge's probabilities for every protocol and setting;
- `transcripts`  one JSON record per question, quote statistics per side;
- `evaluate`     the judge once per question (Wilson, bootstrap, paired tests) and the student loop;
- `incontext`    in-context W2SG: k-shot prompts labelled by each protocol, ICL accuracy and ICL-PGR;
- `report`       tables, figures, examples side by side, `metrics()`, `conclusion()`.
"""
