"""The one exception type users see: a message that says what was wrong and what to do."""


class GdalLambdaError(Exception):
    """A failure caused by input or environment, reported as one clear line (no traceback)."""
