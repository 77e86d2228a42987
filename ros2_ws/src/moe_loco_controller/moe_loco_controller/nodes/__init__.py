"""Thin ROS 2 nodes around the core."""
