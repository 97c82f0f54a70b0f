"""A two-node demo of the transport: a talker with a moving arm and a camera, a listener that reports."""
