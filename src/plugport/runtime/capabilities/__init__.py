"""Host-side capabilities that plugins reach over the channel; each checks grants on every call."""
