"""MoE-Loco training package."""
