// The camera and the frame encoder: downsized JPEG frames from a playing <video>.

const JPEG_QUALITY = 0.7;
// Longest a frame waits for the camera's next picture: a camera that stops giving them
// without muting (a virtual camera left frozen) is still sent, at this pace.
const NEW_PICTURE_MS = 1000;
// How often a frame waiting for the camera's next picture looks for it.
const POLL_MS = 20;

// A camera choice is "user" (the front camera), "environment" (the back one, on a phone),
// or DEVICE and a deviceId: one camera of several, chosen by name (camera_choice.js).
export const DEVICE = "device:";

// Exact: Chromium opens its first camera for a deviceId that is only ideal. A width alone:
// with a height too, Chromium crops a camera of another shape to 4:3 to meet both (a
// 1280x720 one lost a quarter of its width, a portrait one its head and feet).
function videoConstraints(choice) {
  const size = { width: { ideal: 640 } };
  if (choice.startsWith(DEVICE)) return { ...size, deviceId: { exact: choice.slice(DEVICE.length) } };
  return { ...size, facingMode: choice };
}

// A camera opened whose first picture has not come by then is given up (NoPictureError).
export const NO_PICTURE_MS = 10_000;

// choice: as above. wanted(): false once the camera is no longer wanted (Stop pressed on
// the permission prompt, or while the video starts). A stream that arrives then is
// stopped, not shown: null.
export async function openCamera(video, choice = "user", wanted = () => true) {
  if (!navigator.mediaDevices?.getUserMedia) {
    throw new Error(window.isSecureContext ? "this browser offers no camera access" : insecureWords());
  }
  const stream = await askForCamera(choice);
  if (!wanted()) return dropStream(video, stream);
  video.srcObject = stream;
  // A camera can open and give nothing (a virtual camera nothing feeds, one another program
  // holds): the page said "Asking for the camera…" for ever, long after the permission.
  let timer;
  const late = new Promise((resolve, reject) => {
    const error = Object.assign(new Error("no picture"), { name: "NoPictureError" });
    timer = setTimeout(() => reject(error), NO_PICTURE_MS);
  });
  try {
    await Promise.race([pictureShown(video, wanted), late]);
  } catch (error) {
    // A Stop clears the video under play(), which then rejects: that is no camera failure.
    dropStream(video, stream);
    if (!wanted()) return null;
    throw error;
  } finally {
    clearTimeout(timer);
  }
  if (!wanted()) return dropStream(video, stream);
  return stream;
}

// A browser has no camera for plain http but at localhost: said as "this browser offers no
// camera access here", it read as the browser's fault, and named no address that works.
function insecureWords() {
  const port = location.port ? `:${location.port}` : "";
  const local = `http://localhost${port}${location.pathname}`;
  return `a browser opens a camera only over https or at localhost, and this page is plain http from ${location.hostname}. Open it over https (a server started with --self-signed or --tls-cert has it), or at ${local} on the computer the server runs on`;
}

// A camera chosen by name and since unplugged: the browser's default one rather than none
// (the page says which it is, camera_choice.js).
async function askForCamera(choice) {
  try {
    return await navigator.mediaDevices.getUserMedia({ audio: false, video: videoConstraints(choice) });
  } catch (error) {
    const gone = error.name === "OverconstrainedError" || error.name === "NotFoundError";
    if (!choice.startsWith(DEVICE) || !gone) throw error;
    return navigator.mediaDevices.getUserMedia({ audio: false, video: videoConstraints("user") });
  }
}

// The video may already show a newer stream: only this one is taken off it.
function dropStream(video, stream) {
  for (const track of stream.getTracks()) track.stop();
  if (video.srcObject === stream) video.srcObject = null;
  return null;
}

async function pictureShown(video, wanted) {
  await video.play();
  if (!video.videoWidth && wanted()) {
    // A video cleared by a Stop has no size to wait for.
    await new Promise((resolve, reject) => {
      video.addEventListener("loadedmetadata", resolve, { once: true });
      video.addEventListener("emptied", () => reject(new Error("the video was closed before it started")), { once: true });
    });
  }
}

