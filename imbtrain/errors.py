"""Errors that reach the user as one clear line (the CLI exits with status 2)."""


class UserError(Exception):
    """Bad user input: a wrong key or value, a missing or malformed file.

    The message is one line that names the problem and what is allowed.
    """


class ConfigError(UserError):
    """A config key or value that is not allowed (raised while a `TrainConfig` is built)."""


class DivergedError(RuntimeError):
    """Training diverged: an epoch's training loss is NaN or infinite.

    Not a user error and not a crash: the study records the trial as diverged.
    """

    def __init__(self, epoch: int, loss: float):
        super().__init__(f"training diverged at epoch {epoch}: train loss {loss}")
        self.epoch, self.loss = epoch, loss


class StudyInterrupted(Exception):
    """A study stopped by SIGINT or SIGTERM: its finished trials are kept, the rest wait for
    `--resume`. The command line exits with `status`: 130 after SIGINT, 143 after SIGTERM
    (128 + the signal's number, as a shell reports a process a signal ended)."""

    def __init__(self, signum: int, finished: int, total: int, location: str):
        super().__init__(f"interrupted: {finished}/{total} trials finished")
        self.signum, self.finished, self.total, self.location = signum, finished, total, location

    @property
    def status(self) -> int:
        return 128 + self.signum
