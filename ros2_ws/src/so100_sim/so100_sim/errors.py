"""Exceptions of so100_sim; each names what failed and how to fix it."""

from so100_common.errors import So100Error


class SimError(So100Error):
    """Base of every error raised by so100_sim."""


class DescriptionError(SimError):
    """The robot description is inconsistent (a name, a parent or a number is wrong)."""


class ModelError(SimError):
    """A MuJoCo model cannot be built, or lacks a joint, site or actuator the code needs."""


class KinematicsError(SimError):
    """A kinematics query got malformed input (wrong length, NaN, not a rotation)."""
