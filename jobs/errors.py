"""The error a user can act on by fixing what they asked for, kept apart from the spec's
module so that every command can name it without loading the stages."""


class SpecError(ValueError):
    """A spec (or a command's arguments) that cannot be run, with the place that says why."""
