// The live session with an exercise: the live page's LiveSession, plus the two fitness
// control messages and the server's `workout` answers (docs/protocol.md, issue 14).

import { LiveSession } from "../session.js";

export class FitnessSession extends LiveSession {
  // handlers: LiveSession's, plus workout(msg).
  constructor({ handlers, ...rest }) {
    super({ handlers, ...rest });
    this.on.workout = handlers.workout ?? (() => {});
  }

  handle(message) {
    if (message?.type !== "workout") return false;
    this.on.workout(message);
    return true;
  }

  // A new set of `name` (the same exercise again, or another); answered with a workout.
  newSet(name) {
    // A reconnection's hello asks for the exercise in use.
    this.options = { ...this.options, exercise: name };
    return this.control({ type: "exercise", name });
  }

  summary() {
    return this.control({ type: "summary" });
  }
}
