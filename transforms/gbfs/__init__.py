"""GBFS (bike and scooter sharing): spec section, auto-discovery, snapshot parsing, rules and the official JSON schemas."""
