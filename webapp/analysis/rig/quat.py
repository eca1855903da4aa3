"""Quaternions [x, y, z, w] (three.js and VRM order) and 3-vectors, as tuples of floats.

A rig is a few dozen rotations of four numbers each: plain floats do this arithmetic some
twenty times faster than numpy calls on tiny arrays, whose overhead dominates at this size.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Protocol

# Inputs may be any sequence of three floats (rows of ndarray.tolist()); results are tuples.
Vec = Sequence[float]
V3 = tuple[float, float, float]
Quat = tuple[float, float, float, float]
IDENTITY: Quat = (0.0, 0.0, 0.0, 1.0)


class Points(Protocol):
    """Points by their landmark index: a list of all of them, or a dict of only those a
    function reads (of the face mesh's 478, the head and the expressions read 40)."""

    def __getitem__(self, index: int, /) -> Vec: ...


_EPS = 1e-12


def sub(a: Vec, b: Vec) -> V3:
    return (a[0] - b[0], a[1] - b[1], a[2] - b[2])


def add(a: Vec, b: Vec) -> V3:
    return (a[0] + b[0], a[1] + b[1], a[2] + b[2])


def scale(a: Vec, s: float) -> V3:
    return (a[0] * s, a[1] * s, a[2] * s)


def mid(a: Vec, b: Vec) -> V3:
    return ((a[0] + b[0]) / 2.0, (a[1] + b[1]) / 2.0, (a[2] + b[2]) / 2.0)


def dot(a: Vec, b: Vec) -> float:
    return a[0] * b[0] + a[1] * b[1] + a[2] * b[2]


def cross(a: Vec, b: Vec) -> V3:
    return (a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0])


def norm(a: Vec) -> float:
    return math.sqrt(a[0] * a[0] + a[1] * a[1] + a[2] * a[2])


def unit(a: Vec) -> V3:
    """a / |a|; a zero vector stays zero."""
    n = norm(a)
    return (a[0] / n, a[1] / n, a[2] / n) if n > _EPS else (0.0, 0.0, 0.0)


def normalize(q: Quat) -> Quat:
    n = math.sqrt(q[0] * q[0] + q[1] * q[1] + q[2] * q[2] + q[3] * q[3])
    return (q[0] / n, q[1] / n, q[2] / n, q[3] / n) if n > _EPS else IDENTITY


def multiply(a: Quat, b: Quat) -> Quat:
    """a * b: the rotation b, then a."""
    ax, ay, az, aw = a
    bx, by, bz, bw = b
    return (
        aw * bx + ax * bw + ay * bz - az * by,
        aw * by - ax * bz + ay * bw + az * bx,
        aw * bz + ax * by - ay * bx + az * bw,
        aw * bw - ax * bx - ay * by - az * bz,
    )


def inverse(q: Quat) -> Quat:
    """The conjugate, which is the inverse of a unit quaternion."""
    return (-q[0], -q[1], -q[2], q[3])


def rotate(q: Quat, v: Vec) -> V3:
    """The vector v rotated by q."""
    u = (q[0], q[1], q[2])
    t = scale(cross(u, v), 2.0)
    return add(add(v, scale(t, q[3])), cross(u, t))


def from_axis_angle(axis: Vec, angle: float) -> Quat:
    s = math.sin(angle / 2.0)
    x, y, z = unit(axis)
    return (x * s, y * s, z * s, math.cos(angle / 2.0))


def between(a: Vec, b: Vec) -> Quat:
    """The shortest rotation taking direction a to direction b (a swing, no twist)."""
    a, b = unit(a), unit(b)
    d = dot(a, b)
    if d < -1.0 + 1e-9:  # opposite: turn half way round any axis perpendicular to a
        helper = (1.0, 0.0, 0.0) if abs(a[0]) < 0.9 else (0.0, 1.0, 0.0)
        x, y, z = unit(cross(a, helper))
        return (x, y, z, 0.0)
    c = cross(a, b)
    return normalize((c[0], c[1], c[2], 1.0 + d))


