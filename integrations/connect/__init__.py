"""Amazon Connect: keep an instance's approved origins on Amazon equal to ccphost's."""
