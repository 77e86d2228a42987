"""Simulated Go2 (MuJoCo) for sim-to-sim."""
