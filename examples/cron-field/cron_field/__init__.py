"""A cron-expression field type for host forms, and a tile with an expression's next runs."""

from cron_field.plugin import CronField

__all__ = ["CronField"]
