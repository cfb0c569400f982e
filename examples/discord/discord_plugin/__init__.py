"""Discord: Plugport notifications as embeds through a channel webhook."""

from discord_plugin.plugin import DiscordPlugin

__all__ = ["DiscordPlugin"]
