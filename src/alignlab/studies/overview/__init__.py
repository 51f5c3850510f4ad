"""Study package overview."""
