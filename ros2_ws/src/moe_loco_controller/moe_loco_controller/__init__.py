"""MoE-Loco onboard runtime for the Unitree Go2."""