def from_matrix(cols: Sequence[Vec]) -> Quat:
    """The quaternion of a rotation matrix given by its columns (the rotated axes)."""
    (m00, m10, m20), (m01, m11, m21), (m02, m12, m22) = cols
    trace = m00 + m11 + m22
    if trace > 0.0:
        s = 2.0 * math.sqrt(trace + 1.0)
        q = ((m21 - m12) / s, (m02 - m20) / s, (m10 - m01) / s, s / 4.0)
    elif m00 > m11 and m00 > m22:
        s = 2.0 * math.sqrt(1.0 + m00 - m11 - m22)
        q = (s / 4.0, (m01 + m10) / s, (m02 + m20) / s, (m21 - m12) / s)
    elif m11 > m22:
        s = 2.0 * math.sqrt(1.0 + m11 - m00 - m22)
        q = ((m01 + m10) / s, s / 4.0, (m12 + m21) / s, (m02 - m20) / s)
    else:
        s = 2.0 * math.sqrt(1.0 + m22 - m00 - m11)
        q = ((m02 + m20) / s, (m12 + m21) / s, s / 4.0, (m10 - m01) / s)
    return normalize(q)


def _basis(primary: Vec, secondary: Vec) -> tuple[V3, V3, V3] | None:
    """primary, secondary made perpendicular to it, and their cross product (unit)."""
    a = unit(primary)
    b = sub(secondary, scale(a, dot(secondary, a)))
    nb = norm(b)
    if nb < 1e-9 or norm(a) == 0.0:
        return None
    b = scale(b, 1.0 / nb)
    return a, b, cross(a, b)


def from_frames(rest_primary: Vec, rest_secondary: Vec, primary: Vec, secondary: Vec) -> Quat:
    """The rotation taking a rest frame onto an observed one.

    The primary direction is matched exactly; the secondary one fixes the twist around it.
    With a secondary direction parallel to the primary, this is the swing alone.
    """
    seen = _basis(primary, secondary)
    rest = _basis(rest_primary, rest_secondary)
    if seen is None or rest is None:
        return between(rest_primary, primary)
    # R = seen @ rest^T, column by column: R e_j = sum_k seen_k * rest_k[j].
    cols = [
        (
            seen[0][0] * rest[0][j] + seen[1][0] * rest[1][j] + seen[2][0] * rest[2][j],
            seen[0][1] * rest[0][j] + seen[1][1] * rest[1][j] + seen[2][1] * rest[2][j],
            seen[0][2] * rest[0][j] + seen[1][2] * rest[1][j] + seen[2][2] * rest[2][j],
        )
        for j in range(3)
    ]
    return from_matrix(cols)


def slerp(a: Quat, b: Quat, t: float, shortest: bool = True) -> Quat:
    """Spherical interpolation from a (t=0) to b (t=1), the short way round; with
    `shortest` False, along the arc between a and b as their signs are (a caller that
    keeps b's sign continuous keeps the path from switching sides near half a turn)."""
    d = a[0] * b[0] + a[1] * b[1] + a[2] * b[2] + a[3] * b[3]
    # Nearly opposite, b is nearly a's own rotation: the long way would be a whole turn.
    if d < 0.0 and (shortest or d < -0.9995):
        b, d = (-b[0], -b[1], -b[2], -b[3]), -d
    if d > 0.9995:
        return normalize(
            (
                a[0] + t * (b[0] - a[0]),
                a[1] + t * (b[1] - a[1]),
                a[2] + t * (b[2] - a[2]),
                a[3] + t * (b[3] - a[3]),
            )
        )
    theta = math.acos(d)
    s = math.sin(theta)
    wa, wb = math.sin((1.0 - t) * theta) / s, math.sin(t * theta) / s
    return (
        wa * a[0] + wb * b[0],
        wa * a[1] + wb * b[1],
        wa * a[2] + wb * b[2],
        wa * a[3] + wb * b[3],
    )


def angle(q: Quat) -> float:
    """The rotation angle in radians, 0 to pi."""
    # Not acos(w): near no rotation it turns a quaternion's rounding (1e-6 off unit length,
    # as a calibrated message's six digits) into a tenth of a degree; atan2 does not.
    return 2.0 * math.atan2(math.hypot(q[0], q[1], q[2]), abs(q[3]))


def canonical(q: Quat) -> Quat:
    """q or -q (the same rotation), whichever has w >= 0."""
    return q if q[3] >= 0.0 else (-q[0], -q[1], -q[2], -q[3])


def mirror(q: Quat) -> Quat:
    """The rotation reflected across the YZ plane (x -> -x): what the other side would do."""
    return (q[0], -q[1], -q[2], q[3])
