"""The swarm: many simulated browsers against one Holotrack server, one record per frame."""
