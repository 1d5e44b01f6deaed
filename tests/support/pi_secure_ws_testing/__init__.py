"""Test support shared by pi_secure_ws's agent tests, Home Assistant tests and benchmarks.

Modules: ``agent`` (a real agent on loopback), ``agent_toml`` (device sections), ``devices``
(calling a device's actions as the server does), ``pins`` (the mock pins' mirror across
processes), ``systemd`` (a stand-in that runs the shipped unit file), ``waiting``, ``ha`` (Home
Assistant side), ``plugin`` (the pytest plugin). Not part of the agent's wheel.
"""
