// Loading a VRM (0.x or 1.0) with three-vrm, and posing it from the server's rig:
// {bones: {name: [x, y, z, w]}, hips_position: [x, y, z], expressions: {name: 0..1}}
// and, for a session that asked for them, blendshapes: {ARKit name: 0..1}.

import * as THREE from "three";
import { GLTFLoader } from "three/addons/loaders/GLTFLoader.js";
import { VRMLoaderPlugin, VRMUtils } from "@pixiv/three-vrm";
import { EyeBones, LOOKS } from "./gaze.js";

// Results come at 10-30 fps and the page draws at 60: each bone eases toward its newest
// rotation over about this long, which hides the steps without adding visible lag.
const FOLLOW_S = 0.05;
// A bone the rig stops sending (a leg out of view, a hand not found) eases back to rest
// more slowly, so a flicker in detection does not snap the limb.
const REST_S = 0.3;
// An expression this near its wanted weight is given it: easing alone never reaches it (a
// weight let go ends stuck at the smallest float above 0), and three-vrm takes any weight
// above 0 of an expression that blocks the blinks or the mouth (a VRM 1.0 model's Happy,
// often) as blocking them, so after None the avatar blinked no more.
const EXPRESSION_EPSILON = 1e-3;
// The rig's hips_position is in metres from the image's centre (webapp/analysis/rig/solve.py),
// for a person whose hips stand this high (webapp/analysis/skeleton.py); it is scaled to
// the avatar's own hips height. Where the camera happens to sit says nothing about the
// avatar's height, so the vertical part counts from the first value of a session: crouching
// shows, a camera on a high shelf does not. Both parts stay within this share of the hips'
// height, so the avatar never leaves the view.
const RIG_HIPS_HEIGHT = 0.95;
const MAX_HIPS_SHIFT = 0.5;
// When a model lacks an optional bone, its rotation is folded into the nearest parent
// the model has, so the chain above the shoulders still turns.
const FOLD_INTO = { upperChest: "chest", chest: "spine", neck: "upperChest" };
// The VRM presets a "perfect sync" model's ARKit expressions take over when the rig carries
// blendshapes, each by the ARKit ones that stand for it: driving both would shut its eyes or
// open its mouth twice over. A model with only some of the 51 (a CheekPuff, no EyeBlink) keeps
// the presets nothing of its own stands for, or it would stop blinking.
const JAW = ["jawOpen"];
const TAKEN_BY_ARKIT = new Map([
  ["blink", ["eyeBlinkLeft", "eyeBlinkRight"]],
  ["blinkLeft", ["eyeBlinkLeft"]],
  ["blinkRight", ["eyeBlinkRight"]],
  ...["aa", "ih", "ou", "ee", "oh"].map((mouth) => [mouth, JAW]),
]);

const unitRange = (v) => Math.min(1, Math.max(0, v));

// Quaternion [x, y, z, w] turning `degrees` about one axis (0: x, 1: y, 2: z).
function about(axis, degrees) {
  const half = (degrees * Math.PI) / 360;
  const q = [0, 0, 0, Math.cos(half)];
  q[axis] = Math.sin(half);
  return q;
}

// The pose at rest (before the first result, and when nobody has been seen for a while):
// arms down by the sides, elbows a little bent. VRM's own rest is a T-pose, arms held out,
// which on a stream looks like the tracking broke. A rig like the server's, so the VRM 0.x
// flip applies to it too: in VRM 1.0's axes the left arm points along +X, and turning it
// about Z toward -Y lowers it.
export const IDLE_RIG = Object.freeze({
  bones: {
    leftUpperArm: about(2, -70),
    rightUpperArm: about(2, 70),
    leftLowerArm: about(1, -10),
    rightLowerArm: about(1, 10),
  },
  expressions: {},
});

export class AvatarFileError extends Error {}

let loader = null;

function gltfLoader() {
  if (loader === null) {
    loader = new GLTFLoader();
    loader.register((parser) => new VRMLoaderPlugin(parser));
  }
  return loader;
}

