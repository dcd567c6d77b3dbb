"""The city simulator: synthetic feeds, simulated days of pings, stop events and card taps."""
