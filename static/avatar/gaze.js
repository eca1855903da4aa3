// The rig's gaze on a model whose lookAt turns eye bones, as most VRoid models do: their
// look expressions move nothing, so the rig's lookLeft, lookRight, lookUp and lookDown are
// given to the model's own lookAt as an angle instead, and the range maps its author set
// decide how far the eyes turn. A model whose lookAt is made of expressions takes the
// look expressions as the rig sends them (avatar.js).

import { VRMLookAtBoneApplier } from "@pixiv/three-vrm";

// The rig's look expressions reach 1 with the iris a tenth of the eye's width off centre
// (webapp/analysis/rig/face.py): about 3 mm on an eyeball of 12 mm radius, a turn of 15
// degrees.
export const FULL_TURN_DEGREES = 15;
export const LOOKS = new Set(["lookUp", "lookDown", "lookLeft", "lookRight"]);

export class EyeBones {
  // An EyeBones for `vrm`, or null when its lookAt is not made of bones.
  static of(vrm) {
    return vrm.lookAt?.applier instanceof VRMLookAtBoneApplier ? new EyeBones(vrm.lookAt) : null;
  }

  constructor(lookAt) {
    this.lookAt = lookAt;
    this.yaw = 0;
    this.pitch = 0;
  }

  // The angles wanted for one result's expressions. three-vrm's yaw turns toward the
  // model's own left, as lookLeft does; its pitch is negative upward.
  want(expressions) {
    const weight = (name) => expressions[name] ?? 0;
    this.yaw = (weight("lookLeft") - weight("lookRight")) * FULL_TURN_DEGREES;
    this.pitch = (weight("lookDown") - weight("lookUp")) * FULL_TURN_DEGREES;
  }

  // Every animation frame, easing like the bones; the lookAt applies it in vrm.update().
  update(follow) {
    this.lookAt.yaw += (this.yaw - this.lookAt.yaw) * follow;
    this.lookAt.pitch += (this.pitch - this.lookAt.pitch) * follow;
  }
}
