"""The deployment guide's code examples, kept as written (guide fixes marked ``# guide fix:``)."""