export function closeCamera(video, stream) {
  for (const track of stream?.getTracks() ?? []) track.stop();
  video.srcObject = null;
}

// What went wrong, and what the person can do before pressing Start again: a browser keeps
// a denial, so Start alone would only be refused again.
export function cameraError(error) {
  const reasons = {
    NotAllowedError: "camera permission was denied. Allow the camera for this site (the camera icon in the address bar or the site settings), then press Start",
    NotFoundError: "no camera was found. Connect one, then press Start",
    NotReadableError: "the camera is in use by another program, or failed. Close that program, then press Start",
    NoPictureError: `the camera opened but gave no picture in ${NO_PICTURE_MS / 1000} s (another program may be using it, or nothing feeds this virtual camera). Close that program or choose another camera, then press Start`,
    OverconstrainedError: "the camera cannot give the requested size",
    SecurityError: "camera access is blocked on this page",
  };
  return `Cannot start the camera: ${reasons[error.name] || error.message || error.name}.`;
}

export class FrameEncoder {
  constructor(width, quality = JPEG_QUALITY) {
    this.width = width;
    this.quality = quality;
    this.canvas = typeof OffscreenCanvas === "function" ? new OffscreenCanvas(1, 1) : document.createElement("canvas");
    this.ctx = this.canvas.getContext("2d", { alpha: false });
    this.grabbed = undefined; // the video's picture count (pictures()) at the last grab
    this.stuck = false; // that count stood still for NEW_PICTURE_MS
  }

  encode() {
    if (this.canvas.convertToBlob) {
      return this.canvas.convertToBlob({ type: "image/jpeg", quality: this.quality });
    }
    return new Promise((resolve, reject) => {
      this.canvas.toBlob(
        (blob) => (blob ? resolve(blob) : reject(new Error("the canvas gave no image"))),
        "image/jpeg",
        this.quality,
      );
    });
  }

  // The video's current frame at most `width` pixels wide; null until the video plays.
  async grab(video) {
    await this.newPicture(video);
    if (video.readyState < HTMLMediaElement.HAVE_CURRENT_DATA || !video.videoWidth) return null;
    const width = Math.min(this.width, video.videoWidth);
    const height = Math.round((width * video.videoHeight) / video.videoWidth);
    if (this.canvas.width !== width || this.canvas.height !== height) {
      this.canvas.width = width;
      this.canvas.height = height;
    }
    const captureMs = performance.now();
    this.ctx.drawImage(video, 0, 0, width, height);
    this.grabbed = pictures(video);
    const blob = await this.encode();
    return { blob, captureMs, width, height };
  }

  // Until the camera has a picture not grabbed yet. A camera slower than the server's turns
  // (a dim room, a 5 fps USB camera) had each picture sent two or three times: each copy
  // took the server a frame's work, and the readout said 6 fps sent from a 2 fps camera.
  // A hidden page, whose timers a browser slows to one a second, sends as before; so does
  // a video whose count stood still for NEW_PICTURE_MS, until it moves again.
  async newPicture(video) {
    const grabbed = this.grabbed;
    if (pictures(video) === undefined || pictures(video) !== grabbed) {
      this.stuck = false;
      return;
    }
    const until = performance.now() + NEW_PICTURE_MS;
    while (!this.stuck && pictures(video) === grabbed && document.visibilityState === "visible") {
      const left = until - performance.now();
      if (left <= 0) this.stuck = true;
      else await nextPicture(video, Math.min(left, POLL_MS));
    }
  }
}

// The video's next picture, or `ms` gone by: a video out of the page's layout may have no
// frame callbacks.
function nextPicture(video, ms) {
  return new Promise((resolve) => {
    const callback = video.requestVideoFrameCallback?.(() => {
      clearTimeout(timer);
      resolve();
    });
    const timer = setTimeout(() => {
      if (callback !== undefined) video.cancelVideoFrameCallback(callback);
      resolve();
    }, ms);
  });
}

// How many pictures the video has had from its camera.
function pictures(video) {
  return video.getVideoPlaybackQuality?.().totalVideoFrames;
}
