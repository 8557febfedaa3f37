"""Raw serial sensors: devices that stream measurements on their own serial line (``sds011``,
``ascii_lines``). Only :mod:`.port` imports pyserial; the frame and line parsers are pure code."""
