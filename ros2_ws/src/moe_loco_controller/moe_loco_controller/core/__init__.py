"""The ROS-free core: pure Python/numpy, no rclpy, no DDS."""
