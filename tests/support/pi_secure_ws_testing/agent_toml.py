"""Device sections of ``agent.toml`` that tests and benchmarks share (the ``[agent]`` part is the
harness's, see ``agent.BASE_TOML``). Mock pins; short times, so tests stay fast."""

from __future__ import annotations

# A dimmable (PWM) light on GPIO17.
PORCH_LIGHT = """
[[light]]
id = "porch"
name = "Porch"
pin = 17
dimmable = true
"""

# An on/off light on GPIO27.
SHED_LIGHT = """
[[light]]
id = "shed"
name = "Shed"
pin = 27
"""

# Two zones behind a pump (no lead or lag), one zone at a time.
SPRINKLERS_WITH_PUMP = """
[sprinklers]
max_concurrent = 1
max_run_seconds = 600

[[sprinklers.zone]]
id = "lawn"
name = "Lawn"
pin = 5
default_seconds = 60
max_seconds = 300

[[sprinklers.zone]]
id = "beds"
name = "Beds"
pin = 6

[sprinklers.pump]
pin = 13
lead = 0
lag = 0
"""

# The test-pattern camera (no sensor needed), small and slow.
TEST_PATTERN_CAMERA = """
[camera]
backend = "test_pattern"
width = 160
height = 96
max_fps = 10
"""

# Every device kind but the frame (which needs a picture folder): what the Home Assistant tests
# pair with by default.
FULL_TOML = PORCH_LIGHT + SHED_LIGHT + SPRINKLERS_WITH_PUMP + TEST_PATTERN_CAMERA
