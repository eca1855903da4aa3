// When the avatar view draws. A screen's frame takes 16.7 ms at 60 Hz; a browser that
// draws in software (no GPU: SwiftShader, some VMs and remote desktops) takes 50-80 ms
// for this scene, and drawing on every frame then starves the camera's frames, which are
// captured and encoded on the same renderer: 0.8 results a second, against 7.5-10 paced (headless
// Chromium on two cores, bench/avatar_page.py). So a drawing that held up the next frame
// is followed by as long a rest (at most LONGEST_REST_MS), leaving the renderer half its time.

const SLOW_FRAME_MS = 25;
// A hidden tab gets no animation frames at all; the gap when it comes back is not a
// drawing's cost, so no rest is longer than this.
export const LONGEST_REST_MS = 250;

export class DrawPace {
  constructor() {
    this.drawnAt = null; // when the last drawing began, until the next frame measures it
    this.restUntil = 0;
    this.drawn = 0;
  }

  // Called on every animation frame with its timestamp: whether to draw on this one.
  shouldDraw(now) {
    if (this.drawnAt !== null) {
      const took = now - this.drawnAt;
      this.restUntil = took > SLOW_FRAME_MS ? now + Math.min(took, LONGEST_REST_MS) : now;
      this.drawnAt = null;
    }
    return now >= this.restUntil;
  }

  drew(now) {
    this.drawnAt = now;
    this.drawn += 1;
  }
}
