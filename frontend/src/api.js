// Calls to the portal's API (/api/v1/) from the page: the session cookie authenticates, the CSRF token
// goes in a header, and every error comes back as {"error": {"code", "message", "field", ...}}.

export class ApiError extends Error {
  constructor(status, body) {
    const error = (body && body.error) || {};
    super(error.message || `The server answered ${status}.`);
    this.status = status;
    this.code = error.code || "";
    this.error = error;
  }
}

function csrfToken() {
  const match = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
  if (match) return decodeURIComponent(match[1]);
  const input = document.querySelector("input[name=csrfmiddlewaretoken]");
  return input ? input.value : "";
}

export function makeApi(base) {
  async function call(method, path, body, { signal } = {}) {
    const url = /^(https?:)?\//.test(path) ? path : base + path;
    const headers = { Accept: "application/json" };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    if (method !== "GET") headers["X-CSRFToken"] = csrfToken();
    let response;
    try {
      response = await fetch(url, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        credentials: "same-origin",
        signal,
      });
    } catch (err) {
      if (err.name === "AbortError") throw err;
      throw new ApiError(0, { error: { code: "offline", message: "The portal cannot be reached; check your connection." } });
    }
    const text = await response.text();
    let data = null;
    if (text) {
      try {
        data = JSON.parse(text);
      } catch {
        data = null;
      }
    }
    if (!response.ok) throw new ApiError(response.status, data);
    return data;
  }

  // Every page of a paginated list ({count, next, previous, results}); a plain list is returned as is.
  async function all(path) {
    const found = [];
    let next = path;
    while (next) {
      const data = await call("GET", next);
      if (Array.isArray(data)) return data;
      found.push(...data.results);
      next = data.next;
    }
    return found;
  }

  return { call, all };
}
