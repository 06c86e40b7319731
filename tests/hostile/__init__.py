"""Hostile inputs for tests, generated on the fly (servers, files); nothing big is committed."""
