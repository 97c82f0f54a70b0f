"""so100_common: Node runtime over rclpy or rmw_zenoh-compatible Zenoh, messages, names, launch graphs and the so100 CLI."""
