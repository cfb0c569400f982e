"""The embedding application's side: install, verify and run plugins (PluginHost)."""
