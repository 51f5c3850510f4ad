"""Study package w2sg."""
