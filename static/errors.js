// Server errors in words. POST /predict answers {"error": code, "detail": sentence}.

const HTTP_ERRORS = {
  empty: "The file is empty",
  not_an_image: "That file is not an image the server can read",
  too_large: "The file is too large",
  too_many_pixels: "The image has too many pixels",
  unsupported_type: "That file type is not supported",
  busy: "The server is busy; try again in a moment",
  timeout: "The server took too long to answer",
  worker_crashed: "The model crashed on this image",
  unauthorized: "The server needs a valid access key",
  quota: "This access key is over its quota",
};

export function describeHttpError(status, body, statusText = "") {
  if (body && typeof body.error === "string") {
    const headline = HTTP_ERRORS[body.error] || "The server refused the file";
    const detail = body.detail ? `: ${body.detail}` : "";
    const retry = Number.isFinite(body.retry_after) ? ` Try again in ${body.retry_after} s.` : "";
    return `${headline}${detail} (HTTP ${status}, ${body.error}).${retry}`;
  }
  return `The server answered HTTP ${status}${statusText ? ` ${statusText}` : ""} without an explanation.`;
}
