"""The runtime's refusal: a run that cannot start as asked. The CLI prints it as one line (exit 1)."""


class RunRefused(Exception):
    """The model, robot, port, calibration or an option does not allow the run; nothing was powered.
    The message is one line naming the file, joint, motor, port or option at fault."""
