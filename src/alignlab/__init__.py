"""alignlab: a research compendium of alignment studies of language models.

Importing the package is cheap (no torch, no transformers): heavy modules are imported
where they are used, so that `alignlab --help` and parameter validation answer at once.
"""

__version__ = "0.1.0"
