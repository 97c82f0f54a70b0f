"""teleop_vr: WebXR page and server for Meta Quest teleoperation of the SO-100."""
