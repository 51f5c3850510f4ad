"""Study package oversight."""
