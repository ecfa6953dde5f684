"""Running fanout on one machine: the emulator, the sample API, the local Lambda runner."""
