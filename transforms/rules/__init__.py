"""Validation rules: one rule per unit, run set-based over the canonical tables (see engine.py)."""
