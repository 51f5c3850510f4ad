"""Study 02, scalable oversight: a weak judge helped by a stronger model (interaction), or
refereeing a consultant or two debaters, and the judge's labels as weak supervision for a strong
student.

- `config`       the notebook's parameters and their checks (`Config`);
- `questions`    the pool of questions with their support passages;
- `quotes`       quotes from the passage, verified by string match;
- `prompts`      what the helper, consultant, debaters and judge read;
- `protocols`    transcripts and the judge's probabilities for every protocol;
- `transcripts`  one JSON record per question, quote statistics;
- `evaluate`     per seed: judge accuracy, calibration, and the W2SG student on protocol labels;
- `report`       tables, figures, examples side by side, `metrics()`, `conclusion()`.
"""
