"""so100_driver: Feetech STS3215 leader and follower arm drivers with LeRobot calibration, a servo-bus emulator, and the RealSense camera node."""
