// The skeleton drawn over the camera's video (live and avatar pages). The canvas follows the
// video's frame size, which the camera may change between starts.

import { drawSkeleton, loadSkeleton } from "./draw.js";

export class VideoOverlay {
  constructor(canvas, video) {
    this.canvas = canvas;
    this.video = video;
    this.skeleton = null;
  }

  // null once the bone tables are in, else why not, in words, for the page to show.
  async load() {
    try {
      this.skeleton = await loadSkeleton();
      return null;
    } catch (error) {
      return `Cannot load the bone tables from the server: ${error.message}.`;
    }
  }

  draw(landmarks) {
    const { canvas, video } = this;
    if (canvas.width !== video.videoWidth || canvas.height !== video.videoHeight) {
      canvas.width = video.videoWidth;
      canvas.height = video.videoHeight;
    }
    const ctx = canvas.getContext("2d");
    ctx.clearRect(0, 0, canvas.width, canvas.height);
    drawSkeleton(ctx, landmarks, this.skeleton, canvas.width, canvas.height);
  }

  clear() {
    this.canvas.getContext("2d").clearRect(0, 0, this.canvas.width, this.canvas.height);
  }
}
