"""so100_sim: MuJoCo SO-100 pick-and-place world, sim bridge node, kinematics, scripted expert and gymnasium env."""
