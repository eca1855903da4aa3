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
  upload_timeout: "The file took too long to reach the server; check the connection and choose it again",
  model_error: "The model failed on this image; try another photo",
  internal: "The server failed on this request; try again, and if it goes on, tell whoever runs the server",
  bad_request: "The server could not read the request; choose the file again",
  not_a_video: "That file is not a video the server can read",
  bad_option: "The server did not take an option sent with the file",
  bad_recording: "That file is not a recording the server can read",
  unavailable: "No server can take the file now; try again in a moment",
  cross_site: "The server takes uploads only from its own pages (or a script); open this page from the server's own address",
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
