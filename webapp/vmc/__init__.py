"""VMC out: a session's rig as OSC over UDP for VSeeFace, VNyan, Warudo and friends."""
