"""Study 06: o1-style code generation (O1-CODER): a test-case generator, search over reasoning
steps (MCTS) and over samples (best-of-n, CodeT), pseudocode prompting; every program runs in
`alignlab.sandbox`. Modules: `problems` (HumanEval/MBPP, folds, hidden tests), `tcg` (generated
tests, metrics, DPO pairs), `policy` (the LM), `search` (selection, MCTS, pass@k), `evaluation`
(sandbox runs), `experiment` (the runs), `report`."""
