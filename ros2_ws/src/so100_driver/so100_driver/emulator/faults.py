"""Faults an emulated bus can be told to show (see ``EmulatedBus.inject``).

Dependency rule: imports only ``so100_driver.errors``.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields

from so100_driver.errors import EmulatorError


@dataclass
class Faults:
    """What goes wrong on the bus right now; every field can be changed while it runs.

    Attributes:
        reply_delay_s: extra wait before each reply, on top of the servo's Return_Delay_Time.
            LeRobot's SDK waits about 50 ms for a status packet, so more than that is a timeout
            (and the late reply then arrives during the host's next transaction, as on a real bus).
        drop_rate: probability that a reply is lost (the servo still executed the instruction).
        corrupt_rate: probability that a reply arrives with a wrong checksum.
        unplugged: the servos are cut off: nothing is heard, nothing executes, nothing answers.
        offline: ids of servos that are gone from the bus (a loose cable): they neither hear nor
            answer until they are back; the others carry on.
    """

    reply_delay_s: float = 0.0
    drop_rate: float = 0.0
    corrupt_rate: float = 0.0
    unplugged: bool = False
    offline: set[int] = field(default_factory=set)

    def __setattr__(self, name: str, value: object) -> None:
        if name == "reply_delay_s" and not (isinstance(value, int | float) and value >= 0):
            raise EmulatorError(f"reply_delay_s must be a number of seconds >= 0, got {value!r}")
        if name in ("drop_rate", "corrupt_rate") and not (isinstance(value, int | float) and 0 <= value <= 1):
            raise EmulatorError(f"{name} must be a probability in [0, 1], got {value!r}")
        if name == "offline":
            value = set(value)  # type: ignore[call-overload]
        super().__setattr__(name, value)

    def snapshot(self) -> dict[str, object]:
        """The current settings (a copy), e.g. to restore them later."""
        return {f.name: set(v) if isinstance(v := getattr(self, f.name), set) else v for f in fields(self)}
