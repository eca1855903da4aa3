// The rig's gaze on a model whose lookAt turns eye bones, as most VRoid models do: their
// look expressions move nothing, so the rig's lookLeft, lookRight, lookUp and lookDown are
// given to the model's own lookAt as an angle instead, and the range maps its author set
// decide how far the eyes turn. A model whose lookAt is made of expressions takes the
// look expressions as the rig sends them (avatar.js).

import { VRMLookAtBoneApplier } from "@pixiv/three-vrm";

export const LOOKS = new Set(["lookUp", "lookDown", "lookLeft", "lookRight"]);

export class EyeBones {
  // An EyeBones for `vrm`, or null when its lookAt is not made of bones.
  static of(vrm) {
    const applier = vrm.lookAt?.applier;
    return applier instanceof VRMLookAtBoneApplier ? new EyeBones(vrm.lookAt, applier) : null;
  }

  constructor(lookAt, applier) {
    this.lookAt = lookAt;
    // A full look expression is its blend shape's whole movement; a full look here turns
    // the eyes as far as the model's ranges let them (each range maps its input's maximum
    // to its whole turn: 90 degrees to 10 on VRoid's and UniVRM's defaults, so passing the
    // person's own angle of about 15 degrees would barely move them).
    const most = (...maps) => Math.max(...maps.map((m) => m.inputMaxValue));
    this.fullYaw = most(applier.rangeMapHorizontalInner, applier.rangeMapHorizontalOuter);
    this.fullPitch = most(applier.rangeMapVerticalDown, applier.rangeMapVerticalUp);
    this.yaw = 0;
    this.pitch = 0;
  }

  // The angles wanted for one result's expressions. three-vrm's yaw turns toward the
  // model's own left, as lookLeft does; its pitch is negative upward.
  want(expressions) {
    const weight = (name) => expressions[name] ?? 0;
    this.yaw = (weight("lookLeft") - weight("lookRight")) * this.fullYaw;
    this.pitch = (weight("lookDown") - weight("lookUp")) * this.fullPitch;
  }

  // Every animation frame, easing like the bones; the lookAt applies it in vrm.update().
  update(follow) {
    this.lookAt.yaw += (this.yaw - this.lookAt.yaw) * follow;
    this.lookAt.pitch += (this.pitch - this.lookAt.pitch) * follow;
  }
}
