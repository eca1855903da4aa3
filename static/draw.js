// Skeleton drawing shared by the still and live views. The bone tables come from the
// server (GET /api/skeleton, MediaPipe's own connection sets); nothing here hard-codes them.

// One fixed colour per part. The browser tests look for these exact colours on the canvas.
export const COLORS = Object.freeze({
  pose: "#ff2bd6",
  left_hand: "#00e05a",
  right_hand: "#ff8c00",
  face: "#1ea7ff",
});

export const MIN_VISIBILITY = 0.5;

let skeletonPromise = null;

export function loadSkeleton() {
  if (skeletonPromise === null) {
    skeletonPromise = fetch("/api/skeleton").then(async (response) => {
      if (!response.ok) {
        throw new Error(`GET /api/skeleton answered ${response.status}`);
      }
      return response.json();
    });
    // Let a later call try again after a failure.
    skeletonPromise.catch(() => {
      skeletonPromise = null;
    });
  }
  return skeletonPromise;
}

function visible(point) {
  return point.length < 4 || point[3] >= MIN_VISIBILITY;
}

function strokeBones(ctx, points, bones, width, height, check) {
  ctx.beginPath();
  for (const [a, b] of bones) {
    const p = points[a];
    const q = points[b];
    if (p === undefined || q === undefined || !check(p) || !check(q)) continue;
    ctx.moveTo(p[0] * width, p[1] * height);
    ctx.lineTo(q[0] * width, q[1] * height);
  }
  ctx.stroke();
}

function fillPoints(ctx, points, radius, width, height, check) {
  ctx.beginPath();
  for (const p of points) {
    if (!check(p)) continue;
    const x = p[0] * width;
    const y = p[1] * height;
    ctx.moveTo(x + radius, y);
    ctx.arc(x, y, radius, 0, 2 * Math.PI);
  }
  // Outlines first, then every fill: a dot's centre always shows its part's colour, even
  // where the fingers' joints crowd together.
  ctx.stroke();
  ctx.fill();
}

// Line widths follow the canvas size so a phone photo and a 480 px frame both read well.
export function strokeScale(width, height) {
  return Math.max(1, Math.min(width, height) / 360);
}

// Draws every part found in `landmarks` (normalized [0, 1] coordinates) onto `ctx`,
// which spans the whole image. Parts that are null are skipped.
export function drawSkeleton(ctx, landmarks, skeleton, width, height) {
  if (!landmarks) return;
  const s = strokeScale(width, height);
  const all = () => true;
  ctx.save();
  ctx.lineCap = "round";
  ctx.lineJoin = "round";

  if (landmarks.face) {
    ctx.strokeStyle = COLORS.face;
    ctx.globalAlpha = 0.45;
    ctx.lineWidth = Math.max(0.75, 0.6 * s);
    strokeBones(ctx, landmarks.face, skeleton.face, width, height, all);
    ctx.globalAlpha = 1;
    ctx.lineWidth = 1.5 * s;
    strokeBones(ctx, landmarks.face, skeleton.face_contours, width, height, all);
  }

  if (landmarks.pose) {
    ctx.strokeStyle = COLORS.pose;
    ctx.lineWidth = 3 * s;
    strokeBones(ctx, landmarks.pose, skeleton.pose, width, height, visible);
    ctx.fillStyle = COLORS.pose;
    ctx.strokeStyle = "#ffffff";
    ctx.lineWidth = Math.max(2, 1.5 * s);
    fillPoints(ctx, landmarks.pose, 3.5 * s, width, height, visible);
  }

  for (const part of ["left_hand", "right_hand"]) {
    const points = landmarks[part];
    if (!points) continue;
    ctx.strokeStyle = COLORS[part];
    ctx.lineWidth = 2.5 * s;
    strokeBones(ctx, points, skeleton.hand, width, height, all);
    ctx.fillStyle = COLORS[part];
    ctx.strokeStyle = "#ffffff";
    ctx.lineWidth = Math.max(2, 1.2 * s);
    fillPoints(ctx, points, 2.5 * s, width, height, all);
  }
  ctx.restore();
}

// Exposes the colours as CSS custom properties (--color-pose, --color-left-hand, ...)
// for the legend swatches, so the page and the canvas never disagree.
export function exposeColors(root = document.documentElement) {
  for (const [part, color] of Object.entries(COLORS)) {
    root.style.setProperty(`--color-${part.replace("_", "-")}`, color);
  }
}
