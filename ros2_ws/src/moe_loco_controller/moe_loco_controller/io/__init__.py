"""The Go2 link through unitree_sdk2py: wire messages to and from the core's plain types."""