// Compression three.js reads only with a decoder this page does not load. A model using it
// was refused as "not a glTF/VRM model (THREE.GLTFLoader: No DRACOLoader instance
// provided.)": a valid VRM blamed, in words meant for developers. Draco stops the loader
// wherever it is used; the others only where the file requires them (else it falls back).
const COMPRESSIONS = {
  KHR_draco_mesh_compression: "Draco mesh compression",
  EXT_meshopt_compression: "meshopt compression",
  KHR_texture_basisu: "KTX2 (Basis Universal) textures",
};

function compressed(buffer) {
  let gltf;
  try {
    const length = new DataView(buffer).getUint32(12, true);
    gltf = JSON.parse(new TextDecoder().decode(new Uint8Array(buffer, 20, length)));
  } catch {
    return null; // the loader says what is wrong with it
  }
  const required = Array.isArray(gltf?.extensionsRequired) ? gltf.extensionsRequired : [];
  const used = Array.isArray(gltf?.extensionsUsed) ? gltf.extensionsUsed : [];
  const found = Object.keys(COMPRESSIONS).filter(
    (name) => required.includes(name) || (name === "KHR_draco_mesh_compression" && used.includes(name)),
  );
  if (!found.length) return null;
  return `it uses ${found.map((name) => `${COMPRESSIONS[name]} (${name})`).join(" and ")}, which this page cannot unpack: export it again without compression`;
}

// Files people pick by mistake, by their first bytes: the loader's own words for them were
// a JSON parser's, quoting the binary ("Unexpected token '\ufffd', "\ufffd\ufffd\ufffd\ufffdJFIF"...").
const NOT_VRM = [
  [[0xff, 0xd8, 0xff], "a JPEG picture"],
  [[0x89, 0x50, 0x4e, 0x47], "a PNG picture"],
  [[0x50, 0x4b, 0x03, 0x04], "a zip archive (unzip it: the .vrm may be inside)"],
  [[0x47, 0x49, 0x46, 0x38], "a GIF picture"],
];
const GLB = [0x67, 0x6c, 0x54, 0x46]; // "glTF": every .vrm is binary glTF

function startsWith(bytes, magic) {
  return magic.every((byte, i) => bytes[i] === byte);
}

function notBinaryGltf(buffer) {
  // Said as "not a glTF/VRM model" it sent people looking for another format, when the
  // file was a download or a copy that never began.
  if (buffer.byteLength === 0) return "it is empty (0 bytes), as a download or copy that never began leaves it";
  const bytes = new Uint8Array(buffer, 0, Math.min(8, buffer.byteLength));
  if (startsWith(bytes, GLB)) return cutShort(buffer);
  const known = NOT_VRM.find(([magic]) => startsWith(bytes, magic));
  return `it is ${known ? known[1] : "not a glTF/VRM model"}: a .vrm file is binary glTF, and begins with "glTF"`;
}

// A binary glTF's header gives its whole length: a download or copy that did not finish
// has less, which the loader's own words told as "Invalid typed array length: 7437".
function cutShort(buffer) {
  if (buffer.byteLength < 12) return "it is cut short: not even its 12-byte header is whole";
  const declared = new DataView(buffer).getUint32(8, true);
  if (buffer.byteLength >= declared) return null;
  const count = (n) => n.toLocaleString("en-US");
  return `it is cut short: ${count(buffer.byteLength)} of the ${count(declared)} bytes its header gives (a download or copy that did not finish?)`;
}

// three-vrm's words when the model's humanoid lacks a bone every VRM must map.
const MISSING_BONES = /humanoid bones are required but not exist: (.+)$/;

// The loader's error in the user's words. A VRM whose humanoid lacks a required bone is a
// VRM all the same: called "not a glTF/VRM model" after three-vrm's own English, the user
// was sent looking for another file instead of fixing the bone mapping.
function whyNotParsed(error) {
  const message = String(error?.message || error);
  const missing = MISSING_BONES.exec(message);
  if (missing) {
    return `its humanoid does not map bones every VRM avatar must have (${missing[1]}): map them in the program that made it, and export it again`;
  }
  return `it is not a glTF/VRM model (${message})`;
}

