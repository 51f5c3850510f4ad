"""Study 07: recursive weak-to-strong generalization. An automatic aligner, trained first on a
small human-labelled set, supervises ever stronger students; each student (or an ensemble of all
so far) becomes the next aligner. Compared with direct supervision of the strongest model, with the
strongest model relabelling fresh data itself, and with gold ceilings, on the same unlabelled
budget.

`plan` (G, the disjoint pools, the ladder's order), `aligners` (single and ensemble supervisors),
`chain` (the conditions per seed, the cached study), `evaluate` (per-seed numbers), `report`
(tables, the figure, metrics, the conclusion).
"""
