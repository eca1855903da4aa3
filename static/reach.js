// Where a phone on the network reaches this server, for the pages' QR codes: the origins
// the server names for a page opened on its own machine (data-origins, webapp/reach.py),
// else this page's own origin when a phone can use it (https: a phone opens a camera only
// on a secure origin). None when neither: a page on a plain-http server.

export function isLoopback(hostname) {
  return hostname === "localhost" || hostname === "[::1]" || /^127\./.test(hostname);
}

// element: the one carrying data-origins (space-separated), when the server gave them.
export function phoneOrigins(element, location = window.location) {
  const listed = (element.dataset.origins ?? "").split(" ").filter(Boolean);
  if (listed.length) return listed;
  if (location.protocol === "https:" && !isLoopback(location.hostname)) return [location.origin];
  return [];
}
