// The avatar view both pages share: a scene, the avatar on show, and the draw loop, kept
// apart from the network (results only set the pose; the loop draws at the screen's rate).

import * as THREE from "three";
import { formatBytes } from "../format.js";
import { AvatarFileError, loadVrm } from "./avatar.js";
import { DrawPace } from "./pace.js";
import { AvatarScene } from "./scene.js";

export { AvatarFileError };

// Larger files are refused before parsing: a VRM avatar is rarely above a few tens of MB.
const MAX_VRM_BYTES = 100 * 1024 * 1024;
// With no rig for this long (the person left the picture, the camera stopped or its
// connection dropped) the avatar eases back to rest instead of standing frozen mid-gesture
// on a stream. Results come at 5 fps or more: this is many of them missed, not one late.
const UNSEEN_MS = 2000;

export class AvatarView {
  constructor(container) {
    this.scene = new AvatarScene(container);
    this.avatar = null;
    this.loaded = () => {}; // called with each avatar once it shows
    this.lastRig = null;
    this.rigAt = 0; // when lastRig came; a pose set by hand (the tests') has none: it stays
    this.generation = 0; // avatars loaded so far: the tests see a replacement happen
    this.asked = 0; // loads asked for so far: only the last one asked for shows
    this.overtaken = 0; // loads dropped as a later one was asked for: the tests see one
    this.clock = performance.now();
    this.pace = new DrawPace();
    this.loop = this.loop.bind(this);
    requestAnimationFrame(this.loop);
  }

  loop(now) {
    requestAnimationFrame(this.loop);
    if (this.lastRig && this.rigAt && now - this.rigAt > UNSEEN_MS) this.rest();
    if (!this.pace.shouldDraw(now)) return;
    const delta = Math.min(0.1, Math.max(0, (now - this.clock) / 1000));
    this.clock = now;
    this.avatar?.update(delta);
    this.scene.render();
    this.pace.drew(now);
  }

  // source: a URL or a File. The old avatar stays until the new one has loaded. null: a
  // later load was asked for meanwhile (a large file dropped, then a small one), and this
  // one is not shown, as the one chosen last must not be replaced by an earlier one.
  async load(source) {
    const asked = ++this.asked;
    let bytes = source;
    if (typeof source !== "string") {
      if (source.size > MAX_VRM_BYTES) {
        // Not rounded to whole MB: a file just over read "it is 100 MB, over the 100 MB".
        throw new AvatarFileError(`it is ${formatBytes(source.size)}, over the ${formatBytes(MAX_VRM_BYTES)} this page accepts`);
      }
      bytes = await source.arrayBuffer();
    }
    const avatar = await loadVrm(bytes);
    if (asked !== this.asked) {
      avatar.dispose();
      this.overtaken += 1;
      return null;
    }
    this.avatar?.dispose();
    this.avatar = avatar;
    this.generation += 1;
    this.scene.show(avatar.root, avatar.heights);
    // A new avatar takes up the pose the old one had, instead of waiting for the next result.
    if (this.lastRig) avatar.apply(this.lastRig);
    this.loaded(avatar);
    return avatar;
  }

  apply(rig, at = performance.now()) {
    this.lastRig = rig;
    this.rigAt = at;
    this.avatar?.apply(rig);
  }

  // Back to rest: the session ended, or nobody was seen for UNSEEN_MS.
  rest() {
    this.lastRig = null;
    this.avatar?.rest();
  }

  // window.holotrackAvatar: lets the browser tests pose the avatar and read its pixels.
  testHook() {
    return {
      apply: (rig) => this.apply(rig, 0),
      posed: () => this.lastRig !== null,
      pixels: (size) => this.scene.pixels(size),
      generation: () => this.generation,
      overtaken: () => this.overtaken,
      drawn: () => this.pace.drawn,
      software: () => this.scene.software,
      framing: () => this.scene.framing,
      // bench/avatar_page.py's "before": draw on every animation frame.
      drawEveryFrame: () => {
        this.pace.shouldDraw = () => true;
      },
      name: () => this.avatar?.vrm.meta?.name ?? this.avatar?.vrm.meta?.title ?? null,
      metaVersion: () => this.avatar?.vrm.meta?.metaVersion ?? null,
      expressionsFrom: (rig) => this.avatar?.expressionsFrom(rig) ?? null,
      expressionNames: () => this.avatar?.expressionNames ?? [],
      expressionValue: (name) => this.avatar?.vrm.expressionManager?.getValue(name) ?? null,
      // The gaze as the model's lookAt holds it (degrees) and its eye bones' rotations.
      gaze: () => {
        const vrm = this.avatar?.vrm;
        const eye = (name) => vrm?.humanoid.getNormalizedBoneNode(name)?.quaternion.toArray() ?? null;
        return {
          bones: Boolean(this.avatar?.eyes),
          yaw: vrm?.lookAt?.yaw ?? null,
          pitch: vrm?.lookAt?.pitch ?? null,
          leftEye: eye("leftEye"),
          rightEye: eye("rightEye"),
        };
      },
      // The yaw and pitch three-vrm's own lookAt would give for a point in the world.
      anglesToward: (x, y, z) => {
        const lookAt = this.avatar?.vrm.lookAt;
        if (!lookAt) return null;
        const [yaw, pitch] = [lookAt.yaw, lookAt.pitch];
        lookAt.lookAt(new THREE.Vector3(x, y, z));
        const toward = { yaw: lookAt.yaw, pitch: lookAt.pitch };
        [lookAt.yaw, lookAt.pitch] = [yaw, pitch];
        return toward;
      },
      position: (bone) => this.avatar?.vrm.humanoid.getNormalizedBoneNode(bone)?.getWorldPosition(new THREE.Vector3()).toArray() ?? null,
    };
  }
}
