"""Study package probing."""
