"""E-mail notifications for Plugport: ``notify.*`` events rendered from templates and sent
through the host's mail relay."""

from email_plugin.plugin import EmailPlugin

__all__ = ["EmailPlugin"]
