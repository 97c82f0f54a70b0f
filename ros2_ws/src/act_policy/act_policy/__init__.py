"""act_policy: rosbag2 episode recorder, bag to LeRobot dataset conversion, ACT training, evaluation and inference."""
