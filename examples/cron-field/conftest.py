# Lets the tests import the plugin package from this directory (not packed into the archive).