// A URL or the bytes of a dropped file; throws AvatarFileError when it is not a VRM.
export async function loadVrm(source) {
  if (typeof source !== "string") {
    const why = notBinaryGltf(source) ?? compressed(source);
    if (why) throw new AvatarFileError(why);
  }
  let gltf;
  try {
    gltf = typeof source === "string" ? await gltfLoader().loadAsync(source) : await gltfLoader().parseAsync(source, "");
  } catch (error) {
    throw new AvatarFileError(whyNotParsed(error));
  }
  const vrm = gltf.userData.vrm;
  if (!vrm || !vrm.humanoid) {
    throw new AvatarFileError("it is a glTF model without VRM humanoid data");
  }
  // The optimisations three-vrm's own examples apply once after loading.
  VRMUtils.removeUnnecessaryVertices(gltf.scene);
  VRMUtils.combineSkeletons(gltf.scene);
  // VRM 0.x models face -Z; turn them to face +Z like VRM 1.0, toward the camera.
  VRMUtils.rotateVRM0(vrm);
  vrm.scene.traverse((object) => {
    object.frustumCulled = false; // skinned meshes move past their rest bounding boxes
  });
  return new Avatar(vrm);
}

export class Avatar {
  constructor(vrm) {
    this.vrm = vrm;
    // VRM 0.x keeps its own axes after rotateVRM0 (turned half a circle about Y), so a rig
    // in VRM 1.0 axes needs x and z negated there, as three-vrm's own animation example does.
    this.flip = vrm.meta?.metaVersion === "0";
    // The rig drives the gaze itself; three-vrm's look-at would turn it toward a target.
    if (vrm.lookAt) vrm.lookAt.autoUpdate = false;
    this.eyes = EyeBones.of(vrm); // null: the look expressions are driven directly
    this.targets = new Map(); // bone name -> THREE.Quaternion wanted now
    this.hipsTarget = null;
    this.hipsBaseline = null; // the first vertical hips_position since rest
    this.expressions = {};
    // The model's expressions by lower-case name: perfect-sync models spell ARKit's names
    // with a small or a capital first letter.
    const own = vrm.expressionManager?.expressions ?? [];
    this.byLowerName = new Map(own.map((e) => [e.expressionName.toLowerCase(), e.expressionName]));
    this.nodes = new Map(); // rig bone name -> the model's normalized node it drives
    this.heights = this.measure(); // in the T-pose, before anything moves
    this.hipsRest = this.node("hips")?.position.clone() ?? new THREE.Vector3();
    // It appears at rest at once, not lowering its arms from the T-pose.
    this.rest();
    for (const [node, rotation] of this.targets) node.quaternion.copy(rotation);
  }

  get root() {
    return this.vrm.scene;
  }

  // The model's expressions, by their own names.
  get expressionNames() {
    return (this.vrm.expressionManager?.expressions ?? []).map((e) => e.expressionName);
  }

  // How many of these (ARKit blendshape names) the model has as expressions, in any case.
  countOwn(names) {
    return names.filter((name) => this.byLowerName.has(name.toLowerCase())).length;
  }

  // The model's own name for a rig expression, or null when it has none. VRM 0.x has no
  // surprised preset: avatars made for VSeeFace carry a custom "Surprised" clip, which
  // VMC drives (webapp/vmc/encode.py) and which must show here too.
  ownExpression(name) {
    if (this.vrm.expressionManager?.getExpression(name)) return name;
    return this.byLowerName.get(name.toLowerCase()) ?? null;
  }

  // Node for a rig bone, or for the parent it folds into; null when the model has neither.
  node(name) {
    if (!this.nodes.has(name)) {
      let node = this.vrm.humanoid.getNormalizedBoneNode(name);
      let fold = FOLD_INTO[name];
      while (!node && fold) {
        node = this.vrm.humanoid.getNormalizedBoneNode(fold);
        fold = FOLD_INTO[fold];
      }
      this.nodes.set(name, node ?? null);
    }
    return this.nodes.get(name);
  }

  // Heights at rest for the camera's framing: feet, hips, the top of the head.
  measure() {
    this.vrm.scene.updateMatrixWorld(true);
    const box = new THREE.Box3().setFromObject(this.vrm.scene);
    const at = (name) => this.vrm.humanoid.getNormalizedBoneNode(name)?.getWorldPosition(new THREE.Vector3());
    const hips = at("hips");
    return {
      bottom: box.min.y,
      top: box.max.y,
      hips: hips ? hips.y : (box.min.y + box.max.y) / 2,
      centreX: hips ? hips.x : 0,
    };
  }

