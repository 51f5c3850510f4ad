"""Study package culture."""
