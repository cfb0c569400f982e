# Lets the tests import the plugin package from this directory (not packed into the archive),
# and fills the wheel cache from plugport.lock on a machine that has never locked this plugin
# (the `plugin` fixture installs the locked `markdown` wheel from that cache).
import fcntl
from pathlib import Path

from plugport.deps.locker import cached_wheel, lock_plugin, wheel_cache
from plugport.deps.lockfile import load_lock
from plugport.errors import DependencyError

HERE = Path(__file__).parent


def _fill_wheel_cache() -> None:
    lock = load_lock(HERE)
    wheels = [w for p in lock.packages for w in p.wheels] if lock else []
    try:
        for wheel in wheels:
            cached_wheel(wheel)
    except DependencyError:
        wheel_cache().mkdir(parents=True, exist_ok=True)
        with (wheel_cache() / ".plugport-email-example.lock").open("w") as guard:
            fcntl.flock(guard, fcntl.LOCK_EX)  # pytest-xdist workers lock once, in turn
            lock_plugin(HERE)  # keeps the locked versions; refuses a changed file


_fill_wheel_cache()
