// Rolling figures for the live readout.

// Events per second over the last `windowMs`.
export class RateMeter {
  constructor(windowMs = 2000) {
    this.windowMs = windowMs;
    this.times = [];
  }

  tick(now = performance.now()) {
    this.times.push(now);
    this.trim(now);
  }

  trim(now) {
    while (this.times.length && now - this.times[0] > this.windowMs) this.times.shift();
  }

  rate(now = performance.now()) {
    this.trim(now);
    return (this.times.length * 1000) / this.windowMs;
  }
}

// An exponentially weighted mean that starts at its first sample.
export class Average {
  constructor(weight = 0.2) {
    this.weight = weight;
    this.value = null;
  }

  add(sample) {
    this.value = this.value === null ? sample : this.value + this.weight * (sample - this.value);
  }
}
