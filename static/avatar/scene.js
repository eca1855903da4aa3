// The three.js side of the avatar view: a renderer with a transparent background (so OBS can
// key nothing out), lights, and a camera framed on the avatar's own bones.

import * as THREE from "three";

// How much of the body each framing shows: from this bone (or the feet) up to above the head.
// `across`: the width to keep in view, as a share of the avatar's height (arms held out
// span about the whole height; upper-body poses rarely reach that far).
const FRAMINGS = {
  full: { from: "feet", margin: 0.06, across: 1.0 },
  upper: { from: "hips", margin: 0.08, across: 0.8 },
};
const FOV = 30;
const NO_WEBGL =
  "This browser cannot draw 3D graphics (WebGL is off or not available), so the avatar cannot be shown. " +
  "Turn on hardware acceleration in the browser's settings, or try another browser.";

// Whether this browser draws WebGL without a GPU, by its renderer's name: Chromium's
// SwiftShader, Mesa's llvmpipe and softpipe, Windows' Basic Render Driver ("Microsoft
// Basic Render", "Software Adapter"). Chromium with SwiftShader accepts a context that asks
// to fail on a "major performance caveat", so that flag cannot tell.
const SOFTWARE_RENDERERS = /SwiftShader|llvmpipe|softpipe|Basic Render|Software/i;

function drawsInSoftware() {
  const gl = document.createElement("canvas").getContext("webgl2");
  if (!gl) return false;
  const info = gl.getExtension("WEBGL_debug_renderer_info");
  const name = gl.getParameter(info ? info.UNMASKED_RENDERER_WEBGL : gl.RENDERER);
  gl.getExtension("WEBGL_lose_context")?.loseContext();
  return SOFTWARE_RENDERERS.test(String(name));
}

export class AvatarScene {
  constructor(container) {
    this.container = container;
    // alpha: a cleared pixel is transparent, not black, on the page and in OBS.
    // antialias only with a GPU: drawn in software, it made each drawing 1.6 times as slow.
    this.software = drawsInSoftware();
    this.scene = new THREE.Scene();
    this.camera = new THREE.PerspectiveCamera(FOV, 1, 0.05, 50);
    const light = new THREE.DirectionalLight(0xffffff, Math.PI);
    light.position.set(1, 1, 1).normalize();
    this.scene.add(light, new THREE.AmbientLight(0xffffff, 0.6));

    this.framing = "upper";
    this.target = null; // the avatar's root object
    this.bounds = null; // {bottom, hips, top, centreX, depth} at rest, metres
    // Without WebGL the rest of the page still works (camera, session, VMC): the view draws
    // nothing, and `failure` says why, for the page to show.
    this.failure = null;
    this.renderer = null;
    try {
      this.renderer = new THREE.WebGLRenderer({ antialias: !this.software, alpha: true });
    } catch {
      this.failure = NO_WEBGL;
      return;
    }
    this.renderer.setClearColor(0x000000, 0);
    this.renderer.setPixelRatio(Math.min(2, window.devicePixelRatio || 1));
    this.renderer.outputColorSpace = THREE.SRGBColorSpace;
    this.canvas = this.renderer.domElement;
    this.canvas.classList.add("avatar-canvas");
    container.append(this.canvas);
    this.resize();
    // The view fills whatever box the page gives it, on a phone too.
    new ResizeObserver(() => this.resize()).observe(container);
  }

  resize() {
    if (!this.renderer) return;
    const width = Math.max(1, this.container.clientWidth);
    const height = Math.max(1, this.container.clientHeight);
    this.renderer.setSize(width, height, false);
    this.camera.aspect = width / height;
    this.frame();
  }

  // `bounds` come from the avatar at rest, so the camera does not chase every movement.
  show(root, bounds) {
    if (this.target) this.scene.remove(this.target);
    this.target = root;
    this.bounds = bounds;
    this.scene.add(root);
    this.frame();
  }

  setFraming(name) {
    // Own keys only: ?framing=constructor found Object's, and the OBS view drew nothing.
    this.framing = Object.hasOwn(FRAMINGS, name) ? name : "upper";
    this.frame();
  }

  frame() {
    if (!this.bounds) return;
    const { margin, from, across } = FRAMINGS[this.framing];
    const { bottom, hips, top, centreX } = this.bounds;
    // Upper body starts a little below the hips, so hands at the waist stay in view.
    const low = from === "feet" ? bottom : hips - 0.15 * (top - hips);
    const height = (top - low) * (1 + 2 * margin);
    const middle = (top + low) / 2;
    const halfFov = THREE.MathUtils.degToRad(FOV / 2);
    // Far enough that both the height and the arms fit in the view's aspect.
    const width = (top - bottom) * across;
    const distance = Math.max(height / 2, width / 2 / this.camera.aspect) / Math.tan(halfFov);
    this.camera.position.set(centreX, middle, distance);
    this.camera.lookAt(centreX, middle, 0);
    this.camera.updateProjectionMatrix();
  }

  render() {
    this.renderer?.render(this.scene, this.camera);
  }

  // For tests: the view rendered now and scaled to size x size, as RGBA bytes. Reading
  // right after rendering works without preserveDrawingBuffer, which would cost every frame.
  pixels(size = 64) {
    this.render();
    const small = document.createElement("canvas");
    small.width = small.height = size;
    const ctx = small.getContext("2d", { willReadFrequently: true });
    ctx.drawImage(this.canvas, 0, 0, size, size);
    return Array.from(ctx.getImageData(0, 0, size, size).data);
  }
}