  // One result's rig. Missing bones ease back to rest in update().
  apply(rig) {
    if (!rig || typeof rig !== "object") return;
    this.targets.clear();
    const folded = new Map();
    for (const [name, value] of Object.entries(rig.bones ?? {})) {
      if (!Array.isArray(value) || value.length !== 4 || !value.every(Number.isFinite)) continue;
      const node = this.node(name);
      if (!node) continue;
      const [x, y, z, w] = value;
      const q = this.flip ? new THREE.Quaternion(-x, y, -z, w) : new THREE.Quaternion(x, y, z, w);
      q.normalize();
      // Parent first (the rig lists bones parent first), so a folded child composes after it.
      const previous = folded.get(node);
      folded.set(node, previous ? previous.multiply(q) : q);
      this.targets.set(node, folded.get(node));
    }
    this.hipsTarget = this.hipsFrom(rig.hips_position);
    this.expressions = this.expressionsFrom(rig);
    this.eyes?.want(this.expressions);
  }

  // The weight each of the model's expressions should reach: VRM presets, and ARKit
  // blendshapes under the model's own spelling when it has them.
  expressionsFrom(rig) {
    const shapes = {};
    const driven = new Set(); // the ARKit names the model shows, as the rig spells them
    for (const [name, weight] of Object.entries(rig.blendshapes ?? {})) {
      const own = this.byLowerName.get(name.toLowerCase());
      if (own && Number.isFinite(weight)) {
        shapes[own] = unitRange(weight);
        driven.add(name);
      }
    }
    const out = {};
    for (const [name, weight] of Object.entries(rig.expressions ?? {})) {
      if (TAKEN_BY_ARKIT.get(name)?.some((arkit) => driven.has(arkit))) continue;
      if (Number.isFinite(weight)) out[this.ownExpression(name) ?? name] = unitRange(weight);
    }
    return Object.assign(out, shapes);
  }

  hipsFrom(hips) {
    if (!Array.isArray(hips) || hips.length !== 3 || !hips.every(Number.isFinite)) return null;
    const height = this.hipsRest.y > 0 ? this.hipsRest.y : RIG_HIPS_HEIGHT;
    const scale = height / RIG_HIPS_HEIGHT;
    const [x, y, z] = hips;
    this.hipsBaseline ??= y;
    const limit = MAX_HIPS_SHIFT * height;
    const clamp = (v) => Math.min(limit, Math.max(-limit, v * scale));
    const offset = new THREE.Vector3(clamp(x), clamp(y - this.hipsBaseline), clamp(z));
    if (this.flip) offset.set(-offset.x, offset.y, -offset.z);
    return this.hipsRest.clone().add(offset);
  }

  // Back to rest: the next session's hips start a new baseline.
  rest() {
    this.apply(IDLE_RIG);
    this.hipsBaseline = null;
  }

  // Every animation frame: ease toward the newest rig, then let three-vrm copy the
  // normalized pose onto the model, run its spring bones and expressions.
  update(delta) {
    const follow = 1 - Math.exp(-delta / FOLLOW_S);
    const settle = 1 - Math.exp(-delta / REST_S);
    const identity = new THREE.Quaternion();
    for (const node of new Set(this.nodes.values())) {
      if (!node) continue;
      const target = this.targets.get(node);
      node.quaternion.slerp(target ?? identity, target ? follow : settle);
    }
    const hips = this.node("hips");
    if (hips) hips.position.lerp(this.hipsTarget ?? this.hipsRest, this.hipsTarget ? follow : settle);
    const manager = this.vrm.expressionManager;
    if (manager) {
      for (const expression of manager.expressions) {
        const name = expression.expressionName;
        if (this.eyes && LOOKS.has(name)) continue; // the eye bones look instead
        const wanted = this.expressions[name] ?? 0;
        const eased = manager.getValue(name) + (wanted - manager.getValue(name)) * follow;
        manager.setValue(name, Math.abs(wanted - eased) < EXPRESSION_EPSILON ? wanted : eased);
      }
    }
    this.eyes?.update(follow);
    this.vrm.update(delta);
  }

  dispose() {
    VRMUtils.deepDispose(this.vrm.scene);
  }
}
